//! DescribeProducers (API key 61), v0: the producers each partition remembers (Kafka
//! `kafka-transactions.sh describe-producers`): id, epoch, last sequence, last timestamp,
//! coordinator epoch and the first offset of the open transaction (-1 if none). One hop
//! per owning shard.

use std::rc::Rc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;

use crate::error::BrokerError;
use crate::partition::fan_out::on_owners;
use crate::partition::lookup;
use crate::partition::ops;
use crate::partition::producer_state::ProducerEntry;
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::DescribeProducers;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 0;

type Outcome = Result<Vec<ProducerEntry>, BrokerError>;

pub async fn handle(
    ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let state = &ctx.state;
    let mut items = Vec::new();
    for topic in &request.topics {
        let meta = lookup::topic(state, topic.name.as_str());
        for index in &topic.partition_indexes {
            let owner = meta.as_ref().and_then(|m| m.owner_of(*index));
            items.push(owner.map(|owner| (owner, (topic.name.to_string(), *index))));
        }
    }
    let outcomes: Vec<Outcome> = on_owners(
        state,
        items,
        |owner: Rc<ShardState>, items: Vec<(usize, (String, i32))>| async move {
            let lookup = lookup::OwnerLookup(&owner);
            let mut results = Vec::with_capacity(items.len());
            for (position, (topic, index)) in items {
                let result = ops::partition(&owner.partitions, &lookup, &topic, index)
                    .await
                    .map(|p| p.producers().borrow().entries().cloned().collect());
                results.push((position, result));
            }
            results
        },
        "describe_producers",
    )
    .await;
    let mut outcomes = outcomes.into_iter();
    let mut response = DescribeProducersResponse::default();
    for topic in &request.topics {
        let mut topic_response = TopicResponse::default();
        topic_response.name = topic.name.clone();
        for index in &topic.partition_indexes {
            let outcome = outcomes
                .next()
                .unwrap_or_else(|| Err(BrokerError::internal("describe_producers: no outcome")));
            topic_response
                .partitions
                .push(partition_response(*index, outcome));
        }
        response.topics.push(topic_response);
    }
    response
}

fn partition_response(index: i32, outcome: Outcome) -> PartitionResponse {
    let mut partition = PartitionResponse::default();
    partition.partition_index = index;
    match outcome {
        Ok(mut entries) => {
            entries.sort_by_key(|e| e.producer_id);
            partition.active_producers = entries.iter().map(producer_state).collect();
        }
        Err(err) => {
            partition.error_code = err.code_i16();
            partition.error_message = Some(StrBytes::from_string(err.to_string()));
        }
    }
    partition
}

fn producer_state(entry: &ProducerEntry) -> ProducerState {
    let mut state = ProducerState::default();
    state.producer_id = ProducerId(entry.producer_id);
    state.producer_epoch = i32::from(entry.epoch);
    state.last_sequence = entry.last_seq();
    state.last_timestamp = entry.last_timestamp_ms;
    state.coordinator_epoch = entry.coordinator_epoch;
    state.current_txn_start_offset = entry.txn_first_offset.unwrap_or(-1);
    state
}
