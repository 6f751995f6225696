//! Issue #6, scenarios 4 and 5, against three real broker processes on 127.0.0.1:
//! 4. A network partition isolates a partition leader (every broker-to-broker link goes through
//!    a proxy the test can cut; clients still reach the isolated broker): the minority side
//!    acknowledges no acks=all write (raw Produce requests to the isolated broker), the majority elects a new leader and keeps acknowledging,
//!    and after healing the old leader rejoins the ISR with nothing acknowledged lost and the
//!    minority's unacknowledged writes gone.
//! 5. A rolling restart (SIGTERM, start, wait for a full ISR) of all three brokers under
//!    producer and consumer load: the producer's writes all succeed (librdkafka retries the
//!    retriable errors it meets), the consumer sees only retriable errors, nothing is lost.

mod common;
mod idempotence_support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::acked_load::{compare, AckedLoad};
use common::cluster::{Cluster, CLUSTER_TIMEOUT};
use common::kafka::{
    assigned_consumer, create_replicated_topic, flush_and_check_all_acked, recording_producer,
    send_with_retry,
};
use common::netsplit::NetSplit;
use common::{unique_topic, wait_for};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;

#[test]
fn an_isolated_leader_stops_acknowledging_and_the_majority_moves_on() {
    let split = NetSplit::new();
    let mut cluster = Cluster::start_split(3, &split);
    let topic = unique_topic("netsplit");
    create_replicated_topic(&cluster.bootstrap(), &topic, 1, 3);
    let before = cluster.wait_for_partition(&topic, 0, |isr| isr.len() == 3);
    send_all_acked(&cluster.bootstrap(), &topic, "before", 200);

    let old = before.leader;
    split.isolate(old);
    let majority: Vec<i32> = cluster.ids().into_iter().filter(|id| *id != old).collect();
    let minority_bootstrap = cluster.kafka_addr(old).to_string();
    let minority_topic = topic.clone();
    let minority =
        std::thread::spawn(move || minority_writes(&minority_bootstrap, &minority_topic));
    let new_leader = wait_for("a leader on the majority side", CLUSTER_TIMEOUT, || {
        majority.iter().find_map(|asked| {
            let view = cluster.view_from(*asked, &[topic.as_str()])?;
            let p = view.partitions.first()?.clone();
            (p.leader != old
                && majority.contains(&p.leader)
                && p.leader_epoch > before.leader_epoch)
                .then_some(p.leader)
        })
    });
    let majority_bootstrap = majority
        .iter()
        .map(|id| cluster.kafka_addr(*id).to_string())
        .collect::<Vec<_>>()
        .join(",");
    send_all_acked(&majority_bootstrap, &topic, "majority", 200);
    let minority_acked = minority.join().expect("minority producer thread");
    assert_eq!(
        minority_acked, 0,
        "the isolated old leader {old} acknowledged acks=all writes (new leader {new_leader})"
    );

    split.heal();
    cluster.wait_for_partition(&topic, 0, |isr| isr.contains(&old) && isr.len() == 3);
    // Converged: the old leader itself follows a newer leader (until it hears the new term
    // it may still believe it leads, and would answer reads from its stale state).
    wait_for(
        "the old leader to follow the new term",
        CLUSTER_TIMEOUT,
        || {
            let view = cluster.view_from(old, &[topic.as_str()])?;
            let p = view.partitions.first()?;
            (p.leader != old && p.leader >= 0 && p.leader_epoch > before.leader_epoch).then_some(())
        },
    );
    let consumed = common::kafka::consume_to_high_watermarks(&cluster.bootstrap(), &topic, 1);
    let payloads: Vec<String> = consumed
        .values()
        .flatten()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string())
        .collect();
    for phase in ["before", "majority"] {
        for index in 0..200 {
            let expected = format!("{phase}-{index}");
            assert!(payloads.contains(&expected), "acknowledged {expected} lost");
        }
    }
    assert!(
        !payloads.iter().any(|p| p.starts_with("minority-")),
        "an unacknowledged minority write survived the partition"
    );
}

/// Writes to the isolated broker alone, with raw acks=all Produce requests (a client library
/// would follow Metadata to the majority's brokers, which this one machine lets it reach);
/// returns how many writes it acknowledged.
fn minority_writes(bootstrap: &str, topic: &str) -> usize {
    let addr: std::net::SocketAddr = bootstrap.parse().expect("the isolated broker's address");
    let mut stream = common::wire::connect(addr);
    let mut acknowledged = 0;
    for index in 0..10 {
        let value = format!("minority-{index}");
        let records = idempotence_support::batch(
            idempotence_support::Producer::NONE,
            0,
            false,
            &[value.as_str()],
        );
        let answer = idempotence_support::produce_with(&mut stream, topic, 0, records, -1, 3_000);
        if answer.error_code == 0 {
            acknowledged += 1;
        }
    }
    acknowledged
}

fn send_all_acked(bootstrap: &str, topic: &str, phase: &str, count: usize) {
    let settings = [("message.timeout.ms", "120000")];
    let (producer, context) = recording_producer(bootstrap, &settings);
    for index in 0..count {
        let payload = format!("{phase}-{index}");
        let record = BaseRecord::with_opaque_to(topic, index).payload(payload.as_bytes());
        send_with_retry(&producer, record);
    }
    flush_and_check_all_acked(&producer, &context, count);
}

#[test]
fn a_rolling_restart_under_load_loses_nothing() {
    let mut cluster = Cluster::start(3);
    let topic = unique_topic("rolling");
    create_replicated_topic(&cluster.bootstrap(), &topic, PARTITIONS, 3);
    heal(&mut cluster, &topic);
    let load = AckedLoad::start(cluster.bootstrap(), topic.clone());
    let reading = Arc::new(AtomicBool::new(true));
    let read_so_far = Arc::new(AtomicUsize::new(0));
    let reader = spawn_reader(
        cluster.bootstrap(),
        topic.clone(),
        reading.clone(),
        read_so_far.clone(),
    );
    for id in cluster.ids() {
        cluster.stop(id);
        cluster.start_node(id);
        heal(&mut cluster, &topic);
    }
    let (acked, failed) = load.finish_with_errors();
    // The restarts take a few seconds; a consumer that spent them backing off from leaders
    // that moved must still get through everything acknowledged before it stops.
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    while read_so_far.load(Ordering::SeqCst) < acked.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    reading.store(false, Ordering::SeqCst);
    let (consumed, consumer_errors) = reader.join().expect("reader thread");
    assert!(
        failed.is_empty(),
        "writes failed: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert!(
        consumed > 0,
        "the consumer read nothing during the restarts"
    );
    let unexpected: Vec<&String> = consumer_errors
        .iter()
        .filter(|err| !err.retriable)
        .map(|err| &err.text)
        .collect();
    assert!(
        unexpected.is_empty(),
        "non-retriable consumer errors: {unexpected:?}"
    );
    let report = compare(&cluster.bootstrap(), &topic, PARTITIONS, &acked);
    assert!(report.acknowledged > 0);
    assert!(
        report.lost.is_empty(),
        "acknowledged messages lost: {:?}",
        &report.lost[..report.lost.len().min(20)]
    );
}

fn heal(cluster: &mut Cluster, topic: &str) {
    for partition in 0..PARTITIONS {
        cluster.wait_for_partition(topic, partition, |isr| isr.len() == 3);
    }
}

struct ConsumerError {
    text: String,
    retriable: bool,
}

/// Reads the topic from the beginning while `reading`; returns messages read and the errors seen.
fn spawn_reader(
    bootstrap: String,
    topic: String,
    reading: Arc<AtomicBool>,
    read_so_far: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<(usize, Vec<ConsumerError>)> {
    std::thread::spawn(move || {
        let consumer = assigned_consumer(&bootstrap);
        let mut assignment = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            assignment
                .add_partition_offset(&topic, partition, Offset::Beginning)
                .expect("add partition");
        }
        consumer.assign(&assignment).expect("assign");
        let mut read = 0;
        let mut errors = Vec::new();
        let mut seen = HashSet::new();
        let started = Instant::now();
        while reading.load(Ordering::SeqCst) || started.elapsed() < Duration::from_secs(1) {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) if seen.insert((message.partition(), message.offset())) => {
                    read += 1;
                    read_so_far.store(read, Ordering::SeqCst);
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => errors.push(ConsumerError {
                    retriable: is_retriable(&err),
                    text: err.to_string(),
                }),
                None => {}
            }
        }
        (read, errors)
    })
}

/// Errors a Kafka consumer is expected to ride through while brokers restart.
fn is_retriable(err: &KafkaError) -> bool {
    matches!(
        err.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::FencedLeaderEpoch
                | RDKafkaErrorCode::UnknownLeaderEpoch
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
        )
    )
}
