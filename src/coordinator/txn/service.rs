//! The transaction coordinator on one shard: the transactional ids of the
//! `__transaction_state` partitions this shard owns, their persistence, the second phase of
//! commit (markers, then Complete*), and the timer that aborts timed-out transactions,
//! retries unfinished markers and expires idle ids.
//!
//! On a cluster this node coordinates a partition's ids only while it leads that partition's
//! Raft group (`internal_log::serving_epoch`), as Kafka's coordinator follows the partition
//! leader. A set loaded at an earlier leader epoch is stale and is replayed again; the timer
//! loads partitions this node has come to lead, so that a new coordinator finishes prepared
//! transactions and times out open ones of producers that never come back. The leader epoch
//! is the coordinator epoch the markers carry, so a deposed coordinator's late markers are
//! fenced on the data partitions.
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
use super::markers::send_markers;
use super::offsets::PendingOffsets;
use crate::coordinator::internal_log;
use crate::error::BrokerError;
use crate::partition::now_ms;
use crate::partition::txn_markers::TxnMarker;
use crate::state::ShardState;

enum Slot {
    Loading(Latch),
    /// The ids as loaded at a leader epoch (`internal_log::serving_epoch`; -1 on one node).
    Loaded(Rc<RefCell<TxnSet>>, i32),
}

/// The leader epoch at which this node coordinates `__transaction_state` partition
/// `partition` (NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS where it does not).
fn serving_epoch(state: &ShardState, partition: i32) -> Result<i32, BrokerError> {
    internal_log::serving_epoch(state, TXN_TOPIC, partition)
}

/// The coordinator epoch a marker carries: the partition's leader epoch (0 on one node).
fn coordinator_epoch(loaded_at: i32) -> i32 {
    loaded_at.max(0)
}

/// The transaction coordinator state of one shard (lives in `ShardState`).
pub struct TxnCoordinator {
    config: TxnConfig,
    partitions: RefCell<HashMap<i32, Slot>>,
    /// Transactional ids whose markers are being written right now.
    completing: RefCell<HashSet<String>>,
    /// Transactional ids with a background completion running (one each, however often
    /// the timer finds them prepared).
    completions: RefCell<HashSet<String>>,
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
            completions: RefCell::new(HashSet::new()),
            pending_offsets: RefCell::new(HashMap::new()),
            tick_started: Cell::new(false),
            last_expiry_ms: Cell::new(now_ms()),
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// The ids of `__transaction_state` partition `partition`, replaying its log first if
    /// needed. A load starts finishing what the log left prepared (markers).
    pub async fn txns(
        state: &Rc<ShardState>,
        partition: i32,
    ) -> Result<Rc<RefCell<TxnSet>>, BrokerError> {
        let this = &state.txn;
        this.start_tick(state);
        loop {
            let epoch = serving_epoch(state, partition)?;
            let in_progress = match this.partitions.borrow().get(&partition) {
                Some(Slot::Loaded(set, at)) if *at == epoch => return Ok(set.clone()),
                Some(Slot::Loaded(..)) => None,
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
                        partitions.insert(partition, Slot::Loaded(set.clone(), epoch));
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

    /// Every loaded partition's ids that this node still coordinates (at the epoch they
    /// were loaded at).
    pub fn loaded(&self, state: &ShardState) -> Vec<(i32, Rc<RefCell<TxnSet>>)> {
        self.partitions
            .borrow()
            .iter()
            .filter_map(|(p, slot)| match slot {
                Slot::Loaded(set, at) => serving_epoch(state, *p)
                    .is_ok_and(|epoch| epoch == *at)
                    .then(|| (*p, set.clone())),
                Slot::Loading(_) => None,
            })
            .collect()
    }

    /// The epoch `partition`'s ids were loaded at, while this node still coordinates them.
    fn loaded_epoch(&self, state: &ShardState, partition: i32) -> Option<i32> {
        match self.partitions.borrow().get(&partition) {
            Some(Slot::Loaded(_, at)) => serving_epoch(state, partition)
                .is_ok_and(|epoch| epoch == *at)
                .then_some(*at),
            _ => None,
        }
    }

    /// [`TxnCoordinator::loaded_epoch`] if `set` is still the loaded one: work begun on
    /// ids that were replayed again since (a new leader epoch) must not go on.
    fn epoch_of(
        &self,
        state: &ShardState,
        partition: i32,
        set: &Rc<RefCell<TxnSet>>,
    ) -> Option<i32> {
        let current = matches!(
            self.partitions.borrow().get(&partition),
            Some(Slot::Loaded(loaded, _)) if Rc::ptr_eq(loaded, set)
        );
        current
            .then(|| self.loaded_epoch(state, partition))
            .flatten()
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
    // A coordinator that lost the partition leaves the transaction to its successor.
    let Some(epoch) = state.txn.epoch_of(state, partition, set) else {
        return Err(BrokerError::NotCoordinator);
    };
    if !state
        .txn
        .completing
        .borrow_mut()
        .insert(transactional_id.to_string())
    {
        return Ok(());
    }
    let written = write_all_markers(state, &meta, coordinator_epoch(epoch)).await;
    state.txn.completing.borrow_mut().remove(transactional_id);
    written?;
    let target = set.borrow_mut().complete(transactional_id, now_ms());
    match target {
        Some(target) => persist(state, partition, set, target).await,
        None => Ok(()),
    }
}

async fn write_all_markers(
    state: &Rc<ShardState>,
    meta: &TxnMetadata,
    coordinator_epoch: i32,
) -> Result<(), BrokerError> {
    let marker = TxnMarker {
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
        commit: meta.state == super::machine::TxnState::PrepareCommit,
        coordinator_epoch,
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
    // Where a marker lands on `__consumer_offsets`, that partition's group coordinator
    // resolves the producer's pending offsets as part of the write (`txn_markers`).
    let mut failed = None;
    for ((topic, partition), result) in send_markers(state, partitions, marker).await {
        if let Err(err) = result {
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
    failed.map_or(Ok(()), Err)
}

/// First pause between attempts of a background completion whose markers failed (a data
/// partition's leader moving, a broker down); doubles up to [`COMPLETION_RETRY_MAX`].
const COMPLETION_RETRY_FIRST: Duration = Duration::from_millis(100);
const COMPLETION_RETRY_MAX: Duration = Duration::from_secs(2);

/// Runs [`complete`] in the background (after an answer was sent, or after a load), again
/// and again with a growing pause while markers fail, as Kafka's marker channel retries:
/// until the transaction is complete or this node no longer coordinates it.
pub fn spawn_completion(
    state: &Rc<ShardState>,
    partition: i32,
    set: &Rc<RefCell<TxnSet>>,
    transactional_id: String,
) {
    if !state
        .txn
        .completions
        .borrow_mut()
        .insert(transactional_id.clone())
    {
        return;
    }
    let state = state.clone();
    let set = set.clone();
    ringlet_shard::task::spawn_local(async move {
        retry_completion(&state, partition, &set, &transactional_id).await;
        state.txn.completions.borrow_mut().remove(&transactional_id);
    })
    .detach();
}

async fn retry_completion(
    state: &Rc<ShardState>,
    partition: i32,
    set: &Rc<RefCell<TxnSet>>,
    transactional_id: &str,
) {
    let mut pause = COMPLETION_RETRY_FIRST;
    loop {
        match complete(state, partition, set, transactional_id).await {
            Ok(()) => return,
            Err(BrokerError::NotCoordinator) => {
                tracing::info!(%transactional_id, "no longer its coordinator; the next one completes it");
                return;
            }
            Err(err) => {
                tracing::warn!(%transactional_id, error = %err, "transaction not completed yet; retrying");
            }
        }
        ringlet_shard::task::sleep(pause).await;
        pause = (pause * 2).min(COMPLETION_RETRY_MAX);
    }
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
    for (partition, set) in this.loaded(state) {
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

/// How soon a broker that became a `__transaction_state` partition's leader loads it (Kafka
/// loads on the leadership change itself; this polls the replica's state).
const LEADERSHIP_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// On a cluster: loads, every [`LEADERSHIP_CHECK_INTERVAL`], the partitions of this shard
/// that this node now leads but has not loaded at their current leader epoch (a failover
/// made it their coordinator).
pub fn watch_leadership(state: &Rc<ShardState>) {
    let weak: Weak<ShardState> = Rc::downgrade(state);
    ringlet_shard::task::spawn_periodic(LEADERSHIP_CHECK_INTERVAL, move || {
        let state = weak.upgrade();
        async move {
            if let Some(state) = state {
                load_led_partitions(&state).await;
            }
        }
    })
    .detach();
}

async fn load_led_partitions(state: &Rc<ShardState>) {
    let Some(partitions) = crate::cluster::partition_count(state, TXN_TOPIC) else {
        return;
    };
    for partition in 0..partitions {
        let owned = state.partitions.owns(TXN_TOPIC, partition);
        if !owned || serving_epoch(state, partition).is_err() {
            continue;
        }
        if state.txn.loaded_epoch(state, partition).is_some() {
            continue;
        }
        if let Err(err) = TxnCoordinator::txns(state, partition).await {
            tracing::warn!(partition, error = %err, "loading transaction state failed");
        }
    }
}
