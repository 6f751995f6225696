//! Metadata (API key 3), v0-v13: the brokers, the controller and the requested topics.
//!
//! * Brokers and controller: on a cluster member, the live brokers (plus any partition
//!   leader among the listed topics) and the advertised controller, the same through every
//!   broker (`metadata_cluster`); a single node lists itself as both.
//! * Topics: v0 with an empty list, or v1+ with a null list, means all topics; otherwise the
//!   requested ones in request order. v10+ may name a topic by id (UNKNOWN_TOPIC_ID if absent).
//! * An unknown topic requested by name is created (with `--num-partitions`) when the broker
//!   allows auto-creation and the request does too (`allow_auto_topic_creation`, v4+; always
//!   before v4); it is answered complete at once, since creation here is synchronous. An
//!   illegal name is INVALID_TOPIC_EXCEPTION, an unknown one otherwise
//!   UNKNOWN_TOPIC_OR_PARTITION.
//! * Partitions: on a cluster, the leader, epoch, replicas, ISR and offline replicas as this
//!   broker knows them (`metadata_cluster::partitions`); on a single node, this node leads
//!   every partition alone at epoch 0.
//! * No ACLs exist yet: authorized-operations fields carry "everything" when asked for and
//!   Kafka's "not requested" value (i32::MIN) otherwise.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::cluster::TopicMeta;
use crate::config::topic_name::is_internal_topic;
use crate::error::BrokerError;
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::Metadata;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 13;

/// "Authorized operations were not requested".
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;
/// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
pub const ALL_TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub const ALL_CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// How the request names one topic.
enum Wanted {
    Name(String),
    Id(Uuid),
}

pub async fn handle(ctx: &RequestContext, request: MetadataRequest) -> MetadataResponse {
    let state = &ctx.state;
    let version = ctx.api_version;
    let auto_create =
        state.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let include_ops = request.include_topic_authorized_operations;
    let topics = match wanted_topics(version, &request) {
        None => state
            .topics()
            .iter()
            .map(|meta| describe_topic(state, meta, include_ops))
            .collect(),
        Some(wanted) => {
            let mut topics = Vec::with_capacity(wanted.len());
            for topic in wanted {
                topics.push(resolve(state, topic, auto_create, include_ops).await);
            }
            topics
        }
    };
    let cluster_ops = if request.include_cluster_authorized_operations {
        ALL_CLUSTER_OPERATIONS
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    let (brokers, controller) = match state.cluster.as_ref() {
        Some(cluster) => (
            super::metadata_cluster::brokers(cluster, &topics),
            super::metadata_cluster::advertised_controller(cluster),
        ),
        None => (vec![this_broker(state)], state.node_id()),
    };
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(state.cluster_id.to_string())))
        .with_controller_id(BrokerId(controller))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_ops)
}

/// `None`: all topics.
fn wanted_topics(version: i16, request: &MetadataRequest) -> Option<Vec<Wanted>> {
    let requested = request.topics.as_ref()?;
    if version == 0 && requested.is_empty() {
        return None;
    }
    Some(
        requested
            .iter()
            .map(|topic| match &topic.name {
                Some(name) => Wanted::Name(name.to_string()),
                None => Wanted::Id(topic.topic_id),
            })
            .collect(),
    )
}

async fn resolve(
    state: &ShardState,
    wanted: Wanted,
    auto_create: bool,
    include_ops: bool,
) -> MetadataResponseTopic {
    let name = match wanted {
        Wanted::Id(topic_id) => {
            return match state.topics().by_id(topic_id) {
                Some(meta) => describe_topic(state, meta, include_ops),
                None => topic_error(None, topic_id, BrokerError::UnknownTopicId),
            }
        }
        Wanted::Name(name) => name,
    };
    if let Some(meta) = state.topics().get(&name) {
        return describe_topic(state, meta, include_ops);
    }
    if !auto_create {
        return topic_error(
            Some(name),
            Uuid::nil(),
            BrokerError::UnknownTopicOrPartition,
        );
    }
    let partitions = state.config.num_partitions;
    let created = crate::cluster::create_topic(
        state,
        &name,
        partitions,
        state.config.default_replication_factor,
        crate::cluster::TopicConfigs::new(),
        false,
    )
    .await;
    match created {
        // A concurrent request may have created it first; either way it exists now.
        Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => match state.topics().get(&name) {
            Some(meta) => describe_topic(state, meta, include_ops),
            None => topic_error(
                Some(name),
                Uuid::nil(),
                BrokerError::UnknownTopicOrPartition,
            ),
        },
        Err(err) => {
            if !matches!(err, BrokerError::InvalidTopic(_)) {
                tracing::warn!(topic = %name, error = %err, "auto-creating topic failed");
            }
            topic_error(Some(name), Uuid::nil(), err)
        }
    }
}

fn describe_topic(
    state: &ShardState,
    meta: &TopicMeta,
    include_ops: bool,
) -> MetadataResponseTopic {
    let node = BrokerId(state.node_id());
    let partitions = match state.cluster.as_ref() {
        Some(cluster) if !meta.assignments.is_empty() => {
            super::metadata_cluster::partitions(cluster, meta)
        }
        _ => local_partitions(meta, node),
    };
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(meta.name.clone()))))
        .with_topic_id(meta.topic_id)
        .with_is_internal(is_internal_topic(&meta.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(if include_ops {
            ALL_TOPIC_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        })
}

/// A single node's partitions: all led by this node at epoch 0.
fn local_partitions(meta: &TopicMeta, node: BrokerId) -> Vec<MetadataResponsePartition> {
    (0..meta.partitions)
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect()
}

fn topic_error(name: Option<String>, topic_id: Uuid, err: BrokerError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(err.code_i16())
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
        .with_topic_id(topic_id)
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
}

fn this_broker(state: &ShardState) -> MetadataResponseBroker {
    let advertise = &state.config.advertise;
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(state.node_id()))
        .with_host(StrBytes::from_string(advertise.host.clone()))
        .with_port(i32::from(advertise.port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;

    fn named(names: &[&str]) -> MetadataRequest {
        MetadataRequest::default().with_topics(Some(
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.to_string()))))
                })
                .collect(),
        ))
    }

    #[test]
    fn which_topics_are_wanted() {
        assert!(wanted_topics(1, &MetadataRequest::default().with_topics(None)).is_none());
        assert!(wanted_topics(0, &named(&[])).is_none(), "v0 empty = all");
        assert_eq!(
            wanted_topics(1, &named(&[])).map(|w| w.len()),
            Some(0),
            "v1 empty = none"
        );
        assert_eq!(
            wanted_topics(9, &named(&["a", "b"])).map(|w| w.len()),
            Some(2)
        );
    }

    #[test]
    fn operation_masks() {
        assert_eq!(ALL_TOPIC_OPERATIONS, 3576);
        assert_eq!(ALL_CLUSTER_OPERATIONS, 8096);
    }
}
