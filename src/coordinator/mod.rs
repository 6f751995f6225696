//! The consumer-group coordinator (DESIGN.md "Coordinators").
//!
//! A group is coordinated by the shard owning its `__consumer_offsets` partition
//! ([`routing`]: Kafka's `abs(hashCode(group)) % partitions`). Handlers on any shard resolve
//! that shard and make ONE bus hop there ([`on_coordinator`]); the [`service`] on that shard
//! holds the groups of its partitions, built by replaying the partition's log at start-up
//! ([`GroupCoordinator::load_owned_partitions`], as Kafka loads a partition when it becomes
//! its leader) or, for a partition created later, when it is first used.
//!
//! * [`group`]: the classic protocol as a pure state machine (no I/O, no clock).
//! * [`records`]: Kafka's key/value layouts of the internal topic.
//! * [`log_io`]: record batches to and from the partition logs.
//! * [`config`]: settings (`ringlet start` flags, environment, `[groups]` in the file).
//! * [`txn`]: the transaction coordinator (`__transaction_state`), and TxnOffsetCommit's
//!   pending offsets on the group side.

pub mod config;
pub mod group;
pub mod internal_log;
pub mod log_io;
pub mod ops;
pub mod records;
pub mod routing;
pub mod service;
pub mod txn;

use std::future::Future;
use std::rc::Rc;

pub use config::{CoordinatorArgs, CoordinatorConfig};
pub use service::GroupCoordinator;

use crate::cluster::TopicConfigs;
use crate::error::BrokerError;
use crate::state::ShardState;
use routing::{coordinator_shard, offsets_partition, OFFSETS_TOPIC};

/// Creates `__consumer_offsets` if it does not exist yet (compacted, as in Kafka); returns
/// its partition count. Concurrent first calls race harmlessly: one creates, the others see
/// TOPIC_ALREADY_EXISTS and read the table.
pub async fn ensure_offsets_topic(state: &ShardState) -> Result<i32, BrokerError> {
    if let Some(partitions) = crate::cluster::partition_count(state, OFFSETS_TOPIC) {
        return Ok(partitions);
    }
    let partitions = state.coordinator.config().offsets_topic_partitions;
    let mut configs = TopicConfigs::new();
    configs.insert("cleanup.policy".into(), "compact".into());
    let replication_factor = internal_topic_replication_factor(state);
    let created = crate::cluster::create_topic(
        state,
        OFFSETS_TOPIC,
        partitions,
        replication_factor,
        configs,
        false,
    );
    match created.await {
        Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => {}
        Err(err) => return Err(err),
    }
    crate::cluster::partition_count(state, OFFSETS_TOPIC)
        .ok_or_else(|| BrokerError::internal("offsets topic missing right after its creation"))
}

/// Kafka's `offsets.topic.replication.factor` and `transaction.state.log.replication.factor`
/// are 3; a smaller cluster gets one replica per broker (Kafka would refuse to create the
/// topic until three brokers are up).
pub fn internal_topic_replication_factor(state: &ShardState) -> i16 {
    const INTERNAL_TOPIC_REPLICATION_FACTOR: usize = 3;
    match state.cluster.as_ref() {
        Some(cluster) => cluster
            .alive_brokers()
            .len()
            .clamp(1, INTERNAL_TOPIC_REPLICATION_FACTOR) as i16,
        None => 1,
    }
}

/// Where `group_id` is coordinated: (offsets partition, shard).
pub async fn locate(state: &ShardState, group_id: &str) -> Result<(i32, usize), BrokerError> {
    let partitions = ensure_offsets_topic(state).await?;
    let partition = offsets_partition(group_id, partitions);
    Ok((partition, coordinator_shard(partition, state.shard_count)))
}

/// Runs `f` on the coordinator shard of `group_id` with that shard's state and the group's
/// offsets partition (loaded): one bus hop.
pub async fn on_coordinator<F, Fut, R>(
    state: &ShardState,
    group_id: &str,
    f: F,
) -> Result<R, BrokerError>
where
    F: FnOnce(Rc<ShardState>, i32) -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
    R: Send + 'static,
{
    let (partition, shard) = locate(state, group_id).await?;
    state
        .bus
        .invoke_on(shard, move |owner: Rc<ShardState>| async move {
            GroupCoordinator::groups(&owner, partition).await?;
            Ok(f(owner, partition).await)
        })
        .await?
}

/// Runs `f` on every shard after loading all of that shard's offsets partitions (ListGroups
/// needs every group).
pub async fn on_all_coordinators<F, Fut, R>(state: &ShardState, f: F) -> Result<Vec<R>, BrokerError>
where
    F: FnOnce(Rc<ShardState>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = R> + 'static,
    R: Send + 'static,
{
    let partitions = ensure_offsets_topic(state).await?;
    let results = state
        .bus
        .invoke_on_all(move |owner: Rc<ShardState>| async move {
            for partition in 0..partitions {
                let here = coordinator_shard(partition, owner.shard_count) == owner.shard_id;
                // On a cluster a broker answers for the partitions it leads (Kafka's
                // ListGroups too: admin clients ask every broker).
                if here && log_io::serving_epoch(&owner, partition).is_ok() {
                    GroupCoordinator::groups(&owner, partition).await?;
                }
            }
            Ok::<R, BrokerError>(f(owner).await)
        })
        .await?;
    results.into_iter().collect()
}

/// `{client_id}-{uuid}`: Kafka's member id format.
pub fn fresh_member_id(client_id: &str) -> String {
    format!("{client_id}-{}", uuid::Uuid::new_v4())
}

/// The code for a group request whose coordinator could not be reached or could not
/// persist: NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS as they are (this node does not
/// lead the group's partition, or is still catching up), else COORDINATOR_NOT_AVAILABLE
/// (clients retry all three after looking the coordinator up again).
pub fn unavailable_code(err: &BrokerError) -> i16 {
    tracing::warn!(error = %err, "group coordinator unavailable");
    match err {
        BrokerError::NotCoordinator | BrokerError::CoordinatorLoadInProgress => err.code_i16(),
        _ => kafka_protocol::ResponseError::CoordinatorNotAvailable.code(),
    }
}
