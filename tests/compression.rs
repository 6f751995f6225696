//! Issue 3, test 6: batches compressed by librdkafka with each codec (gzip, snappy, lz4, zstd)
//! are stored and served intact: consumed back by librdkafka (rdkafka crate) with matching keys,
//! values, headers and offsets, and by kcat (Debian's librdkafka) for a cross-build check.

mod common;

use std::process::Command;
use std::time::Duration;

use common::kafka::{
    consume_from_beginning, create_topic, flush_and_check_all_acked, header_pairs,
    recording_producer, send_with_retry,
};
use common::scripts::run_ok;
use common::{unique_topic, Broker};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;

const MESSAGES: usize = 3_000;
const PARTITIONS: i32 = 2;

/// Compressible and incompressible parts, so every codec has real work to do.
fn value_of(codec: &str, index: usize) -> Vec<u8> {
    let mut value = format!("{codec}-{index}-").into_bytes();
    value.extend(std::iter::repeat_n(
        b'a' + (index % 26) as u8,
        200 + index % 300,
    ));
    // xorshift noise derived from the index: deterministic, not compressible
    let mut state = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..(index % 64) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        value.push(state as u8);
    }
    value
}

fn key_of(index: usize) -> Vec<u8> {
    format!("key-{}", index % 31).into_bytes()
}

fn round_trip(codec: &str) {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic(&format!("compressed-{codec}"));
    create_topic(&bootstrap, &topic, PARTITIONS);

    let (producer, context) = recording_producer(
        &bootstrap,
        &[
            ("compression.type", codec),
            ("linger.ms", "20"),
            ("batch.num.messages", "500"),
        ],
    );
    for index in 0..MESSAGES {
        let (key, value) = (key_of(index), value_of(codec, index));
        let headers = OwnedHeaders::new().insert(Header {
            key: "codec",
            value: Some(codec),
        });
        let record = BaseRecord::with_opaque_to(&topic, index)
            .key(key.as_slice())
            .payload(value.as_slice())
            .headers(headers);
        send_with_retry(&producer, record);
        producer.poll(Duration::ZERO);
    }
    let deliveries = flush_and_check_all_acked(&producer, &context, MESSAGES);
    let placement: std::collections::HashMap<(i32, i64), usize> = deliveries
        .iter()
        .map(|d| (d.outcome.clone().expect("acknowledged"), d.index))
        .collect();

    let consumed = consume_from_beginning(&bootstrap, &topic, PARTITIONS, MESSAGES);
    for (partition, messages) in &consumed {
        for (position, message) in messages.iter().enumerate() {
            assert_eq!(
                message.offset(),
                position as i64,
                "{codec}: partition {partition} order"
            );
            let index = placement[&(*partition, message.offset())];
            let at = format!("{codec}: {partition}/{position} (message {index})");
            assert_eq!(
                message.payload(),
                Some(value_of(codec, index).as_slice()),
                "value at {at}"
            );
            assert_eq!(message.key(), Some(key_of(index).as_slice()), "key at {at}");
            assert_eq!(
                header_pairs(message),
                vec![("codec".to_string(), Some(codec.as_bytes().to_vec()))],
                "headers at {at}"
            );
        }
    }
    println!("{codec}: {MESSAGES} compressed messages consumed intact by librdkafka");

    // kcat decompresses with Debian's own librdkafka build: count and spot-check partition 0.
    let output = run_ok(
        Command::new("kcat").args([
            "-b",
            &bootstrap,
            "-C",
            "-t",
            &topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%o %S\n",
        ]),
        None,
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let expected = &consumed[&0];
    assert_eq!(
        lines.len(),
        expected.len(),
        "{codec}: kcat read partition 0 fully"
    );
    for (line, message) in lines.iter().zip(expected) {
        let size = message.payload().map_or(0, <[u8]>::len);
        assert_eq!(
            *line,
            format!("{} {size}", message.offset()),
            "{codec}: kcat offset/size"
        );
    }
    println!(
        "{codec}: kcat read partition 0 ({} messages) with matching offsets and sizes",
        lines.len()
    );
}

#[test]
fn gzip_batches_round_trip() {
    round_trip("gzip");
}

#[test]
fn snappy_batches_round_trip() {
    round_trip("snappy");
}

#[test]
fn lz4_batches_round_trip() {
    round_trip("lz4");
}

#[test]
fn zstd_batches_round_trip() {
    round_trip("zstd");
}
