//! Issue 3, test 5: durability across restarts of the real process on the same data directory.
//! - SIGTERM: the broker exits with code 0 and, restarted, serves every acknowledged message;
//!   new messages continue the offsets.
//! - kill -9 immediately after acks=all acknowledgements (flushed), and kill -9 while a producer
//!   still has requests in flight: every message whose acknowledgement reached the client is
//!   served after the restart, at the offset it was acknowledged with, byte for byte; whatever
//!   else survived is an intact message that was really sent.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::kafka::{
    base_config, consume_from_beginning, create_topic, flush_and_check_all_acked,
    recording_producer, send_with_retry, Delivery,
};
use common::{unique_topic, Broker};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const PARTITIONS: i32 = 4;

fn key_of(index: usize) -> Vec<u8> {
    format!("key-{}", index % 101).into_bytes()
}

fn value_of(index: usize) -> Vec<u8> {
    format!("durable-{index}-{}", "d".repeat(index % 97)).into_bytes()
}

/// Index of the message a payload came from, if it is one of ours.
fn index_of(payload: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(payload).ok()?;
    text.strip_prefix("durable-")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

fn produce_range(
    producer: &BaseProducer<common::kafka::RecordingContext>,
    topic: &str,
    range: std::ops::Range<usize>,
) {
    for index in range {
        let key = key_of(index);
        let value = value_of(index);
        let record = BaseRecord::with_opaque_to(topic, index)
            .key(key.as_slice())
            .payload(value.as_slice());
        send_with_retry(producer, record);
        producer.poll(Duration::ZERO);
    }
}

/// Acknowledged placements: (partition, offset) -> message index.
fn acked_placements(deliveries: &[Delivery]) -> HashMap<(i32, i64), usize> {
    deliveries
        .iter()
        .filter_map(|d| d.outcome.as_ref().ok().map(|&(p, o)| ((p, o), d.index)))
        .collect()
}

/// After a restart: reads every partition up to its high watermark and checks that each
/// acknowledged message is there, intact, at its acknowledged offset, and that every other
/// message is an intact message we sent.
fn verify_after_restart(broker: &Broker, topic: &str, acked: &HashMap<(i32, i64), usize>) {
    let bootstrap = broker.bootstrap();
    let client: BaseProducer = base_config(&bootstrap).create().expect("create client");
    let mut total = 0usize;
    for partition in 0..PARTITIONS {
        let (low, high) = client
            .client()
            .fetch_watermarks(topic, partition, Duration::from_secs(60))
            .expect("watermarks after restart");
        let highest_acked = acked
            .keys()
            .filter(|(p, _)| *p == partition)
            .map(|(_, o)| *o)
            .max();
        if let Some(offset) = highest_acked {
            assert!(
                high > offset,
                "partition {partition}: high watermark {high} after restart, but offset {offset} was acknowledged"
            );
        }
        assert_eq!(low, 0, "partition {partition}: log start offset");
        total += high as usize;
    }
    let consumed = consume_from_beginning(&bootstrap, topic, PARTITIONS, total);
    let mut found = 0;
    for (partition, messages) in &consumed {
        for (position, message) in messages.iter().enumerate() {
            assert_eq!(
                message.offset(),
                position as i64,
                "partition {partition}: offsets contiguous"
            );
            check_message_intact(message);
            if let Some(&index) = acked.get(&(*partition, message.offset())) {
                assert_eq!(
                    message.payload(),
                    Some(value_of(index).as_slice()),
                    "partition {partition} offset {}: acknowledged message {index}",
                    message.offset()
                );
                found += 1;
            }
        }
    }
    assert_eq!(
        found,
        acked.len(),
        "every acknowledged message is served after the restart"
    );
    println!(
        "after restart: all {} acknowledged messages served intact ({total} messages in the log)",
        acked.len()
    );
}

fn check_message_intact(message: &OwnedMessage) {
    let payload = message.payload().expect("message has a value");
    let index = index_of(payload).unwrap_or_else(|| {
        panic!(
            "corrupt message at {}/{}: {:?}",
            message.partition(),
            message.offset(),
            payload
        )
    });
    assert_eq!(
        payload,
        value_of(index).as_slice(),
        "value of message {index}"
    );
    assert_eq!(
        message.key(),
        Some(key_of(index).as_slice()),
        "key of message {index}"
    );
}

fn start_on(dir: &Path) -> Broker {
    Broker::start_in(&dir.join("data"), &dir.join("logs"))
}

#[test]
fn acknowledged_messages_survive_sigterm_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut broker = start_on(dir.path());
    let topic = unique_topic("durable-term");
    create_topic(&broker.bootstrap(), &topic, PARTITIONS);

    let (producer, context) = recording_producer(&broker.bootstrap(), &[]);
    produce_range(&producer, &topic, 0..5_000);
    let deliveries = flush_and_check_all_acked(&producer, &context, 5_000);
    drop(producer);
    let acked = acked_placements(&deliveries);

    let status = broker.stop_graceful();
    assert_eq!(
        status.code(),
        Some(0),
        "graceful shutdown on SIGTERM exits 0 ({status})"
    );
    let broker = start_on(dir.path());
    verify_after_restart(&broker, &topic, &acked);

    // The restarted broker appends after what it recovered.
    let (producer, context) = recording_producer(&broker.bootstrap(), &[]);
    produce_range(&producer, &topic, 5_000..5_400);
    let more = flush_and_check_all_acked(&producer, &context, 400);
    let mut acked_all = acked;
    acked_all.extend(acked_placements(&more));
    assert_eq!(
        acked_all.len(),
        5_400,
        "new acknowledgements name new offsets"
    );
    verify_after_restart(&broker, &topic, &acked_all);
}

#[test]
fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut broker = start_on(dir.path());
    let topic = unique_topic("durable-kill");
    create_topic(&broker.bootstrap(), &topic, PARTITIONS);

    // Round 1: kill -9 the moment the last acknowledgement arrived.
    let (producer, context) = recording_producer(&broker.bootstrap(), &[]);
    produce_range(&producer, &topic, 0..3_000);
    let deliveries = flush_and_check_all_acked(&producer, &context, 3_000);
    broker.kill_hard();
    drop(producer);
    let mut acked = acked_placements(&deliveries);

    let mut broker = start_on(dir.path());
    verify_after_restart(&broker, &topic, &acked);

    // Round 2: kill -9 while the producer still has messages in flight; only what was
    // acknowledged before the kill is promised.
    let (producer, context) = recording_producer(&broker.bootstrap(), &[("linger.ms", "1")]);
    let mut next = 100_000;
    loop {
        produce_range(&producer, &topic, next..next + 200);
        next += 200;
        producer.poll(Duration::from_millis(10));
        let acked_now = context
            .snapshot()
            .iter()
            .filter(|d| d.outcome.is_ok())
            .count();
        if acked_now >= 2_000 {
            break;
        }
        assert!(
            next < 1_000_000,
            "the producer got fewer than 2000 acknowledgements"
        );
    }
    broker.kill_hard();
    // Serve the remaining delivery reports (failures for what was in flight), then collect.
    producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    let _ = producer.flush(Duration::from_secs(60));
    let round_two = context.snapshot();
    drop(producer);
    let acked_round_two = acked_placements(&round_two);
    println!(
        "kill -9 with {} of {} messages acknowledged",
        acked_round_two.len(),
        next - 100_000
    );
    acked.extend(acked_round_two);

    let broker = start_on(dir.path());
    verify_after_restart(&broker, &topic, &acked);
}
