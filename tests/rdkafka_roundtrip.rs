//! Issue 3, test 1: librdkafka (through the `rdkafka` crate) produces 100,000 keyed messages with
//! headers across 8 partitions with acks=all, then an assigned consumer (no group) reads every
//! partition from the beginning. Checked: every delivery succeeded; per-partition order; one
//! partition per key; offsets contiguous from 0 and equal to the high watermark; key, value,
//! headers and CreateTime timestamp of every message at the offset its delivery report named.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::kafka::{
    consume_from_beginning, create_topic, flush_and_check_all_acked, header_pairs,
    recording_producer, send_with_retry, Delivery,
};
use common::{unique_topic, Broker};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::Timestamp;

const MESSAGES: usize = 100_000;
const PARTITIONS: i32 = 8;
const DISTINCT_KEYS: usize = 997;

/// What message `index` carries; the consumer side rebuilds it to compare.
struct Expected {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp_ms: i64,
}

fn expected_message(index: usize, base_timestamp_ms: i64) -> Expected {
    let mut headers = vec![
        ("seq".to_string(), Some(index.to_string().into_bytes())),
        ("origin".to_string(), Some(b"ringlet-rdkafka-test".to_vec())),
    ];
    if index.is_multiple_of(3) {
        headers.push(("null-valued".to_string(), None));
    }
    Expected {
        key: format!("key-{}", index % DISTINCT_KEYS).into_bytes(),
        value: format!("value-{index}-{}", "v".repeat(index % 64)).into_bytes(),
        headers,
        timestamp_ms: base_timestamp_ms + index as i64,
    }
}

fn owned_headers(headers: &[(String, Option<Vec<u8>>)]) -> OwnedHeaders {
    headers
        .iter()
        .fold(OwnedHeaders::new(), |acc, (key, value)| {
            acc.insert(Header {
                key,
                value: value.as_deref(),
            })
        })
}

#[test]
fn rdkafka_100k_keyed_messages_with_headers_round_trip() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("rdkafka-roundtrip");
    create_topic(&bootstrap, &topic, PARTITIONS);

    // Timestamps in the recent past, so no broker-side timestamp bound can reject them.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let base_timestamp_ms = now_ms - 2 * MESSAGES as i64;

    // Idempotence on (librdkafka's and Kafka's default since 3.0): without it a client that
    // retries a request while later ones are in flight may reorder them, in Kafka too; with it
    // the broker must keep send order or refuse with OUT_OF_ORDER_SEQUENCE_NUMBER.
    let (producer, context) = recording_producer(&bootstrap, &[("enable.idempotence", "true")]);
    for index in 0..MESSAGES {
        let expected = expected_message(index, base_timestamp_ms);
        let record = BaseRecord::with_opaque_to(&topic, index)
            .key(expected.key.as_slice())
            .payload(expected.value.as_slice())
            .timestamp(expected.timestamp_ms)
            .headers(owned_headers(&expected.headers));
        send_with_retry(&producer, record);
        if index.is_multiple_of(1000) {
            producer.poll(Duration::ZERO);
        }
    }
    let deliveries = flush_and_check_all_acked(&producer, &context, MESSAGES);
    println!("produced {MESSAGES} messages to {topic}, all acknowledged (acks=all)");

    let placement = check_placement(&deliveries, base_timestamp_ms);
    check_watermarks(&producer, &topic, &placement);

    let consumed = consume_from_beginning(&bootstrap, &topic, PARTITIONS, MESSAGES);
    check_consumed(&consumed, &placement, base_timestamp_ms);
    println!(
        "consumed {MESSAGES} messages from {PARTITIONS} partitions: order, keys, values, headers \
         and timestamps match"
    );
}

/// Per partition: the message index at each offset (index by offset). Asserts key stability,
/// per-partition send order and contiguous offsets.
fn check_placement(deliveries: &[Delivery], base_timestamp_ms: i64) -> HashMap<i32, Vec<usize>> {
    let mut partition_of_key: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut by_partition: HashMap<i32, Vec<(i64, usize)>> = HashMap::new();
    for delivery in deliveries {
        let (partition, offset) = delivery.outcome.clone().expect("checked: all acknowledged");
        let key = expected_message(delivery.index, base_timestamp_ms).key;
        let first = *partition_of_key.entry(key.clone()).or_insert(partition);
        assert_eq!(
            first,
            partition,
            "key {} went to partitions {first} and {partition}",
            String::from_utf8_lossy(&key)
        );
        by_partition
            .entry(partition)
            .or_default()
            .push((offset, delivery.index));
    }
    assert_eq!(
        partition_of_key.len(),
        DISTINCT_KEYS,
        "every key was produced"
    );
    assert_eq!(
        by_partition.len(),
        PARTITIONS as usize,
        "all partitions received messages"
    );
    by_partition
        .into_iter()
        .map(|(partition, mut entries)| {
            entries.sort_unstable();
            for (position, (offset, _)) in entries.iter().enumerate() {
                assert_eq!(
                    *offset, position as i64,
                    "partition {partition}: offsets must be contiguous from 0"
                );
            }
            for pair in entries.windows(2) {
                assert!(
                    pair[0].1 < pair[1].1,
                    "partition {partition}: message {} was sent before {} but got a later offset",
                    pair[1].1,
                    pair[0].1
                );
            }
            (
                partition,
                entries.into_iter().map(|(_, index)| index).collect(),
            )
        })
        .collect()
}

fn check_watermarks<P: Producer<C>, C: rdkafka::producer::ProducerContext>(
    producer: &P,
    topic: &str,
    placement: &HashMap<i32, Vec<usize>>,
) {
    for partition in 0..PARTITIONS {
        let (low, high) = producer
            .client()
            .fetch_watermarks(topic, partition, Duration::from_secs(60))
            .expect("ListOffsets (watermarks)");
        let count = placement.get(&partition).map_or(0, Vec::len) as i64;
        assert_eq!((low, high), (0, count), "partition {partition} watermarks");
    }
}

fn check_consumed(
    consumed: &HashMap<i32, Vec<rdkafka::message::OwnedMessage>>,
    placement: &HashMap<i32, Vec<usize>>,
    base_timestamp_ms: i64,
) {
    for partition in 0..PARTITIONS {
        let messages = consumed.get(&partition).map_or(&[][..], Vec::as_slice);
        let indexes = &placement[&partition];
        assert_eq!(
            messages.len(),
            indexes.len(),
            "partition {partition}: consumed count"
        );
        for (position, message) in messages.iter().enumerate() {
            assert_eq!(
                message.offset(),
                position as i64,
                "partition {partition}: order"
            );
            let index = indexes[position];
            let expected = expected_message(index, base_timestamp_ms);
            let at = format!("partition {partition} offset {position} (message {index})");
            assert_eq!(message.key(), Some(expected.key.as_slice()), "key at {at}");
            assert_eq!(
                message.payload(),
                Some(expected.value.as_slice()),
                "value at {at}"
            );
            assert_eq!(header_pairs(message), expected.headers, "headers at {at}");
            assert_eq!(
                message.timestamp(),
                Timestamp::CreateTime(expected.timestamp_ms),
                "timestamp at {at}"
            );
        }
    }
}
