//! The transaction coordinator on one shard: the transactional ids of the
//! `__transaction_state` partitions this shard owns, their persistence, the second phase of
//! commit (markers, then Complete*), and the timer that aborts timed-out transactions,
//! retries unfinished markers and expires idle ids.
//!
//! Every call runs on this shard's thread; the machine's pending transitions make each
//! `.await` between a step and its completion safe (see `machine`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::time::Duration;

use ringlet_shard::sync::Latch;

use super::config::TxnConfig;
use super::log::{self, TXN_TOPIC};
use super::machine::{TxnMetadata, TxnPartition, TxnSet};
use super::offsets::PendingOffsets;
use crate::coordinator::routing::{coordinator_shard, OFFSETS_TOPIC};
use crate::error::BrokerError;
use crate::partition::now_ms;
use crate::partition::txn_markers::{write_markers, TxnMarker};
use crate::state::ShardState;

/// Markers carry this coordinator epoch: one node, one coordinator incarnation lineage.
pub const COORDINATOR_EPOCH: i32 = 0;

enum Slot {
    Loading(Latch),
    Loaded(Rc<RefCell<TxnSet>>),
}

/// The transaction coordinator state of one shard (lives in `ShardState`).
pub struct TxnCoordinator {
    config: TxnConfig,
    partitions: RefCell<HashMap<i32, Slot>>,
    /// Transactional ids whose markers are being written right now.
    completing: RefCell<HashSet<String>>,
    /// Group side: pending transactional offsets per `__consumer_offsets` partition.
    pub(crate) pending_offsets: RefCell<HashMap<i32, PendingOffsets>>,
    tick_started: Cell<bool>,
    last_expiry_ms: Cell<i64>,
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> TxnCoordinator {
        TxnCoordinator {
            config,
            partitions: RefCell::new(HashMap::new()),
            completing: RefCell::new(HashSet::new()),
            pending_offsets: RefCell::new(HashMap::new()),
            tick_started: Cell::new(false),
            last_expiry_ms: Cell::new(now_ms()),
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// The ids of `__transaction_state` partition `partition`, replaying its log first if
    /// needed. A load finishes what the log left prepared (markers) before returning.
    pub async fn txns(
        state: &Rc<ShardState>,
        partition: i32,
    ) -> Result<Rc<RefCell<TxnSet>>, BrokerError> {
        let this = &state.txn;
        this.start_tick(state);
        loop {
            let in_progress = match this.partitions.borrow().get(&partition) {
                Some(Slot::Loaded(set)) => return Ok(set.clone()),
                Some(Slot::Loading(latch)) => Some(latch.clone()),
                None => None,
            };
            if let Some(latch) = in_progress {
                latch.wait().await;
                continue;
            }
            let latch = Latch::new();
            this.partitions
                .borrow_mut()
                .insert(partition, Slot::Loading(latch.clone()));
            let loaded = this.load(state, partition).await;
            let result = {
                let mut partitions = this.partitions.borrow_mut();
                latch.set();
                match loaded {
                    Ok(set) => {
                        partitions.insert(partition, Slot::Loaded(set.clone()));
                        Ok(set)
                    }
                    Err(err) => {
                        partitions.remove(&partition);
                        Err(err)
                    }
                }
            };
            if let Ok(set) = &result {
                let prepared = set.borrow().prepared();
                for meta in prepared {
                    spawn_completion(state, partition, set, meta.transactional_id);
                }
            }
            return result;
        }
    }

    async fn load(
        &self,
        state: &ShardState,
        partition: i32,
    ) -> Result<Rc<RefCell<TxnSet>>, BrokerError> {
        let records = log::read_all(state, partition).await?;
        let count = records.len();
        let mut set = TxnSet::new(self.config.limits.clone());
        for (transactional_id, value) in records {
            set.load(&transactional_id, value);
        }
        tracing::info!(
            partition,
            records = count,
            transactional_ids = set.all().count(),
            "loaded transaction state"
        );
        Ok(Rc::new(RefCell::new(set)))
    }

    /// Every loaded partition's ids.
    pub fn loaded(&self) -> Vec<(i32, Rc<RefCell<TxnSet>>)> {
        self.partitions
            .borrow()
            .iter()
            .filter_map(|(p, slot)| match slot {
                Slot::Loaded(set) => Some((*p, set.clone())),
                Slot::Loading(_) => None,
            })
            .collect()
    }

    fn start_tick(&self, state: &Rc<ShardState>) {
        if self.tick_started.replace(true) {
            return;
        }
        let weak: Weak<ShardState> = Rc::downgrade(state);
        let period = Duration::from_millis(self.config.abort_check_interval_ms);
        ringlet_shard::task::spawn_periodic(period, move || {
            let state = weak.upgrade();
            async move {
                if let Some(state) = state {
                    tick(&state).await;
                }
            }
        })
        .detach();
    }
}

/// Makes `target` durable, then current. On failure the id stays as it was.
pub async fn persist(
    state: &ShardState,
    partition: i32,
    set: &Rc<RefCell<TxnSet>>,
    target: TxnMetadata,
) -> Result<(), BrokerError> {
    match log::write(state, partition, &target, now_ms()).await {
        Ok(()) => {
            set.borrow_mut().finish_transition(target);
            Ok(())
        }
        Err(err) => {
            tracing::warn!(
                transactional_id = %target.transactional_id,
                error = %err,
                "persisting transaction state failed"
            );
            set.borrow_mut().cancel_transition(&target.transactional_id);
            Err(err)
        }
    }
}

/// Phase two of a prepared transaction: COMMIT/ABORT markers on every partition (pending
/// transactional offsets resolved on the offsets partitions), then CompleteCommit or
/// CompleteAbort. When a marker cannot be written the id stays prepared and the tick
/// retries; markers are idempotent for the partitions that already have theirs.
pub async fn complete(
    state: &Rc<ShardState>,
    partition: i32,
    set: &Rc<RefCell<TxnSet>>,
    transactional_id: &str,
) -> Result<(), BrokerError> {
    let Some(meta) = set.borrow().get(transactional_id).cloned() else {
        return Ok(());
    };
    if !meta.state.is_prepared() {
        return Ok(());
    }
    if !state
        .txn
        .completing
        .borrow_mut()
        .insert(transactional_id.to_string())
    {
        return Ok(());
    }
    let written = write_all_markers(state, &meta).await;
    state.txn.completing.borrow_mut().remove(transactional_id);
    written?;
    let target = set.borrow_mut().complete(transactional_id, now_ms());
    match target {
        Some(target) => persist(state, partition, set, target).await,
        None => Ok(()),
    }
}

async fn write_all_markers(state: &Rc<ShardState>, meta: &TxnMetadata) -> Result<(), BrokerError> {
    let commit = meta.state == super::machine::TxnState::PrepareCommit;
    let marker = TxnMarker {
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
        commit,
        coordinator_epoch: COORDINATOR_EPOCH,
    };
    // A partition whose topic was deleted meanwhile gets no marker (as in Kafka): retrying
    // it would keep the transactional id prepared forever.
    let topics = state.topics();
    let (partitions, gone): (Vec<TxnPartition>, Vec<TxnPartition>) = meta
        .partitions
        .iter()
        .cloned()
        .partition(|(topic, partition)| {
            topics
                .get(topic.as_str())
                .is_some_and(|m| m.has_partition(*partition))
        });
    if !gone.is_empty() {
        tracing::warn!(transactional_id = %meta.transactional_id, ?gone, "no marker for deleted partitions");
    }
    let results = write_markers(state, partitions, marker).await;
    let mut failed = None;
    for ((topic, partition), result) in results {
        match result {
            Ok(_) if topic == OFFSETS_TOPIC => {
                let shard = coordinator_shard(partition, state.shard_count);
                let (producer_id, epoch) = (meta.producer_id, meta.producer_epoch);
                let resolved = state
                    .bus
                    .invoke_on(shard, move |owner: Rc<ShardState>| {
                        super::offsets::on_marker(owner, partition, producer_id, epoch, commit)
                    })
                    .await
                    .map_err(BrokerError::from)
                    .and_then(|inner| inner);
                if let Err(err) = resolved {
                    failed = Some(err);
                }
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(
                    transactional_id = %meta.transactional_id,
                    topic = %topic,
                    partition,
                    error = %err,
                    "writing a transaction marker failed; will retry"
                );
                failed = Some(err);
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Runs [`complete`] in the background (after an answer was sent, or after a load).
pub fn spawn_completion(
    state: &Rc<ShardState>,
    partition: i32,
    set: &Rc<RefCell<TxnSet>>,
    transactional_id: String,
) {
    let state = state.clone();
    let set = set.clone();
    ringlet_shard::task::spawn_local(async move {
        if let Err(err) = complete(&state, partition, &set, &transactional_id).await {
            tracing::warn!(%transactional_id, error = %err, "transaction not completed yet");
        }
    })
    .detach();
}

/// Aborts timed-out transactions (epoch bumped: the late producer is fenced), retries
/// prepared ones whose markers failed, and now and then expires idle ids.
async fn tick(state: &Rc<ShardState>) {
    let now = now_ms();
    let this = &state.txn;
    let expire = now - this.last_expiry_ms.get() >= this.config.expiration_check_interval_ms;
    if expire {
        this.last_expiry_ms.set(now);
    }
    for (partition, set) in this.loaded() {
        let timed_out = set.borrow_mut().time_out(now);
        for target in timed_out {
            let id = target.transactional_id.clone();
            tracing::info!(transactional_id = %id, "aborting a timed-out transaction");
            if persist(state, partition, &set, target).await.is_ok() {
                spawn_completion(state, partition, &set, id);
            }
        }
        let prepared = set.borrow().prepared();
        for meta in prepared {
            spawn_completion(state, partition, &set, meta.transactional_id);
        }
        if expire {
            let expired = set.borrow_mut().expire(now);
            for target in expired {
                tracing::info!(transactional_id = %target.transactional_id, "transactional id expired");
                let _ = persist(state, partition, &set, target).await;
            }
        }
    }
}

/// Loads, on this shard, every `__transaction_state` partition it owns (when the topic
/// exists): open transactions are then timed and prepared ones finished without waiting
/// for their clients to come back.
pub async fn load_owned(state: &Rc<ShardState>) {
    let Some(partitions) = crate::cluster::partition_count(state, TXN_TOPIC) else {
        return;
    };
    for partition in 0..partitions {
        if state.partitions.owns(TXN_TOPIC, partition) {
            if let Err(err) = TxnCoordinator::txns(state, partition).await {
                tracing::error!(partition, error = %err, "loading transaction state failed");
            }
        }
    }
}
