//! DescribeGroups (API key 15), v0-v5. An unknown group is described as Dead with no error
//! (Kafka's behaviour before KIP-1043's v6, which Kafka 4.2 serves: it answers an unknown
//! group GROUP_ID_NOT_FOUND, which needs the coordinator to tell "unknown" from "dead").

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::ops;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::DescribeGroups;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 5;

/// Kafka's "operations not requested" marker.
const NO_AUTHORIZED_OPERATIONS: i32 = i32::MIN;

pub async fn handle(
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for group_id in &request.groups {
        let id = group_id.to_string();
        let target = id.clone();
        let view =
            crate::coordinator::on_coordinator(&ctx.state, &target, move |owner, partition| {
                ops::describe(owner, partition, id)
            })
            .await
            .and_then(|inner| inner);
        let mut out = DescribedGroup::default();
        out.group_id = group_id.clone();
        out.authorized_operations = NO_AUTHORIZED_OPERATIONS;
        match view {
            Ok(view) => {
                out.group_state = StrBytes::from_static_str(view.state.name());
                out.protocol_type = StrBytes::from_string(view.protocol_type);
                out.protocol_data = StrBytes::from_string(view.protocol_name);
                out.members = view
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut member = DescribedGroupMember::default();
                        member.member_id = StrBytes::from_string(m.member_id);
                        member.group_instance_id = m.group_instance_id.map(StrBytes::from_string);
                        member.client_id = StrBytes::from_string(m.client_id);
                        member.client_host = StrBytes::from_string(m.client_host);
                        member.member_metadata = m.metadata;
                        member.member_assignment = m.assignment;
                        member
                    })
                    .collect();
            }
            Err(err) => out.error_code = crate::coordinator::unavailable_code(&err),
        }
        response.groups.push(out);
    }
    response
}
