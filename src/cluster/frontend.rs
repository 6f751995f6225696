//! Topic mutations on a cluster member (the `*_frontend` of DESIGN.md): callable on any
//! shard, they hand the change to the controller leader (through shard 0, which forwards it
//! when another broker leads), and answer once the command is applied there and visible in
//! this broker's own tables. The leader places replicas on the brokers it knows to be alive,
//! unless the request gave explicit assignments, which go to the log as given.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::controller_rpc::ControllerRequest;
use super::metadata_stm::MetadataCommand;
use super::placement::assign_replicas;
use super::topic_table::{TopicConfigs, TopicTable};
use crate::config::topic_name::validate_topic_name;
use crate::error::BrokerError;
use crate::state::ShardState;

/// How long a mutation applied by the controller may take to reach this broker's tables.
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn create_topic(
    state: &ShardState,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: TopicConfigs,
    validate_only: bool,
) -> Result<Uuid, BrokerError> {
    validate_topic_name(name).map_err(BrokerError::InvalidTopic)?;
    let table = state.topics();
    if table.get(name).is_some() {
        return Err(BrokerError::TopicAlreadyExists(name.to_string()));
    }
    // Checked here for validate_only and a quick answer; the leader places for real.
    place(state, &table, partitions, replication_factor, 0)?;
    let topic_id = Uuid::new_v4();
    if validate_only {
        return Ok(topic_id);
    }
    let request = ControllerRequest::CreateTopic {
        name: name.to_string(),
        topic_id: topic_id.to_string(),
        configs,
        partitions,
        replication_factor: i32::from(replication_factor),
    };
    send(state, request).await?;
    wait_visible(state, |table| {
        table
            .get(name)
            .is_some_and(|meta| meta.topic_id == topic_id)
    })
    .await?;
    wait_leaders(state, name, 0).await;
    tracing::info!(topic = name, partitions, replication_factor, %topic_id, "created replicated topic");
    Ok(topic_id)
}

/// Creates `name` with the given replica lists (checked by the caller against this broker's
/// view; the controller's state machine checks them again against the log's).
pub async fn create_topic_assigned(
    state: &ShardState,
    name: &str,
    replicas: Vec<Vec<i32>>,
    configs: TopicConfigs,
    validate_only: bool,
) -> Result<Uuid, BrokerError> {
    validate_topic_name(name).map_err(BrokerError::InvalidTopic)?;
    if state.topics().get(name).is_some() {
        return Err(BrokerError::TopicAlreadyExists(name.to_string()));
    }
    let topic_id = Uuid::new_v4();
    if validate_only {
        return Ok(topic_id);
    }
    let partitions = replicas.len();
    let command = MetadataCommand::CreateTopic {
        name: name.to_string(),
        topic_id: topic_id.to_string(),
        configs,
        replicas,
    };
    send(state, ControllerRequest::Propose(command)).await?;
    wait_visible(state, |table| {
        table
            .get(name)
            .is_some_and(|meta| meta.topic_id == topic_id)
    })
    .await?;
    tracing::info!(topic = name, partitions, %topic_id, "created replicated topic with explicit assignments");
    Ok(topic_id)
}

pub async fn delete_topic(state: &ShardState, name: &str) -> Result<(), BrokerError> {
    let Some(existing) = state.topics().get(name).map(|meta| meta.topic_id) else {
        return Err(BrokerError::UnknownTopicOrPartition);
    };
    let command = MetadataCommand::DeleteTopic {
        name: name.to_string(),
    };
    send(state, ControllerRequest::Propose(command)).await?;
    wait_visible(state, |table| {
        table.get(name).is_none_or(|meta| meta.topic_id != existing)
    })
    .await
}

pub async fn create_partitions(
    state: &ShardState,
    name: &str,
    new_total: i32,
) -> Result<(), BrokerError> {
    if state.topics().get(name).is_none() {
        return Err(BrokerError::UnknownTopicOrPartition);
    }
    let request = ControllerRequest::CreatePartitions {
        name: name.to_string(),
        new_total,
    };
    let before = state.topics().get(name).map_or(0, |meta| meta.partitions);
    send(state, request).await?;
    wait_visible(state, |table| {
        table
            .get(name)
            .is_some_and(|meta| meta.partitions >= new_total)
    })
    .await?;
    wait_leaders(state, name, before).await;
    Ok(())
}

/// Grows `name` to `new_total` partitions placed on `new_replicas` (checked by the caller).
pub async fn create_partitions_assigned(
    state: &ShardState,
    name: &str,
    new_total: i32,
    new_replicas: Vec<Vec<i32>>,
) -> Result<(), BrokerError> {
    if state.topics().get(name).is_none() {
        return Err(BrokerError::UnknownTopicOrPartition);
    }
    let command = MetadataCommand::CreatePartitions {
        name: name.to_string(),
        new_replicas,
    };
    send(state, ControllerRequest::Propose(command)).await?;
    wait_visible(state, |table| {
        table
            .get(name)
            .is_some_and(|meta| meta.partitions >= new_total)
    })
    .await
}

pub async fn alter_configs(
    state: &ShardState,
    name: &str,
    configs: TopicConfigs,
) -> Result<(), BrokerError> {
    if state.topics().get(name).is_none() {
        return Err(BrokerError::UnknownTopicOrPartition);
    }
    let wanted = configs.clone();
    let command = MetadataCommand::AlterConfigs {
        name: name.to_string(),
        configs,
    };
    send(state, ControllerRequest::Propose(command)).await?;
    wait_visible(state, |table| {
        table.get(name).is_none_or(|meta| meta.configs == wanted)
    })
    .await
}

/// Replica lists for `count` new partitions over the live brokers.
fn place(
    state: &ShardState,
    table: &TopicTable,
    count: i32,
    replication_factor: i16,
    first_partition: i32,
) -> Result<Vec<Vec<i32>>, BrokerError> {
    let cluster = state
        .cluster
        .as_ref()
        .ok_or_else(|| BrokerError::internal("replica placement on a single node"))?;
    let brokers = cluster.brokers();
    let live: Vec<(i32, Option<String>)> = cluster
        .alive_brokers()
        .into_iter()
        .map(|id| (id, brokers.get(id).and_then(|b| b.rack.clone())))
        .collect();
    let mut leader_load: BTreeMap<i32, usize> = BTreeMap::new();
    for meta in table.iter() {
        for assignment in &meta.assignments {
            if let Some(preferred) = assignment.replicas.first() {
                *leader_load.entry(*preferred).or_default() += 1;
            }
        }
    }
    assign_replicas(
        count,
        i32::from(replication_factor),
        &live,
        &leader_load,
        first_partition,
    )
}

/// Hands `request` to shard 0, which reaches the controller leader.
async fn send(state: &ShardState, request: ControllerRequest) -> Result<(), BrokerError> {
    state
        .bus
        .invoke_on(0, move |hub: Rc<ShardState>| async move {
            super::node::request(&hub, request).await
        })
        .await?
}

/// Waits until this broker knows a leader for every partition of `name` from
/// `first_partition` on (their preferred replicas campaign as soon as they start), so a
/// client's first Metadata after CreateTopics finds them led, as in Kafka. Bounded: past
/// [`VISIBLE_TIMEOUT`] the topic exists all the same and clients retry LEADER_NOT_AVAILABLE.
async fn wait_leaders(state: &ShardState, name: &str, first_partition: i32) {
    let Some(cluster) = state.cluster.as_ref() else {
        return;
    };
    let deadline = Instant::now() + VISIBLE_TIMEOUT;
    loop {
        let leaders = cluster.leaders();
        let led = state.topics().get(name).is_none_or(|meta| {
            meta.assignments
                .iter()
                .skip(usize::try_from(first_partition).unwrap_or(0))
                .all(|a| leaders.get(a.group).is_some_and(|r| r.leader >= 0))
        });
        if led {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                topic = name,
                "created, but not every partition has a leader yet"
            );
            return;
        }
        ringlet_shard::task::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until this shard's table satisfies `done` (the controller's apply travels to this
/// broker through its own controller replica or its heartbeats).
async fn wait_visible(
    state: &ShardState,
    done: impl Fn(&TopicTable) -> bool,
) -> Result<(), BrokerError> {
    let deadline = Instant::now() + VISIBLE_TIMEOUT;
    while !done(&state.topics()) {
        if Instant::now() >= deadline {
            return Err(BrokerError::RequestTimedOut(
                "the change was applied by the controller but has not reached this broker yet"
                    .into(),
            ));
        }
        ringlet_shard::task::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
