//! AddPartitionsToTxn (API key 24), v0-v3: the client versions (Kafka 4.2's v4-v5 batch
//! transactions for brokers verifying on behalf of producers, KIP-890, which Ringlet's
//! partitions do not do, so they are not offered). Partitions of unknown topics get
//! UNKNOWN_TOPIC_OR_PARTITION and the rest OPERATION_NOT_ATTEMPTED, as Kafka does; otherwise
//! the coordinator's one answer applies to every partition.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey};
use kafka_protocol::ResponseError;

use crate::coordinator::txn::machine::TxnError;
use crate::coordinator::txn::{on_txn_coordinator, ops, unavailable_code};
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::AddPartitionsToTxn;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 3;
/// Versions below this get INVALID_PRODUCER_EPOCH instead of PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

pub async fn handle(
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let topics = ctx.state.topics();
    let mut partitions = Vec::new();
    let mut unknown = false;
    for topic in &request.v3_and_below_topics {
        let meta = topics.get(topic.name.as_str());
        for &p in &topic.partitions {
            unknown |= !meta.is_some_and(|m| m.has_partition(p));
            partitions.push((topic.name.to_string(), p));
        }
    }
    let code_for = |topic: &str, partition: i32| -> Option<i16> {
        if !unknown {
            return None;
        }
        let known = topics
            .get(topic)
            .is_some_and(|m| m.has_partition(partition));
        Some(if known {
            ResponseError::OperationNotAttempted.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        })
    };
    let common = if unknown {
        0
    } else {
        let transactional_id = request.v3_and_below_transactional_id.to_string();
        let producer = (
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
        );
        let target = transactional_id.clone();
        let outcome = on_txn_coordinator(&ctx.state, &target, move |owner, partition| {
            ops::add_partitions(owner, partition, transactional_id, producer, partitions)
        })
        .await;
        match outcome {
            Ok(Ok(())) => 0,
            Ok(Err(code)) => downgrade(code, ctx.api_version),
            Err(err) => unavailable_code(&err),
        }
    };
    let mut response = AddPartitionsToTxnResponse::default();
    for topic in &request.v3_and_below_topics {
        let mut out = AddPartitionsToTxnTopicResult::default();
        out.name = topic.name.clone();
        for &p in &topic.partitions {
            let mut result = AddPartitionsToTxnPartitionResult::default();
            result.partition_index = p;
            result.partition_error_code = code_for(topic.name.as_str(), p).unwrap_or(common);
            out.results_by_partition.push(result);
        }
        response.results_by_topic_v3_and_below.push(out);
    }
    response
}

/// PRODUCER_FENCED for clients that know it, INVALID_PRODUCER_EPOCH for older ones.
pub fn downgrade(code: i16, api_version: i16) -> i16 {
    if code == TxnError::ProducerFenced.kafka().code() {
        TxnError::ProducerFenced.code_for(api_version, FENCED_SINCE)
    } else {
        code
    }
}
