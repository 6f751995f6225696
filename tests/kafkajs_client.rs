//! Issue 3, test 4: kafkajs against the real broker. kafkajs's consumer always joins a consumer
//! group (not served yet), so tests/js/kafkajs_check.js creates the topic, produces with acks=-1,
//! checks ListOffsets (latest, earliest, by timestamp) and reads everything back through kafkajs's
//! group-less broker.fetch(); then this test reads the same messages with librdkafka and compares
//! each one with what kafkajs reported as acknowledged at that (partition, offset).

mod common;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use common::kafka::{consume_from_beginning, header_pairs};
use common::scripts::run_node_check;
use common::{unique_topic, Broker};
use rdkafka::message::Message;
use rdkafka::Timestamp;

const PARTITIONS: i32 = 3;
const DISTINCT_KEYS: usize = 7;

/// Mirror of expected() in tests/js/kafkajs_check.js.
fn expected_kafkajs_message(index: usize, base_timestamp_ms: i64) -> (String, String, i64) {
    (
        format!("key-{}", index % DISTINCT_KEYS),
        format!("kafkajs-value-{index}-{}", "j".repeat(index % 40)),
        base_timestamp_ms + index as i64,
    )
}

#[test]
fn kafkajs_produces_and_librdkafka_reads_back() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("kafkajs");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let base_timestamp_ms = now_ms - 60_000;

    let output = run_node_check(
        "kafkajs_check.js",
        &bootstrap,
        &[
            "--topic",
            &topic,
            "--base-timestamp",
            &base_timestamp_ms.to_string(),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ALL CHECKS PASSED"),
        "kafkajs check did not pass:\n{stdout}"
    );

    // index by (partition, offset), from the script's DELIVERED lines
    let delivered: HashMap<(i32, i64), usize> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("DELIVERED "))
        .map(|rest| {
            let fields: Vec<i64> = rest
                .split(' ')
                .map(|f| f.parse().expect("numeric DELIVERED field"))
                .collect();
            ((fields[1] as i32, fields[2]), fields[0] as usize)
        })
        .collect();
    assert!(!delivered.is_empty(), "the script reported its deliveries");

    let consumed = consume_from_beginning(&bootstrap, &topic, PARTITIONS, delivered.len());
    let mut compared = 0;
    for messages in consumed.values() {
        for message in messages {
            let at = (message.partition(), message.offset());
            let index = *delivered.get(&at).unwrap_or_else(|| {
                panic!("librdkafka read a message kafkajs never produced at {at:?}")
            });
            let (key, value, timestamp_ms) = expected_kafkajs_message(index, base_timestamp_ms);
            assert_eq!(message.key(), Some(key.as_bytes()), "key at {at:?}");
            assert_eq!(message.payload(), Some(value.as_bytes()), "value at {at:?}");
            assert_eq!(
                message.timestamp(),
                Timestamp::CreateTime(timestamp_ms),
                "timestamp at {at:?}"
            );
            assert_eq!(
                header_pairs(message),
                vec![
                    ("seq".to_string(), Some(index.to_string().into_bytes())),
                    ("client".to_string(), Some(b"kafkajs".to_vec())),
                ],
                "headers at {at:?}"
            );
            compared += 1;
        }
    }
    assert_eq!(
        compared,
        delivered.len(),
        "every kafkajs message read back by librdkafka"
    );
    println!("librdkafka read back all {compared} kafkajs messages intact");
}
