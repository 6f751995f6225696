//! JoinGroup (API key 11), v0-v9. The response is held on the coordinator shard until the
//! rebalance's join phase completes (see `coordinator::group`).

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::group::{JoinInput, JoinOutcome};
use crate::coordinator::{fresh_member_id, ops};
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::JoinGroup;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 9;

pub async fn handle(ctx: &RequestContext, request: JoinGroupRequest) -> JoinGroupResponse {
    let group_id = request.group_id.to_string();
    let client_id = ctx.client_id.clone().unwrap_or_default();
    let input = JoinInput {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if ctx.api_version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: ctx.api_version >= 4,
        fresh_member_id: fresh_member_id(&client_id),
        client_id,
    };
    let member_id = input.member_id.clone();
    let target = group_id.clone();
    let outcome =
        crate::coordinator::on_coordinator(&ctx.state, &target, move |owner, partition| {
            ops::join(owner, partition, group_id, input)
        })
        .await
        .and_then(|inner| inner);
    match outcome {
        Ok(outcome) => build(outcome, ctx.api_version),
        Err(err) => {
            let mut response = JoinGroupResponse::default();
            response.error_code = crate::coordinator::unavailable_code(&err);
            response.generation_id = -1;
            response.member_id = StrBytes::from_string(member_id);
            response
        }
    }
}

/// First version whose response can say "skip the assignment" (KIP-814).
const SKIP_ASSIGNMENT_VERSION: i16 = 9;

fn build(mut outcome: JoinOutcome, api_version: i16) -> JoinGroupResponse {
    if outcome.skip_assignment && api_version < SKIP_ASSIGNMENT_VERSION {
        // A restarted static leader on an older client cannot be told to keep the current
        // assignment; as Kafka did before KIP-814, it gets no member list, so it syncs with
        // nothing to assign and the coordinator hands back the assignment it already has.
        outcome.skip_assignment = false;
        outcome.members.clear();
    }
    let mut response = JoinGroupResponse::default();
    response.error_code = outcome.error.map_or(0, |e| e.code());
    response.generation_id = outcome.generation_id;
    response.protocol_type = outcome.protocol_type.map(StrBytes::from_string);
    response.protocol_name = outcome.protocol_name.map(StrBytes::from_string);
    response.leader = StrBytes::from_string(outcome.leader);
    response.skip_assignment = outcome.skip_assignment;
    response.member_id = StrBytes::from_string(outcome.member_id);
    response.members = outcome
        .members
        .into_iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = StrBytes::from_string(m.member_id);
            member.group_instance_id = m.group_instance_id.map(StrBytes::from_string);
            member.metadata = m.metadata;
            member
        })
        .collect();
    response
}
