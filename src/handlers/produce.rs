//! Produce (API key 0), v3-v11.
//!
//! Two stages, like every data-plane handler: on the connection's shard each partition's
//! records are checked (not an internal topic, one magic-2 batch, CRC, size limit, a record
//! count that matches the offsets and the records, then the topic's rules: keys on compacted
//! topics, re-packing in the topic's `compression.type`) and the partition is
//! resolved in the topic table; then the valid ones are grouped by owning shard and each shard
//! gets ONE bus hop that appends all of them (`partition::ops::produce`). A request starts its
//! hops only once the connection's previous produce request has put its batches in their logs
//! (`server::produce_order`), so a connection's batches land in the order it sent them.
//! acks=all replies once the batches are durable (the log group-commits, so concurrent
//! producers share an fdatasync); acks=1 replies after the append; acks=0 sends no response.
//!
//! Kafka 4.2 serves v3-v13; v12 and v13 are not offered here. v12 is transactions v2
//! (KIP-890 part 2): the broker itself adds a transactional batch's partition to the
//! transaction, with no AddPartitionsToTxn from the producer, and Ringlet has no such implicit
//! adding. v13 (topic ids instead of names, KIP-516) exists only on top of v12. Clients then
//! use v11, which carries the same data.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::config::topic_name::is_internal_topic;
use crate::error::BrokerError;
use crate::partition::by_shard::Slots;
use crate::partition::fan_out::fan_out_staged;
use crate::partition::ops::{self, ProduceItem};
use crate::partition::produce_rules::{apply_topic_rules, TopicRules};
use crate::partition::records_check::{check_produced_records, RecordsRejected};
use crate::partition::records_count::check_record_count;
use crate::partition::{lookup, Appended};
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::Produce;
pub const MIN_VERSION: i16 = 3;
pub const MAX_VERSION: i16 = 11;

/// The outcome of one partition of the request.
pub type PartitionOutcome = Result<Appended, BrokerError>;

/// Serves a produce request; `None` for acks=0 (Kafka sends no response then).
pub async fn handle(ctx: &RequestContext, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks = request.acks;
    if !matches!(acks, -1..=1) {
        let outcomes = request_partitions(&request)
            .map(|_| Err(BrokerError::InvalidRequiredAcks(acks)))
            .collect();
        return Some(build_response(&request, outcomes));
    }
    let outcomes = append_all(ctx, &request).await;
    (acks != 0).then(|| build_response(&request, outcomes))
}

/// `(topic, partition)` of every partition in request order.
fn request_partitions(request: &ProduceRequest) -> impl Iterator<Item = (&TopicName, i32)> {
    request.topic_data.iter().flat_map(|topic| {
        topic
            .partition_data
            .iter()
            .map(move |partition| (&topic.name, partition.index))
    })
}

/// Validates locally, then one hop per owning shard; outcomes in request order.
async fn append_all(ctx: &RequestContext, request: &ProduceRequest) -> Vec<PartitionOutcome> {
    let state = &ctx.state;
    let mut slots: Slots<PartitionOutcome> = Slots::new(request_partitions(request).count());
    let mut routed = Vec::new();
    let mut position = 0usize;
    for topic in &request.topic_data {
        let meta = lookup::topic(state, topic.name.as_str());
        for partition in &topic.partition_data {
            let records = partition.records.as_deref().unwrap_or_default();
            match check_partition(meta.as_ref(), partition.index, records) {
                Ok((owner, repacked)) => {
                    let records = match repacked {
                        Some(bytes) => BytesMut::from(&bytes[..]),
                        None => owned_records(partition.records.clone()),
                    };
                    let item = ProduceItem {
                        topic: topic.name.to_string(),
                        partition: partition.index,
                        records,
                    };
                    routed.push((owner, position, item));
                }
                Err(err) => slots.fill(position, Err(err)),
            }
            position += 1;
        }
    }
    let wait_durable = request.acks == -1;
    // Kafka's produce timeout_ms bounds the wait for replication.
    let commit_timeout = crate::partition::replicas::commit_timeout(request.timeout_ms);
    if let Some(turn) = &ctx.produce_turn {
        turn.wait_for_previous().await;
    }
    let on_bus_error = |err: &ringlet_shard::BusError| Err(BrokerError::Bus(err.clone()));
    let (hops, dispatched) = fan_out_staged(
        state,
        routed,
        move |owner: Rc<ShardState>, items, hop_dispatched| async move {
            let lookup = lookup::OwnerLookup(&owner);
            let replicas = owner
                .cluster
                .as_ref()
                .map(|cluster| (&*cluster.replicas, commit_timeout));
            let partitions = &owner.partitions;
            ops::produce(partitions, &lookup, items, wait_durable, replicas, hop_dispatched).await
        },
        &on_bus_error,
    );
    let release_next = async {
        dispatched.all().await;
        if let Some(turn) = &ctx.produce_turn {
            turn.dispatched();
        }
    };
    let (results, ()) = futures_lite::future::zip(hops, release_next).await;
    for (position, outcome) in results {
        slots.fill(position, outcome);
    }
    slots.into_ordered(|_| Err(BrokerError::internal("produce: a partition got no outcome")))
}

/// Checks one partition on the connection's shard and returns its owning shard, with the
/// batch re-packed in the topic's codec when `compression.type` asks for it.
fn check_partition(
    meta: Option<&lookup::TopicMeta>,
    partition: i32,
    records: &[u8],
) -> Result<(usize, Option<Vec<u8>>), BrokerError> {
    let meta = meta.ok_or(BrokerError::UnknownTopicOrPartition)?;
    let owner = meta
        .owner_of(partition)
        .ok_or(BrokerError::UnknownTopicOrPartition)?;
    // Only the coordinators write their topics, and not through Produce
    // (`coordinator::internal_log`); their loaders trust what they find there.
    if is_internal_topic(&meta.name) {
        return Err(BrokerError::InvalidTopic(format!(
            "Cannot append to internal topic {}",
            meta.name
        )));
    }
    let max_message_bytes = usize::try_from(meta.max_message_bytes).unwrap_or(0);
    let header = check_produced_records(records, max_message_bytes).map_err(rejected)?;
    check_record_count(records, &header, &meta.name, partition).map_err(rejected)?;
    let rules = TopicRules {
        topic: &meta.name,
        partition,
        compression: meta.compression,
        compacted: meta.compacted,
        max_message_bytes,
    };
    let repacked = apply_topic_rules(records, &header, &rules).map_err(rejected)?;
    Ok((owner, repacked))
}

fn rejected(rejected: RecordsRejected) -> BrokerError {
    match rejected {
        RecordsRejected::Invalid(reason) => BrokerError::InvalidRecord(reason),
        RecordsRejected::Corrupt(err) => BrokerError::CorruptMessage(err.to_string()),
        RecordsRejected::TooLarge { .. } | RecordsRejected::InflatesTooMuch { .. } => {
            BrokerError::MessageTooLarge(rejected.to_string())
        }
        RecordsRejected::RecordErrors(ref errors) => BrokerError::RecordErrors {
            message: rejected.to_string(),
            record_errors: errors
                .iter()
                .map(|e| (e.batch_index, e.message.clone()))
                .collect(),
        },
    }
}

/// The log patches offsets in place, so it takes the bytes owned. The decoded
/// request usually shares its frame buffer, so this is normally one copy.
fn owned_records(records: Option<bytes::Bytes>) -> BytesMut {
    match records {
        Some(bytes) => bytes
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..])),
        None => BytesMut::new(),
    }
}

/// The response, partitions in request order.
pub fn build_response(
    request: &ProduceRequest,
    outcomes: Vec<PartitionOutcome>,
) -> ProduceResponse {
    let mut outcomes = outcomes.into_iter();
    let mut response = ProduceResponse::default();
    for topic in &request.topic_data {
        let mut topic_response = TopicProduceResponse::default();
        topic_response.name = topic.name.clone();
        for partition in &topic.partition_data {
            let outcome = outcomes
                .next()
                .unwrap_or_else(|| Err(BrokerError::internal("produce: missing outcome")));
            topic_response
                .partition_responses
                .push(partition_response(partition.index, outcome));
        }
        response.responses.push(topic_response);
    }
    response
}

fn partition_response(index: i32, outcome: PartitionOutcome) -> PartitionProduceResponse {
    let mut response = PartitionProduceResponse::default();
    response.index = index;
    match outcome {
        Ok(appended) => {
            response.base_offset = appended.base_offset;
            response.log_append_time_ms = appended.log_append_time_ms;
            response.log_start_offset = appended.log_start_offset;
        }
        Err(err) => {
            response.error_code = err.code_i16();
            response.base_offset = -1;
            if let BrokerError::RecordErrors { record_errors, .. } = &err {
                response.record_errors = record_errors
                    .iter()
                    .map(|(index, message)| {
                        BatchIndexAndErrorMessage::default()
                            .with_batch_index(*index)
                            .with_batch_index_error_message(Some(StrBytes::from_string(
                                message.clone(),
                            )))
                    })
                    .collect();
            }
            response.error_message = Some(StrBytes::from_string(err.to_string()));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};

    fn request(topics: &[(&str, &[i32])]) -> ProduceRequest {
        let mut request = ProduceRequest::default();
        request.acks = -1;
        for (name, partitions) in topics {
            let mut topic = TopicProduceData::default();
            topic.name = TopicName(StrBytes::from_string(name.to_string()));
            for index in *partitions {
                let mut partition = PartitionProduceData::default();
                partition.index = *index;
                topic.partition_data.push(partition);
            }
            request.topic_data.push(topic);
        }
        request
    }

    fn appended(base_offset: i64) -> PartitionOutcome {
        Ok(Appended {
            base_offset,
            last_offset: base_offset + 9,
            log_append_time_ms: -1,
            log_start_offset: 0,
        })
    }

    #[test]
    fn response_keeps_request_order_and_reports_each_partition() {
        let request = request(&[("a", &[2, 0]), ("b", &[7])]);
        let outcomes = vec![
            appended(100),
            Err(BrokerError::UnknownTopicOrPartition),
            appended(5),
        ];
        let response = build_response(&request, outcomes);
        assert_eq!(response.responses.len(), 2);
        let a = &response.responses[0];
        assert_eq!(a.name.as_str(), "a");
        assert_eq!(a.partition_responses[0].index, 2);
        assert_eq!(a.partition_responses[0].base_offset, 100);
        assert_eq!(a.partition_responses[0].error_code, 0);
        assert_eq!(a.partition_responses[0].log_append_time_ms, -1);
        assert_eq!(a.partition_responses[1].index, 0);
        assert_eq!(
            a.partition_responses[1].error_code,
            BrokerError::UnknownTopicOrPartition.code_i16()
        );
        assert_eq!(a.partition_responses[1].base_offset, -1);
        let b = &response.responses[1];
        assert_eq!(b.partition_responses[0].index, 7);
        assert_eq!(b.partition_responses[0].base_offset, 5);
    }

    #[test]
    fn record_errors_are_reported_per_record() {
        let request = request(&[("t", &[0])]);
        let refused = Err(BrokerError::RecordErrors {
            message: "One or more records have been rejected".into(),
            record_errors: vec![(1, "no key".into()), (4, "no key".into())],
        });
        let response = build_response(&request, vec![refused]);
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 87);
        let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, vec![1, 4]);
        assert_eq!(p.record_errors[0].batch_index_error_message.as_deref(), Some("no key"));
        assert_eq!(
            p.error_message.as_deref(),
            Some("One or more records have been rejected")
        );
        // Before v8 the fields do not exist and are left out.
        use kafka_protocol::protocol::Encodable;
        for version in MIN_VERSION..=MAX_VERSION {
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).expect("encodes");
        }
    }

    #[test]
    fn response_encodes_at_every_served_version() {
        use kafka_protocol::protocol::Encodable;
        let request = request(&[("a", &[0])]);
        let response = build_response(&request, vec![appended(3)]);
        for version in MIN_VERSION..=MAX_VERSION {
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).expect("encodes");
            assert!(!buf.is_empty());
        }
    }
}
