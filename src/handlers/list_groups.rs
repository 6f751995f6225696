//! ListGroups (API key 16), v0-v5: every group on this broker, optionally filtered by state
//! (v4+, case-insensitive) and by type (v5+; these are all "classic" groups).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::group::GroupState;
use crate::coordinator::ops;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::ListGroups;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 5;

const CLASSIC: &str = "classic";

pub async fn handle(ctx: &RequestContext, request: ListGroupsRequest) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    let listed =
        crate::coordinator::on_all_coordinators(
            &ctx.state,
            |owner| async move { ops::list(&owner).await },
        )
        .await;
    let groups = match listed {
        Ok(per_shard) => per_shard.into_iter().flatten().collect::<Vec<_>>(),
        Err(err) => {
            response.error_code = crate::coordinator::unavailable_code(&err);
            return response;
        }
    };
    let states: Vec<Option<GroupState>> = request
        .states_filter
        .iter()
        .map(|s| GroupState::parse(s.as_str()))
        .collect();
    let type_ok = request.types_filter.is_empty()
        || request
            .types_filter
            .iter()
            .any(|t| t.as_str().eq_ignore_ascii_case(CLASSIC));
    let mut groups: Vec<_> = groups
        .into_iter()
        .filter(|(_, _, state)| states.is_empty() || states.contains(&Some(*state)))
        .filter(|_| type_ok)
        .collect();
    groups.sort();
    response.groups = groups
        .into_iter()
        .map(|(group_id, protocol_type, state)| {
            let mut out = ListedGroup::default();
            out.group_id = GroupId(StrBytes::from_string(group_id));
            out.protocol_type = StrBytes::from_string(protocol_type);
            out.group_state = StrBytes::from_static_str(state.name());
            out.group_type = StrBytes::from_static_str(CLASSIC);
            out
        })
        .collect();
    response
}
