//! The coordinator on one shard: the groups of the `__consumer_offsets` partitions this shard
//! owns, parked JoinGroup/SyncGroup replies, persistence and the timer tick.
//!
//! Every call runs on this shard's single thread, so each pure-machine step is atomic; the
//! only `.await`s are loading a partition, appending records, and waiting for a parked reply.
//! Order of an operation: machine step -> write its records (durable) -> deliver replies.
//! Offsets become visible to OffsetFetch only after their records are durable.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use ringlet_shard::sync::Latch;

use super::config::CoordinatorConfig;
use super::group::{
    Effects, GroupError, GroupRecord, GroupSet, JoinOutcome, Reply, ReplyToken, SyncOutcome,
};
use super::log_io;
use super::routing::{coordinator_shard, OFFSETS_TOPIC};
use crate::error::BrokerError;
use crate::partition::now_ms;
use crate::state::ShardState;

/// How often session, join and sync deadlines are checked.
pub const TICK_INTERVAL: Duration = Duration::from_millis(100);
/// How often offsets of empty groups are expired and empty groups dropped (Kafka:
/// `offsets.retention.check.interval.ms`, 10 minutes; shorter is harmless here).
pub const EXPIRY_INTERVAL_MS: i64 = 60_000;

enum Slot {
    Loading(Latch),
    /// The groups as loaded at a leader epoch (`log_io::serving_epoch`; -1 on one node).
    Loaded(Rc<RefCell<GroupSet>>, i32),
}

/// A parked reply: set once, read once.
struct ReplySlot {
    latch: Latch,
    value: RefCell<Option<Reply>>,
}

/// A parked request: its token for the machine and the reply once delivered.
pub struct Parked {
    pub token: ReplyToken,
    slot: Rc<ReplySlot>,
}

impl Parked {
    /// Waits for the reply.
    pub async fn reply(self) -> Option<Reply> {
        self.slot.latch.wait().await;
        let value = self.slot.value.borrow_mut().take();
        value
    }
}

/// The coordinator state of one shard (lives in `ShardState`).
pub struct GroupCoordinator {
    config: CoordinatorConfig,
    partitions: RefCell<HashMap<i32, Slot>>,
    replies: RefCell<HashMap<ReplyToken, Rc<ReplySlot>>>,
    next_token: Cell<ReplyToken>,
    tick_started: Cell<bool>,
    last_expiry_ms: Cell<i64>,
}

impl GroupCoordinator {
    pub fn new(config: CoordinatorConfig) -> GroupCoordinator {
        GroupCoordinator {
            config,
            partitions: RefCell::new(HashMap::new()),
            replies: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            tick_started: Cell::new(false),
            last_expiry_ms: Cell::new(0),
        }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// The groups of offsets partition `partition`, replaying its log first if needed.
    pub async fn groups(
        state: &Rc<ShardState>,
        partition: i32,
    ) -> Result<Rc<RefCell<GroupSet>>, BrokerError> {
        let this = &state.coordinator;
        this.start_tick(state);
        loop {
            // On a cluster the groups are this node's only while it leads the partition; a
            // set loaded in an earlier term is stale (another coordinator wrote since).
            let epoch = log_io::serving_epoch(state, partition)?;
            let in_progress = match this.partitions.borrow().get(&partition) {
                Some(Slot::Loaded(set, at)) if *at == epoch => return Ok(set.clone()),
                Some(Slot::Loaded(..)) => None,
                Some(Slot::Loading(latch)) => Some(latch.clone()),
                None => None,
            };
            // Loaded at an earlier epoch: its parked requests belong to a term that is over.
            this.unload_stale(state);
            if let Some(latch) = in_progress {
                latch.wait().await;
                continue;
            }
            let latch = Latch::new();
            this.partitions
                .borrow_mut()
                .insert(partition, Slot::Loading(latch.clone()));
            let loaded = this.load(state, partition).await;
            let mut partitions = this.partitions.borrow_mut();
            latch.set();
            return match loaded {
                Ok(set) => {
                    partitions.insert(partition, Slot::Loaded(set.clone(), epoch));
                    Ok(set)
                }
                Err(err) => {
                    partitions.remove(&partition);
                    Err(err)
                }
            };
        }
    }

    async fn load(
        &self,
        state: &ShardState,
        partition: i32,
    ) -> Result<Rc<RefCell<GroupSet>>, BrokerError> {
        let records = log_io::read_all(state, partition).await?;
        let now = now_ms();
        let count = records.len();
        let mut set = GroupSet::new(self.config.group.clone());
        for record in records {
            set.apply(record, now);
        }
        tracing::info!(
            partition,
            records = count,
            groups = set.groups().count(),
            "loaded consumer groups"
        );
        Ok(Rc::new(RefCell::new(set)))
    }

    /// Replays every `__consumer_offsets` partition this shard owns. Run at start-up before
    /// the listener opens, so that after a restart every group is listed, sessions and
    /// offsets expire, and no request races the load (Kafka loads a partition when it
    /// becomes its leader).
    pub async fn load_owned_partitions(state: &Rc<ShardState>) {
        let Some(partitions) = crate::cluster::partition_count(state, OFFSETS_TOPIC) else {
            return;
        };
        if state.is_clustered() {
            // A replica leads nothing yet at start-up: partitions load on first use.
            return;
        }
        state.coordinator.start_tick(state);
        let owned =
            (0..partitions).filter(|p| coordinator_shard(*p, state.shard_count) == state.shard_id);
        for partition in owned {
            if let Err(err) = Self::groups(state, partition).await {
                tracing::error!(partition, error = %err, "loading consumer groups failed");
            }
        }
    }

    /// Waits until no partition of this shard is being loaded (ListGroups answers only once
    /// it can see every group, e.g. right after a restart).
    pub async fn wait_loads(&self) {
        loop {
            let loading: Vec<Latch> = self
                .partitions
                .borrow()
                .values()
                .filter_map(|slot| match slot {
                    Slot::Loading(latch) => Some(latch.clone()),
                    Slot::Loaded(..) => None,
                })
                .collect();
            if loading.is_empty() {
                return;
            }
            for latch in loading {
                latch.wait().await;
            }
        }
    }

    /// Every loaded partition's groups that this node still coordinates (at the epoch
    /// they were loaded at).
    pub fn loaded(&self, state: &ShardState) -> Vec<(i32, Rc<RefCell<GroupSet>>)> {
        self.partitions
            .borrow()
            .iter()
            .filter_map(|(p, slot)| match slot {
                Slot::Loaded(set, at) => log_io::serving_epoch(state, *p)
                    .is_ok_and(|epoch| epoch == *at)
                    .then(|| (*p, set.clone())),
                Slot::Loading(_) => None,
            })
            .collect()
    }

    /// Drops the groups of every partition this node no longer coordinates at the epoch it
    /// loaded them at (leadership moved, or came back in a later term), answering their
    /// parked requests NOT_COORDINATOR: the set is never ticked again, so they would
    /// otherwise wait out the clients' rebalance timeouts.
    fn unload_stale(&self, state: &ShardState) {
        let stale: Vec<(i32, Rc<RefCell<GroupSet>>)> =
            self.partitions
                .borrow()
                .iter()
                .filter_map(|(p, slot)| match slot {
                    Slot::Loaded(set, at) => (log_io::serving_epoch(state, *p).ok() != Some(*at))
                        .then(|| (*p, set.clone())),
                    Slot::Loading(_) => None,
                })
                .collect();
        for (partition, set) in stale {
            self.partitions.borrow_mut().remove(&partition);
            let effects = set.borrow_mut().unload(now_ms());
            tracing::info!(
                partition,
                answered = effects.replies.len(),
                "consumer groups unloaded: no longer the coordinator"
            );
            self.deliver(effects.replies);
        }
    }

    /// A token for a request whose reply may be parked, and the place it arrives.
    pub fn park(&self) -> Parked {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let slot = Rc::new(ReplySlot {
            latch: Latch::new(),
            value: RefCell::new(None),
        });
        self.replies.borrow_mut().insert(token, slot.clone());
        Parked { token, slot }
    }

    fn deliver(&self, replies: Vec<(ReplyToken, Reply)>) {
        for (token, reply) in replies {
            // Removed on delivery: a waiter that went away (client disconnected) leaks nothing.
            if let Some(slot) = self.replies.borrow_mut().remove(&token) {
                *slot.value.borrow_mut() = Some(reply);
                slot.latch.set();
            }
        }
    }

    /// Writes the effects' records, then delivers their replies. Records from the machine
    /// describe state it already holds (group metadata); offset tombstones from expiry are
    /// applied once durable.
    pub async fn complete(
        state: &ShardState,
        partition: i32,
        set: &Rc<RefCell<GroupSet>>,
        effects: Effects,
    ) {
        let now = now_ms();
        if let Err(err) = log_io::write(state, partition, &effects.records, now).await {
            tracing::error!(partition, error = %err, "persisting group state failed");
            let failed = Self::fail_unpersisted(set, effects, now_ms());
            state.coordinator.deliver(failed);
            return;
        }
        let mut replies = effects.replies;
        let mut groups = set.borrow_mut();
        for record in effects.records {
            match record {
                GroupRecord::Offset { value: None, .. } => groups.apply(record, now),
                GroupRecord::Metadata {
                    group_id,
                    value: Some(snapshot),
                } => {
                    // A leader's assignment completes the rebalance only now it is durable.
                    let done = groups.metadata_written(&group_id, snapshot.generation_id, now_ms());
                    replies.extend(done.replies);
                }
                _ => {}
            }
        }
        drop(groups);
        state.coordinator.deliver(replies);
    }

    /// The replies to send when `effects.records` could not be written. An assignment that
    /// is not durable is not handed out: SyncGroup answers COORDINATOR_NOT_AVAILABLE (Kafka's
    /// mapping of a failed append) and the group rebalances. The one JoinGroup that writes is
    /// a static member's rejoin of a Stable group: its new member id is not durable either,
    /// so it too answers the error, with no member id (Kafka's callback of
    /// `updateStaticMemberAndRebalance`); the member joins again.
    fn fail_unpersisted(
        set: &Rc<RefCell<GroupSet>>,
        effects: Effects,
        now_ms: i64,
    ) -> Vec<(ReplyToken, Reply)> {
        let mut replies: Vec<(ReplyToken, Reply)> = effects
            .replies
            .into_iter()
            .map(|(token, reply)| match reply {
                Reply::Sync(_) => (
                    token,
                    Reply::Sync(SyncOutcome::error(GroupError::CoordinatorNotAvailable)),
                ),
                Reply::Join(outcome) if outcome.error.is_none() => (
                    token,
                    Reply::Join(JoinOutcome::error(GroupError::CoordinatorNotAvailable, "")),
                ),
                other => (token, other),
            })
            .collect();
        let mut groups = set.borrow_mut();
        for record in effects.records {
            if let GroupRecord::Metadata {
                group_id,
                value: Some(snapshot),
            } = record
            {
                let more = groups.metadata_write_failed(&group_id, snapshot.generation_id, now_ms);
                replies.extend(more.replies);
            }
        }
        replies
    }

    fn start_tick(&self, state: &Rc<ShardState>) {
        if self.tick_started.replace(true) {
            return;
        }
        let weak: Weak<ShardState> = Rc::downgrade(state);
        ringlet_shard::task::spawn_periodic(TICK_INTERVAL, move || {
            let state = weak.upgrade();
            async move {
                if let Some(state) = state {
                    Self::tick(&state).await;
                }
            }
        })
        .detach();
    }

    async fn tick(state: &Rc<ShardState>) {
        let now = now_ms();
        let this = &state.coordinator;
        let expire = now - this.last_expiry_ms.get() >= EXPIRY_INTERVAL_MS;
        if expire {
            this.last_expiry_ms.set(now);
        }
        this.unload_stale(state);
        for (partition, set) in this.loaded(state) {
            let mut effects = set.borrow_mut().tick(now);
            if expire {
                let expired = set.borrow_mut().expire_offsets(now);
                effects.records.extend(expired);
            }
            if !effects.records.is_empty() || !effects.replies.is_empty() {
                Self::complete(state, partition, &set, effects).await;
            }
            if expire {
                let dropped = set.borrow_mut().collect_empty();
                if let Err(err) = log_io::write(state, partition, &dropped, now).await {
                    tracing::error!(partition, error = %err, "writing group tombstones failed");
                }
            }
        }
    }
}
