//! Consumer-group requests over raw sockets, for tests that must place a request at an exact
//! point of a rebalance (between one member's SyncGroup and another's), which no real client
//! lets a test do. The structs are kafka-protocol's.

use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, JoinGroupRequest, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, HeaderVersion, StrBytes};

use super::api_call::call;
use super::cluster::{Cluster, CLUSTER_TIMEOUT};
use super::wait_for;
use super::wire::{self, Reaction};

pub const JOIN_GROUP_KEY: i16 = 11;
pub const SYNC_GROUP_KEY: i16 = 14;
/// Kafka's COORDINATOR_NOT_AVAILABLE and NOT_COORDINATOR.
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const NOT_COORDINATOR: i16 = 16;

/// The coordinator node `asked` names for `group` (-1: none yet).
pub fn find_coordinator(cluster: &Cluster, asked: i32, group: &str) -> i32 {
    let request = FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.into()));
    let response: FindCoordinatorResponse = call(cluster.kafka_addr(asked), 3, &request);
    if response.error_code == 0 {
        response.node_id.0
    } else {
        -1
    }
}

/// Waits until every broker names the same coordinator for `group`; that coordinator.
pub fn one_coordinator(cluster: &Cluster, group: &str) -> i32 {
    wait_for("one coordinator", CLUSTER_TIMEOUT, || {
        let named: Vec<i32> = cluster
            .ids()
            .into_iter()
            .map(|id| find_coordinator(cluster, id, group))
            .collect();
        (named[0] >= 0 && named.iter().all(|id| *id == named[0])).then_some(named[0])
    })
}

/// The state of `group` as broker `asked` describes it.
pub fn group_state(cluster: &Cluster, asked: i32, group: &str) -> String {
    let request = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]);
    let response: DescribeGroupsResponse = call(cluster.kafka_addr(asked), 1, &request);
    response
        .groups
        .first()
        .map(|g| g.group_state.to_string())
        .unwrap_or_default()
}

/// A JoinGroup (v5+) of a static member (KIP-345) with no member id yet, as a restarted
/// static member of aiokafka or confluent-kafka sends it.
pub fn static_join(group: &str, instance: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(60_000)
        .with_group_instance_id(Some(StrBytes::from_string(instance.to_string())))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
}

/// Reads one response frame from `stream` and decodes it as `R` at `version`.
pub fn decode_answer<R: Decodable + HeaderVersion>(
    stream: &mut TcpStream,
    version: i16,
    what: &str,
) -> R {
    let body = match wire::read_reaction(stream, what) {
        Reaction::Answered(body) => body,
        Reaction::Closed { partial } => panic!("{what}: connection closed ({partial} bytes)"),
    };
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, R::header_version(version)).expect("response header");
    R::decode(&mut body, version).unwrap_or_else(|err| panic!("{what}: {err}"))
}

/// The answer `stream` gets within `window`, if any (the request may stay parked).
pub fn answer_within<R: Decodable + HeaderVersion>(
    stream: &mut TcpStream,
    version: i16,
    window: Duration,
    what: &str,
) -> Option<R> {
    stream.set_read_timeout(Some(window)).expect("read timeout");
    let mut length = [0u8; 4];
    let arrived = stream.peek(&mut length).is_ok();
    stream
        .set_read_timeout(Some(wire::READ_TIMEOUT))
        .expect("read timeout");
    arrived.then(|| decode_answer(stream, version, what))
}
