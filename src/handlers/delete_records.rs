//! DeleteRecords (API key 21), v0-v2.
//!
//! Advances each partition's log start offset to the requested offset (-1 means
//! the high watermark); the log persists the new start, so deleted records stay
//! deleted across restarts. Offsets beyond the high watermark are
//! OFFSET_OUT_OF_RANGE. Each partition reports its new low watermark. On a cluster the
//! partition leader moves every replica's log start through Raft (`replicas::log_start`).

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};

use crate::error::BrokerError;
use crate::partition::fan_out::on_owners;
use crate::partition::lookup;
use crate::partition::ops::{self, DeleteRecordsItem};
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::DeleteRecords;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 2;

type Outcome = Result<i64, BrokerError>;

pub async fn handle(ctx: &RequestContext, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let state = &ctx.state;
    let timeout = crate::partition::replicas::commit_timeout(request.timeout_ms);
    let mut items = Vec::new();
    for topic in &request.topics {
        let meta = lookup::topic(state, topic.name.as_str());
        for partition in &topic.partitions {
            let owner = meta
                .as_ref()
                .and_then(|m| m.owner_of(partition.partition_index));
            items.push(owner.map(|owner| {
                (
                    owner,
                    DeleteRecordsItem {
                        topic: topic.name.to_string(),
                        partition: partition.partition_index,
                        offset: partition.offset,
                    },
                )
            }));
        }
    }
    let outcomes = on_owners(
        state,
        items,
        move |owner: Rc<ShardState>, items| async move {
            let lookup = lookup::OwnerLookup(&owner);
            let replicas = owner
                .cluster
                .as_ref()
                .map(|cluster| (&*cluster.replicas, timeout));
            ops::delete_records(&owner.partitions, &lookup, items, replicas).await
        },
        "delete_records",
    )
    .await;
    build_response(&request, outcomes)
}

/// The response, topics and partitions in request order.
pub fn build_response(
    request: &DeleteRecordsRequest,
    outcomes: Vec<Outcome>,
) -> DeleteRecordsResponse {
    let mut outcomes = outcomes.into_iter();
    let mut response = DeleteRecordsResponse::default();
    for topic in &request.topics {
        let mut topic_result = DeleteRecordsTopicResult::default();
        topic_result.name = topic.name.clone();
        for partition in &topic.partitions {
            let mut p = DeleteRecordsPartitionResult::default();
            p.partition_index = partition.partition_index;
            match outcomes
                .next()
                .unwrap_or_else(|| Err(BrokerError::internal("delete_records: missing outcome")))
            {
                Ok(low_watermark) => p.low_watermark = low_watermark,
                Err(err) => {
                    p.low_watermark = -1;
                    p.error_code = err.code_i16();
                }
            }
            topic_result.partitions.push(p);
        }
        response.topics.push(topic_result);
    }
    response
}
