//! CreatePartitions (API key 37), v0-v3.
//!
//! Grows a topic to `count` partitions. Partitions can only be added (a smaller or equal count
//! is INVALID_PARTITIONS, with Kafka's messages). Without assignments the controller leader
//! places the new partitions like the topic's first ones (same replication factor, live
//! brokers); explicit assignments must give one replica list per new partition, each checked
//! against the registered brokers and the topic's replication factor as the KRaft controller
//! checks them (`cluster::manual_assignment`, INVALID_REPLICA_ASSIGNMENT otherwise).
//! validate_only checks and changes nothing.
//! A topic named twice in one request is INVALID_REQUEST for each entry.

use std::collections::HashSet;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::error::BrokerError;
use crate::handlers::create_topics::MAX_PARTITIONS_PER_TOPIC;
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
    let duplicates = duplicated_names(&request);
    let mut response = CreatePartitionsResponse::default();
    for topic in &request.topics {
        let name = topic.name.as_str();
        let outcome = if duplicates.contains(name) {
            Err(BrokerError::InvalidRequest(
                "Duplicate topic in request.".to_string(),
            ))
        } else {
            grow(state, topic, request.validate_only).await
        };
        response.results.push(topic_result(name, outcome));
    }
    response
}

async fn grow(
    state: &ShardState,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), BrokerError> {
    let name = topic.name.as_str();
    let meta = state
        .topics()
        .get(name)
        .cloned()
        .ok_or(BrokerError::UnknownTopicOrPartition)?;
    let current = meta.partitions;
    let new_total = check_increase(current, topic)?;
    let Some(lists) = new_replica_lists(topic) else {
        if validate_only {
            return Ok(());
        }
        return crate::cluster::create_partitions(state, name, new_total).await;
    };
    // The topic's replication factor: its first partition's (a single node's topics: 1).
    let factor = meta.assignments.first().map_or(1, |a| a.replicas.len());
    crate::cluster::check_assignment(state, current, &lists, Some(factor))?;
    if validate_only {
        return Ok(());
    }
    crate::cluster::create_partitions_assigned(state, name, current, lists).await
}

/// The request's replica lists for the new partitions, if it gave any.
fn new_replica_lists(topic: &CreatePartitionsTopic) -> Option<Vec<Vec<i32>>> {
    let assignments = topic.assignments.as_ref()?;
    Some(
        assignments
            .iter()
            .map(|a| a.broker_ids.iter().map(|id| id.0).collect())
            .collect(),
    )
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

/// Checks growing a topic of `current` partitions as `topic` asks, and that it gives one
/// assignment per new partition if any; returns the new total. The lists themselves are
/// checked against the brokers by the caller.
pub fn check_increase(current: i32, topic: &CreatePartitionsTopic) -> Result<i32, BrokerError> {
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
                "Attempted to add {added} additional partition(s), but only {} assignment(s) \
                 were specified.",
                assignments.len()
            )));
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
        assert_eq!(check_increase(3, &topic(5, None)).unwrap(), 5);
        assert_eq!(code(check_increase(3, &topic(3, None))), invalid);
        let err = check_increase(3, &topic(2, None)).unwrap_err();
        assert_eq!(err.code_i16(), invalid);
        assert!(
            err.to_string().contains("higher than the requested 2"),
            "{err}"
        );
        assert_eq!(code(check_increase(3, &topic(-1, None))), invalid);
        let huge = MAX_PARTITIONS_PER_TOPIC + 1;
        assert_eq!(code(check_increase(3, &topic(huge, None))), invalid);
    }

    #[test]
    fn assignments_must_cover_the_new_partitions() {
        let bad = ResponseError::InvalidReplicaAssignment.code();
        let ok = topic(3, Some(vec![vec![NODE], vec![NODE]]));
        assert_eq!(check_increase(1, &ok).unwrap(), 3);
        assert_eq!(
            new_replica_lists(&ok),
            Some(vec![vec![NODE], vec![NODE]])
        );
        let too_few = topic(3, Some(vec![vec![NODE]]));
        let err = check_increase(1, &too_few).unwrap_err();
        assert_eq!(err.code_i16(), bad);
        assert!(err.to_string().contains("add 2 additional partition(s), but only 1"), "{err}");
        assert_eq!(new_replica_lists(&topic(2, None)), None);
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
