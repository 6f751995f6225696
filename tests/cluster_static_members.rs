//! Issue 18 item 6: a group's assignment is handed out only once it is durable. Static
//! members (KIP-345), as aiokafka and confluent-kafka join with `group.instance.id`, on three
//! brokers. The leader's SyncGroup and a static member's rejoin of a Stable group each write
//! the group's metadata record to the coordinator's `__consumer_offsets` partition, which
//! needs a majority of its replicas. While the other two brokers are stalled (SIGSTOP) that
//! write cannot complete, so no member may be answered with success: Kafka keeps the group in
//! CompletingRebalance until the write is durable, and answers a static rejoin in the write's
//! callback. The coordinator may step down meanwhile (it cannot reach a majority); then the
//! answers are coordinator errors the clients retry on.
//!
//! These run over raw sockets: a request must arrive between one member's SyncGroup and
//! another's, which no real client lets a test arrange.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::cluster::Cluster;
use common::group_wire::{
    answer_within, decode_answer, group_state, one_coordinator, static_join,
    COORDINATOR_NOT_AVAILABLE, JOIN_GROUP_KEY, NOT_COORDINATOR, SYNC_GROUP_KEY,
};
use common::unique_topic;
use common::wire;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{GroupId, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

/// JoinGroup v5 and SyncGroup v3 carry `group_instance_id`.
const JOIN_GROUP_VERSION: i16 = 5;
const SYNC_GROUP_VERSION: i16 = 3;
const INSTANCES: [&str; 2] = ["static-a", "static-b"];
/// Both members join within the initial rebalance delay, so they share generation 1.
const ARGS: [&str; 2] = ["--group-initial-rebalance-delay-ms", "3000"];

#[test]
fn no_member_gets_its_assignment_before_the_leaders_sync_is_durable() {
    let mut cluster = Cluster::start_with(3, &ARGS);
    let group = unique_topic("static-sync");
    let coordinator = one_coordinator(&cluster, &group);
    let (mut members, joined) = join_all(&cluster, coordinator, &group);
    let leader = leader_of(&joined);

    stall_the_others(&mut cluster, coordinator, true);
    send_syncs(&mut members, &joined, &group, leader);
    // While the write cannot be durable: an error (the coordinator stepped down) or nothing.
    let mut answers: Vec<Option<SyncGroupResponse>> = Vec::new();
    for (index, stream) in members.iter_mut().enumerate() {
        let answer: Option<SyncGroupResponse> = answer_within(
            stream,
            SYNC_GROUP_VERSION,
            Duration::from_millis(600),
            "SyncGroup during the stall",
        );
        if let Some(response) = &answer {
            assert_ne!(
                response.error_code,
                0,
                "member {index} (the leader: {}) got its assignment while its write could not \
                 be durable: {response:?}",
                index == leader
            );
        }
        answers.push(answer);
    }
    stall_the_others(&mut cluster, coordinator, false);

    let synced: Vec<SyncGroupResponse> = answers
        .into_iter()
        .zip(members.iter_mut())
        .map(|(answer, stream)| {
            answer.unwrap_or_else(|| decode_answer(stream, SYNC_GROUP_VERSION, "SyncGroup"))
        })
        .collect();
    if synced.iter().any(|r| r.error_code != 0) {
        assert_all_coordinator_errors(&synced);
        eprintln!("the coordinator stepped down during the stall: {synced:?}");
        return;
    }
    for (index, response) in synced.iter().enumerate() {
        assert_eq!(
            response.assignment,
            assignment_of(&joined[index]),
            "member {index}"
        );
    }
    assert_eq!(group_state(&cluster, coordinator, &group), "Stable");
}

/// A static member that restarts (a new connection, no member id, the same instance id)
/// rejoins a Stable group without a rebalance, which rewrites the group's metadata record
/// under its new member id. Its JoinGroup is answered with success only once that record is
/// durable; if the write fails, with an error (Kafka reverts the member and answers the
/// append's error).
#[test]
fn a_static_rejoin_is_answered_only_once_its_record_is_durable() {
    let mut cluster = Cluster::start_with(3, &ARGS);
    let group = unique_topic("static-rejoin");
    let coordinator = one_coordinator(&cluster, &group);
    let (mut members, joined) = join_all(&cluster, coordinator, &group);
    let leader = leader_of(&joined);
    send_syncs(&mut members, &joined, &group, leader);
    for stream in &mut members {
        let synced: SyncGroupResponse = decode_answer(stream, SYNC_GROUP_VERSION, "SyncGroup");
        assert_eq!(synced.error_code, 0, "{synced:?}");
    }
    assert_eq!(group_state(&cluster, coordinator, &group), "Stable");

    stall_the_others(&mut cluster, coordinator, true);
    let follower = 1 - leader;
    let mut restarted = wire::connect(cluster.kafka_addr(coordinator));
    let rejoin = static_join(&group, INSTANCES[follower]);
    wire::send(
        &mut restarted,
        &wire::request_frame(&rejoin, JOIN_GROUP_KEY, JOIN_GROUP_VERSION, 3),
    );
    // Long enough for the coordinator to give up on the write (it steps down once it has not
    // heard from a majority for an election timeout); the answer may also come after.
    let during: Option<JoinGroupResponse> = answer_within(
        &mut restarted,
        JOIN_GROUP_VERSION,
        Duration::from_secs(4),
        "the static rejoin during the stall",
    );
    stall_the_others(&mut cluster, coordinator, false);
    if let Some(response) = &during {
        assert_all_join_errors(response, "while its record could not be durable");
        eprintln!("the rejoin's write failed during the stall: {response:?}");
        return;
    }
    let response: JoinGroupResponse =
        decode_answer(&mut restarted, JOIN_GROUP_VERSION, "the static rejoin");
    if response.error_code != 0 {
        assert_all_join_errors(&response, "after the stall");
        return;
    }
    assert_eq!(
        response.generation_id, joined[follower].generation_id,
        "a static rejoin of a Stable group does not rebalance"
    );
    assert_ne!(
        response.member_id, joined[follower].member_id,
        "a new member id"
    );
}

/// Connects one static member per instance to `coordinator` and joins them all; their
/// streams and JoinGroup answers (one generation).
fn join_all(
    cluster: &Cluster,
    coordinator: i32,
    group: &str,
) -> (Vec<TcpStream>, Vec<JoinGroupResponse>) {
    let addr = cluster.kafka_addr(coordinator);
    let mut members: Vec<TcpStream> = INSTANCES.iter().map(|_| wire::connect(addr)).collect();
    for (stream, instance) in members.iter_mut().zip(INSTANCES) {
        let join = static_join(group, instance);
        wire::send(
            stream,
            &wire::request_frame(&join, JOIN_GROUP_KEY, JOIN_GROUP_VERSION, 1),
        );
    }
    let joined: Vec<JoinGroupResponse> = members
        .iter_mut()
        .map(|stream| decode_answer(stream, JOIN_GROUP_VERSION, "JoinGroup"))
        .collect();
    for response in &joined {
        assert_eq!(response.error_code, 0, "JoinGroup: {response:?}");
        assert_eq!(
            response.generation_id, joined[0].generation_id,
            "one generation"
        );
    }
    (members, joined)
}

fn leader_of(joined: &[JoinGroupResponse]) -> usize {
    joined
        .iter()
        .position(|r| r.leader == r.member_id)
        .expect("one member leads")
}

/// SIGSTOP (or SIGCONT) every broker but the coordinator.
fn stall_the_others(cluster: &mut Cluster, coordinator: i32, stalled: bool) {
    for id in cluster.ids() {
        if id != coordinator {
            cluster.pause(id, stalled);
        }
    }
}

/// Every member's SyncGroup, the leader's (with everyone's assignment) first.
fn send_syncs(members: &mut [TcpStream], joined: &[JoinGroupResponse], group: &str, leader: usize) {
    let assignments: Vec<SyncGroupRequestAssignment> = joined
        .iter()
        .map(|r| {
            SyncGroupRequestAssignment::default()
                .with_member_id(r.member_id.clone())
                .with_assignment(assignment_of(r))
        })
        .collect();
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|index| *index != leader);
    for index in order {
        let mut sync = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id(joined[index].generation_id)
            .with_member_id(joined[index].member_id.clone())
            .with_group_instance_id(Some(StrBytes::from_static_str(INSTANCES[index])));
        if index == leader {
            sync = sync.with_assignments(assignments.clone());
        }
        let frame = wire::request_frame(&sync, SYNC_GROUP_KEY, SYNC_GROUP_VERSION, 2);
        wire::send(&mut members[index], &frame);
        if index == leader {
            // The others' SyncGroup arrives once the leader's has started its write.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn assignment_of(joined: &JoinGroupResponse) -> Bytes {
    Bytes::from(format!("assignment of {}", joined.member_id.as_str()))
}

/// The write failed or leadership moved: nobody may have been handed an assignment.
fn assert_all_coordinator_errors(synced: &[SyncGroupResponse]) {
    for response in synced {
        assert!(
            [NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE].contains(&response.error_code),
            "{synced:?}"
        );
    }
}

fn assert_all_join_errors(response: &JoinGroupResponse, when: &str) {
    assert!(
        [NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE].contains(&response.error_code),
        "the static rejoin answered {when}: {response:?}"
    );
}
