//! LeaveGroup (API key 13), v0-v5. v0-v2 carry one member id; v3+ a batch of members
//! (member id and/or group.instance.id), each answered on its own.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::group::code_of;
use crate::coordinator::group::membership::LeaveInput;
use crate::coordinator::ops;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::LeaveGroup;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 5;

pub async fn handle(ctx: &RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let group_id = request.group_id.to_string();
    let batched = ctx.api_version >= 3;
    let members: Vec<LeaveInput> = if batched {
        request
            .members
            .iter()
            .map(|m| LeaveInput {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeaveInput {
            member_id: request.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    let asked = members.clone();
    let target = group_id.clone();
    let outcome =
        crate::coordinator::on_coordinator(&ctx.state, &target, move |owner, partition| {
            ops::leave(owner, partition, group_id, members)
        })
        .await
        .and_then(|inner| inner);
    let mut response = LeaveGroupResponse::default();
    let results = match outcome {
        Ok(results) => results,
        Err(err) => {
            response.error_code = crate::coordinator::unavailable_code(&err);
            return response;
        }
    };
    if !batched {
        response.error_code = results.first().map_or(0, |r| code_of(*r));
        return response;
    }
    response.members = asked
        .into_iter()
        .zip(results)
        .map(|(member, result)| {
            let mut out = MemberResponse::default();
            out.member_id = StrBytes::from_string(member.member_id);
            out.group_instance_id = member.group_instance_id.map(StrBytes::from_string);
            out.error_code = code_of(result);
            out
        })
        .collect();
    response
}
