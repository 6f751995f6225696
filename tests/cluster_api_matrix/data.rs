//! The partition data APIs: the leader of a partition answers from its log, any other broker
//! answers NOT_LEADER_OR_FOLLOWER as Kafka does (Fetch may also be served by a follower, up
//! to the high watermark, as with KIP-392).

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    BrokerId, DeleteRecordsRequest, DescribeProducersRequest, FetchRequest, InitProducerIdRequest,
    ListOffsetsRequest, OffsetForLeaderEpochRequest, ProducerId, TopicName, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::ctx::{Ctx, ASSIGNMENT, NOT_LEADER, TOPIC};
use crate::common::api_call::call;

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

fn leader_of(partition: i32) -> i32 {
    ASSIGNMENT[partition as usize][0]
}

/// The matrix topic's id, from Metadata.
fn topic_id(ctx: &Ctx) -> Uuid {
    let metadata = ctx.metadata(1);
    metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == TOPIC))
        .map(|t| t.topic_id)
        .expect("the matrix topic is listed")
}

/// `(error, offset, leader epoch)` of ListOffsets `timestamp` for `partition` through `via`.
fn list_offset(
    ctx: &Ctx,
    via: i32,
    version: i16,
    partition: i32,
    timestamp: i64,
) -> (i16, i64, i32) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name())
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let response = call(ctx.addr(via), version, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.leader_epoch)
}

/// The high watermark of `partition`, from its leader.
fn high_watermark(ctx: &Ctx, partition: i32) -> i64 {
    let (code, offset, _) = list_offset(ctx, leader_of(partition), 7, partition, -1);
    assert_eq!(code, 0, "ListOffsets latest from the leader");
    offset
}

pub fn produce(ctx: &mut Ctx, via: i32, version: i16) {
    let id = topic_id(ctx);
    for partition in 0..3 {
        let before = high_watermark(ctx, partition);
        let mut request = ctx.produce_request(partition, 2);
        if via != leader_of(partition) {
            // Rewind the sequence: the batch must not be written, so it must not count.
            ctx.next_sequence[partition as usize] -= 2;
        }
        if version >= 13 {
            let topic = &mut request.topic_data[0];
            topic.name = TopicName::default();
            topic.topic_id = id;
        }
        let response = call(ctx.addr(via), version, &request);
        let p = &response.responses[0].partition_responses[0];
        if via == leader_of(partition) {
            assert_eq!(
                (p.error_code, p.base_offset),
                (0, before),
                "produce to the leader"
            );
            assert_eq!(high_watermark(ctx, partition), before + 2);
        } else {
            assert_eq!(
                p.error_code, NOT_LEADER,
                "produce to {partition} through {via}"
            );
            assert_eq!(high_watermark(ctx, partition), before, "nothing written");
        }
    }
}

pub fn fetch(ctx: &mut Ctx, via: i32, version: i16) {
    let id = topic_id(ctx);
    for partition in 0..3 {
        let high_watermark = high_watermark(ctx, partition);
        let mut topic = FetchTopic::default().with_partitions(vec![FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20)]);
        if version >= 13 {
            topic.topic_id = id;
        } else {
            topic.topic = topic_name();
        }
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![topic]);
        let response = call(ctx.addr(via), version, &request);
        let p = &response.responses[0].partitions[0];
        if via == leader_of(partition) {
            assert_eq!(p.error_code, 0, "fetch {partition} from its leader");
            assert_eq!(p.high_watermark, high_watermark);
            assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()));
        } else if p.error_code == 0 {
            // A follower serving the fetch: never past the leader's high watermark.
            assert!(
                p.high_watermark <= high_watermark,
                "{partition} through {via}"
            );
        } else {
            assert_eq!(p.error_code, NOT_LEADER, "fetch {partition} through {via}");
        }
    }
}

pub fn list_offsets(ctx: &mut Ctx, via: i32, version: i16) {
    for partition in 0..3 {
        let expected = high_watermark(ctx, partition);
        let (code, offset, _) = list_offset(ctx, via, version, partition, -1);
        if via == leader_of(partition) {
            assert_eq!(
                (code, offset),
                (0, expected),
                "latest of {partition} from its leader"
            );
        } else {
            assert_eq!(code, NOT_LEADER, "ListOffsets {partition} through {via}");
        }
    }
}

pub fn delete_records(ctx: &mut Ctx, via: i32, version: i16) {
    for partition in 0..3 {
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name())
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(partition)
                    .with_offset(1)])]);
        let response = call(ctx.addr(via), version, &request);
        let p = &response.topics[0].partitions[0];
        if via == leader_of(partition) {
            assert_eq!(
                (p.error_code, p.low_watermark),
                (0, 1),
                "delete {partition} to 1"
            );
            let earliest = list_offset(ctx, via, 7, partition, -2);
            assert_eq!((earliest.0, earliest.1), (0, 1), "log start of {partition}");
        } else {
            assert_eq!(
                p.error_code, NOT_LEADER,
                "DeleteRecords {partition} through {via}"
            );
        }
    }
}

pub fn offset_for_leader_epoch(ctx: &mut Ctx, via: i32, version: i16) {
    for partition in 0..3 {
        let (code, end, epoch) = list_offset(ctx, leader_of(partition), 7, partition, -1);
        assert_eq!(code, 0);
        let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(topic_name())
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(-1)
                    .with_leader_epoch(epoch)]),
        ]);
        let response = call(ctx.addr(via), version, &request);
        let p = &response.topics[0].partitions[0];
        if via == leader_of(partition) {
            assert_eq!(
                (p.error_code, p.leader_epoch),
                (0, epoch),
                "{partition} epoch"
            );
            assert_eq!(p.end_offset, end, "end of the current epoch of {partition}");
        } else {
            assert_eq!(
                p.error_code, NOT_LEADER,
                "OffsetForLeaderEpoch {partition} through {via}"
            );
        }
    }
}

pub fn describe_producers(ctx: &mut Ctx, via: i32, version: i16) {
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(topic_name())
        .with_partition_indexes(vec![0, 1, 2])]);
    let response = call(ctx.addr(via), version, &request);
    for p in &response.topics[0].partitions {
        let partition = p.partition_index;
        if via == leader_of(partition) {
            assert_eq!(p.error_code, 0, "{partition} from its leader");
            let ids: Vec<i64> = p.active_producers.iter().map(|s| s.producer_id.0).collect();
            assert!(
                ids.contains(&ctx.producer_id),
                "{partition} producers {ids:?}"
            );
        } else {
            assert_eq!(
                p.error_code, NOT_LEADER,
                "DescribeProducers {partition} through {via}"
            );
        }
    }
}

pub fn write_txn_markers(ctx: &mut Ctx, via: i32, version: i16) {
    let init = call(
        ctx.addr(via),
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0);
    for partition in 0..3 {
        let before = high_watermark(ctx, partition);
        let marker = WritableTxnMarker::default()
            .with_producer_id(init.producer_id)
            .with_producer_epoch(init.producer_epoch)
            .with_transaction_result(false)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(topic_name())
                .with_partition_indexes(vec![partition])]);
        let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
        let response = call(ctx.addr(via), version, &request);
        let code = response.markers[0].topics[0].partitions[0].error_code;
        if via == leader_of(partition) {
            assert_eq!(code, 0, "abort marker on {partition} through its leader");
            assert_eq!(
                high_watermark(ctx, partition),
                before + 1,
                "the marker's offset"
            );
        } else {
            assert_eq!(
                code, NOT_LEADER,
                "WriteTxnMarkers {partition} through {via}"
            );
        }
    }
}
