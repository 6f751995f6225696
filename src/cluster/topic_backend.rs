//! Topic mutations. Callable on any shard. On a cluster member each one goes to the
//! controller through [`super::frontend`]; the rest of this page is the single node.
//!
//! On a single node each one hops to shard 0, which checks it against
//! the current table, persists the new table and installs it locally with no `.await` in
//! between (so two concurrent creates of one name cannot both pass the check), then
//! broadcasts the snapshot to every shard and only then answers. Shards ignore snapshots
//! older than the one they hold, so out-of-order broadcasts cannot roll a table back.
//!
//! Deleting a topic also deletes its partitions' logs on their owning shards; altering its
//! configs applies the new log settings to the open partitions.

use std::rc::Rc;
use std::sync::Arc;

use uuid::Uuid;

use crate::cluster::topic_table::{TopicConfigs, TopicTable};
use crate::config::topic_name::validate_topic_name;
use crate::error::BrokerError;
use crate::partition::ops::PartitionLookup;
use crate::state::ShardState;

/// The shard that owns the topic table while there is no controller.
pub const METADATA_SHARD: usize = 0;

/// Creates `name` with `partitions` partitions and config `configs` (already validated by the
/// caller). With `validate_only` checks everything and creates nothing. Returns the topic id.
pub async fn create_topic(
    state: &ShardState,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: TopicConfigs,
    validate_only: bool,
) -> Result<Uuid, BrokerError> {
    if state.is_clustered() {
        return super::frontend::create_topic(
            state,
            name,
            partitions,
            replication_factor,
            configs,
            validate_only,
        )
        .await;
    }
    validate_topic_name(name).map_err(BrokerError::InvalidTopic)?;
    let topic_id = fresh_topic_id(&state.topics());
    if validate_only {
        state
            .topics()
            .with_created(name, partitions, configs, topic_id)?;
        return Ok(topic_id);
    }
    let name = name.to_string();
    state
        .bus
        .invoke_on(METADATA_SHARD, move |owner: Rc<ShardState>| async move {
            let next = owner
                .topics()
                .with_created(&name, partitions, configs, topic_id)?;
            commit(&owner, next).await?;
            tracing::info!(topic = %name, partitions, %topic_id, "created topic");
            Ok(topic_id)
        })
        .await?
}

/// The brokers an explicit assignment may name: the registered and the live ones (a single
/// node: itself).
fn assignable_brokers(state: &ShardState) -> (Vec<i32>, Vec<i32>) {
    match state.cluster.as_ref() {
        Some(cluster) => (cluster.brokers().ids(), cluster.alive_brokers()),
        None => (vec![state.node_id()], vec![state.node_id()]),
    }
}

/// Checks explicit replica lists for partitions `first_partition..` against the registered
/// and live brokers (`manual_assignment`); `replication_factor` is the topic's, if it exists.
pub fn check_assignment(
    state: &ShardState,
    first_partition: i32,
    lists: &[Vec<i32>],
    replication_factor: Option<usize>,
) -> Result<(), BrokerError> {
    let (registered, alive) = assignable_brokers(state);
    let brokers = super::manual_assignment::Brokers {
        registered: &registered,
        alive: &alive,
    };
    super::manual_assignment::check_all(&brokers, first_partition, lists, replication_factor)
}

/// Creates `name` with one partition per list of `replicas` (CreateTopics' explicit
/// assignments), each list as given (its first broker the preferred leader).
pub async fn create_topic_assigned(
    state: &ShardState,
    name: &str,
    replicas: Vec<Vec<i32>>,
    configs: TopicConfigs,
    validate_only: bool,
) -> Result<Uuid, BrokerError> {
    check_assignment(state, 0, &replicas, None)?;
    if state.is_clustered() {
        return super::frontend::create_topic_assigned(
            state,
            name,
            replicas,
            configs,
            validate_only,
        )
        .await;
    }
    // A single node: the check left one list [this node] per partition.
    let partitions = i32::try_from(replicas.len())
        .map_err(|_| BrokerError::InvalidPartitions("too many partitions".into()))?;
    create_topic(state, name, partitions, 1, configs, validate_only).await
}

/// Grows `name` by one partition per list of `new_replicas` (already checked with
/// [`check_assignment`]).
pub async fn create_partitions_assigned(
    state: &ShardState,
    name: &str,
    current: i32,
    new_replicas: Vec<Vec<i32>>,
) -> Result<(), BrokerError> {
    let added = i32::try_from(new_replicas.len())
        .map_err(|_| BrokerError::InvalidPartitions("too many partitions".into()))?;
    let new_total = current.saturating_add(added);
    if state.is_clustered() {
        return super::frontend::create_partitions_assigned(state, name, new_total, new_replicas)
            .await;
    }
    create_partitions(state, name, new_total).await
}

/// Deletes `name` and the logs of its partitions.
pub async fn delete_topic(state: &ShardState, name: &str) -> Result<(), BrokerError> {
    if state.is_clustered() {
        return super::frontend::delete_topic(state, name).await;
    }
    let name = name.to_string();
    state
        .bus
        .invoke_on(METADATA_SHARD, move |owner: Rc<ShardState>| async move {
            let (next, removed) = owner.topics().with_deleted(&name)?;
            commit(&owner, next).await?;
            tracing::info!(topic = %name, topic_id = %removed.topic_id, "deleted topic");
            let results = owner
                .bus
                .invoke_on_all(move |shard: Rc<ShardState>| async move {
                    delete_local_logs(&shard, &name).await
                })
                .await?;
            results.into_iter().collect::<Result<(), BrokerError>>()
        })
        .await?
}

/// Grows `name` to `new_total` partitions.
pub async fn create_partitions(
    state: &ShardState,
    name: &str,
    new_total: i32,
) -> Result<(), BrokerError> {
    if state.is_clustered() {
        return super::frontend::create_partitions(state, name, new_total).await;
    }
    let name = name.to_string();
    state
        .bus
        .invoke_on(METADATA_SHARD, move |owner: Rc<ShardState>| async move {
            let next = owner.topics().with_partitions(&name, new_total)?;
            commit(&owner, next).await?;
            tracing::info!(topic = %name, partitions = new_total, "added partitions");
            Ok(())
        })
        .await?
}

/// Replaces the config overrides of `name` (already validated) and applies the resulting
/// log settings to its open partitions on every shard.
pub async fn alter_topic_configs(
    state: &ShardState,
    name: &str,
    overrides: TopicConfigs,
) -> Result<(), BrokerError> {
    if state.is_clustered() {
        return super::frontend::alter_configs(state, name, overrides).await;
    }
    let name = name.to_string();
    state
        .bus
        .invoke_on(METADATA_SHARD, move |owner: Rc<ShardState>| async move {
            let next = owner.topics().with_configs(&name, overrides)?;
            commit(&owner, next).await?;
            tracing::info!(topic = %name, "altered topic configs");
            owner
                .bus
                .invoke_on_all(move |shard: Rc<ShardState>| async move {
                    let lookup = crate::partition::lookup::OwnerLookup(&shard);
                    if let Some(settings) = lookup.settings(&name, 0) {
                        shard.partitions.apply_topic_settings(&name, &settings);
                    }
                })
                .await?;
            Ok(())
        })
        .await?
}

/// Persists `next` (shard 0 only), installs it here, then on every other shard.
async fn commit(owner: &Rc<ShardState>, next: TopicTable) -> Result<(), BrokerError> {
    assert_eq!(
        owner.shard_id, METADATA_SHARD,
        "topic table commits run on shard 0"
    );
    owner.store.save(&next)?;
    let next = Arc::new(next);
    owner.install_topics(next.clone());
    owner
        .bus
        .invoke_on_all(move |shard: Rc<ShardState>| async move {
            shard.install_topics(next);
        })
        .await?;
    Ok(())
}

async fn delete_local_logs(shard: &Rc<ShardState>, name: &str) -> Result<(), BrokerError> {
    shard
        .partitions
        .delete_topic(name)
        .await
        .map_err(|err| BrokerError::Storage(format!("deleting logs of topic {name}: {err}")))
}

/// A random id that is not nil and not already used.
fn fresh_topic_id(table: &TopicTable) -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if !id.is_nil() && table.by_id(id).is_none() {
            return id;
        }
    }
}
