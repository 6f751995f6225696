//! Heartbeat (API key 12), v0-v4: keeps a member's session alive and tells it when a
//! rebalance started (REBALANCE_IN_PROGRESS).

use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};

use crate::coordinator::group::code_of;
use crate::coordinator::ops;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::Heartbeat;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 4;

pub async fn handle(ctx: &RequestContext, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.to_string();
    let member_id = request.member_id.to_string();
    let instance = request.group_instance_id.as_ref().map(|s| s.to_string());
    let generation_id = request.generation_id;
    let target = group_id.clone();
    let outcome =
        crate::coordinator::on_coordinator(&ctx.state, &target, move |owner, partition| {
            ops::heartbeat(
                owner,
                partition,
                group_id,
                member_id,
                instance,
                generation_id,
            )
        })
        .await
        .and_then(|inner| inner);
    let mut response = HeartbeatResponse::default();
    response.error_code = match outcome {
        Ok(result) => code_of(result),
        Err(err) => crate::coordinator::unavailable_code(&err),
    };
    response
}
