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

/// A record batch of one record whose header claims `i32::MAX` records (valid CRC), as the
/// coordinators' loaders decode their logs with kafka-protocol's `RecordBatchDecoder`.
fn batch_claiming_i32_max_records() -> bytes::BytesMut {
    use ringlet_protocol::kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut batch = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, [&record], &options).expect("encode");
    batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

#[test]
fn record_batch_claiming_i32_max_records_is_an_error() {
    // Before the patch (upstream PR #156) the decoder reserved room for i32::MAX records,
    // hundreds of GiB, and the failed allocation aborted this process.
    use ringlet_protocol::kafka_protocol::records::RecordBatchDecoder;
    let mut bytes = batch_claiming_i32_max_records().freeze();
    assert!(RecordBatchDecoder::decode(&mut bytes).is_err());
}

#[test]
fn snappy_block_claiming_four_gib_is_refused_before_allocating() {
    // A raw snappy block whose header claims 0xffff_fffe bytes, then a 1-byte literal; and the
    // same inside snappy-java framing. Before the patch the reader allocated (zeroed) the
    // claimed length first and only then failed to decompress.
    use ringlet_protocol::kafka_protocol::compression::{Decompressor, Snappy};
    const BLOCK: &[u8] = b"\xfe\xff\xff\xff\x0f\x00a";
    let mut framed = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    framed.extend_from_slice(&(BLOCK.len() as u32).to_be_bytes());
    framed.extend_from_slice(BLOCK);
    for input in [BLOCK.to_vec(), framed] {
        let mut bytes = Bytes::from(input);
        let result = Snappy::decompress(&mut bytes, |out: &mut Bytes| Ok(out.len()));
        let message = format!("{:#}", result.expect_err("a forged claim is an error"));
        assert!(message.contains("more than snappy can expand"), "{message}");
    }
}
