//! Consumer-group requests that Kafka refuses get Kafka's error codes from the real broker
//! (issue 4, "bad input"): invalid session timeouts, the MEMBER_ID_REQUIRED round trip,
//! wrong generations, unknown members and groups, oversized commit metadata. Raw requests over
//! a socket, so the exact code on the wire is checked, not a client's interpretation of it.

mod common;

use std::net::TcpStream;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, OffsetCommitRequest, OffsetCommitResponse, ResponseHeader, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::ResponseError;

use common::wire::{self, read_reaction, request_frame, send, Reaction};
use common::Broker;

/// Sends one request and decodes its response (panics if the broker closes instead).
fn call<Req, Resp>(stream: &mut TcpStream, api_key: ApiKey, version: i16, request: &Req) -> Resp
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    send(stream, &request_frame(request, api_key as i16, version, 7));
    let body = match read_reaction(stream, &format!("{api_key:?} v{version}")) {
        Reaction::Answered(body) => body,
        Reaction::Closed { partial } => {
            panic!("{api_key:?} v{version}: connection closed after {partial} bytes")
        }
    };
    let mut bytes = Bytes::from(body);
    ResponseHeader::decode(&mut bytes, Resp::header_version(version)).expect("response header");
    Resp::decode(&mut bytes, version).expect("response body")
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

fn group(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

fn join(group_id: &str, member_id: &str, session_timeout_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group(group_id))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
}

fn commit(group_id: &str, generation: i32, member_id: &str, metadata: &str) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group(group_id))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(5)
                .with_committed_metadata(Some(StrBytes::from_string(
                    metadata.to_string(),
                )))])])
}

/// Commits name an existing topic: Kafka answers UNKNOWN_TOPIC_OR_PARTITION otherwise.
const TOPIC: &str = "group-bad-input-topic";

fn commit_code(response: &OffsetCommitResponse) -> i16 {
    response.topics[0].partitions[0].error_code
}

#[test]
fn group_requests_kafka_refuses_get_kafkas_error_codes() {
    let broker = Broker::start();
    common::kafka::create_topic(&broker.bootstrap(), TOPIC, 1);
    let mut stream = wire::connect(broker.addr());
    let g = "bad-input-group";

    let found: FindCoordinatorResponse = call(
        &mut stream,
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str(g)),
    );
    assert_eq!(found.error_code, 0, "FindCoordinator: {found:?}");

    // Session timeouts outside group.min/max.session.timeout.ms (6 s .. 30 min by default).
    for timeout in [1, 1_800_001] {
        let refused: JoinGroupResponse =
            call(&mut stream, ApiKey::JoinGroup, 5, &join(g, "", timeout));
        assert_eq!(
            refused.error_code,
            code(ResponseError::InvalidSessionTimeout),
            "session timeout {timeout}"
        );
    }

    // v4+: the first join gets MEMBER_ID_REQUIRED and a member id; the second one joins.
    let first: JoinGroupResponse = call(&mut stream, ApiKey::JoinGroup, 5, &join(g, "", 10_000));
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    let member = first.member_id.to_string();
    assert!(!member.is_empty());
    // The broker's initial rebalance delay (3 s by default) answers this join after it.
    let joined: JoinGroupResponse =
        call(&mut stream, ApiKey::JoinGroup, 5, &join(g, &member, 10_000));
    assert_eq!(joined.error_code, 0, "{joined:?}");
    assert_eq!(joined.leader.as_str(), member, "the only member leads");
    let generation = joined.generation_id;

    let sync = |generation: i32, member_id: &str| {
        SyncGroupRequest::default()
            .with_group_id(group(g))
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member_id.to_string()))
    };
    let wrong_generation: SyncGroupResponse = call(
        &mut stream,
        ApiKey::SyncGroup,
        3,
        &sync(generation + 1, &member),
    );
    assert_eq!(
        wrong_generation.error_code,
        code(ResponseError::IllegalGeneration)
    );
    let unknown_member: SyncGroupResponse = call(
        &mut stream,
        ApiKey::SyncGroup,
        3,
        &sync(generation, "nobody"),
    );
    assert_eq!(
        unknown_member.error_code,
        code(ResponseError::UnknownMemberId)
    );
    let synced: SyncGroupResponse = call(
        &mut stream,
        ApiKey::SyncGroup,
        3,
        &sync(generation, &member),
    );
    assert_eq!(synced.error_code, 0);

    let heartbeat = |group_id: &str, generation: i32, member_id: &str| {
        HeartbeatRequest::default()
            .with_group_id(group(group_id))
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member_id.to_string()))
    };
    let ok: HeartbeatResponse = call(
        &mut stream,
        ApiKey::Heartbeat,
        3,
        &heartbeat(g, generation, &member),
    );
    assert_eq!(ok.error_code, 0);
    let stale: HeartbeatResponse = call(
        &mut stream,
        ApiKey::Heartbeat,
        3,
        &heartbeat(g, generation - 1, &member),
    );
    assert_eq!(stale.error_code, code(ResponseError::IllegalGeneration));
    let no_group: HeartbeatResponse = call(
        &mut stream,
        ApiKey::Heartbeat,
        3,
        &heartbeat("no-such-group", 1, "m"),
    );
    assert_eq!(no_group.error_code, code(ResponseError::UnknownMemberId));

    // Commits: a member of this generation may commit; a stale generation or an unknown
    // member may not; metadata over offset.metadata.max.bytes (4096) is refused per partition.
    let accepted: OffsetCommitResponse = call(
        &mut stream,
        ApiKey::OffsetCommit,
        7,
        &commit(g, generation, &member, "meta"),
    );
    assert_eq!(commit_code(&accepted), 0);
    let stale: OffsetCommitResponse = call(
        &mut stream,
        ApiKey::OffsetCommit,
        7,
        &commit(g, generation + 5, &member, ""),
    );
    assert_eq!(commit_code(&stale), code(ResponseError::IllegalGeneration));
    let stranger: OffsetCommitResponse = call(
        &mut stream,
        ApiKey::OffsetCommit,
        7,
        &commit(g, generation, "stranger", ""),
    );
    assert_eq!(commit_code(&stranger), code(ResponseError::UnknownMemberId));
    let huge = "m".repeat(5000);
    let too_large: OffsetCommitResponse = call(
        &mut stream,
        ApiKey::OffsetCommit,
        7,
        &commit(g, generation, &member, &huge),
    );
    assert_eq!(
        commit_code(&too_large),
        code(ResponseError::OffsetMetadataTooLarge)
    );

    // DeleteGroups: a group with members is not empty; an unknown group is not found.
    let deleted: DeleteGroupsResponse = call(
        &mut stream,
        ApiKey::DeleteGroups,
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![group(g), group("never-seen")]),
    );
    let codes: Vec<(String, i16)> = deleted
        .results
        .iter()
        .map(|r| (r.group_id.to_string(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            (g.to_string(), code(ResponseError::NonEmptyGroup)),
            (
                "never-seen".to_string(),
                code(ResponseError::GroupIdNotFound)
            ),
        ]
    );
}
