//! Issue #6: idempotent producers on a 3-broker cluster (RF=3). The partition leader checks
//! sequences against producer state that every replica keeps from its own log, so a retry
//! that reaches a new leader after a failover gets the original offsets instead of a second
//! copy; producer ids from different brokers never collide.
//!
//! 1. Over raw requests (exact batches and sequences): duplicates, gaps, and a retry after
//!    the leader is killed (SIGKILL), answered by the new leader.
//! 2. librdkafka with `enable.idempotence=true` and five requests in flight, producing while
//!    the leader is killed: every message is in the log exactly once, in order.

mod common;
mod idempotence_support;

use std::collections::{BTreeMap, HashMap};

use common::cluster::{Cluster, CLUSTER_TIMEOUT};
use common::kafka::{consume_to_high_watermarks, create_replicated_topic, recording_producer};
use common::leader_kill::produce_across_a_leader_kill;
use common::{unique_topic, wait_for, wire};
use idempotence_support::{batch, batches, fetch, init_producer_id, produce, Producer};
use rdkafka::message::Message;

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const READ_UNCOMMITTED: i8 = 0;

#[test]
fn a_retry_after_a_leader_kill_gets_its_original_offsets_from_the_new_leader() {
    let mut cluster = Cluster::start(3);
    let topic = unique_topic("idem-rf3");
    create_replicated_topic(&cluster.bootstrap(), &topic, 1, 3);
    let leader = cluster
        .wait_for_partition(&topic, 0, |isr| isr.len() == 3)
        .leader;

    // Every broker hands out its own producer ids.
    let ids: Vec<i64> = cluster
        .ids()
        .into_iter()
        .map(|id| init_producer_id(&mut wire::connect(cluster.kafka_addr(id))).id)
        .collect();
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "producer ids collide: {ids:?}");

    // Offsets are the broker's: each new leader's first Raft entry takes one too.
    let mut stream = wire::connect(cluster.kafka_addr(leader));
    let producer = init_producer_id(&mut stream);
    let first = batch(producer, 0, false, &["a0", "a1", "a2"]);
    let second = batch(producer, 3, false, &["a3"]);
    let (error, first_at) = answer(&mut stream, &topic, first.clone());
    assert_eq!(error, 0);
    let (error, second_at) = answer(&mut stream, &topic, second.clone());
    assert_eq!((error, second_at), (0, first_at + 3));
    assert_eq!(
        answer(&mut stream, &topic, first.clone()),
        (0, first_at),
        "a retry on the same leader gets the original offset"
    );
    let gap = batch(producer, 9, false, &["gap"]);
    assert_eq!(
        answer(&mut stream, &topic, gap.clone()).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );

    // Both batches are committed (acks=all), so the new leader holds them and rebuilt the
    // producer from them as it wrote them.
    cluster.kill(leader);
    let new_leader = cluster.wait_for_partition(&topic, 0, |_| true).leader;
    assert_ne!(new_leader, leader);
    let mut stream = wire::connect(cluster.kafka_addr(new_leader));
    let retried = wait_for("the new leader to take produce", CLUSTER_TIMEOUT, || {
        let (error, offset) = answer(&mut stream, &topic, second.clone());
        (error != NOT_LEADER_OR_FOLLOWER).then_some((error, offset))
    });
    assert_eq!(retried, (0, second_at), "a retry after the failover");
    assert_eq!(answer(&mut stream, &topic, first), (0, first_at));
    assert_eq!(
        answer(&mut stream, &topic, gap).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    let (error, next_at) = answer(&mut stream, &topic, batch(producer, 4, false, &["a4"]));
    assert_eq!(error, 0);
    assert!(next_at > second_at);
    let other = Producer {
        id: ids[0],
        epoch: 0,
    };
    let (error, other_at) = answer(&mut stream, &topic, batch(other, 0, false, &["o"]));
    assert_eq!(
        (error, other_at),
        (0, next_at + 1),
        "another producer is not affected"
    );

    let data = fetch(&mut stream, &topic, 0, 0, READ_UNCOMMITTED, 0);
    let stored: Vec<(i64, i64)> = batches(data.records.as_ref().expect("records"))
        .iter()
        .filter(|b| b.producer_id >= 0)
        .map(|b| (b.base_offset, b.last_offset))
        .collect();
    let expected = vec![
        (first_at, first_at + 2),
        (second_at, second_at),
        (next_at, next_at),
        (other_at, other_at),
    ];
    assert_eq!(stored, expected, "each batch once");
}

const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const PARTITIONS: i32 = 2;
const MESSAGES_PER_PHASE: usize = 3000;

#[test]
fn librdkafka_idempotent_producer_writes_each_message_once_across_a_leader_kill() {
    let mut cluster = Cluster::start(3);
    let topic = unique_topic("idem-kill-rf3");
    create_replicated_topic(&cluster.bootstrap(), &topic, PARTITIONS, 3);
    for partition in 0..PARTITIONS {
        cluster.wait_for_partition(&topic, partition, |isr| isr.len() == 3);
    }
    let settings = [
        ("enable.idempotence", "true"),
        ("max.in.flight.requests.per.connection", "5"),
        ("message.timeout.ms", "120000"),
        ("linger.ms", "1"),
        ("batch.num.messages", "50"),
    ];
    let (producer, context) = recording_producer(&cluster.bootstrap(), &settings);
    let (deliveries, _) = produce_across_a_leader_kill(
        &mut cluster,
        &producer,
        &context,
        &topic,
        MESSAGES_PER_PHASE,
    );
    let failed: Vec<_> = deliveries.iter().filter(|d| d.outcome.is_err()).collect();
    assert!(
        failed.is_empty(),
        "failed deliveries: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert_eq!(deliveries.len(), 2 * MESSAGES_PER_PHASE);
    let acked: HashMap<usize, (i32, i64)> = deliveries
        .iter()
        .filter_map(|d| Some((d.index, d.outcome.clone().ok()?)))
        .collect();

    for partition in 0..PARTITIONS {
        cluster.wait_for_partition(&topic, partition, |_| true);
    }
    let consumed = consume_to_high_watermarks(&cluster.running_bootstrap(), &topic, PARTITIONS);
    let mut copies: BTreeMap<usize, usize> = BTreeMap::new();
    for (partition, messages) in &consumed {
        let indexes: Vec<usize> = messages
            .iter()
            .map(|m| {
                let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                let index = payload.parse().expect("numbered payload");
                assert_eq!(
                    acked.get(&index),
                    Some(&(*partition, m.offset())),
                    "message {index} is where its delivery report put it"
                );
                index
            })
            .collect();
        assert!(
            indexes.windows(2).all(|pair| pair[0] < pair[1]),
            "partition {partition} out of order"
        );
        for index in indexes {
            *copies.entry(index).or_default() += 1;
        }
    }
    let duplicated: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "stored twice: {duplicated:?}");
    assert_eq!(copies.len(), 2 * MESSAGES_PER_PHASE, "every message stored");
}

/// The error code and base offset of producing `records` to partition 0.
fn answer(stream: &mut std::net::TcpStream, topic: &str, records: bytes::Bytes) -> (i16, i64) {
    let response = produce(stream, topic, 0, records);
    (response.error_code, response.base_offset)
}
