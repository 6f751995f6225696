//! SyncGroup (API key 14), v0-v5. Followers wait on the coordinator shard until the leader
//! sends the assignment; everyone then gets their own part.

use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::group::membership::SyncInput;
use crate::coordinator::ops;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::SyncGroup;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 5;

pub async fn handle(ctx: &RequestContext, request: SyncGroupRequest) -> SyncGroupResponse {
    let group_id = request.group_id.to_string();
    let input = SyncInput {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        generation_id: request.generation_id,
        protocol_type: request.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: request.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: request
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let target = group_id.clone();
    let outcome =
        crate::coordinator::on_coordinator(&ctx.state, &target, move |owner, partition| {
            ops::sync(owner, partition, group_id, input)
        })
        .await
        .and_then(|inner| inner);
    let mut response = SyncGroupResponse::default();
    match outcome {
        Ok(outcome) => {
            response.error_code = outcome.error.map_or(0, |e| e.code());
            response.protocol_type = outcome.protocol_type.map(StrBytes::from_string);
            response.protocol_name = outcome.protocol_name.map(StrBytes::from_string);
            response.assignment = outcome.assignment;
        }
        Err(err) => response.error_code = crate::coordinator::unavailable_code(&err),
    }
    response
}
