//! OffsetFetch (API key 9), v1-v9 (Kafka 4.2's v10 names topics by id only, KIP-848, and
//! kafka-protocol 0.18 decodes up to v9). v8+ asks for several groups at once; each group is
//! answered by its own coordinator shard. A partition without a committed offset answers
//! offset -1 with no error, as Kafka does. With `require_stable` (v7+, KIP-447: librdkafka sets
//! it for read_committed consumers) a partition whose group has a transactional offset awaiting
//! its marker answers UNSTABLE_OFFSET_COMMIT, and the client retries until the marker lands.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::coordinator::ops::{self, FetchedOffsets, FetchedPartition};
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::OffsetFetch;
pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 9;

type Wanted = Option<Vec<(String, Vec<i32>)>>;

pub async fn handle(ctx: &RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if ctx.api_version >= 8 {
        for group in &request.groups {
            let wanted: Wanted = group.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let group_id = group.group_id.to_string();
            let (code, fetched) = fetch(ctx, group_id, wanted, request.require_stable).await;
            let mut out = OffsetFetchResponseGroup::default();
            out.group_id = group.group_id.clone();
            out.error_code = code;
            out.topics = fetched.into_iter().map(group_topic).collect();
            response.groups.push(out);
        }
        return response;
    }
    let wanted: Wanted = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let group_id = request.group_id.to_string();
    let (code, fetched) = fetch(ctx, group_id, wanted.clone(), request.require_stable).await;
    if code != 0 && ctx.api_version < 2 {
        // v1 has no top-level error: report it on every requested partition.
        response.topics = wanted
            .unwrap_or_default()
            .into_iter()
            .map(|(topic, partitions)| {
                let mut out = OffsetFetchResponseTopic::default();
                out.name = TopicName(StrBytes::from_string(topic));
                out.partitions = partitions
                    .into_iter()
                    .map(|p| {
                        let nothing = FetchedPartition {
                            partition: p,
                            committed: None,
                            unstable: false,
                        };
                        let mut part = single_partition(nothing);
                        part.error_code = code;
                        part
                    })
                    .collect();
                out
            })
            .collect();
        return response;
    }
    response.error_code = code;
    response.topics = fetched
        .into_iter()
        .map(|(topic, partitions)| {
            let mut out = OffsetFetchResponseTopic::default();
            out.name = TopicName(StrBytes::from_string(topic));
            out.partitions = partitions.into_iter().map(single_partition).collect();
            out
        })
        .collect();
    response
}

async fn fetch(
    ctx: &RequestContext,
    group_id: String,
    wanted: Wanted,
    require_stable: bool,
) -> (i16, FetchedOffsets) {
    let target = group_id.clone();
    match crate::coordinator::on_coordinator(&ctx.state, &target, move |owner, partition| {
        ops::fetch_offsets(owner, partition, group_id, wanted, require_stable)
    })
    .await
    .and_then(|inner| inner)
    {
        Ok(fetched) => (0, fetched),
        Err(err) => (crate::coordinator::unavailable_code(&err), Vec::new()),
    }
}

fn single_partition(fetched: FetchedPartition) -> OffsetFetchResponsePartition {
    let mut out = OffsetFetchResponsePartition::default();
    out.partition_index = fetched.partition;
    match fetched.committed {
        Some(c) if !fetched.unstable => {
            out.committed_offset = c.offset;
            out.committed_leader_epoch = c.leader_epoch;
            out.metadata = Some(StrBytes::from_string(c.metadata));
        }
        _ => {
            out.committed_offset = -1;
            out.committed_leader_epoch = -1;
            out.metadata = Some(StrBytes::default());
        }
    }
    if fetched.unstable {
        out.error_code = ResponseError::UnstableOffsetCommit.code();
    }
    out
}

fn group_topic((topic, partitions): (String, Vec<FetchedPartition>)) -> OffsetFetchResponseTopics {
    let mut out = OffsetFetchResponseTopics::default();
    out.name = TopicName(StrBytes::from_string(topic));
    out.partitions = partitions
        .into_iter()
        .map(|fetched| {
            let single = single_partition(fetched);
            let mut part = OffsetFetchResponsePartitions::default();
            part.partition_index = single.partition_index;
            part.committed_offset = single.committed_offset;
            part.committed_leader_epoch = single.committed_leader_epoch;
            part.metadata = single.metadata;
            part.error_code = single.error_code;
            part
        })
        .collect();
    out
}
