//! Raw Kafka requests for the idempotence and read_committed tests: record batches with
//! producer ids and sequences built by hand (what a client library would send), and typed
//! request/response round trips over a plain TcpStream.
#![allow(dead_code)]

use std::net::TcpStream;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest,
    ListOffsetsResponse, ProduceRequest, ProduceResponse, ProducerId, ResponseHeader, TopicName,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use crate::common::wire::{self, Reaction};

pub const NO_PRODUCER: i64 = -1;

/// A producer's identity in a batch header.
#[derive(Debug, Clone, Copy)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
}

impl Producer {
    pub const NONE: Producer = Producer {
        id: NO_PRODUCER,
        epoch: -1,
    };
}

/// One uncompressed v2 batch of `values` from `producer` starting at `base_sequence`.
pub fn batch(
    producer: Producer,
    base_sequence: i32,
    transactional: bool,
    values: &[&str],
) -> Bytes {
    let mut records = BytesMut::new();
    for (delta, value) in values.iter().enumerate() {
        let mut record = BytesMut::new();
        record.put_i8(0); // attributes
        put_varint(&mut record, 0); // timestamp delta
        put_varint(&mut record, delta as i64); // offset delta
        put_varint(&mut record, -1); // null key
        put_varint(&mut record, value.len() as i64);
        record.put_slice(value.as_bytes());
        put_varint(&mut record, 0); // headers
        put_varint(&mut records, record.len() as i64);
        records.put_slice(&record);
    }
    let now_ms = 1_700_000_000_000i64;
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32(0); // length, below
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0); // crc, below
    b.put_i16(if transactional { 0x10 } else { 0 });
    b.put_i32(values.len() as i32 - 1);
    b.put_i64(now_ms);
    b.put_i64(now_ms);
    b.put_i64(producer.id);
    b.put_i16(producer.epoch);
    b.put_i32(if producer.id < 0 { -1 } else { base_sequence });
    b.put_i32(values.len() as i32);
    b.put_slice(&records);
    let length = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

fn put_varint(buf: &mut BytesMut, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Sends `request` at `version` and decodes the response.
pub fn call<Req, Resp>(stream: &mut TcpStream, api_key: i16, version: i16, request: &Req) -> Resp
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let frame = wire::request_frame(request, api_key, version, 7);
    wire::send(stream, &frame);
    let body = match wire::read_reaction(stream, "raw request") {
        Reaction::Answered(body) => body,
        Reaction::Closed { partial } => {
            panic!("broker closed the connection (api {api_key} v{version}, {partial} bytes)")
        }
    };
    let mut buf = Bytes::from(body);
    ResponseHeader::decode(&mut buf, Resp::header_version(version)).expect("response header");
    Resp::decode(&mut buf, version).expect("response body")
}

/// A new idempotent producer id (InitProducerId v1, no transactional id).
pub fn init_producer_id(stream: &mut TcpStream) -> Producer {
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = None;
    request.transaction_timeout_ms = -1;
    let response: InitProducerIdResponse = call(stream, 22, 1, &request);
    assert_eq!(response.error_code, 0, "InitProducerId error");
    Producer {
        id: response.producer_id.0,
        epoch: response.producer_epoch,
    }
}

/// Produce v8, acks=all, one batch to one partition; the partition's answer.
pub fn produce(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    produce_with(stream, topic, partition, records, -1, 30_000)
}

/// Produce v8 of one batch to one partition with `acks` and `timeout_ms`.
pub fn produce_with(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i16,
    timeout_ms: i32,
) -> PartitionProduceResponse {
    let mut data = PartitionProduceData::default();
    data.index = partition;
    data.records = Some(records);
    let mut topic_data = TopicProduceData::default();
    topic_data.name = TopicName(StrBytes::from_string(topic.to_string()));
    topic_data.partition_data.push(data);
    let mut request = ProduceRequest::default();
    request.acks = acks;
    request.timeout_ms = timeout_ms;
    request.topic_data.push(topic_data);
    let mut response: ProduceResponse = call(stream, 0, 8, &request);
    response.responses.remove(0).partition_responses.remove(0)
}

/// Fetch v11 of one partition from `offset` with `isolation_level`, waiting up to
/// `max_wait_ms` for at least one byte.
pub fn fetch(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation_level: i8,
    max_wait_ms: i32,
) -> PartitionData {
    let mut request = fetch_request(topic, partition, offset, max_wait_ms);
    request.isolation_level = isolation_level;
    let mut response: FetchResponse = call(stream, 1, 11, &request);
    assert_eq!(response.error_code, 0, "fetch error");
    response.responses.remove(0).partitions.remove(0)
}

/// A consumer's sessionless Fetch of one partition from `offset` (1 MiB at most), waiting up
/// to `max_wait_ms` for at least one byte.
pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    p.current_leader_epoch = -1;
    p.log_start_offset = -1;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions.push(p);
    let mut request = FetchRequest::default();
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = 1 << 20;
    request.session_epoch = -1;
    request.topics.push(t);
    request
}

/// ListOffsets v5 "latest" with `isolation_level`.
pub fn latest_offset(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    isolation_level: i8,
) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = -1;
    p.current_leader_epoch = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions.push(p);
    let mut request = ListOffsetsRequest::default();
    request.replica_id = (-1).into();
    request.isolation_level = isolation_level;
    request.topics.push(t);
    let response: ListOffsetsResponse = call(stream, 2, 5, &request);
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0, "ListOffsets error");
    partition.offset
}

/// WriteTxnMarkers v1 for one partition; the partition's error code.
pub fn write_marker(
    stream: &mut TcpStream,
    producer: Producer,
    commit: bool,
    topic: &str,
    partition: i32,
) -> i16 {
    let mut t = WritableTxnMarkerTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_indexes.push(partition);
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = ProducerId(producer.id);
    marker.producer_epoch = producer.epoch;
    marker.transaction_result = commit;
    marker.coordinator_epoch = 0;
    marker.topics.push(t);
    let mut request = WriteTxnMarkersRequest::default();
    request.markers.push(marker);
    let response: WriteTxnMarkersResponse = call(stream, 27, 1, &request);
    response.markers[0].topics[0].partitions[0].error_code
}

/// The header fields of each batch in fetched records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub producer_id: i64,
    pub control: bool,
}

pub fn batches(records: &Bytes) -> Vec<BatchInfo> {
    let mut out = Vec::new();
    let mut rest = records.clone();
    while rest.len() >= 61 {
        let base_offset = (&rest[0..8]).get_i64();
        let length = (&rest[8..12]).get_i32() as usize;
        if rest.len() < 12 + length {
            break;
        }
        let attributes = (&rest[21..23]).get_i16();
        let last_delta = (&rest[23..27]).get_i32();
        let producer_id = (&rest[43..51]).get_i64();
        out.push(BatchInfo {
            base_offset,
            last_offset: base_offset + i64::from(last_delta),
            producer_id,
            control: attributes & 0x20 != 0,
        });
        rest.advance(12 + length);
    }
    out
}

/// DescribeProducers v0 of one partition: `(producer id, epoch, last sequence, open
/// transaction start)` per producer, by producer id.
pub fn describe_producers(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
) -> Vec<(i64, i32, i32, i64)> {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
    let mut t = TopicRequest::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_indexes.push(partition);
    let mut request = DescribeProducersRequest::default();
    request.topics.push(t);
    let response: DescribeProducersResponse = call(stream, 61, 0, &request);
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0, "DescribeProducers error");
    partition
        .active_producers
        .iter()
        .map(|p| {
            (
                p.producer_id.0,
                p.producer_epoch,
                p.last_sequence,
                p.current_txn_start_offset,
            )
        })
        .collect()
}

/// `records` (one batch) with its base and max timestamps set to `timestamp_ms`.
pub fn with_timestamp(records: Bytes, timestamp_ms: i64) -> Bytes {
    let mut b = BytesMut::from(&records[..]);
    b[27..35].copy_from_slice(&timestamp_ms.to_be_bytes());
    b[35..43].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}
