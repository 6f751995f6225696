//! Issue #18, item 1: a connection's pipelined produce requests are applied in the order it
//! sent them. One librdkafka producer, five requests in flight, 200,000 records round-robin
//! over 31 partitions, read back per partition in send order: on one broker with two shards
//! (the partitions' owners split across shards, so a request's batches hop to both) and on
//! three brokers with RF=3. Plain (acks=1, no retries), idempotent and transactional
//! producers; the latter two must see no OUT_OF_ORDER_SEQUENCE_NUMBER (a failed delivery).
//!
//! Before the produce turns of `server::produce_order`, the plain probe on two shards found
//! dozens of records out of order and the idempotent one got OUT_OF_ORDER_SEQUENCE_NUMBER.

mod common;
mod idempotence_support;

use common::cluster::Cluster;
use common::kafka::create_replicated_topic;
use common::ordering::{Probe, ProbeMode};
use common::{unique_topic, Broker};

const PARTITIONS: i32 = 31;
const RECORDS: usize = 200_000;

fn probe_one_broker(mode: ProbeMode) {
    let broker = Broker::start();
    let topic = unique_topic("order-probe");
    create_replicated_topic(&broker.bootstrap(), &topic, PARTITIONS, 1);
    let probe = Probe {
        bootstrap: &broker.bootstrap(),
        topic: &topic,
        partitions: PARTITIONS,
        records: RECORDS,
        mode,
    };
    probe.run();
}

fn probe_three_brokers(mode: ProbeMode) {
    let cluster = Cluster::start_for_transactions(3);
    let topic = unique_topic("order-probe-rf3");
    create_replicated_topic(&cluster.bootstrap(), &topic, PARTITIONS, 3);
    let probe = Probe {
        bootstrap: &cluster.bootstrap(),
        topic: &topic,
        partitions: PARTITIONS,
        records: RECORDS,
        mode,
    };
    probe.run();
}

#[test]
fn pipelined_plain_produces_keep_send_order_on_two_shards() {
    probe_one_broker(ProbeMode::Plain);
}

#[test]
fn pipelined_idempotent_produces_keep_send_order_on_two_shards() {
    probe_one_broker(ProbeMode::Idempotent);
}

#[test]
fn pipelined_transactional_produces_keep_send_order_on_two_shards() {
    probe_one_broker(ProbeMode::Transactional);
}

#[test]
fn pipelined_plain_produces_keep_send_order_on_three_brokers() {
    probe_three_brokers(ProbeMode::Plain);
}

#[test]
fn pipelined_idempotent_produces_keep_send_order_on_three_brokers() {
    probe_three_brokers(ProbeMode::Idempotent);
}

#[test]
fn pipelined_transactional_produces_keep_send_order_on_three_brokers() {
    probe_three_brokers(ProbeMode::Transactional);
}

// ---------------------------------------------------------------- raw pipelined requests

/// Requests sent back to back on one connection before any answer is read.
const PIPELINED: usize = 40;
const RAW_PARTITIONS: i32 = 16;

/// Produce v8 of one batch per partition, partitions listed in `order`.
fn produce_frame(
    topic: &str,
    order: &[i32],
    batch_for: impl Fn(i32) -> bytes::Bytes,
    correlation_id: i32,
) -> Vec<u8> {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut topic_data = TopicProduceData::default();
    topic_data.name = TopicName(StrBytes::from_string(topic.to_string()));
    for &partition in order {
        let mut data = PartitionProduceData::default();
        data.index = partition;
        data.records = Some(batch_for(partition));
        topic_data.partition_data.push(data);
    }
    let mut request = ProduceRequest::default();
    request.acks = 1;
    request.timeout_ms = 30_000;
    request.topic_data.push(topic_data);
    common::wire::request_frame(&request, 0, 8, correlation_id)
}

/// Sends `PIPELINED` produce requests in one write, each listing the partitions in the
/// opposite order of the one before (as librdkafka rotates its partition order), so that a
/// broker applying them concurrently lets a later request overtake an earlier one on some
/// partition. Returns every partition's (base offset, error code) per request.
fn pipelined_round(
    stream: &mut std::net::TcpStream,
    topic: &str,
    batch: impl Fn(usize, i32) -> bytes::Bytes,
) -> Vec<Vec<(i32, i64, i16)>> {
    use bytes::Buf;
    use kafka_protocol::messages::{ProduceResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;
    let forward: Vec<i32> = (0..RAW_PARTITIONS).collect();
    let backward: Vec<i32> = forward.iter().rev().copied().collect();
    let mut frames = Vec::new();
    for request in 0..PIPELINED {
        let order = if request % 2 == 0 {
            &backward
        } else {
            &forward
        };
        let frame = produce_frame(topic, order, |p| batch(request, p), request as i32);
        frames.extend_from_slice(&frame);
    }
    common::wire::send(stream, &frames);
    (0..PIPELINED)
        .map(|request| {
            let body = match common::wire::read_reaction(stream, "pipelined produce") {
                common::wire::Reaction::Answered(body) => body,
                other => panic!("produce {request}: {other:?}"),
            };
            let mut buf = bytes::Bytes::from(body);
            let header = ResponseHeader::decode(&mut buf, 0).expect("response header");
            assert_eq!(header.correlation_id, request as i32, "responses in order");
            let response = ProduceResponse::decode(&mut buf, 8).expect("produce response");
            assert!(!buf.has_remaining());
            response.responses[0]
                .partition_responses
                .iter()
                .map(|p| (p.index, p.base_offset, p.error_code))
                .collect()
        })
        .collect()
}

/// Every (partition, request) whose batch did not land after the previous request's batch,
/// or failed.
fn overtaken(answers: &[Vec<(i32, i64, i16)>]) -> Vec<(i32, usize, i64, i16)> {
    let mut last_offset: std::collections::HashMap<i32, i64> = Default::default();
    let mut bad = Vec::new();
    for (request, partitions) in answers.iter().enumerate() {
        for &(partition, base_offset, error_code) in partitions {
            let previous = last_offset.insert(partition, base_offset);
            if error_code != 0 || previous.is_some_and(|before| base_offset <= before) {
                bad.push((partition, request, base_offset, error_code));
            }
        }
    }
    bad
}

fn raw_probe(idempotent: bool) {
    use idempotence_support::{batch, init_producer_id, Producer};
    let broker = Broker::start();
    let topic = unique_topic("order-raw");
    create_replicated_topic(&broker.bootstrap(), &topic, RAW_PARTITIONS, 1);
    let mut stream = common::wire::connect(broker.addr());
    let producer = if idempotent {
        init_producer_id(&mut stream)
    } else {
        Producer::NONE
    };
    for round in 0..10 {
        let answers = pipelined_round(&mut stream, &topic, |request, _partition| {
            let sequence = (round * PIPELINED + request) as i32;
            batch(producer, sequence, false, &[&sequence.to_string()])
        });
        let bad = overtaken(&answers);
        assert!(
            bad.is_empty(),
            "round {round}: {} batches applied out of request order or refused \
             (partition, request, base offset, error), first: {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
    }
}

#[test]
fn raw_pipelined_produces_are_applied_in_request_order() {
    raw_probe(false);
}

#[test]
fn raw_pipelined_idempotent_produces_get_no_out_of_order_sequence() {
    raw_probe(true);
}
