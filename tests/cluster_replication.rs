//! Issue #6, scenarios 1-3, against three real broker processes on 127.0.0.1:
//! 1. librdkafka produces acks=all to an RF=3 topic while the leader of partition 0 is killed
//!    with SIGKILL mid-stream: every acknowledged message is read back afterwards at the offset
//!    it was acknowledged with, and per partition the producer's order holds.
//! 2. The killed broker restarts, catches up and is back in every partition's ISR; then another
//!    broker is killed and everything acknowledged is still there (the restarted replica is part
//!    of the majority that holds it).
//! 3. The controller leader is killed: another node becomes controller and topic creation works.
//!
//! Also: with `min.insync.replicas=3`, a dead follower leaving the ISR makes the leader refuse
//! acks=all with NOT_ENOUGH_REPLICAS (acks=1 still works) until it is back in sync.
//!
//! The nodes here have ids 0, 1 and 2, as Kafka allows (StatefulSet ordinals start at 0); the
//! other cluster tests use 1, 2 and 3. Node 0 is a controller voter and leads partitions, so
//! an id of 0 taken anywhere for "no node" (a Raft vote or leader) shows up here.

mod common;
mod idempotence_support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::cluster::{Cluster, CLUSTER_TIMEOUT};
use common::kafka::{
    consume_to_high_watermarks, create_replicated_topic, recording_producer, Delivery,
};
use common::leader_kill::produce_across_a_leader_kill;
use common::{unique_topic, wait_for};
use rdkafka::message::{Message, OwnedMessage};

const PARTITIONS: i32 = 3;
const REPLICATION: i32 = 3;
/// Messages sent before the kill, and again after it.
const MESSAGES_PER_PHASE: usize = 1500;
const NOT_ENOUGH_REPLICAS: i16 = 19;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// The first node id: 0, as Kafka allows.
const FIRST_ID: i32 = 0;

#[test]
fn acks_all_survives_a_leader_kill_and_the_broker_rejoins() {
    let mut cluster = Cluster::start_from_id(3, FIRST_ID);
    let topic = unique_topic("rf3");
    create_replicated_topic(&cluster.bootstrap(), &topic, PARTITIONS, REPLICATION);
    for partition in 0..PARTITIONS {
        cluster.wait_for_partition(&topic, partition, |isr| isr.len() == 3);
    }
    // Placement makes every node the preferred leader of one of the three partitions.
    wait_for("node 0 to lead a partition", CLUSTER_TIMEOUT, || {
        let view = cluster.view_from(FIRST_ID, &[&topic])?;
        view.partitions.iter().any(|p| p.leader == 0).then_some(())
    });
    // One in-flight request per connection: retries after the failover cannot reorder.
    let settings = [
        ("max.in.flight.requests.per.connection", "1"),
        ("message.timeout.ms", "120000"),
        ("linger.ms", "2"),
    ];
    let (producer, context) = recording_producer(&cluster.bootstrap(), &settings);

    let (deliveries, victim) = produce_across_a_leader_kill(
        &mut cluster,
        &producer,
        &context,
        &topic,
        MESSAGES_PER_PHASE,
    );
    assert_eq!(deliveries.len(), 2 * MESSAGES_PER_PHASE);
    let acked = acknowledged(&deliveries);
    let after_kill = acked
        .values()
        .flatten()
        .filter(|(_, index)| *index >= MESSAGES_PER_PHASE)
        .count();
    assert!(
        after_kill > 0,
        "no write was acknowledged after the leader was killed"
    );
    let new_leader = cluster.wait_for_partition(&topic, 0, |_| true).leader;
    assert_ne!(new_leader, victim, "partition 0 is led by the killed node");
    check_everything_acknowledged_is_there(&mut cluster, &topic, &acked);

    // 2. The killed node comes back and rejoins every ISR...
    cluster.start_node(victim);
    for partition in 0..PARTITIONS {
        cluster.wait_for_partition(&topic, partition, |isr| isr.contains(&victim));
    }
    // ...and holds the data: with another node gone, it is half of the majority.
    let other = cluster
        .ids()
        .into_iter()
        .find(|id| *id != victim)
        .expect("three nodes");
    cluster.kill(other);
    check_everything_acknowledged_is_there(&mut cluster, &topic, &acked);
}

#[test]
fn a_new_controller_takes_over_and_creates_topics() {
    let mut cluster = Cluster::start_from_id(3, FIRST_ID);
    let first = cluster.wait_for_controller();
    cluster.kill(first);
    let second = cluster.wait_for_controller();
    assert_ne!(second, first, "the killed node is still named controller");
    let topic = unique_topic("after-controller-kill");
    create_replicated_topic(&cluster.running_bootstrap(), &topic, 2, 2);
    for partition in 0..2 {
        let view = cluster.wait_for_partition(&topic, partition, |isr| isr.len() == 2);
        assert_eq!(view.replicas.len(), 2, "{view:?}");
        assert!(
            !view.replicas.contains(&first),
            "a replica was placed on the dead node: {view:?}"
        );
    }
}

#[test]
fn acks_all_is_refused_while_the_isr_is_below_min_insync_replicas() {
    let mut cluster = Cluster::start_from_id_with(3, FIRST_ID, &["--min-insync-replicas", "3"]);
    let topic = unique_topic("min-isr");
    create_replicated_topic(&cluster.bootstrap(), &topic, 1, 3);
    let full = cluster.wait_for_partition(&topic, 0, |isr| isr.len() == 3);
    // One raw write to the current leader; a leadership move (the preferred leader coming
    // back) answers NOT_LEADER_OR_FOLLOWER, after which the write goes to the new leader.
    let write = |cluster: &mut Cluster, acks: i16, value: &str| -> i16 {
        for _ in 0..50 {
            let leader = cluster.wait_for_partition(&topic, 0, |_| true).leader;
            let mut stream = common::wire::connect(cluster.kafka_addr(leader));
            let records =
                idempotence_support::batch(idempotence_support::Producer::NONE, 0, false, &[value]);
            let code =
                idempotence_support::produce_with(&mut stream, &topic, 0, records, acks, 10_000)
                    .error_code;
            if code != NOT_LEADER_OR_FOLLOWER {
                return code;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        NOT_LEADER_OR_FOLLOWER
    };
    assert_eq!(write(&mut cluster, -1, "all-in-sync"), 0);
    let follower = full
        .replicas
        .iter()
        .copied()
        .find(|id| *id != full.leader)
        .expect("a follower");
    cluster.kill(follower);
    let shrunk = cluster.wait_for_partition(&topic, 0, |isr| isr.len() == 2);
    assert_eq!(
        write(&mut cluster, -1, "refused"),
        NOT_ENOUGH_REPLICAS,
        "acks=all with ISR {:?} under min.insync.replicas=3",
        shrunk.isr
    );
    assert_eq!(
        write(&mut cluster, 1, "acks-1"),
        0,
        "acks=1 is still served"
    );
    cluster.start_node(follower);
    // The leader's own view is the one its acks=all check uses (others' are a heartbeat old).
    wait_for(
        "the leader itself to count 3 in-sync replicas",
        CLUSTER_TIMEOUT,
        || {
            let leader = cluster.wait_for_partition(&topic, 0, |_| true).leader;
            let view = cluster.view_from(leader, &[topic.as_str()])?;
            let p = view.partitions.first()?;
            (p.leader == leader && p.isr.len() == 3).then_some(())
        },
    );
    assert_eq!(write(&mut cluster, -1, "in-sync-again"), 0);
    let consumed = consume_to_high_watermarks(&cluster.bootstrap(), &topic, 1);
    let values: Vec<String> = consumed
        .values()
        .flatten()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string())
        .collect();
    assert_eq!(values, ["all-in-sync", "acks-1", "in-sync-again"]);
}

/// Partition -> (offset, message index) of every acknowledged message, by offset.
fn acknowledged(deliveries: &[Delivery]) -> BTreeMap<i32, Vec<(i64, usize)>> {
    let mut acked: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    for delivery in deliveries {
        if let Ok((partition, offset)) = delivery.outcome {
            acked
                .entry(partition)
                .or_default()
                .push((offset, delivery.index));
        }
    }
    for list in acked.values_mut() {
        list.sort_unstable();
    }
    acked
}

/// Every acknowledged message is read back at its offset, and each partition's acknowledged
/// messages are in the order they were sent.
fn check_everything_acknowledged_is_there(
    cluster: &mut Cluster,
    topic: &str,
    acked: &BTreeMap<i32, Vec<(i64, usize)>>,
) {
    // Right after a kill, clients first find the new leaders (their old ones are gone).
    for partition in 0..PARTITIONS {
        cluster.wait_for_partition(topic, partition, |_| true);
    }
    let consumed = consume_to_high_watermarks(&cluster.running_bootstrap(), topic, PARTITIONS);
    let by_offset: HashMap<(i32, i64), &OwnedMessage> = consumed
        .values()
        .flatten()
        .map(|message| ((message.partition(), message.offset()), message))
        .collect();
    for (partition, list) in acked {
        for (offset, index) in list {
            let message = by_offset.get(&(*partition, *offset)).unwrap_or_else(|| {
                panic!(
                    "acknowledged message {index} at {topic}-{partition}@{offset} is missing\n{}",
                    cluster.log_tails(40)
                )
            });
            let payload =
                std::str::from_utf8(message.payload().unwrap_or_default()).expect("utf-8 payload");
            assert_eq!(
                payload,
                index.to_string(),
                "{topic}-{partition}@{offset} holds another message"
            );
        }
        let indexes: Vec<usize> = list.iter().map(|(_, index)| *index).collect();
        assert!(
            indexes.windows(2).all(|pair| pair[0] < pair[1]),
            "{topic}-{partition}: acknowledged messages out of send order"
        );
    }
}
