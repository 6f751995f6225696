//! OffsetCommit (API key 8), v2-v9. Offsets are appended to the group's `__consumer_offsets`
//! partition and synced before the response; only then does OffsetFetch see them.
//! Kafka 4.2's v10 names topics by id only (KIP-848); kafka-protocol 0.18 decodes up to v9,
//! so v10 is not offered.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use crate::coordinator::group::{CommitInput, OffsetCommitItem};
use crate::coordinator::ops;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::OffsetCommit;
pub const MIN_VERSION: i16 = 2;
pub const MAX_VERSION: i16 = 9;

pub async fn handle(ctx: &RequestContext, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_id = request.group_id.to_string();
    let topics = ctx.state.topics();
    // Per (topic index, partition index): Some(code) decided here, None = sent to the group.
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
                leader_epoch: if ctx.api_version >= 6 {
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
    let input = CommitInput {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        generation_id: request.generation_id_or_member_epoch,
        items,
    };
    let count = input.items.len();
    let codes: Vec<i16> = if count == 0 {
        Vec::new()
    } else {
        let target = group_id.clone();
        match crate::coordinator::on_coordinator(&ctx.state, &target, move |owner, partition| {
            ops::commit(owner, partition, group_id, input)
        })
        .await
        .and_then(|inner| inner)
        {
            Ok(codes) => codes,
            Err(err) => vec![crate::coordinator::unavailable_code(&err); count],
        }
    };
    let mut codes = codes.into_iter();
    let mut response = OffsetCommitResponse::default();
    for (topic, row) in request.topics.iter().zip(decided) {
        let mut out = OffsetCommitResponseTopic::default();
        out.name = topic.name.clone();
        for (p, code) in topic.partitions.iter().zip(row) {
            let mut partition = OffsetCommitResponsePartition::default();
            partition.partition_index = p.partition_index;
            partition.error_code = code.unwrap_or_else(|| codes.next().unwrap_or(0));
            out.partitions.push(partition);
        }
        response.topics.push(out);
    }
    response
}
