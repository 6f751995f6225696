//! Consumer groups on a 3-broker cluster (issue #6, what a Kafka user expects of one): a
//! group's coordinator is the leader of its `__consumer_offsets` partition, which is
//! replicated like any other (RF 3); committed offsets survive the coordinator's broker being
//! killed, and the group resumes, coordinated elsewhere, where it had committed. A commit of
//! many partitions at once is one replicated write, read back whole.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::{Cluster, CLUSTER_TIMEOUT};
use common::group_wire::{
    find_coordinator, group_state, one_coordinator, JOIN_GROUP_KEY, NOT_COORDINATOR,
};
use common::kafka::{
    base_config, create_replicated_topic, flush_and_check_all_acked, recording_producer,
    retry_coordinator_moves, send_with_retry, CLIENT_TIMEOUT,
};
use common::netsplit::NetSplit;
use common::wire::{self, Reaction};
use common::{unique_topic, wait_for};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{GroupId, JoinGroupRequest, JoinGroupResponse, ResponseHeader};
use kafka_protocol::protocol::{Decodable, HeaderVersion, StrBytes};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

const MESSAGES: usize = 200;
const FIRST_READ: usize = 120;
const JOIN_GROUP_VERSION: i16 = 3;
/// The parked member's rebalance timeout and the groups' initial rebalance delay: far longer
/// than the wire helpers' hang detector, so only an answer from the coordinator ends the wait.
const LONG_REBALANCE_MS: i32 = 300_000;

#[test]
fn committed_offsets_survive_the_coordinators_broker() {
    let mut cluster = Cluster::start(3);
    let topic = unique_topic("cluster-group");
    create_replicated_topic(&cluster.bootstrap(), &topic, 1, 3);
    let (producer, context) = recording_producer(&cluster.bootstrap(), &[]);
    for index in 0..MESSAGES {
        let payload = format!("message-{index}");
        send_with_retry(
            &producer,
            BaseRecord::with_opaque_to(&topic, index).payload(payload.as_bytes()),
        );
    }
    flush_and_check_all_acked(&producer, &context, MESSAGES);

    let group = unique_topic("cluster-group-id");
    let first = read_in_group(&cluster.bootstrap(), &topic, &group, FIRST_READ);
    assert_eq!(first, expected(0..FIRST_READ));

    // Every broker names the same coordinator: the offsets partition's leader.
    let coordinator = one_coordinator(&cluster, &group);
    cluster.kill(coordinator);

    let rest = read_in_group(
        &cluster.running_bootstrap(),
        &topic,
        &group,
        MESSAGES - FIRST_READ,
    );
    assert_eq!(
        rest,
        expected(FIRST_READ..MESSAGES),
        "the group did not resume at its committed offset"
    );
    let survivor = cluster
        .ids()
        .into_iter()
        .find(|id| *id != coordinator)
        .unwrap();
    let now_coordinator = find_coordinator(&cluster, survivor, &group);
    assert!(now_coordinator >= 0 && now_coordinator != coordinator);
}

/// Regression: the coordinator encoded a commit of N partitions as N record batches, and a
/// Raft entry of several batches broke the replica's offset plan (a shard panicked on the
/// invariant, the commit never completed). Now it is one batch, written and read back whole.
#[test]
fn a_commit_of_many_partitions_is_stored_whole() {
    const COMMITTED_PARTITIONS: i32 = 6;
    let cluster = Cluster::start(3);
    let topic = unique_topic("cluster-group-many");
    create_replicated_topic(&cluster.bootstrap(), &topic, COMMITTED_PARTITIONS, 3);
    let group = unique_topic("cluster-group-many-id");
    let offsets: Vec<i64> = (0..COMMITTED_PARTITIONS)
        .map(|p| 10 + i64::from(p))
        .collect();
    let mut list = TopicPartitionList::new();
    for (partition, offset) in (0..).zip(&offsets) {
        list.add_partition_offset(&topic, partition, Offset::Offset(*offset))
            .expect("offset list");
    }
    let committer = group_member(&cluster.bootstrap(), &group);
    retry_coordinator_moves("the commit of every partition", || {
        committer.commit(&list, CommitMode::Sync)
    });

    let reader = group_member(&cluster.bootstrap(), &group);
    let mut wanted = TopicPartitionList::new();
    for partition in 0..COMMITTED_PARTITIONS {
        wanted.add_partition(&topic, partition);
    }
    let committed = retry_coordinator_moves("reading the commit back", || {
        reader.committed_offsets(wanted.clone(), CLIENT_TIMEOUT)
    });
    let read: Vec<i64> = (0..COMMITTED_PARTITIONS)
        .map(
            |p| match committed.find_partition(&topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(at)) => at,
                other => panic!("partition {p}: committed {other:?}"),
            },
        )
        .collect();
    assert_eq!(read, offsets, "every partition's committed offset");
}

/// Issue 18 item 5: a coordinator whose `__consumer_offsets` partition is taken over by
/// another broker (here: it is cut off from the other brokers, its clients still reach it)
/// answers the JoinGroup it had parked NOT_COORDINATOR at once, so the member looks the new
/// coordinator up instead of waiting out its rebalance timeout.
#[test]
fn a_coordinator_that_loses_its_partition_answers_a_parked_join_not_coordinator() {
    let split = NetSplit::new();
    let delay = LONG_REBALANCE_MS.to_string();
    let cluster = Cluster::start_split_with(
        3,
        &split,
        &["--group-initial-rebalance-delay-ms", delay.as_str()],
    );
    let group = unique_topic("cluster-group-unload");
    let coordinator = one_coordinator(&cluster, &group);

    // The group's first member: its JoinGroup waits out the initial rebalance delay.
    let mut member = wire::connect(cluster.kafka_addr(coordinator));
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.clone())))
        .with_session_timeout_ms(LONG_REBALANCE_MS)
        .with_rebalance_timeout_ms(LONG_REBALANCE_MS)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"subscription"))]);
    wire::send(
        &mut member,
        &wire::request_frame(&join, JOIN_GROUP_KEY, JOIN_GROUP_VERSION, 1),
    );
    wait_for("the JoinGroup to be parked", CLUSTER_TIMEOUT, || {
        (group_state(&cluster, coordinator, &group) == "PreparingRebalance").then_some(())
    });

    split.isolate(coordinator);
    let answer = match wire::read_reaction(&mut member, "the parked JoinGroup") {
        Reaction::Answered(body) => body,
        Reaction::Closed { partial } => {
            panic!("the coordinator closed the connection ({partial} bytes)")
        }
    };
    let mut body = Bytes::from(answer);
    ResponseHeader::decode(
        &mut body,
        JoinGroupResponse::header_version(JOIN_GROUP_VERSION),
    )
    .expect("JoinGroup response header");
    let response = JoinGroupResponse::decode(&mut body, JOIN_GROUP_VERSION).expect("JoinGroup");
    assert_eq!(
        response.error_code, NOT_COORDINATOR,
        "the parked JoinGroup's answer once broker {coordinator} lost the group's partition"
    );
    split.heal();
}

fn group_member(bootstrap: &str, group: &str) -> BaseConsumer {
    base_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create consumer")
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|index| format!("message-{index}")).collect()
}

/// Joins `group`, reads `count` messages from where the group stands (the beginning if it
/// never committed), commits synchronously and leaves.
fn read_in_group(bootstrap: &str, topic: &str, group: &str, count: usize) -> Vec<String> {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut read = Vec::new();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while read.len() < count {
        assert!(
            Instant::now() < deadline,
            "read {} of {count} in time",
            read.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let payload = message.payload().unwrap_or_default();
                read.push(String::from_utf8_lossy(payload).into_owned());
            }
            // A coordinator or leader moving: retriable, librdkafka looks it up again.
            Some(Err(err)) => eprintln!("consumer: {err} (retrying)"),
            None => {}
        }
    }
    wait_for("the offset commit", CLIENT_TIMEOUT, || {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => Some(()),
            Err(err) => {
                eprintln!("commit: {err} (retrying)");
                std::thread::sleep(Duration::from_millis(200));
                None
            }
        }
    });
    read
}
