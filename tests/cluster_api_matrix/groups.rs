//! The consumer-group APIs: every broker names the same coordinator for a group (the leader
//! of its `__consumer_offsets` partition); the coordinator serves the group and any other
//! broker answers NOT_COORDINATOR, as Kafka does. ListGroups lists the groups the receiving
//! broker coordinates, so the union over all brokers is every group, each listed once.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::join_group_response::JoinGroupResponse;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetDeleteRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::ctx::{Ctx, GROUP_KEY, NOT_COORDINATOR, TOPIC, TXN_KEY};
use crate::common::api_call::call;

const MEMBER_ID_REQUIRED: i16 = 79;

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

/// The coordinator of `key` as broker `via` names it (FindCoordinator v4).
pub fn coordinator_via(ctx: &Ctx, via: i32, key_type: i8, key: &str) -> i32 {
    let request = FindCoordinatorRequest::default()
        .with_key_type(key_type)
        .with_coordinator_keys(vec![StrBytes::from_string(key.to_string())]);
    let response = call(ctx.addr(via), 4, &request);
    let found = &response.coordinators[0];
    assert_eq!(
        found.error_code, 0,
        "coordinator of {key}: {:?}",
        found.error_message
    );
    found.node_id.0
}

pub fn coordinator(ctx: &Ctx, key_type: i8, key: &str) -> i32 {
    coordinator_via(ctx, 1, key_type, key)
}

pub fn find_coordinator(ctx: &mut Ctx, via: i32, version: i16) {
    let group = ctx.unique("found-group");
    let txn = ctx.unique("found-txn");
    for (key_type, key) in [(GROUP_KEY, &group), (TXN_KEY, &txn)] {
        if version == 0 && key_type == TXN_KEY {
            continue; // v0 has no key type: groups only
        }
        let expected = coordinator(ctx, key_type, key);
        let request = if version >= 4 {
            FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![StrBytes::from_string(key.clone())])
        } else {
            FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_key(StrBytes::from_string(key.clone()))
        };
        let response = call(ctx.addr(via), version, &request);
        let (code, node, host, port) = match response.coordinators.first() {
            Some(c) if version >= 4 => (c.error_code, c.node_id.0, c.host.clone(), c.port),
            _ => (
                response.error_code,
                response.node_id.0,
                response.host.clone(),
                response.port,
            ),
        };
        assert_eq!(
            (code, node),
            (0, expected),
            "coordinator of {key} through {via}"
        );
        assert_eq!(
            (host.as_str(), port),
            ("127.0.0.1", i32::from(ctx.addr(expected).port()))
        );
    }
}

/// JoinGroup of a new member at `version` (answering MEMBER_ID_REQUIRED once, v4+).
fn join(ctx: &Ctx, via: i32, version: i16, group: &str) -> JoinGroupResponse {
    let mut request = JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(if version >= 1 { 30_000 } else { -1 })
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"matrix"))]);
    let first = call(ctx.addr(via), version, &request);
    if first.error_code != MEMBER_ID_REQUIRED {
        return first;
    }
    request.member_id = first.member_id;
    call(ctx.addr(via), version, &request)
}

/// A group with one synced member; returns `(coordinator, member id, generation)`.
fn synced_member(ctx: &mut Ctx, prefix: &str) -> (String, i32, String, i32) {
    let group = ctx.unique(prefix);
    let coordinator = coordinator(ctx, GROUP_KEY, &group);
    let joined = join(ctx, coordinator, 5, &group);
    assert_eq!(joined.error_code, 0, "join {group}");
    let member = joined.member_id.to_string();
    let sync = sync_request(&group, &member, joined.generation_id);
    let synced = call(ctx.addr(coordinator), 3, &sync);
    assert_eq!(synced.error_code, 0, "sync {group}");
    (group, coordinator, member, joined.generation_id)
}

fn sync_request(group: &str, member: &str, generation: i32) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_assignment(Bytes::from_static(b"assigned"))])
}

pub fn join_group(ctx: &mut Ctx, via: i32, version: i16) {
    let group = ctx.unique("join");
    let coordinator = coordinator(ctx, GROUP_KEY, &group);
    let joined = join(ctx, via, version, &group);
    if via == coordinator {
        assert_eq!(joined.error_code, 0, "join {group} through its coordinator");
        assert_eq!(joined.leader, joined.member_id);
        assert_eq!(joined.members.len(), 1);
        assert!(joined.generation_id >= 1);
    } else {
        assert_eq!(
            joined.error_code, NOT_COORDINATOR,
            "join {group} through {via}"
        );
    }
}

pub fn sync_group(ctx: &mut Ctx, via: i32, version: i16) {
    let group = ctx.unique("sync");
    let coordinator = coordinator(ctx, GROUP_KEY, &group);
    let joined = join(ctx, coordinator, 5, &group);
    assert_eq!(joined.error_code, 0);
    let mut request = sync_request(&group, &joined.member_id, joined.generation_id);
    if version >= 5 {
        request = request
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(StrBytes::from_static_str("range")));
    }
    let synced = call(ctx.addr(via), version, &request);
    if via == coordinator {
        assert_eq!(synced.error_code, 0);
        assert_eq!(synced.assignment.as_ref(), b"assigned");
    } else {
        assert_eq!(
            synced.error_code, NOT_COORDINATOR,
            "sync {group} through {via}"
        );
    }
}

pub fn heartbeat(ctx: &mut Ctx, via: i32, version: i16) {
    let (group, coordinator, member, generation) = synced_member(ctx, "heartbeat");
    let request = HeartbeatRequest::default()
        .with_group_id(group_id(&group))
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member));
    let code = call(ctx.addr(via), version, &request).error_code;
    let expected = if via == coordinator {
        0
    } else {
        NOT_COORDINATOR
    };
    assert_eq!(code, expected, "heartbeat {group} through {via}");
}

pub fn leave_group(ctx: &mut Ctx, via: i32, version: i16) {
    let (group, coordinator, member, _) = synced_member(ctx, "leave");
    let member = StrBytes::from_string(member);
    let request = if version >= 3 {
        LeaveGroupRequest::default()
            .with_group_id(group_id(&group))
            .with_members(vec![MemberIdentity::default().with_member_id(member)])
    } else {
        LeaveGroupRequest::default()
            .with_group_id(group_id(&group))
            .with_member_id(member)
    };
    let response = call(ctx.addr(via), version, &request);
    let expected = if via == coordinator {
        0
    } else {
        NOT_COORDINATOR
    };
    assert_eq!(response.error_code, expected, "leave {group} through {via}");
}

/// A simple (memberless) commit of offset `offset` for partition 0 of the matrix topic.
fn commit_request(group: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])])
}

/// A group with a committed offset (3) on its coordinator; returns `(group, coordinator)`.
fn committed_group(ctx: &mut Ctx, prefix: &str) -> (String, i32) {
    let group = ctx.unique(prefix);
    let coordinator = coordinator(ctx, GROUP_KEY, &group);
    let response = call(ctx.addr(coordinator), 8, &commit_request(&group, 3));
    assert_eq!(
        response.topics[0].partitions[0].error_code, 0,
        "commit {group}"
    );
    (group, coordinator)
}

pub fn offset_commit(ctx: &mut Ctx, via: i32, version: i16) {
    let group = ctx.unique("commit");
    let coordinator = coordinator(ctx, GROUP_KEY, &group);
    let response = call(ctx.addr(via), version, &commit_request(&group, 4));
    let code = response.topics[0].partitions[0].error_code;
    if via == coordinator {
        assert_eq!(code, 0, "commit {group} through its coordinator");
        assert_eq!(fetched_offset(ctx, coordinator, 8, &group), (0, 4));
    } else {
        assert_eq!(code, NOT_COORDINATOR, "commit {group} through {via}");
    }
}

/// `(error, committed offset of partition 0)` of `group` through `via` at `version`.
fn fetched_offset(ctx: &Ctx, via: i32, version: i16, group: &str) -> (i16, i64) {
    let name = TopicName(StrBytes::from_static_str(TOPIC));
    let request = if version >= 8 {
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(name)
                .with_partition_indexes(vec![0])]))])
    } else {
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(name)
                .with_partition_indexes(vec![0])]))
    };
    let response = call(ctx.addr(via), version, &request);
    if version >= 8 {
        let g = &response.groups[0];
        let offset = g
            .topics
            .first()
            .map_or(-1, |t| t.partitions[0].committed_offset);
        return (g.error_code, offset);
    }
    let partition = response.topics.first().map(|t| &t.partitions[0]);
    let code = if version >= 2 && response.error_code != 0 {
        response.error_code
    } else {
        partition.map_or(response.error_code, |p| p.error_code)
    };
    (code, partition.map_or(-1, |p| p.committed_offset))
}

pub fn offset_fetch(ctx: &mut Ctx, via: i32, version: i16) {
    let (group, coordinator) = committed_group(ctx, "fetch");
    let (code, offset) = fetched_offset(ctx, via, version, &group);
    if via == coordinator {
        assert_eq!(
            (code, offset),
            (0, 3),
            "offsets of {group} through its coordinator"
        );
    } else {
        assert_eq!(code, NOT_COORDINATOR, "offsets of {group} through {via}");
    }
}

pub fn describe_groups(ctx: &mut Ctx, via: i32, version: i16) {
    let (group, coordinator, member, _) = synced_member(ctx, "described");
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(&group)]);
    let response = call(ctx.addr(via), version, &request);
    let described = &response.groups[0];
    if via == coordinator {
        assert_eq!(described.error_code, 0);
        assert_eq!(described.group_state.as_str(), "Stable");
        assert_eq!(described.members.len(), 1);
        assert_eq!(described.members[0].member_id.as_str(), member);
    } else {
        assert_eq!(
            described.error_code, NOT_COORDINATOR,
            "describe {group} through {via}"
        );
    }
}

pub fn list_groups(ctx: &mut Ctx, via: i32, version: i16) {
    // A group this broker coordinates, if any group id maps to it.
    let mine = (0..200)
        .map(|i| format!("listed-{via}-{i}"))
        .find(|group| coordinator(ctx, GROUP_KEY, group) == via);
    if let Some(group) = &mine {
        let response = call(ctx.addr(via), 8, &commit_request(group, 1));
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
    }
    let response = call(ctx.addr(via), version, &ListGroupsRequest::default());
    assert_eq!(response.error_code, 0);
    let listed: Vec<String> = response
        .groups
        .iter()
        .map(|g| g.group_id.to_string())
        .collect();
    for group in &listed {
        assert_eq!(
            coordinator(ctx, GROUP_KEY, group),
            via,
            "broker {via} lists {group}, which another broker coordinates"
        );
    }
    if let Some(group) = mine {
        assert!(
            listed.contains(&group),
            "broker {via} does not list {group}: {listed:?}"
        );
    }
}

pub fn delete_groups(ctx: &mut Ctx, via: i32, version: i16) {
    let (group, coordinator) = committed_group(ctx, "deleted");
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(&group)]);
    let code = call(ctx.addr(via), version, &request).results[0].error_code;
    if via == coordinator {
        assert_eq!(code, 0, "delete {group} through its coordinator");
        assert_eq!(fetched_offset(ctx, coordinator, 8, &group), (0, -1));
    } else {
        assert_eq!(code, NOT_COORDINATOR, "delete {group} through {via}");
    }
}

pub fn offset_delete(ctx: &mut Ctx, via: i32, version: i16) {
    let (group, coordinator) = committed_group(ctx, "offset-deleted");
    let request = OffsetDeleteRequest::default()
        .with_group_id(group_id(&group))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0)
            ])]);
    let response = call(ctx.addr(via), version, &request);
    if via == coordinator {
        assert_eq!(response.error_code, 0);
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
        assert_eq!(fetched_offset(ctx, coordinator, 8, &group), (0, -1));
    } else {
        assert_eq!(
            response.error_code, NOT_COORDINATOR,
            "OffsetDelete {group} through {via}"
        );
    }
}
