//! The transaction coordinator (DESIGN.md "Coordinators"; Kafka's `TransactionCoordinator`).
//!
//! A transactional id is coordinated by the shard owning its `__transaction_state`
//! partition: Kafka's `abs(hashCode(id)) % partitions` ([`crate::coordinator::routing`]).
//! Handlers resolve that shard and make one bus hop there ([`on_txn_coordinator`]); the
//! [`service`] on that shard holds the ids of its partitions, replayed from the log on first
//! use and, at start-up, eagerly ([`start`]) so that open transactions keep timing out and
//! prepared ones get their markers after a restart.
//!
//! On a cluster `__transaction_state` is replicated and this node coordinates an id only
//! while it leads the id's partition (FindCoordinator names that leader); the [`service`]
//! loads a partition when this node comes to lead it, and [`markers`] carries phase two to
//! each data partition's leader, on this broker or another.
//!
//! * [`machine`]: Kafka's `TransactionMetadata` and coordinator decisions, pure.
//! * [`records`]: Kafka's key/value layouts of `__transaction_state`.
//! * [`log`]: records to and from the partition logs.
//! * [`service`]: per-shard state, persistence, markers (phase two), the timer.
//! * [`ops`]: the operations each request runs on the coordinator shard.
//! * [`markers`]: phase two's transport, to partition leaders anywhere in the cluster.
//! * [`offsets`]: TxnOffsetCommit on the group coordinator (pending until the marker).
//!
//! Two-phase commit: EndTxn persists PrepareCommit/PrepareAbort (the decision), writes the
//! COMMIT/ABORT markers to every partition of the transaction through
//! [`markers::send_markers`], then persists CompleteCommit/CompleteAbort. The
//! client's EndTxn is answered once the markers are written (or, when some cannot be
//! written now, once the decision is durable: the timer retries the markers), so a client
//! that saw its commit succeed reads its own transaction.

pub mod config;
pub mod log;
pub mod machine;
pub mod markers;
pub mod offsets;
pub mod ops;
pub mod records;
pub mod service;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};

pub use config::TxnConfig;
pub use log::TXN_TOPIC;
pub use service::TxnCoordinator;

use crate::cluster::{partition_shard, TopicConfigs};
use crate::coordinator::routing::{java_string_hash, kafka_abs};
use crate::error::BrokerError;
use crate::state::ShardState;

/// Creates `__transaction_state` if it does not exist yet (compacted, as in Kafka); returns
/// its partition count.
pub async fn ensure_txn_topic(state: &ShardState) -> Result<i32, BrokerError> {
    if let Some(partitions) = crate::cluster::partition_count(state, TXN_TOPIC) {
        return Ok(partitions);
    }
    let partitions = state.txn.config().topic_partitions;
    let mut configs = TopicConfigs::new();
    configs.insert("cleanup.policy".into(), "compact".into());
    let replication_factor = crate::coordinator::internal_topic_replication_factor(state);
    let created = crate::cluster::create_topic(
        state,
        TXN_TOPIC,
        partitions,
        replication_factor,
        configs,
        false,
    );
    match created.await {
        Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => {}
        Err(err) => return Err(err),
    }
    crate::cluster::partition_count(state, TXN_TOPIC)
        .ok_or_else(|| BrokerError::internal("transaction topic missing right after its creation"))
}

/// The `__transaction_state` partition of `transactional_id` (Kafka's rule).
pub fn txn_partition(transactional_id: &str, partitions: i32) -> i32 {
    assert!(
        partitions > 0,
        "the transaction topic has at least one partition"
    );
    kafka_abs(java_string_hash(transactional_id)) % partitions
}

/// Where `transactional_id` is coordinated: (transaction state partition, shard).
pub async fn locate(
    state: &ShardState,
    transactional_id: &str,
) -> Result<(i32, usize), BrokerError> {
    let partitions = ensure_txn_topic(state).await?;
    let partition = txn_partition(transactional_id, partitions);
    Ok((
        partition,
        partition_shard(TXN_TOPIC, partition, state.shard_count),
    ))
}

/// Runs `f` on the coordinator shard of `transactional_id` with that shard's state and the
/// id's partition (loaded): one bus hop.
pub async fn on_txn_coordinator<F, Fut, R>(
    state: &ShardState,
    transactional_id: &str,
    f: F,
) -> Result<R, BrokerError>
where
    F: FnOnce(Rc<ShardState>, i32) -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
    R: Send + 'static,
{
    let (partition, shard) = locate(state, transactional_id).await?;
    state
        .bus
        .invoke_on(shard, move |owner: Rc<ShardState>| async move {
            TxnCoordinator::txns(&owner, partition).await?;
            Ok(f(owner, partition).await)
        })
        .await?
}

/// Runs `f` on every shard after loading all of its transaction state partitions
/// (ListTransactions needs every id).
pub async fn on_all_txn_coordinators<F, Fut, R>(
    state: &ShardState,
    f: F,
) -> Result<Vec<R>, BrokerError>
where
    F: FnOnce(Rc<ShardState>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = R> + 'static,
    R: Send + 'static,
{
    let partitions = ensure_txn_topic(state).await?;
    let results = state
        .bus
        .invoke_on_all(move |owner: Rc<ShardState>| async move {
            for partition in 0..partitions {
                let here =
                    partition_shard(TXN_TOPIC, partition, owner.shard_count) == owner.shard_id;
                // On a cluster a broker answers for the partitions it leads (admin clients
                // ask every broker, as with Kafka's ListTransactions).
                let serving =
                    crate::coordinator::internal_log::serving_epoch(&owner, TXN_TOPIC, partition);
                if here && serving.is_ok() {
                    TxnCoordinator::txns(&owner, partition).await?;
                }
            }
            Ok::<R, BrokerError>(f(owner).await)
        })
        .await?;
    results.into_iter().collect()
}

/// InitProducerId with a transactional id (the InitProducerId handler calls this): a new
/// epoch for the id, fencing older instances; an ongoing transaction of the id is aborted
/// first (CONCURRENT_TRANSACTIONS until its markers are written; the client retries).
/// Errors are in the response; PRODUCER_FENCED is the caller's to downgrade to
/// INVALID_PRODUCER_EPOCH for versions below 4.
pub async fn init_transactional_producer(
    state: &Rc<ShardState>,
    request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    let transactional_id = request
        .transactional_id
        .as_ref()
        .map(|id| id.to_string())
        .unwrap_or_default();
    let input = ops::InitInput {
        timeout_ms: request.transaction_timeout_ms,
        expected: (request.producer_id.0 >= 0 || request.producer_epoch >= 0)
            .then_some((request.producer_id.0, request.producer_epoch)),
    };
    let target = transactional_id.clone();
    let outcome = on_txn_coordinator(state, &target, move |owner, partition| {
        ops::init_producer_id(owner, partition, transactional_id, input)
    })
    .await;
    let mut response = InitProducerIdResponse::default();
    response.producer_id = kafka_protocol::messages::ProducerId(-1);
    response.producer_epoch = -1;
    match outcome {
        Ok(Ok((producer_id, epoch))) => {
            response.producer_id = kafka_protocol::messages::ProducerId(producer_id);
            response.producer_epoch = epoch;
        }
        Ok(Err(code)) => response.error_code = code,
        Err(err) => response.error_code = unavailable_code(&err),
    }
    response
}

/// The code for a transaction request whose coordinator could not be reached or could not
/// persist: clients look the coordinator up again and retry. As Kafka's
/// `TransactionStateManager` does, a write refused because this node no longer leads the
/// partition is NOT_COORDINATOR, and one that could not reach a majority in time is
/// COORDINATOR_NOT_AVAILABLE (never a partition error the client has no use for here).
pub fn unavailable_code(err: &BrokerError) -> i16 {
    use kafka_protocol::ResponseError;
    tracing::warn!(error = %err, "transaction coordinator unavailable");
    match err {
        BrokerError::NotLeaderOrFollower | BrokerError::StaleTopic => {
            ResponseError::NotCoordinator.code()
        }
        BrokerError::NotCoordinator | BrokerError::CoordinatorLoadInProgress => err.code_i16(),
        BrokerError::Storage(_)
        | BrokerError::Bus(_)
        | BrokerError::Internal(_)
        | BrokerError::RequestTimedOut(_)
        | BrokerError::NotEnoughReplicas(_)
        | BrokerError::UnknownTopicOrPartition
        | BrokerError::ShuttingDown => ResponseError::CoordinatorNotAvailable.code(),
        _ => err.code_i16(),
    }
}

/// Starts the coordinator of this shard: loads its transaction state partitions in the
/// background (if the topic exists) so recovery does not wait for clients. On a cluster it
/// watches instead for partitions this node comes to lead, and loads each as it does.
pub fn start(state: &Rc<ShardState>) {
    if state.is_clustered() {
        service::watch_leadership(state);
        return;
    }
    let state = state.clone();
    ringlet_shard::task::spawn_local(async move {
        service::load_owned(&state).await;
    })
    .detach();
}
