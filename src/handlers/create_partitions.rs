//! CreatePartitions (API key 37), v0-v3.
//!
//! Grows a topic to `count` partitions. Partitions can only be added (a smaller or equal count
//! is INVALID_PARTITIONS, with Kafka's messages); explicit assignments must give one replica
//! list per new partition, each naming only this node (anything else is
//! INVALID_REPLICA_ASSIGNMENT on a single node). validate_only checks and changes nothing.
//! A topic named twice in one request is INVALID_REQUEST for each entry.

use std::collections::HashSet;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::error::BrokerError;
use crate::handlers::create_topics::{check_replicas_on_this_node, MAX_PARTITIONS_PER_TOPIC};
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::CreatePartitions;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 3;

pub async fn handle(
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let state: &ShardState = &ctx.state;
    let node_id = state.node_id();
    let duplicates = duplicated_names(&request);
    let mut response = CreatePartitionsResponse::default();
    for topic in &request.topics {
        let name = topic.name.as_str();
        let outcome = if duplicates.contains(name) {
            Err(BrokerError::InvalidRequest(
                "Duplicate topic in request.".to_string(),
            ))
        } else {
            grow(state, topic, node_id, request.validate_only).await
        };
        response.results.push(topic_result(name, outcome));
    }
    response
}

async fn grow(
    state: &ShardState,
    topic: &CreatePartitionsTopic,
    node_id: i32,
    validate_only: bool,
) -> Result<(), BrokerError> {
    let name = topic.name.as_str();
    let current =
        crate::cluster::partition_count(state, name).ok_or(BrokerError::UnknownTopicOrPartition)?;
    let new_total = check_increase(current, topic, node_id)?;
    if validate_only {
        return Ok(());
    }
    crate::cluster::create_partitions(state, name, new_total).await
}

pub fn duplicated_names(request: &CreatePartitionsRequest) -> HashSet<&str> {
    let mut seen = HashSet::new();
    request
        .topics
        .iter()
        .map(|topic| topic.name.as_str())
        .filter(|name| !seen.insert(*name))
        .collect()
}

/// Checks growing a topic of `current` partitions as `topic` asks; returns the new total.
pub fn check_increase(
    current: i32,
    topic: &CreatePartitionsTopic,
    node_id: i32,
) -> Result<i32, BrokerError> {
    let requested = topic.count;
    if requested < current {
        return Err(BrokerError::InvalidPartitions(format!(
            "Topic currently has {current} partitions, which is higher than the requested \
             {requested}."
        )));
    }
    if requested == current {
        return Err(BrokerError::InvalidPartitions(format!(
            "Topic already has {current} partitions."
        )));
    }
    if requested > MAX_PARTITIONS_PER_TOPIC {
        return Err(BrokerError::InvalidPartitions(format!(
            "Number of partitions {requested} exceeds this broker's limit of \
             {MAX_PARTITIONS_PER_TOPIC} per topic."
        )));
    }
    if let Some(assignments) = &topic.assignments {
        let added = requested - current;
        if assignments.len() != added as usize {
            return Err(BrokerError::InvalidReplicaAssignment(format!(
                "Increasing the number of partitions by {added} but {} assignments provided.",
                assignments.len()
            )));
        }
        for (offset, assignment) in assignments.iter().enumerate() {
            let partition = current + offset as i32;
            check_replicas_on_this_node(&assignment.broker_ids, node_id, partition)?;
        }
    }
    Ok(requested)
}

pub fn topic_result(name: &str, outcome: Result<(), BrokerError>) -> CreatePartitionsTopicResult {
    let mut result = CreatePartitionsTopicResult::default();
    result.name = StrBytes::from_string(name.to_string()).into();
    match outcome {
        Ok(()) => {
            result.error_code = 0;
            result.error_message = None;
        }
        Err(err) => {
            result.error_code = err.code_i16();
            result.error_message = Some(StrBytes::from_string(err.to_string()));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment;
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::ResponseError;

    const NODE: i32 = 0;

    fn topic(count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
        let mut topic = CreatePartitionsTopic::default();
        topic.name = StrBytes::from_static_str("t").into();
        topic.count = count;
        topic.assignments = assignments.map(|lists| {
            lists
                .into_iter()
                .map(|brokers| {
                    let mut a = CreatePartitionsAssignment::default();
                    a.broker_ids = brokers.into_iter().map(BrokerId).collect();
                    a
                })
                .collect()
        });
        topic
    }

    fn code(result: Result<i32, BrokerError>) -> i16 {
        result.map(|_| 0).unwrap_or_else(|err| err.code_i16())
    }

    #[test]
    fn only_increases_are_accepted() {
        let invalid = ResponseError::InvalidPartitions.code();
        assert_eq!(check_increase(3, &topic(5, None), NODE).unwrap(), 5);
        assert_eq!(code(check_increase(3, &topic(3, None), NODE)), invalid);
        let err = check_increase(3, &topic(2, None), NODE).unwrap_err();
        assert_eq!(err.code_i16(), invalid);
        assert!(
            err.to_string().contains("higher than the requested 2"),
            "{err}"
        );
        assert_eq!(code(check_increase(3, &topic(-1, None), NODE)), invalid);
        let huge = MAX_PARTITIONS_PER_TOPIC + 1;
        assert_eq!(code(check_increase(3, &topic(huge, None), NODE)), invalid);
    }

    #[test]
    fn assignments_must_cover_new_partitions_on_this_node() {
        let bad = ResponseError::InvalidReplicaAssignment.code();
        let ok = topic(3, Some(vec![vec![NODE], vec![NODE]]));
        assert_eq!(check_increase(1, &ok, NODE).unwrap(), 3);
        let too_few = topic(3, Some(vec![vec![NODE]]));
        assert_eq!(code(check_increase(1, &too_few, NODE)), bad);
        let elsewhere = topic(2, Some(vec![vec![4]]));
        assert_eq!(code(check_increase(1, &elsewhere, NODE)), bad);
    }

    #[test]
    fn results_and_duplicates() {
        let mut request = CreatePartitionsRequest::default();
        request.topics = vec![topic(2, None), topic(3, None)];
        assert_eq!(duplicated_names(&request), HashSet::from(["t"]));
        let ok = topic_result("t", Ok(()));
        assert_eq!((ok.error_code, ok.error_message), (0, None));
        let err = topic_result("t", Err(BrokerError::UnknownTopicOrPartition));
        assert_eq!(
            err.error_code,
            ResponseError::UnknownTopicOrPartition.code()
        );
    }
}
