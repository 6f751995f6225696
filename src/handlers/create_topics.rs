//! CreateTopics (API key 19), v2-v7.
//!
//! Each topic of the request is checked on its own (a bad one does not fail the others): a
//! legal name that is not given twice in the request and does not collide with an existing
//! topic, a partition count (-1 = the broker's `num.partitions`) and replication factor
//! (-1 = `default.replication.factor`; on a cluster the controller leader places the replicas
//! on live brokers and refuses a factor above their number, a single node takes only 1), or
//! instead explicit assignments (partitions 0..n, each list checked against the registered
//! brokers as the KRaft controller checks it, `cluster::manual_assignment`), and configs the
//! topic config model accepts. Then the controller (or a single node's topic table) creates it
//! (or, with validate_only, checks it and creates nothing).
//! v5+ answers with the partition count, replication factor and every config of the new topic;
//! v7 with its topic id.
//!
//! v0/v1 are not offered: the protocol crate (kafka-protocol 0.18) starts CreateTopics at v2,
//! and every client in use negotiates v2 or later.

use std::collections::HashSet;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::config::config_describe::describe_topic;
use crate::config::topic_config::{validate_overrides, BrokerTopicDefaults, ConfigOverrides};
use crate::config::topic_defaults::broker_topic_defaults;
use crate::config::topic_name::{colliding_topic, validate_topic_name};
use crate::error::BrokerError;
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::CreateTopics;
pub const MIN_VERSION: i16 = 2;
pub const MAX_VERSION: i16 = 7;

/// Upper bound on partitions per topic on one node: each partition is a directory and open
/// files, so an absurd count is refused up front instead of exhausting file descriptors.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// A topic of the request that passed every check that needs no topic table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPlan {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub overrides: ConfigOverrides,
    /// Explicit replica lists, one per partition in partition order.
    pub assignments: Option<Vec<Vec<i32>>>,
}

pub async fn handle(ctx: &RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let state: &ShardState = &ctx.state;
    let defaults = broker_topic_defaults(state);
    let duplicates = duplicated_names(&request);
    let mut response = CreateTopicsResponse::default();
    for topic in &request.topics {
        let name = topic.name.as_str();
        let outcome = if duplicates.contains(name) {
            Err(BrokerError::InvalidRequest(format!(
                "Create topics request contains multiple entries for topic {name}"
            )))
        } else {
            create_one(state, topic, &defaults, request.validate_only).await
        };
        response.topics.push(match outcome {
            Ok((plan, topic_id)) => created_result(&plan, topic_id, &defaults),
            Err(err) => refused_result(name, &err),
        });
    }
    response
}

async fn create_one(
    state: &ShardState,
    topic: &CreatableTopic,
    defaults: &BrokerTopicDefaults,
    validate_only: bool,
) -> Result<(TopicPlan, Uuid), BrokerError> {
    let plan = plan_topic(topic, defaults)?;
    let existing = crate::cluster::topic_names(state);
    if let Some(other) = colliding_topic(&plan.name, existing.iter().map(String::as_str)) {
        return Err(BrokerError::InvalidTopic(format!(
            "Topic '{}' collides with existing topic: {other}",
            plan.name
        )));
    }
    let topic_id = match &plan.assignments {
        Some(replicas) => {
            crate::cluster::create_topic_assigned(
                state,
                &plan.name,
                replicas.clone(),
                plan.overrides.clone(),
                validate_only,
            )
            .await?
        }
        None => {
            crate::cluster::create_topic(
                state,
                &plan.name,
                plan.num_partitions,
                plan.replication_factor,
                plan.overrides.clone(),
                validate_only,
            )
            .await?
        }
    };
    Ok((plan, topic_id))
}

/// Names given more than once: Kafka refuses every entry of such a name with INVALID_REQUEST.
pub fn duplicated_names(request: &CreateTopicsRequest) -> HashSet<&str> {
    let mut seen = HashSet::new();
    request
        .topics
        .iter()
        .map(|topic| topic.name.as_str())
        .filter(|name| !seen.insert(*name))
        .collect()
}

/// Every check of one topic that needs no topic table (explicit assignments are checked
/// against the brokers when the topic is created).
pub fn plan_topic(
    topic: &CreatableTopic,
    defaults: &BrokerTopicDefaults,
) -> Result<TopicPlan, BrokerError> {
    let name = topic.name.as_str();
    validate_topic_name(name).map_err(BrokerError::InvalidTopic)?;
    let (num_partitions, replication_factor, assignments) = if topic.assignments.is_empty() {
        let partitions = partition_count(topic.num_partitions, defaults)?;
        (
            partitions,
            replication_factor(topic.replication_factor, defaults)?,
            None,
        )
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(BrokerError::InvalidRequest(
                "Both numPartitions or replicationFactor and replicasAssignments were set. \
                 Both cannot be used at the same time."
                    .to_string(),
            ));
        }
        let lists = lists_from_assignments(topic)?;
        let factor = lists.first().map_or(0, Vec::len);
        let factor = i16::try_from(factor).map_err(|_| {
            BrokerError::InvalidReplicaAssignment(format!("{factor} replicas are too many"))
        })?;
        (lists.len() as i32, factor, Some(lists))
    };
    let configs = topic.configs.iter().map(|config| {
        (
            config.name.as_str(),
            config.value.as_ref().map(|v| v.as_str()),
        )
    });
    let overrides = validate_overrides(configs)?;
    Ok(TopicPlan {
        name: name.to_string(),
        num_partitions,
        replication_factor,
        overrides,
        assignments,
    })
}

fn partition_count(requested: i32, defaults: &BrokerTopicDefaults) -> Result<i32, BrokerError> {
    let count = if requested == -1 {
        defaults.num_partitions
    } else {
        requested
    };
    if count <= 0 {
        return Err(BrokerError::InvalidPartitions(
            "Number of partitions was set to an invalid non-positive value.".to_string(),
        ));
    }
    if count > MAX_PARTITIONS_PER_TOPIC {
        return Err(BrokerError::InvalidPartitions(format!(
            "Number of partitions {count} exceeds this broker's limit of \
             {MAX_PARTITIONS_PER_TOPIC} per topic."
        )));
    }
    Ok(count)
}

fn replication_factor(requested: i16, defaults: &BrokerTopicDefaults) -> Result<i16, BrokerError> {
    let factor = if requested == -1 {
        defaults.default_replication_factor
    } else {
        requested
    };
    if factor <= 0 {
        return Err(BrokerError::InvalidReplicationFactor(
            "Replication factor must be larger than 0, or -1 to use the default value.".to_string(),
        ));
    }
    if factor > 1 && !defaults.clustered {
        return Err(BrokerError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {factor} time(s): The target replication factor \
             of {factor} cannot be reached because only 1 broker(s) are registered."
        )));
    }
    Ok(factor)
}

/// Explicit assignments: partitions 0..n in any order, each named once; the replica lists in
/// partition order.
fn lists_from_assignments(topic: &CreatableTopic) -> Result<Vec<Vec<i32>>, BrokerError> {
    let count = topic.assignments.len();
    if count > MAX_PARTITIONS_PER_TOPIC as usize {
        return Err(BrokerError::InvalidPartitions(format!(
            "{count} partitions exceed this broker's limit of {MAX_PARTITIONS_PER_TOPIC} per topic."
        )));
    }
    let mut lists: Vec<Option<Vec<i32>>> = vec![None; count];
    for assignment in &topic.assignments {
        let index = assignment.partition_index;
        let slot = usize::try_from(index).ok().and_then(|i| lists.get_mut(i));
        match slot {
            Some(slot) if slot.is_none() => {
                *slot = Some(assignment.broker_ids.iter().map(|id| id.0).collect())
            }
            _ => {
                return Err(BrokerError::InvalidReplicaAssignment(format!(
                    "Partitions should be a consecutive 0-based integer sequence; \
                     got partition {index} among {count} assignments"
                )))
            }
        }
    }
    // Every slot is filled: `count` distinct indexes below `count`.
    Ok(lists.into_iter().flatten().collect())
}

/// The result of a created (or, with validate_only, validated) topic.
pub fn created_result(
    plan: &TopicPlan,
    topic_id: Uuid,
    defaults: &BrokerTopicDefaults,
) -> CreatableTopicResult {
    let configs = describe_topic(&plan.overrides, defaults, None)
        .into_iter()
        .map(|config| {
            let mut entry = CreatableTopicConfigs::default();
            entry.name = StrBytes::from_string(config.name);
            entry.value = Some(StrBytes::from_string(config.value));
            entry.read_only = config.read_only;
            entry.config_source = config.source.code();
            entry.is_sensitive = config.is_sensitive;
            entry
        })
        .collect();
    let mut result = CreatableTopicResult::default();
    result.name = StrBytes::from_string(plan.name.clone()).into();
    result.topic_id = topic_id;
    result.error_code = 0;
    result.error_message = None;
    result.num_partitions = plan.num_partitions;
    result.replication_factor = plan.replication_factor;
    result.configs = Some(configs);
    result
}

/// The result of a refused topic: its error, -1 counts and no configs, as Kafka answers.
pub fn refused_result(name: &str, err: &BrokerError) -> CreatableTopicResult {
    let mut result = CreatableTopicResult::default();
    result.name = StrBytes::from_string(name.to_string()).into();
    result.error_code = err.code_i16();
    result.error_message = Some(StrBytes::from_string(err.to_string()));
    result.num_partitions = -1;
    result.replication_factor = -1;
    result.configs = Some(Vec::new());
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopicConfig,
    };
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::ResponseError;

    fn topic(name: &str, partitions: i32, factor: i16) -> CreatableTopic {
        let mut topic = CreatableTopic::default();
        topic.name = StrBytes::from_string(name.to_string()).into();
        topic.num_partitions = partitions;
        topic.replication_factor = factor;
        topic
    }

    fn with_config(mut topic: CreatableTopic, name: &str, value: Option<&str>) -> CreatableTopic {
        let mut config = CreatableTopicConfig::default();
        config.name = StrBytes::from_string(name.to_string());
        config.value = value.map(|v| StrBytes::from_string(v.to_string()));
        topic.configs.push(config);
        topic
    }

    fn assigned(mut topic: CreatableTopic, assignments: &[(i32, &[i32])]) -> CreatableTopic {
        for (partition, brokers) in assignments {
            let mut a = CreatableReplicaAssignment::default();
            a.partition_index = *partition;
            a.broker_ids = brokers.iter().map(|b| BrokerId(*b)).collect();
            topic.assignments.push(a);
        }
        topic
    }

    fn code_of(result: Result<TopicPlan, BrokerError>) -> i16 {
        result.map(|_| 0).unwrap_or_else(|err| err.code_i16())
    }

    const NODE: i32 = 1;

    #[test]
    fn defaults_fill_minus_one() {
        let defaults = BrokerTopicDefaults {
            num_partitions: 3,
            ..Default::default()
        };
        let plan = plan_topic(&topic("orders", -1, -1), &defaults).unwrap();
        assert_eq!((plan.num_partitions, plan.replication_factor), (3, 1));
        assert!(plan.overrides.is_empty());
    }

    #[test]
    fn partitions_and_replication_are_checked() {
        let defaults = BrokerTopicDefaults::default();
        let invalid_partitions = ResponseError::InvalidPartitions.code();
        let invalid_factor = ResponseError::InvalidReplicationFactor.code();
        assert_eq!(
            code_of(plan_topic(&topic("t", 0, 1), &defaults)),
            invalid_partitions
        );
        assert_eq!(
            code_of(plan_topic(&topic("t", -5, 1), &defaults)),
            invalid_partitions
        );
        let huge = MAX_PARTITIONS_PER_TOPIC + 1;
        assert_eq!(
            code_of(plan_topic(&topic("t", huge, 1), &defaults)),
            invalid_partitions
        );
        assert_eq!(
            code_of(plan_topic(&topic("t", 1, 3), &defaults)),
            invalid_factor
        );
        assert_eq!(
            code_of(plan_topic(&topic("t", 1, 0), &defaults)),
            invalid_factor
        );
        assert_eq!(code_of(plan_topic(&topic("t", 4, 1), &defaults)), 0);
    }

    #[test]
    fn bad_names_and_configs_are_refused() {
        let defaults = BrokerTopicDefaults::default();
        let bad_name = plan_topic(&topic("a/b", 1, 1), &defaults);
        assert_eq!(
            code_of(bad_name),
            ResponseError::InvalidTopicException.code()
        );
        let unknown = with_config(topic("t", 1, 1), "retention.hours", Some("1"));
        let err = plan_topic(&unknown, &defaults).unwrap_err();
        assert_eq!(err.code_i16(), ResponseError::InvalidConfig.code());
        assert!(err.to_string().contains("retention.hours"), "{err}");
        let bad_value = with_config(topic("t", 1, 1), "retention.ms", Some("soon"));
        assert_eq!(
            code_of(plan_topic(&bad_value, &defaults)),
            ResponseError::InvalidConfig.code()
        );
        let null = with_config(topic("t", 1, 1), "retention.ms", None);
        assert_eq!(
            code_of(plan_topic(&null, &defaults)),
            ResponseError::InvalidConfig.code()
        );
        let good = with_config(topic("t", 1, 1), "cleanup.policy", Some("compact"));
        assert_eq!(
            plan_topic(&good, &defaults).unwrap().overrides["cleanup.policy"],
            "compact"
        );
    }

    #[test]
    fn assignments_give_partitions_and_factor() {
        let defaults = BrokerTopicDefaults::default();
        let ok = assigned(topic("t", -1, -1), &[(1, &[2, 3]), (0, &[NODE, 2])]);
        let plan = plan_topic(&ok, &defaults).unwrap();
        assert_eq!((plan.num_partitions, plan.replication_factor), (2, 2));
        assert_eq!(plan.assignments, Some(vec![vec![NODE, 2], vec![2, 3]]));
        let bad_replica = ResponseError::InvalidReplicaAssignment.code();
        let gap = assigned(topic("t", -1, -1), &[(0, &[NODE]), (2, &[NODE])]);
        assert_eq!(code_of(plan_topic(&gap, &defaults)), bad_replica);
        let twice = assigned(topic("t", -1, -1), &[(0, &[NODE]), (0, &[NODE])]);
        assert_eq!(code_of(plan_topic(&twice, &defaults)), bad_replica);
        let negative = assigned(topic("t", -1, -1), &[(-1, &[NODE])]);
        assert_eq!(code_of(plan_topic(&negative, &defaults)), bad_replica);
        let both = assigned(topic("t", 1, -1), &[(0, &[NODE])]);
        assert_eq!(
            code_of(plan_topic(&both, &defaults)),
            ResponseError::InvalidRequest.code()
        );
    }

    #[test]
    fn duplicate_names_are_found() {
        let mut request = CreateTopicsRequest::default();
        request.topics = vec![topic("a", 1, 1), topic("b", 1, 1), topic("a", 2, 1)];
        assert_eq!(duplicated_names(&request), HashSet::from(["a"]));
    }

    #[test]
    fn results_carry_counts_configs_and_errors() {
        let defaults = BrokerTopicDefaults::default();
        let plan = plan_topic(
            &with_config(topic("t", 2, 1), "retention.ms", Some("1000")),
            &defaults,
        )
        .unwrap();
        let id = Uuid::from_u128(42);
        let result = created_result(&plan, id, &defaults);
        assert_eq!((result.error_code, result.error_message.clone()), (0, None));
        assert_eq!(
            (
                result.num_partitions,
                result.replication_factor,
                result.topic_id
            ),
            (2, 1, id)
        );
        let configs = result.configs.unwrap();
        let retention = configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .unwrap();
        assert_eq!(retention.value.as_ref().map(|v| v.as_str()), Some("1000"));
        assert_eq!(retention.config_source, 1);
        let refused = refused_result("t", &BrokerError::InvalidPartitions("no".into()));
        assert_eq!(refused.error_code, ResponseError::InvalidPartitions.code());
        assert_eq!(
            (refused.num_partitions, refused.replication_factor),
            (-1, -1)
        );
    }
}
