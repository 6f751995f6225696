//! TxnOffsetCommit (API key 28), v0-v4 (v4 only lets the broker answer TRANSACTION_ABORTABLE,
//! never sent here; Kafka 4.2's v5 implies the AddOffsetsToTxn of transactions v2, which
//! Ringlet does not implement, so it is not offered): offsets committed inside a transaction, sent to the
//! GROUP coordinator. They are appended as a transactional batch and stay pending until the
//! transaction's marker reaches the group's offsets partition (`coordinator::txn::offsets`).

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;

use crate::coordinator::group::{CommitInput, OffsetCommitItem};
use crate::coordinator::txn::machine::TxnError;
use crate::coordinator::txn::offsets;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::TxnOffsetCommit;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 4;
/// Versions below this get INVALID_PRODUCER_EPOCH instead of PRODUCER_FENCED.
const FENCED_SINCE: i16 = 3;

pub async fn handle(
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let topics = ctx.state.topics();
    let mut decided: Vec<Vec<Option<i16>>> = Vec::new();
    let mut items = Vec::new();
    for topic in &request.topics {
        let meta = topics.get(topic.name.as_str());
        let mut row = Vec::new();
        for p in &topic.partitions {
            if !meta.is_some_and(|m| m.has_partition(p.partition_index)) {
                row.push(Some(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            }
            row.push(None);
            items.push(OffsetCommitItem {
                topic: topic.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if ctx.api_version >= 2 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            });
        }
        decided.push(row);
    }
    let count = items.len();
    let input = CommitInput {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        generation_id: request.generation_id,
        items,
    };
    let producer = (request.producer_id.0, request.producer_epoch);
    let group_id = request.group_id.to_string();
    let codes: Vec<i16> = if count == 0 {
        Vec::new()
    } else {
        let target = group_id.clone();
        match crate::coordinator::on_coordinator(&ctx.state, &target, move |owner, partition| {
            offsets::commit(owner, partition, group_id, producer, input)
        })
        .await
        .and_then(|inner| inner)
        {
            Ok(codes) => codes,
            Err(err) => vec![crate::coordinator::unavailable_code(&err); count],
        }
    };
    let fenced = TxnError::ProducerFenced.kafka().code();
    let mut codes = codes.into_iter().map(|code| {
        if code == fenced {
            TxnError::ProducerFenced.code_for(ctx.api_version, FENCED_SINCE)
        } else {
            code
        }
    });
    let mut response = TxnOffsetCommitResponse::default();
    for (topic, row) in request.topics.iter().zip(decided) {
        let mut out = TxnOffsetCommitResponseTopic::default();
        out.name = topic.name.clone();
        for (p, code) in topic.partitions.iter().zip(row) {
            let mut partition = TxnOffsetCommitResponsePartition::default();
            partition.partition_index = p.partition_index;
            partition.error_code = code.unwrap_or_else(|| codes.next().unwrap_or(0));
            out.partitions.push(partition);
        }
        response.topics.push(out);
    }
    response
}
