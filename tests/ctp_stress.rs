//! Issue #18, item 2: exactly-once consume-transform-produce under load, with the rdkafka
//! crate. 100,000 input records over 11 partitions; transactional workers in one consumer
//! group join and leave during the run (each join and leave is a rebalance that fences the
//! members' open transactions); on three brokers a broker is also SIGKILLed and restarted
//! twice, so partition leaders and the group and transaction coordinators move. At the end
//! the output holds every `out-N` exactly once at read_committed, and the group's committed
//! offsets are the input's end. No worker may see OUT_OF_ORDER_SEQUENCE_NUMBER or a fatal
//! transaction error; librdkafka bounds every call by its timeout, so a request that hangs
//! past its timeout fails the run.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use common::cluster::{Cluster, CLUSTER_TIMEOUT};
use common::ctp::{group_offsets, read_committed_values, Shared, Worker};
use common::kafka::flush_and_check_all_acked;
use common::kafka::{create_replicated_topic, recording_producer, send_with_retry};
use common::{unique_topic, wait_for, Broker};
use rdkafka::producer::BaseRecord;

const PARTITIONS: i32 = 11;
const RECORDS: usize = 100_000;
/// Transactions the workers commit between two membership changes.
const STEP_TRANSACTIONS: usize = 15;

fn write_input(bootstrap: &str, topic: &str) {
    let (producer, context) = recording_producer(bootstrap, &[("enable.idempotence", "true")]);
    for index in 0..RECORDS {
        let value = format!("in-{index}");
        let record = BaseRecord::with_opaque_to(topic, index)
            .partition((index % PARTITIONS as usize) as i32)
            .payload(value.as_bytes());
        send_with_retry(&producer, record);
    }
    flush_and_check_all_acked(&producer, &context, RECORDS);
}

fn shared(bootstrap: &str, replication_factor: i32) -> Shared {
    let source = unique_topic("ctp-in");
    let sink = unique_topic("ctp-out");
    create_replicated_topic(bootstrap, &source, PARTITIONS, replication_factor);
    create_replicated_topic(bootstrap, &sink, PARTITIONS, replication_factor);
    write_input(bootstrap, &source);
    Shared {
        bootstrap: bootstrap.to_string(),
        source,
        sink,
        group: unique_topic("ctp"),
        committed: Default::default(),
        aborted: Default::default(),
        recovered: Default::default(),
        slowest_commit: Default::default(),
    }
}

/// Waits until the workers have committed `STEP_TRANSACTIONS` more transactions (or the
/// input is done).
fn progress(shared: &Shared, what: &str) {
    let target = shared.committed.load(Ordering::SeqCst) + STEP_TRANSACTIONS;
    wait_for(what, CLUSTER_TIMEOUT, || {
        (shared.committed.load(Ordering::SeqCst) >= target || input_done(shared)).then_some(())
    });
}

fn input_done(shared: &Shared) -> bool {
    let per_partition = (RECORDS / PARTITIONS as usize) as i64;
    let extra = RECORDS % PARTITIONS as usize;
    group_offsets(shared, PARTITIONS)
        .iter()
        .enumerate()
        .all(|(p, at)| *at == per_partition + i64::from(p < extra))
}

/// The exactly-once check: every result once at read_committed, nothing else, and the group
/// at the input's end.
fn check_exactly_once(shared: &Shared) {
    wait_for(
        "the group to commit the whole input",
        CLUSTER_TIMEOUT,
        || input_done(shared).then_some(()),
    );
    let values = read_committed_values(&shared.bootstrap, &shared.sink, PARTITIONS);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for value in &values {
        *counts.entry(value).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "results stored more than once: {twice:?}");
    let missing: Vec<String> = (0..RECORDS)
        .map(|i| format!("out-{i}"))
        .filter(|v| !counts.contains_key(v.as_str()))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "results missing: {missing:?}");
    assert_eq!(values.len(), RECORDS, "nothing but the results");
    eprintln!(
        "ctp stress: {} transactions committed, {} aborted and retried, slowest commit {:?}; \
         recovered from: {:?}",
        shared.committed.load(Ordering::SeqCst),
        shared.aborted.load(Ordering::SeqCst),
        shared.slowest_commit.lock().expect("slowest"),
        shared.recovered.lock().expect("recovered")
    );
}

#[test]
fn consume_transform_produce_stays_exactly_once_as_members_come_and_go_on_two_shards() {
    let broker = Broker::start();
    let shared = shared(&broker.bootstrap(), 1);
    let started = Instant::now();
    let first = Worker::start(&shared, "a");
    progress(&shared, "worker a to make progress");
    let second = Worker::start(&shared, "b");
    progress(&shared, "progress with a and b");
    let third = Worker::start(&shared, "c");
    progress(&shared, "progress with a, b and c");
    second.stop();
    progress(&shared, "progress after b left");
    let fourth = Worker::start(&shared, "d");
    progress(&shared, "progress after d joined");
    first.stop();
    check_exactly_once(&shared);
    third.stop();
    fourth.stop();
    eprintln!("two shards: {:?}", started.elapsed());
}

#[test]
fn consume_transform_produce_stays_exactly_once_across_broker_kills_on_three_brokers() {
    let mut cluster = Cluster::start_for_transactions(3);
    let shared = shared(&cluster.bootstrap(), 3);
    let started = Instant::now();
    let first = Worker::start(&shared, "a");
    progress(&shared, "worker a to make progress");
    let second = Worker::start(&shared, "b");
    progress(&shared, "progress with a and b");
    // Leaders, and the group and transaction coordinators they host, move.
    cluster.kill(2);
    progress(&shared, "progress with node 2 down");
    cluster.start_node(2);
    let third = Worker::start(&shared, "c");
    progress(&shared, "progress after node 2 came back and c joined");
    second.stop();
    cluster.kill(3);
    progress(&shared, "progress with node 3 down and b gone");
    cluster.start_node(3);
    progress(&shared, "progress after node 3 came back");
    check_exactly_once(&shared);
    first.stop();
    third.stop();
    eprintln!("three brokers: {:?}", started.elapsed());
}
