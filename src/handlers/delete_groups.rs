//! DeleteGroups (API key 42), v0-v2: only empty groups can be deleted (NON_EMPTY_GROUP);
//! their offsets and metadata get tombstones in `__consumer_offsets`.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};

use crate::coordinator::ops;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::DeleteGroups;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 2;

pub async fn handle(ctx: &RequestContext, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for group_id in &request.groups_names {
        let id = group_id.to_string();
        let target = id.clone();
        let code =
            crate::coordinator::on_coordinator(&ctx.state, &target, move |owner, partition| {
                ops::delete(owner, partition, id)
            })
            .await
            .and_then(|inner| inner)
            .unwrap_or_else(|err| crate::coordinator::unavailable_code(&err));
        let mut out = DeletableGroupResult::default();
        out.group_id = group_id.clone();
        out.error_code = code;
        response.results.push(out);
    }
    response
}
