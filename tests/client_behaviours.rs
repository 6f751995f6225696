//! Issue 18 item 7: behaviours that real clients' own test suites check, each through a real
//! client against a real broker (tests/python/confluent_behaviours.py with confluent-kafka,
//! tests/python/kafka_python_version.py with kafka-python), and where the client cannot see
//! the detail, through raw requests built with kafka-protocol (tests/common/wire.rs):
//!
//! - topic `compression.type` (at creation, altered, and the broker default) re-packs produced
//!   batches in the topic's codec: values consumed intact, stored batches carry the codec;
//! - a compacted topic refuses a batch with a keyless record (INVALID_RECORD, record errors);
//! - ListOffsets MAX_TIMESTAMP names the record with the largest timestamp (KAFKA-16310);
//! - `message.format.version` is accepted, described and alterable, as in Kafka 3.x;
//! - kafka-python infers Kafka 4.2 from ApiVersions.

mod common;

use std::net::TcpStream;

use bytes::{Bytes, BytesMut};
use common::scripts::run_python_check;
use common::wire::{call, connect};
use common::{unique_topic, Broker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use ringlet_protocol::record_batch::{parse_header, split_batches, BatchCompression};

fn passes(broker: &mut Broker, script: &str, args: &[&str]) {
    let output = run_python_check(script, &broker.bootstrap(), args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ALL CHECKS PASSED"),
        "{script} {args:?} did not report success:\n{stdout}"
    );
    broker.assert_alive(&format!("after {script} {args:?}"));
}

fn behaviour(broker: &mut Broker, check: &str, topics: &[&str]) {
    let mut args = vec!["--check", check];
    for topic in topics {
        args.extend(["--topic", topic]);
    }
    passes(broker, "confluent_behaviours.py", &args);
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// The stored batches of `topic`-0 from offset 0, as a raw Fetch v11 returns them.
fn fetch_raw(stream: &mut TcpStream, topic: &str) -> Bytes {
    let partition = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(0)
        .with_log_start_offset(-1)
        .with_partition_max_bytes(8 << 20);
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(8 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![partition])]);
    let response: FetchResponse = call(stream, ApiKey::Fetch, 11, &request);
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0, "fetch {topic}");
    partition.records.clone().unwrap_or_default()
}

/// Asserts every stored batch of `topic`-0 is in `codec`, and returns how many there are.
fn assert_stored_codec(broker: &Broker, topic: &str, codec: BatchCompression) -> usize {
    let mut stream = connect(broker.addr());
    let data = fetch_raw(&mut stream, topic);
    let ranges = split_batches(&data).expect("whole batches");
    assert!(!ranges.is_empty(), "{topic}: nothing stored");
    for range in &ranges {
        let header = parse_header(&data[range.clone()]).expect("batch header");
        assert_eq!(
            header.compression(),
            codec,
            "{topic}: batch at {}",
            header.base_offset
        );
    }
    ranges.len()
}

#[test]
fn topic_compression_type_recompresses_produced_batches() {
    let mut broker = Broker::start();
    let (gzip, zstd) = (unique_topic("codec-gzip"), unique_topic("codec-zstd"));
    behaviour(&mut broker, "codec", &[&gzip, &zstd]);
    assert_stored_codec(&broker, &gzip, BatchCompression::Gzip);
    assert_stored_codec(&broker, &zstd, BatchCompression::Zstd);
}

fn record(offset: i64, key: Option<&'static [u8]>) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: offset as i32 - 1,
        timestamp: 1_700_000_000_000 + offset,
        key: key.map(Bytes::from_static),
        value: Some(Bytes::from(vec![b'v'; 64])),
        headers: Default::default(),
    }
}

fn produce_raw(
    stream: &mut TcpStream,
    topic: &str,
    records: &[Record],
    version: i16,
) -> ProduceResponse {
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, records, &options).expect("encode batch");
    let partition = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(batch.freeze()));
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![partition])]);
    call(stream, ApiKey::Produce, version, &request)
}

#[test]
fn broker_compression_type_is_the_default_of_topics_without_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let port = common::free_port();
    let mut broker = Broker::start_with_args(
        &dir.path().join("data"),
        &dir.path().join("logs"),
        port,
        port,
        &["--compression-type".into(), "lz4".into()],
    );
    let plain = unique_topic("broker-lz4");
    common::kafka::create_topic(&broker.bootstrap(), &plain, 1);
    let mut stream = connect(broker.addr());
    let records: Vec<Record> = (0..5).map(|i| record(i, Some(b"k"))).collect();
    let response = produce_raw(&mut stream, &plain, &records, 9);
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    assert_stored_codec(&broker, &plain, BatchCompression::Lz4);
    broker.assert_alive("after producing to a broker-default lz4 topic");
}

#[test]
fn compacted_topic_refuses_keyless_records() {
    let mut broker = Broker::start();
    let topic = unique_topic("compact-keys");
    behaviour(&mut broker, "keyless", &[&topic]);
    // What librdkafka reads from the response, field by field: ProduceResponse v9's record
    // errors name each keyless record by its index in the batch.
    let mut stream = connect(broker.addr());
    let records = [record(0, Some(b"a")), record(1, None), record(2, None)];
    let response = produce_raw(&mut stream, &topic, &records, 9);
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 87, "INVALID_RECORD");
    let indexes: Vec<i32> = partition
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indexes, vec![1, 2]);
    let expected =
        format!("Compacted topic cannot accept message without key in topic partition {topic}-0.");
    for error in &partition.record_errors {
        assert_eq!(
            error.batch_index_error_message.as_deref(),
            Some(expected.as_str())
        );
    }
    let message = partition.error_message.as_deref().unwrap_or_default();
    assert!(
        message.starts_with("One or more records have been rejected due to 2 record errors"),
        "{message}"
    );
    let keyed = [record(0, Some(b"x"))];
    let response = produce_raw(&mut stream, &topic, &keyed, 9);
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!((partition.error_code, partition.base_offset), (0, 1));
}

#[test]
fn list_offsets_max_timestamp_names_the_record_not_the_batch_end() {
    let mut broker = Broker::start();
    let topic = unique_topic("max-timestamp");
    behaviour(&mut broker, "max-timestamp", &[&topic]);
}

#[test]
fn message_format_version_is_accepted_described_and_altered() {
    let mut broker = Broker::start();
    let (set, plain) = (unique_topic("format-set"), unique_topic("format-default"));
    behaviour(&mut broker, "format-version", &[&set, &plain]);
}

#[test]
fn kafka_python_infers_kafka_4_2() {
    let mut broker = Broker::start();
    passes(&mut broker, "kafka_python_version.py", &["--expect", "4.2"]);
}
