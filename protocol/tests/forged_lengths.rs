//! Forged length fields must cost an error, not the process.
//!
//! Before the `third_party/kafka-protocol` patch, each of these frames made the decoder reserve
//! memory for the declared count (up to hundreds of GiB) and the allocation failure aborted the
//! whole broker. Each runs in this test process, so an abort fails the suite.

use bytes::Bytes;
use ringlet_protocol::{decode_request, DecodeError};

fn all_versions(key: ringlet_protocol::kafka_protocol::messages::ApiKey) -> Option<(i16, i16)> {
    let range = key.valid_versions();
    Some((range.min, range.max))
}

fn header(api_key: i16, version: i16) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    frame
}

fn assert_malformed(frame: Vec<u8>) {
    match decode_request(Bytes::from(frame), all_versions) {
        Err(DecodeError::Malformed {
            correlation_id: 7, ..
        }) => {}
        other => panic!("expected a malformed-request error, got {other:?}"),
    }
}

#[test]
fn metadata_v1_with_i32_max_topics_is_malformed() {
    let mut frame = header(3, 1);
    frame.extend_from_slice(&i32::MAX.to_be_bytes());
    assert_malformed(frame);
}

#[test]
fn flexible_metadata_with_huge_compact_array_is_malformed() {
    let mut frame = header(3, 12);
    frame.push(0); // header tagged fields
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // unsigned varint u32::MAX
    assert_malformed(frame);
}

#[test]
fn produce_with_huge_records_length_is_malformed() {
    let mut frame = header(0, 7);
    frame.extend_from_slice(&(-1i16).to_be_bytes()); // null transactional id
    frame.extend_from_slice(&1i16.to_be_bytes()); // acks
    frame.extend_from_slice(&1000i32.to_be_bytes()); // timeout
    frame.extend_from_slice(&1i32.to_be_bytes()); // one topic
    frame.extend_from_slice(&1i16.to_be_bytes());
    frame.push(b't');
    frame.extend_from_slice(&1i32.to_be_bytes()); // one partition
    frame.extend_from_slice(&0i32.to_be_bytes());
    frame.extend_from_slice(&i32::MAX.to_be_bytes()); // records: 2 GiB declared, none present
    assert_malformed(frame);
}
