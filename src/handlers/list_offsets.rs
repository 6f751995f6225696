//! ListOffsets (API key 2), v1-v11, Kafka 4.2's range (v11, KIP-1023, only adds timestamp -6).
//!
//! Resolves each partition, one hop per owning shard (`partition::ops::list_offsets`).
//! Timestamps: -2 earliest (log start), -1 latest (high watermark; for
//! read_committed the last stable offset: before the first open transaction), -3 the first
//! record carrying the largest timestamp (KAFKA-16310), -4 earliest local (= -2, no tiered
//! storage), -5 latest tiered and -6 earliest pending upload (no tiered storage: offset -1,
//! as Kafka answers without it), otherwise the first offset whose timestamp is at or after
//! the given one (offset -1 if none).
//! The leader epoch is reported from v4.

use std::rc::Rc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};

use crate::error::BrokerError;
use crate::partition::fan_out::on_owners;
use crate::partition::lookup;
use crate::partition::ops::{self, ListOffsetsItem, OffsetFound};
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::ListOffsets;
pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 11;

type Outcome = Result<OffsetFound, BrokerError>;

pub async fn handle(ctx: &RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let (state, api_version) = (&ctx.state, ctx.api_version);
    let mut items = Vec::new();
    for topic in &request.topics {
        let meta = lookup::topic(state, topic.name.as_str());
        for partition in &topic.partitions {
            let owner = meta
                .as_ref()
                .and_then(|m| m.owner_of(partition.partition_index));
            items.push(owner.map(|owner| {
                let item = ListOffsetsItem {
                    topic: topic.name.to_string(),
                    partition: partition.partition_index,
                    timestamp: partition.timestamp,
                    current_leader_epoch: partition.current_leader_epoch,
                    read_committed: request.isolation_level == 1,
                };
                (owner, item)
            }));
        }
    }
    let outcomes = on_owners(
        state,
        items,
        |owner: Rc<ShardState>, items| async move {
            let lookup = lookup::OwnerLookup(&owner);
            ops::list_offsets(&owner.partitions, &lookup, items).await
        },
        "list_offsets",
    )
    .await;
    build_response(&request, api_version, outcomes)
}

/// The response, topics and partitions in request order.
pub fn build_response(
    request: &ListOffsetsRequest,
    api_version: i16,
    outcomes: Vec<Outcome>,
) -> ListOffsetsResponse {
    let mut outcomes = outcomes.into_iter();
    let mut response = ListOffsetsResponse::default();
    for topic in &request.topics {
        let mut topic_response = ListOffsetsTopicResponse::default();
        topic_response.name = topic.name.clone();
        for partition in &topic.partitions {
            let outcome = outcomes
                .next()
                .unwrap_or_else(|| Err(BrokerError::internal("list_offsets: missing outcome")));
            let mut p = ListOffsetsPartitionResponse::default();
            p.partition_index = partition.partition_index;
            match outcome {
                Ok(found) => {
                    p.timestamp = found.timestamp;
                    p.offset = found.offset;
                    // The field exists from v4; earlier versions must leave it at -1.
                    if api_version >= 4 {
                        p.leader_epoch = found.leader_epoch;
                    }
                }
                Err(err) => p.error_code = err.code_i16(),
            }
            topic_response.partitions.push(p);
        }
        response.topics.push(topic_response);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn request() -> ListOffsetsRequest {
        let mut topic = ListOffsetsTopic::default();
        topic.name = TopicName(StrBytes::from_static_str("t"));
        for (index, timestamp) in [(0, -1), (1, -2)] {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = index;
            p.timestamp = timestamp;
            topic.partitions.push(p);
        }
        let mut request = ListOffsetsRequest::default();
        request.topics.push(topic);
        request
    }

    #[test]
    fn leader_epoch_only_from_v4_and_every_version_encodes() {
        let found = OffsetFound {
            timestamp: -1,
            offset: 42,
            leader_epoch: 0,
        };
        for version in MIN_VERSION..=MAX_VERSION {
            let outcomes = vec![Ok(found), Err(BrokerError::UnknownTopicOrPartition)];
            let response = build_response(&request(), version, outcomes);
            let p = &response.topics[0].partitions;
            assert_eq!(p[0].offset, 42);
            assert_eq!(p[0].leader_epoch, if version >= 4 { 0 } else { -1 });
            assert_eq!(p[1].partition_index, 1);
            assert_eq!(
                p[1].error_code,
                BrokerError::UnknownTopicOrPartition.code_i16()
            );
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).expect("encodes");
        }
    }
}
