//! Issue 18, item 3: Kafka offsets on a replicated partition (RF=3, three real brokers) are
//! dense over the records clients produce. Raft's own entries (each new leader's no-op,
//! the DeleteRecords command) take no offset: the first record is at offset 0, and after
//! leader kills (SIGKILL) and a DeleteRecords every offset from the log start to the high
//! watermark holds a record, as librdkafka sees it through produce acknowledgements,
//! watermarks, fetches, seeks, OffsetsForTimes and committed offsets.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::cluster::{Cluster, CLUSTER_TIMEOUT};
use common::kafka::{
    assigned_consumer, base_config, block_on, create_replicated_topic, recording_producer,
    retry_coordinator_moves, send_with_retry, CLIENT_TIMEOUT, CONSUME_STALL_TIMEOUT,
};
use common::{unique_topic, wait_for};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// Records produced between two events (topic creation, leader kills, DeleteRecords).
const PER_PHASE: i64 = 15;

#[test]
fn offsets_stay_dense_across_leader_kills_and_delete_records() {
    let mut cluster = Cluster::start(3);
    let topic = unique_topic("dense-rf3");
    let clock = Timestamps::now();
    create_replicated_topic(&cluster.bootstrap(), &topic, 1, 3);
    cluster.wait_for_partition(&topic, 0, |isr| isr.len() == 3);

    // The first leader's no-op took no offset: the first record is at 0.
    produce_range(&cluster.bootstrap(), &topic, &clock, 0..PER_PHASE);
    assert_eq!(watermarks(&cluster.bootstrap(), &topic), (0, PER_PHASE));

    // Two leader kills: two new leaders, two more no-ops, and still no gap.
    for phase in 1..=2 {
        kill_leader_and_restart(&mut cluster, &topic);
        let range = phase * PER_PHASE..(phase + 1) * PER_PHASE;
        produce_range(&cluster.bootstrap(), &topic, &clock, range.clone());
        assert_eq!(watermarks(&cluster.bootstrap(), &topic), (0, range.end));
    }
    assert_dense(&cluster.bootstrap(), &topic, 0, 3 * PER_PHASE);

    // DeleteRecords: the log start is the offset asked for (each record is its own batch),
    // and the command itself takes no offset either.
    let deleted_to = PER_PHASE + 5;
    assert_eq!(
        delete_records(&cluster.bootstrap(), &topic, deleted_to),
        deleted_to
    );
    produce_range(
        &cluster.bootstrap(),
        &topic,
        &clock,
        3 * PER_PHASE..4 * PER_PHASE,
    );
    let high = 4 * PER_PHASE;
    assert_eq!(watermarks(&cluster.bootstrap(), &topic), (deleted_to, high));
    assert_dense(&cluster.bootstrap(), &topic, deleted_to, high);

    // Seek, OffsetsForTimes and committed-offset lag speak the same offsets.
    let consumer = assigned_consumer(&cluster.bootstrap());
    assert_eq!(read_from(&consumer, &topic, Offset::Offset(50), 1), [50]);
    let mut times = TopicPartitionList::new();
    times
        .add_partition_offset(&topic, 0, Offset::Offset(clock.of(42)))
        .expect("add partition");
    let found = consumer
        .offsets_for_times(times, CLIENT_TIMEOUT)
        .expect("offsets_for_times");
    let found = found.find_partition(&topic, 0).expect("partition 0");
    assert_eq!(
        found.offset(),
        Offset::Offset(42),
        "the record stamped with 42's time"
    );
    assert_lag_agrees(&cluster.bootstrap(), &topic, 33, high);
}

/// Record `i`'s CreateTime is `start + i` seconds: OffsetsForTimes can name each record.
struct Timestamps {
    start_ms: i64,
}

impl Timestamps {
    fn now() -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
        Self {
            start_ms: now.as_millis() as i64 - 3_600_000,
        }
    }

    fn of(&self, record: i64) -> i64 {
        self.start_ms + record * 1000
    }
}

/// Produces records `range` (payload and key: the record's number) one batch each, acks=all,
/// and checks each was acknowledged at the offset equal to its number.
fn produce_range(bootstrap: &str, topic: &str, clock: &Timestamps, range: std::ops::Range<i64>) {
    let (producer, context) = recording_producer(bootstrap, &[("linger.ms", "0")]);
    for record in range.clone() {
        let payload = record.to_string();
        let message = BaseRecord::with_opaque_to(topic, record as usize)
            .payload(payload.as_bytes())
            .key(payload.as_bytes())
            .timestamp(clock.of(record));
        send_with_retry(&producer, message);
        // One record per batch, so DeleteRecords can name any record's offset exactly.
        producer
            .flush(Duration::from_secs(300))
            .expect("delivery report");
    }
    let deliveries = context.snapshot();
    assert_eq!(deliveries.len(), range.clone().count());
    for delivery in deliveries {
        let (partition, offset) = delivery
            .outcome
            .unwrap_or_else(|err| panic!("record {} failed: {err}", delivery.index));
        assert_eq!(
            (partition, offset),
            (0, delivery.index as i64),
            "record {} acknowledged at offset {offset}",
            delivery.index
        );
    }
}

/// SIGKILLs partition 0's leader, waits for another to lead, and restarts the killed node
/// (so three replicas stay in the group and later kills still leave a majority).
fn kill_leader_and_restart(cluster: &mut Cluster, topic: &str) {
    let victim = cluster
        .wait_for_partition(topic, 0, |isr| isr.len() == 3)
        .leader;
    cluster.kill(victim);
    let successor = cluster.wait_for_partition(topic, 0, |_| true).leader;
    assert_ne!(successor, victim);
    cluster.start_node(victim);
    cluster.wait_for_partition(topic, 0, |isr| isr.len() == 3);
}

/// `(low, high)` watermarks of partition 0, asked again while leadership settles.
fn watermarks(bootstrap: &str, topic: &str) -> (i64, i64) {
    wait_for("the watermarks", CLUSTER_TIMEOUT, || {
        let consumer: BaseConsumer = base_config(bootstrap).create().expect("client");
        match consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)) {
            Ok(marks) => Some(marks),
            Err(err) => {
                eprintln!("watermarks of {topic}: {err} (asking again)");
                None
            }
        }
    })
}

/// Every offset in `from..high` holds the record numbered by it, delivered in order, and the
/// consumer's position ends at the high watermark.
fn assert_dense(bootstrap: &str, topic: &str, from: i64, high: i64) {
    let consumer = assigned_consumer(bootstrap);
    let offsets = read_from(&consumer, topic, Offset::Beginning, (high - from) as usize);
    assert_eq!(offsets, (from..high).collect::<Vec<_>>());
    let position = consumer.position().expect("position");
    let position = position.find_partition(topic, 0).expect("partition 0");
    assert_eq!(position.offset(), Offset::Offset(high));
}

/// The offsets of `count` records read from `start`, checking each payload is its offset.
fn read_from(consumer: &BaseConsumer, topic: &str, start: Offset, count: usize) -> Vec<i64> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, start)
        .expect("add partition");
    consumer.assign(&assignment).expect("assign");
    let mut offsets = Vec::new();
    let deadline = std::time::Instant::now() + CONSUME_STALL_TIMEOUT;
    while offsets.len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "stalled at {offsets:?}"
        );
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                let payload = message
                    .payload()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                assert_eq!(
                    payload,
                    Some(message.offset().to_string()),
                    "record at offset"
                );
                offsets.push(message.offset());
            }
            Some(Err(err)) => eprintln!("consumer: {err} (going on)"),
            None => {}
        }
    }
    offsets
}

/// DeleteRecords through librdkafka's admin client; the new low watermark.
fn delete_records(bootstrap: &str, topic: &str, offset: i64) -> i64 {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap).create().expect("admin");
    let mut request = TopicPartitionList::new();
    request
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("add partition");
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let answer = block_on(admin.delete_records(&request, &options)).expect("DeleteRecords");
    let partition = answer.find_partition(topic, 0).expect("partition 0");
    partition.error().expect("DeleteRecords of partition 0");
    partition.offset().to_raw().expect("a low watermark")
}

/// A group commits `committed`: the committed offset reads back as is, and the lag it
/// implies (`high - committed`) is exactly the records a consumer resuming there reads.
fn assert_lag_agrees(bootstrap: &str, topic: &str, committed: i64, high: i64) {
    let group = unique_topic("dense-group");
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .create()
        .expect("group consumer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(committed))
        .expect("add partition");
    retry_coordinator_moves("commit", || consumer.commit(&offsets, CommitMode::Sync));
    let mut asked = TopicPartitionList::new();
    asked.add_partition(topic, 0);
    let read_back = retry_coordinator_moves("committed offsets", || {
        consumer.committed_offsets(asked.clone(), CLIENT_TIMEOUT)
    });
    let read_back = read_back.find_partition(topic, 0).expect("partition 0");
    assert_eq!(read_back.offset(), Offset::Offset(committed));
    let lag = (high - committed) as usize;
    let resumed = read_from(&consumer, topic, Offset::Stored, lag);
    assert_eq!(resumed, (committed..high).collect::<Vec<_>>());
}
