//! OffsetForLeaderEpoch (API key 23), v2-v4.
//!
//! For each partition: the end offset of the requested leader epoch, from the
//! log's leader-epoch cache (the current epoch ends at the log end). Consumers
//! use it to detect log truncation after a leader change (KIP-320). Only the
//! partition's leader answers (the epoch is its Raft term); any other broker
//! answers NOT_LEADER_OR_FOLLOWER, as Kafka does for a consumer's request.

use std::rc::Rc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::error::BrokerError;
use crate::partition::fan_out::on_owners;
use crate::partition::lookup;
use crate::partition::ops::{self, EpochItem};
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::OffsetForLeaderEpoch;
pub const MIN_VERSION: i16 = 2;
pub const MAX_VERSION: i16 = 4;

type Outcome = Result<(i32, i64), BrokerError>;

pub async fn handle(
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let state = &ctx.state;
    let mut items = Vec::new();
    for topic in &request.topics {
        let meta = lookup::topic(state, topic.topic.as_str());
        for partition in &topic.partitions {
            let owner = meta.as_ref().and_then(|m| m.owner_of(partition.partition));
            items.push(owner.map(|owner| {
                (
                    owner,
                    EpochItem {
                        topic: topic.topic.to_string(),
                        partition: partition.partition,
                        current_leader_epoch: partition.current_leader_epoch,
                        leader_epoch: partition.leader_epoch,
                    },
                )
            }));
        }
    }
    let outcomes = on_owners(
        state,
        items,
        |owner: Rc<ShardState>, items| async move {
            let lookup = lookup::OwnerLookup(&owner);
            ops::end_offsets_for_epochs(&owner.partitions, &lookup, items).await
        },
        "offset_for_leader_epoch",
    )
    .await;
    build_response(&request, outcomes)
}

/// The response, topics and partitions in request order.
pub fn build_response(
    request: &OffsetForLeaderEpochRequest,
    outcomes: Vec<Outcome>,
) -> OffsetForLeaderEpochResponse {
    let mut outcomes = outcomes.into_iter();
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in &request.topics {
        let mut topic_result = OffsetForLeaderTopicResult::default();
        topic_result.topic = topic.topic.clone();
        for partition in &topic.partitions {
            let mut p = EpochEndOffset::default();
            p.partition = partition.partition;
            match outcomes.next().unwrap_or_else(|| {
                Err(BrokerError::internal(
                    "offset_for_leader_epoch: missing outcome",
                ))
            }) {
                Ok((leader_epoch, end_offset)) => {
                    p.leader_epoch = leader_epoch;
                    p.end_offset = end_offset;
                }
                Err(err) => p.error_code = err.code_i16(),
            }
            topic_result.partitions.push(p);
        }
        response.topics.push(topic_result);
    }
    response
}
