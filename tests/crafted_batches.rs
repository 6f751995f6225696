//! Crafted produce batches must cost the client an error, never the broker (issue #19).
//!
//! A Produce whose batch header claims 2,147,483,647 records around one real record (valid
//! CRC) was stored with error 0; reads that sized memory from that count then aborted the
//! process, and the batch stayed in the log, so the broker fell over again after every
//! restart. Kafka refuses such a batch with INVALID_RECORD (87), and refuses a client's
//! Produce to an internal topic with INVALID_TOPIC_EXCEPTION (17), whose loaders decode every
//! batch they find.
//!
//! Each test sends raw requests over a socket, then checks that ListOffsets by time answers,
//! that a normal batch is still produced and fetched, and that all of it holds after the
//! broker restarts on the same data directory. Run against a build without the fix
//! (`RINGLET_TEST_BINARY=...`), each test fails on its first refusal: that build stores the
//! crafted batches with error 0.

mod common;
mod idempotence_support;

use std::net::TcpStream;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use common::wire::{call, connect};
use common::{unique_topic, Broker};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    ListOffsetsRequest, ListOffsetsResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use ringlet_protocol::record_batch::{parse_header, split_batches};

const INVALID_RECORD: i16 = 87;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
/// Produce versions the tests send: the oldest served and the newest.
const PRODUCE_VERSIONS: [i16; 2] = [3, 11];
/// Timestamp of the first record of every batch; record `i` is one second later.
const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn record(index: i64) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: index,
        // The encoder starts a new batch when `offset - sequence` changes.
        sequence: index as i32 - 1,
        timestamp: BASE_TIMESTAMP_MS + index * 1000,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from(vec![b'v'; 32])),
        headers: Default::default(),
    }
}

/// One uncompressed batch of `count` records, as a client encodes it.
fn batch(count: i64) -> BytesMut {
    let records: Vec<Record> = (0..count).map(record).collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
    buf
}

/// `batch` with its header's record count and last offset delta replaced, CRC recomputed so
/// that only the count is wrong.
fn forged(mut batch: BytesMut, records_count: i32, last_offset_delta: i32) -> Bytes {
    batch[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
    batch[57..61].copy_from_slice(&records_count.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch.freeze()
}

/// `(error_code, base_offset)` of producing `records` to `topic`-`partition` at `version`.
fn produce(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    version: i16,
    records: Bytes,
) -> (i16, i64) {
    let data = PartitionProduceData::default()
        .with_index(partition)
        .with_records(Some(records));
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![data])]);
    let response: ProduceResponse = call(stream, ApiKey::Produce, version, &request);
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

/// `(error_code, offset)` of ListOffsets v7 for the first record at or after `timestamp_ms`.
fn offset_for_time(stream: &mut TcpStream, topic: &str, timestamp_ms: i64) -> (i16, i64) {
    let partition = ListOffsetsPartition::default()
        .with_partition_index(0)
        .with_current_leader_epoch(-1)
        .with_timestamp(timestamp_ms);
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![partition])]);
    let response: ListOffsetsResponse = call(stream, ApiKey::ListOffsets, 7, &request);
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.offset)
}

/// Base offsets of the batches of `topic`-0 from offset 0 up to its high watermark, read with
/// Fetch v11 (one fetch may stop at a segment's end, as Kafka's does).
fn stored_batches(stream: &mut TcpStream, topic: &str) -> Vec<i64> {
    let mut bases = Vec::new();
    let mut offset = 0;
    loop {
        let (data, high_watermark) = fetch_from(stream, topic, offset);
        let ranges = split_batches(&data).expect("whole batches");
        for range in ranges {
            let header = parse_header(&data[range]).expect("header");
            bases.push(header.base_offset);
            offset = header.last_offset() + 1;
        }
        if offset >= high_watermark || data.is_empty() {
            return bases;
        }
    }
}

/// The records of `topic`-0 from `offset` and the high watermark.
fn fetch_from(stream: &mut TcpStream, topic: &str, offset: i64) -> (Bytes, i64) {
    let request = idempotence_support::fetch_request(topic, 0, offset, 0);
    let response: FetchResponse = call(stream, ApiKey::Fetch, 11, &request);
    let answer = &response.responses[0].partitions[0];
    assert_eq!(answer.error_code, 0, "fetch {topic} from {offset}");
    let data = answer.records.clone().unwrap_or_default();
    (data, answer.high_watermark)
}

/// Starts a broker on `dir`'s data directory (again, for a restart).
fn broker_on(dir: &Path, extra_args: &[&str]) -> Broker {
    let port = common::free_port();
    let args: Vec<String> = extra_args.iter().map(|arg| arg.to_string()).collect();
    Broker::start_with_args(&dir.join("data"), &dir.join("logs"), port, port, &args)
}

/// The broker answers ListOffsets by time, and a normal batch goes in and comes back.
fn assert_serving(broker: &mut Broker, topic: &str, stored_before: &[i64]) -> Vec<i64> {
    let mut stream = connect(broker.addr());
    assert_eq!(
        offset_for_time(&mut stream, topic, BASE_TIMESTAMP_MS + 1000),
        (0, 1),
        "ListOffsets by time on {topic}"
    );
    let (error, base) = produce(&mut stream, topic, 0, 11, batch(2).freeze());
    assert_eq!(error, 0, "a normal batch after the crafted ones");
    let stored = stored_batches(&mut stream, topic);
    let mut expected = stored_before.to_vec();
    expected.push(base);
    assert_eq!(stored, expected, "batches of {topic}");
    broker.assert_alive("after serving normal requests");
    stored
}

/// A broker on a fresh data directory with a one-partition topic holding one normal batch
/// (base offset 0), and a connection to it.
fn partition_with_one_batch(prefix: &str) -> (tempfile::TempDir, Broker, String, TcpStream) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let broker = broker_on(dir.path(), &[]);
    let topic = unique_topic(prefix);
    common::kafka::create_topic(&broker.bootstrap(), &topic, 1);
    let mut stream = connect(broker.addr());
    assert_eq!(
        produce(&mut stream, &topic, 0, 11, batch(2).freeze()),
        (0, 0)
    );
    (dir, broker, topic, stream)
}

/// The broker serves `topic` (holding only the batch at 0 of its crafted ones), and still
/// does after a kill -9 and a restart on the same data directory.
fn assert_serving_across_a_restart(dir: &tempfile::TempDir, mut broker: Broker, topic: &str) {
    let stored = assert_serving(&mut broker, topic, &[0]);
    broker.kill_hard();
    let mut broker = broker_on(dir.path(), &[]);
    assert_serving(&mut broker, topic, &stored);
}

#[test]
fn a_batch_claiming_i32_max_records_is_refused_and_the_broker_keeps_serving() {
    let (dir, mut broker, topic, mut stream) = partition_with_one_batch("crafted-count");
    for version in PRODUCE_VERSIONS {
        // The batch of the issue: one record, a count of i32::MAX, a last offset delta of 0.
        let (error, _) = produce(
            &mut stream,
            &topic,
            0,
            version,
            forged(batch(1), i32::MAX, 0),
        );
        assert_eq!(error, INVALID_RECORD, "v{version}: count against offsets");
        // The same with a consistent header: only the records present can tell.
        let consistent = forged(batch(1), i32::MAX, i32::MAX - 1);
        let (error, _) = produce(&mut stream, &topic, 0, version, consistent);
        assert_eq!(error, INVALID_RECORD, "v{version}: count against records");
    }
    broker.assert_alive("after the crafted batches");
    assert_serving_across_a_restart(&dir, broker, &topic);
}

#[test]
fn a_count_smaller_than_the_records_is_refused() {
    let (dir, broker, topic, mut stream) = partition_with_one_batch("crafted-small-count");
    for version in PRODUCE_VERSIONS {
        // Three records; the header says one, over a one-offset range (consistent).
        let (error, _) = produce(&mut stream, &topic, 0, version, forged(batch(3), 1, 0));
        assert_eq!(error, INVALID_RECORD, "v{version}: records left over");
        // Three records, a header of two over three offsets (inconsistent).
        let (error, _) = produce(&mut stream, &topic, 0, version, forged(batch(3), 2, 2));
        assert_eq!(error, INVALID_RECORD, "v{version}: count against offsets");
    }
    assert_serving_across_a_restart(&dir, broker, &topic);
}

/// Makes the broker create `__consumer_offsets` and `__transaction_state`, as a client's
/// first FindCoordinator does.
fn create_internal_topics(broker: &Broker) {
    for key_type in [0, 1] {
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_static_str("crafted"))
            .with_key_type(key_type);
        let response: FindCoordinatorResponse = common::api_call::call(broker.addr(), 3, &request);
        assert_eq!(
            response.error_code, 0,
            "FindCoordinator key type {key_type}"
        );
    }
}

#[test]
fn a_client_cannot_produce_to_internal_topics() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let args = ["--offsets-topic-num-partitions", "2"];
    let mut broker = broker_on(dir.path(), &args);
    create_internal_topics(&broker);
    let mut stream = connect(broker.addr());
    for topic in ["__consumer_offsets", "__transaction_state"] {
        for version in PRODUCE_VERSIONS {
            let crafted = forged(batch(1), i32::MAX, 0);
            let normal = batch(1).freeze();
            for (what, records) in [("crafted", crafted), ("normal", normal)] {
                let (error, _) = produce(&mut stream, topic, 0, version, records);
                assert_eq!(
                    error, INVALID_TOPIC_EXCEPTION,
                    "{what} produce v{version} to {topic}"
                );
            }
        }
    }
    // The coordinators load both topics at start-up: they hold only what they wrote.
    broker.kill_hard();
    let mut broker = broker_on(dir.path(), &args);
    create_internal_topics(&broker);
    broker.assert_alive("after a restart over the internal topics");
}
