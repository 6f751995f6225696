//! Replicated partitions on one shard: one Raft group per partition replica set, all driven
//! by ONE loop per shard ([`ReplicaManager::run`]), Redpanda-style.
//!
//! The Kafka log is the Raft log (`replica_storage`): a Raft entry is a record batch, its term
//! the batch's leader epoch, except Raft's own entries (no-ops, membership changes, log-start
//! commands), kept beside the log at no Kafka offset. The loop owns every Raft node of the
//! shard and is the only code that changes them, so nothing steps a node between its Ready
//! and its advance:
//!
//! 1. step: queued peer messages, queued produce proposals, the tick;
//! 2. persist: every group's Ready entries are appended to its log and synced (all groups at
//!    once, so one round costs one fdatasync per busy log, however many produce requests it
//!    carries: group commit), hard state after them;
//! 3. send: the messages of all groups, one frame per peer node (`GroupManager` batching,
//!    idle groups' heartbeats are their id only);
//! 4. advance and apply: the commit index becomes the high watermark (consumers read only
//!    committed batches), acks=all waiters whose index committed are answered, acks=1
//!    waiters once their batch is in the leader's log.
//!
//! The leader's view of its followers gives the ISR: a follower is in sync while it has
//! matched the leader's last index within the last [`REPLICA_LAG_MAX`].

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringlet_raft::{Entry, GroupManager, HardState, NodeId, RawNode, Ready};
use ringlet_shard::signal::{oneshot, Notify, OneshotSender};

use super::replica_storage::{Anchor, EntryWrites, ReplicaStorage};
use super::waiters::join_all;
use super::Partition;
use crate::cluster::leaders::LeaderReport;
use crate::error::BrokerError;

mod idempotence;
mod log_start;
mod retention;

use idempotence::{Admission, ProducerWrites, RoundProducers};

/// Kafka's `replica.lag.time.max.ms` is 30 s; a shorter window reports a dead follower
/// out of the ISR sooner (and refuses acks=all under min.insync.replicas sooner).
pub const REPLICA_LAG_MAX: Duration = Duration::from_secs(10);
/// Payload cache of an internal topic's replica (`__consumer_offsets`: fifty partitions on
/// every broker, each written a few small records at a time). The 16 MiB a data partition
/// needs would let them hold 800 MiB per broker between them.
const INTERNAL_TOPIC_CACHE_BYTES: usize = 1 << 20;
/// How long a produce waits for its batch to commit when its request gives no timeout.
pub const PRODUCE_COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a leader that is not its partition's preferred leader (the first replica)
/// hands leadership back to it once it is in sync (Kafka's auto leader rebalance).
pub const PREFERRED_LEADER_CHECK: Duration = Duration::from_secs(5);
/// Pause after a round whose log write failed, before the next try.
const PERSIST_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Bytes read back from the log per missing range and round (a lagging follower's
/// catch-up); small against the payload cache, so a read-back does not evict the fresh
/// appends the followers that are caught up need next.
const READ_BACK_BYTES: usize = 1 << 20;

/// A request's `timeout_ms` as the bound on waiting for the replicas (0 or less: the
/// default, [`PRODUCE_COMMIT_TIMEOUT`]).
pub fn commit_timeout(timeout_ms: i32) -> Duration {
    u64::try_from(timeout_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map_or(PRODUCE_COMMIT_TIMEOUT, Duration::from_millis)
}

/// What a produce waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// acks=1: in the leader's log.
    Leader,
    /// acks=all: committed (durable on a majority).
    Quorum,
}

/// Base and last offset of a replicated append.
pub type Replicated = Result<(i64, i64), BrokerError>;
/// Where a queued proposal's outcome arrives.
pub type ProposalReceiver = ringlet_shard::signal::OneshotReceiver<Replicated>;

/// Who wrote a proposed batch (Kafka's `AppendOrigin`): a client's batches are checked
/// against the producer state; a coordinator's (transaction markers, transactional offset
/// commits) carry no sequence and get the coordinator's checks only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Client,
    Coordinator,
}

struct Proposal {
    group: u64,
    data: Bytes,
    acks: Acks,
    origin: Origin,
    reply: OneshotSender<Replicated>,
}

struct PendingAck {
    term: u64,
    acks: Acks,
    reply: OneshotSender<Replicated>,
}

/// One replica of one partition on this shard.
pub struct Replica {
    pub group: u64,
    pub partition: Rc<Partition>,
    pub state_dir: PathBuf,
    pub replicas: Vec<i32>,
    pub min_insync_replicas: Cell<i32>,
    /// Raft index -> produce waiters.
    pending: RefCell<BTreeMap<u64, Vec<PendingAck>>>,
    /// Follower -> when it last matched our last index (leader only).
    caught_up_at: RefCell<HashMap<NodeId, Instant>>,
    last_report: RefCell<Option<LeaderReport>>,
    /// The last leader this replica knew of (-1: none yet); elections report "no leader"
    /// in between, so `last_report` alone forgets who led before.
    last_known_leader: Cell<i32>,
    /// Term and vote last synced to the state file (commit-only changes are not synced).
    synced_hard_state: Cell<HardState>,
    /// When this leader last considered handing leadership to the preferred replica.
    preferred_checked_at: Cell<Option<Instant>>,
    /// Written log-start commands (DeleteRecords) not yet applied: Raft index -> offset.
    log_start_commands: RefCell<BTreeMap<u64, i64>>,
}

pub struct ReplicaManager {
    node_id: i32,
    groups: RefCell<GroupManager<ReplicaStorage>>,
    replicas: RefCell<HashMap<u64, Rc<Replica>>>,
    inbox: RefCell<Vec<ringlet_raft::wire::Batch>>,
    proposals: RefCell<Vec<Proposal>>,
    wake: Notify,
    tick: Duration,
    /// Frames ready for peers, taken by the sender after each round.
    outgoing: RefCell<Vec<(NodeId, Bytes)>>,
    /// Leadership reports that changed since the last time they were taken.
    changed_reports: RefCell<Vec<LeaderReport>>,
    /// Kafka `log.retention.check.interval.ms` (see `retention`).
    retention_check_interval: Cell<Duration>,
    /// Off until the broker has caught up with the cluster's metadata (topic configs).
    retention_allowed: Cell<bool>,
}

impl ReplicaManager {
    pub fn new(node_id: i32, tick: Duration) -> Rc<Self> {
        Rc::new(ReplicaManager {
            node_id,
            groups: RefCell::new(GroupManager::new(node_id as NodeId)),
            replicas: RefCell::new(HashMap::new()),
            inbox: RefCell::new(Vec::new()),
            proposals: RefCell::new(Vec::new()),
            wake: Notify::new(),
            tick,
            outgoing: RefCell::new(Vec::new()),
            changed_reports: RefCell::new(Vec::new()),
            retention_check_interval: Cell::new(super::RETENTION_CHECK_INTERVAL),
            retention_allowed: Cell::new(false),
        })
    }

    /// The broker has caught up with the metadata log: topic configs are current.
    pub fn allow_retention(&self) {
        self.retention_allowed.set(true);
    }

    pub fn set_retention_check_interval(&self, interval: Duration) {
        self.retention_check_interval.set(interval);
    }

    pub fn replica(&self, group: u64) -> Option<Rc<Replica>> {
        self.replicas.borrow().get(&group).cloned()
    }

    pub fn groups(&self) -> Vec<u64> {
        self.replicas.borrow().keys().copied().collect()
    }

    /// Starts replicating `partition` as a member of `group` with `replicas` as voters.
    pub async fn add(
        &self,
        group: u64,
        partition: Rc<Partition>,
        replicas: Vec<i32>,
        min_insync_replicas: i32,
    ) -> Result<(), BrokerError> {
        if self.replicas.borrow().contains_key(&group) {
            return Ok(());
        }
        let voters: Vec<NodeId> = replicas.iter().map(|id| *id as NodeId).collect();
        let state_dir = partition.log().dir().to_path_buf();
        let mut storage = ReplicaStorage::open(partition.log(), &state_dir, &voters)
            .await
            .map_err(|err| {
                BrokerError::Storage(format!("replica state of group {group}: {err}"))
            })?;
        if crate::config::topic_name::is_internal_topic(partition.topic()) {
            storage.set_cache_bytes_max(INTERNAL_TOPIC_CACHE_BYTES);
        }
        let scanned_commands = std::mem::take(&mut storage.scanned_log_start_commands);
        let hard_state = ringlet_raft::Storage::hard_state(&storage);
        let mut config = ringlet_raft::Config::new(self.node_id as NodeId);
        config.election_ticks = 10;
        config.heartbeat_ticks = 2;
        let seed = group.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.node_id as u64;
        let election_ticks = config.election_ticks;
        let mut node = RawNode::new(config, storage, ringlet_raft::SplitMix64::new(seed))
            .map_err(|err| BrokerError::internal(format!("raft group {group}: {err}")))?;
        if hard_state.term == 0 {
            // A new partition: its preferred replica (the first, as placement chose it)
            // leads from the start, as Kafka's controller names it at creation. Left to
            // the election timers, the group would have no leader for a second or two, and
            // then move it to the preferred replica (another leaderless moment, another
            // epoch).
            if replicas.first() == Some(&self.node_id) {
                node.campaign_now();
            } else {
                node.delay_election(2 * election_ticks);
            }
        }
        partition.set_replicated(group);
        let replica = Rc::new(Replica {
            group,
            partition,
            state_dir,
            replicas,
            min_insync_replicas: Cell::new(min_insync_replicas),
            pending: RefCell::new(BTreeMap::new()),
            caught_up_at: RefCell::new(HashMap::new()),
            last_report: RefCell::new(None),
            synced_hard_state: Cell::new(hard_state),
            preferred_checked_at: Cell::new(None),
            last_known_leader: Cell::new(-1),
            // Those a crash left unapplied are applied once committed (again: a no-op).
            log_start_commands: RefCell::new(scanned_commands.into_iter().collect()),
        });
        if self.replicas.borrow().contains_key(&group) {
            return Ok(()); // added by a concurrent reconcile while we opened
        }
        self.groups
            .borrow_mut()
            .add_group(group, node)
            .map_err(|err| BrokerError::internal(err.to_string()))?;
        self.replicas.borrow_mut().insert(group, replica);
        tracing::info!(group, "replica started");
        self.wake.notify();
        Ok(())
    }

    /// Stops replicating `group` (its topic was deleted); waiters get NOT_LEADER.
    pub fn remove(&self, group: u64) -> Option<Rc<Replica>> {
        self.groups.borrow_mut().remove_group(group);
        let replica = self.replicas.borrow_mut().remove(&group)?;
        fail_all(&replica, || BrokerError::UnknownTopicOrPartition);
        Some(replica)
    }

    /// Queues a Raft batch (this shard's groups' messages) from a peer.
    pub fn receive(&self, batch: ringlet_raft::wire::Batch) {
        self.inbox.borrow_mut().push(batch);
        self.wake.notify();
    }

    pub fn is_leader(&self, group: u64) -> bool {
        let groups = self.groups.borrow();
        groups.group(group).is_some_and(|node| node.is_leader())
    }

    /// The leader epoch while this node leads `group` AND has committed an entry of its own
    /// term: only then is its high watermark the true commit point (a new leader's commit
    /// index may lag until its first entry commits), so state rebuilt from the log, like a
    /// group coordinator's, is complete.
    /// Else NOT_COORDINATOR where it does not lead, COORDINATOR_LOAD_IN_PROGRESS where it
    /// leads but has not committed in its term yet (Kafka's answers for the same cases).
    pub fn serving_epoch(&self, group: u64) -> Result<i32, BrokerError> {
        let groups = self.groups.borrow();
        let node = groups
            .group(group)
            .filter(|node| node.is_leader())
            .ok_or(BrokerError::NotCoordinator)?;
        let term = node.term();
        let committed_in_term = node.log_term(node.commit_index()).is_ok_and(|t| t == term);
        if !committed_in_term {
            return Err(BrokerError::CoordinatorLoadInProgress);
        }
        Ok(term as i32)
    }

    /// Replicates one produced batch; resolves per `acks`, or REQUEST_TIMED_OUT after
    /// `timeout` (the produce request's `timeout_ms`).
    pub async fn produce(
        &self,
        group: u64,
        records: BytesMut,
        acks: Acks,
        timeout: Duration,
    ) -> Replicated {
        self.produce_as(group, records, acks, timeout, Origin::Client)
            .await
    }

    /// [`ReplicaManager::produce`] for a batch from `origin`.
    pub async fn produce_as(
        &self,
        group: u64,
        records: BytesMut,
        acks: Acks,
        timeout: Duration,
        origin: Origin,
    ) -> Replicated {
        let receiver = self.propose_as(group, records, acks, origin)?;
        self.replicated(receiver, timeout).await
    }

    /// The first half of [`ReplicaManager::produce`]: queues a client's batch for `group`
    /// now (proposals are replicated in the order they are queued); the receiver gets its
    /// outcome ([`ReplicaManager::replicated`]).
    pub fn propose_produced(
        &self,
        group: u64,
        records: BytesMut,
        acks: Acks,
    ) -> Result<ProposalReceiver, BrokerError> {
        self.propose_as(group, records, acks, Origin::Client)
    }

    fn propose_as(
        &self,
        group: u64,
        records: BytesMut,
        acks: Acks,
        origin: Origin,
    ) -> Result<ProposalReceiver, BrokerError> {
        // A Raft entry is exactly one batch (its offsets are planned from that batch's
        // header): anything else is the caller's bug, refused here rather than found by the
        // storage's invariant after it was replicated.
        let batches = ringlet_protocol::record_batch::split_batches(&records)
            .map_err(|err| BrokerError::CorruptMessage(err.to_string()))?;
        if batches.len() != 1 {
            return Err(BrokerError::internal(format!(
                "a replicated write of {} record batches (one expected)",
                batches.len()
            )));
        }
        let Some(replica) = self.replica(group) else {
            return Err(BrokerError::NotLeaderOrFollower);
        };
        if !self.is_leader(group) {
            return Err(BrokerError::NotLeaderOrFollower);
        }
        if acks == Acks::Quorum {
            let isr = self.isr(&replica);
            let min = replica.min_insync_replicas.get();
            if (isr.len() as i32) < min {
                return Err(BrokerError::NotEnoughReplicas(format!(
                    "the in-sync replicas {isr:?} are fewer than min.insync.replicas={min}"
                )));
            }
        }
        let (reply, receiver) = oneshot();
        self.proposals.borrow_mut().push(Proposal {
            group,
            data: records.freeze(),
            acks,
            origin,
            reply,
        });
        self.wake.notify();
        Ok(receiver)
    }

    /// The second half of [`ReplicaManager::produce`]: the proposal's outcome, or
    /// REQUEST_TIMED_OUT after `timeout`.
    pub async fn replicated(&self, receiver: ProposalReceiver, timeout: Duration) -> Replicated {
        match ringlet_shard::task::timeout(timeout, receiver).await {
            Some(Some(outcome)) => outcome,
            Some(None) => Err(BrokerError::NotLeaderOrFollower),
            None => Err(BrokerError::RequestTimedOut(
                "the batch was not replicated to a majority in time".into(),
            )),
        }
    }

    /// The in-sync replicas of `group` if this node leads it (itself first), else none.
    pub fn in_sync_replicas(&self, group: u64) -> Vec<i32> {
        match self.replica(group) {
            Some(replica) if self.is_leader(group) => self.isr(&replica),
            _ => Vec::new(),
        }
    }

    /// The in-sync replicas of a group this node leads (itself first).
    fn isr(&self, replica: &Replica) -> Vec<i32> {
        let now = Instant::now();
        let caught_up = replica.caught_up_at.borrow();
        let mut isr = vec![self.node_id];
        for id in &replica.replicas {
            if *id == self.node_id {
                continue;
            }
            let fresh = caught_up
                .get(&(*id as NodeId))
                .is_some_and(|at| now.duration_since(*at) < REPLICA_LAG_MAX);
            if fresh {
                isr.push(*id);
            }
        }
        isr
    }

    /// Frames for peers produced by the last rounds.
    pub fn take_outgoing(&self) -> Vec<(NodeId, Bytes)> {
        std::mem::take(&mut *self.outgoing.borrow_mut())
    }

    /// Leadership reports that changed since the last call.
    pub fn take_changed_reports(&self) -> Vec<LeaderReport> {
        std::mem::take(&mut *self.changed_reports.borrow_mut())
    }

    /// Every replica's current report.
    pub fn all_reports(&self) -> Vec<LeaderReport> {
        self.replicas
            .borrow()
            .values()
            .filter_map(|replica| replica.last_report.borrow().clone())
            .collect()
    }

    /// The driver loop; `send` ships frames to peers after each round.
    pub async fn run(self: Rc<Self>, send: impl Fn(Vec<(NodeId, Bytes)>)) {
        let mut next_tick = Instant::now() + self.tick;
        let mut next_retention = Instant::now() + self.retention_check_interval.get();
        loop {
            let now = Instant::now();
            let tick = now >= next_tick;
            if tick {
                next_tick = now + self.tick;
            }
            self.round(tick, &send).await;
            send(self.take_outgoing());
            // Like retention, between rounds: no Ready of the same group is being persisted.
            self.apply_log_start_commands().await;
            if now >= next_retention {
                // In the driver loop, between rounds: no Ready of the same group (a
                // snapshot install, a suffix cut) is being persisted meanwhile.
                self.enforce_retention().await;
                next_retention = Instant::now() + self.retention_check_interval.get();
            }
            if self.has_work() {
                ringlet_shard::task::yield_if_needed().await;
                continue;
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            ringlet_shard::task::timeout(wait, self.wake.notified()).await;
        }
    }

    fn has_work(&self) -> bool {
        !self.inbox.borrow().is_empty()
            || !self.proposals.borrow().is_empty()
            || self
                .groups
                .borrow()
                .groups()
                .any(|(_, node)| node.has_ready())
    }

    /// One step-persist-send-apply round over every group of the shard; `send` also hands
    /// the changed leadership reports on.
    async fn round(&self, tick: bool, send: &impl Fn(Vec<(NodeId, Bytes)>)) {
        let stepped = self.step_inputs(tick);
        if self.report_new_leaders(&stepped) {
            send(Vec::new());
        }
        let readies = self.take_readies();
        if readies.is_empty() {
            if tick {
                // A tick can change a role without producing a Ready (a leader that lost
                // its quorum steps down silently): stop serving as leader at once.
                self.apply_all_commits();
                self.report_leadership();
            }
            return;
        }
        let persisted = self.persist_all(&readies).await;
        let failed = !self.advance_all(readies, persisted);
        if failed {
            // The failed Readys are retried next round; pause so a failing disk (full,
            // read-only) or a refused snapshot is not retried in a busy loop that starves
            // the shard.
            ringlet_shard::task::sleep(PERSIST_RETRY_PAUSE).await;
        }
        self.outgoing
            .borrow_mut()
            .extend(self.groups.borrow_mut().take_frames());
        self.load_missing().await;
        self.report_leadership();
    }

    /// Steps queued messages, proposals and the tick; returns the groups messages reached.
    fn step_inputs(&self, tick: bool) -> BTreeSet<u64> {
        let inbox = std::mem::take(&mut *self.inbox.borrow_mut());
        let proposals = std::mem::take(&mut *self.proposals.borrow_mut());
        let mut groups = self.groups.borrow_mut();
        let stepped = inbox
            .iter()
            .flat_map(|batch| batch.messages.iter().map(|m| m.group))
            .collect();
        for batch in inbox {
            if let Err(err) = groups.step_batch(batch) {
                tracing::debug!(error = %err, "raft message refused");
            }
        }
        let mut round = RoundProducers::default();
        for proposal in proposals {
            self.propose(&mut groups, &mut round, proposal);
        }
        if tick {
            groups.tick();
            self.restore_preferred_leaders(&mut groups);
        }
        stepped
    }

    /// A leader that is not the preferred replica transfers leadership to it once the
    /// preferred replica is in sync (after a restart, leadership goes back where the
    /// controller's placement spread it).
    fn restore_preferred_leaders(&self, groups: &mut GroupManager<ReplicaStorage>) {
        let now = Instant::now();
        let me = self.node_id;
        for replica in self.replicas.borrow().values() {
            let Some(&preferred) = replica.replicas.first() else {
                continue;
            };
            let Ok(node) = groups.group_mut(replica.group) else {
                continue;
            };
            if preferred == me || !node.is_leader() {
                replica.preferred_checked_at.set(None);
                continue;
            }
            let due = replica
                .preferred_checked_at
                .get()
                .is_some_and(|at| now.duration_since(at) >= PREFERRED_LEADER_CHECK);
            if replica.preferred_checked_at.get().is_none() {
                replica.preferred_checked_at.set(Some(now));
            }
            if due {
                replica.preferred_checked_at.set(Some(now));
                // Its own progress, not the inherited ISR: a transfer to a replica that is
                // down or behind would stall the partition for an election timeout.
                let last = node.last_index();
                if is_caught_up(node, preferred as NodeId, last) {
                    tracing::info!(
                        group = replica.group,
                        to = preferred,
                        "restoring the preferred leader"
                    );
                    node.transfer_leadership(preferred as NodeId);
                }
            }
        }
    }

    fn propose(
        &self,
        groups: &mut GroupManager<ReplicaStorage>,
        round: &mut RoundProducers,
        proposal: Proposal,
    ) {
        let Proposal {
            group,
            data,
            acks,
            origin,
            reply,
        } = proposal;
        let (Ok(node), Some(replica)) = (groups.group_mut(group), self.replica(group)) else {
            reply.send(Err(BrokerError::NotLeaderOrFollower));
            return;
        };
        if !node.is_leader() {
            reply.send(Err(BrokerError::NotLeaderOrFollower));
            return;
        }
        match round.admit(group, &replica.partition, &data, origin) {
            Ok(Admission::Propose) => {}
            Ok(Admission::Duplicate(first_offset)) => {
                answer_duplicate(node, &replica, first_offset, acks, reply);
                return;
            }
            Err(err) => {
                reply.send(Err(err));
                return;
            }
        }
        let term = node.term();
        match node.propose(data) {
            Ok(index) => replica
                .pending
                .borrow_mut()
                .entry(index)
                .or_default()
                .push(PendingAck { term, acks, reply }),
            Err(_) => {
                // Not proposed after all: what admit counted for it must not carry over.
                round.forget(group);
                reply.send(Err(BrokerError::NotLeaderOrFollower));
            }
        }
    }

    fn take_readies(&self) -> Vec<(u64, Ready)> {
        let mut groups = self.groups.borrow_mut();
        let all: Vec<u64> = groups.groups().map(|(group, _)| group).collect();
        let mut ids = Vec::new();
        for group in all {
            if let Ok(node) = groups.group_mut(group) {
                node.mark_committed_applied();
                if node.has_ready() {
                    ids.push(group);
                }
            }
        }
        ids.into_iter()
            .filter_map(|group| Some((group, groups.group_mut(group).ok()?.ready())))
            .collect()
    }

    /// Writes every Ready's entries and hard state; all groups' writes in flight together.
    async fn persist_all(&self, readies: &[(u64, Ready)]) -> Vec<Result<(), BrokerError>> {
        let plans: Vec<_> = readies
            .iter()
            .map(|(group, ready)| (self.replica(*group), self.write_plan(*group, ready)))
            .collect();
        let writes = plans
            .into_iter()
            .zip(readies)
            .map(|((replica, plan), (_, ready))| {
                Box::pin(async move {
                    let replica = replica.ok_or(BrokerError::UnknownTopicOrPartition)?;
                    let (restart, writes) = plan?;
                    persist_one(&replica, restart, writes, ready.hard_state).await
                }) as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>
            })
            .collect();
        join_all(writes).await
    }

    /// What to write for a Ready, planned against the storage view as it is now (before
    /// the Ready's `append` updates it): with a snapshot, the anchor to restart the log at
    /// first, and the entries planned as if the log already started there.
    fn write_plan(
        &self,
        group: u64,
        ready: &Ready,
    ) -> Result<(Option<Anchor>, EntryWrites), BrokerError> {
        let storage_err = |err: ringlet_io::LogError| BrokerError::Storage(err.to_string());
        let groups = self.groups.borrow();
        let node = groups
            .group(group)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let Some(snapshot) = &ready.snapshot else {
            let writes = node.storage().write_plan(&ready.entries);
            return Ok((None, writes.map_err(storage_err)?));
        };
        let anchor = ReplicaStorage::anchor_of_snapshot(snapshot)
            .map_err(|reason| BrokerError::Storage(reason.to_string()))?;
        let restarted = ReplicaStorage::new(anchor, HardState::default(), &[]);
        let writes = restarted.write_plan(&ready.entries).map_err(storage_err)?;
        Ok((Some(anchor), writes))
    }

    /// Advances every Ready that was persisted; false when any was not (it is retried).
    fn advance_all(
        &self,
        readies: Vec<(u64, Ready)>,
        persisted: Vec<Result<(), BrokerError>>,
    ) -> bool {
        let mut all_advanced = true;
        for ((group, mut ready), outcome) in readies.into_iter().zip(persisted) {
            if let Err(err) = outcome {
                // Not advanced: the entries stay unstable and the next round writes them
                // again; nothing promised to a peer or a producer leaves before that.
                tracing::error!(group, error = %err, "replica write failed");
                all_advanced = false;
                continue;
            }
            let messages = std::mem::take(&mut ready.messages);
            let Some(replica) = self.replica(group) else {
                continue;
            };
            {
                let mut groups = self.groups.borrow_mut();
                let Ok(node) = groups.group_mut(group) else {
                    continue;
                };
                if let Err(err) = ringlet_raft::manager::persist_ready(node.storage_mut(), &ready) {
                    // A gap or an unreadable snapshot: not advanced either, and paused like
                    // a failed write.
                    tracing::error!(group, error = %err, "replica storage refused a Ready");
                    all_advanced = false;
                    continue;
                }
                node.advance(&ready);
                groups.queue(group, messages);
            }
            if let Some(hs) = ready.hard_state {
                replica.synced_hard_state.set(HardState {
                    commit: replica.synced_hard_state.get().commit,
                    ..hs
                });
            }
            self.after_advance(&replica, &ready.entries);
        }
        // Groups without a Ready may still have moved (a heartbeat carried a commit).
        self.apply_all_commits();
        all_advanced
    }

    fn apply_all_commits(&self) {
        let replicas: Vec<Rc<Replica>> = self.replicas.borrow().values().cloned().collect();
        for replica in replicas {
            self.apply_commit(&replica);
        }
    }

    /// acks=1 waiters of entries now in the leader's log.
    fn after_advance(&self, replica: &Replica, entries: &[Entry]) {
        let Some(last) = entries.last() else {
            return;
        };
        let first = entries[0].index;
        let mut answered = Vec::new();
        {
            let mut pending = replica.pending.borrow_mut();
            for (index, waiters) in pending.range_mut(first..=last.index) {
                let (leader_acks, rest): (Vec<_>, Vec<_>) = std::mem::take(waiters)
                    .into_iter()
                    .partition(|w| w.acks == Acks::Leader);
                *waiters = rest;
                answered.extend(leader_acks.into_iter().map(|w| (*index, w)));
            }
            pending.retain(|_, waiters| !waiters.is_empty());
        }
        for (index, waiter) in answered {
            let outcome = self.offsets_if_term(replica.group, index, waiter.term);
            waiter.reply.send(outcome);
        }
    }

    /// Moves the high watermark to the commit index and answers acks=all waiters.
    fn apply_commit(&self, replica: &Replica) {
        let (commit, hw, term, leading) = {
            let groups = self.groups.borrow();
            let Some(node) = groups.group(replica.group) else {
                return;
            };
            let commit = written_commit(node);
            (
                commit,
                node.storage().high_watermark(commit),
                node.term(),
                node.is_leader(),
            )
        };
        replica.partition.set_leader_epoch(term as i32);
        replica.partition.set_leading(leading);
        replica.partition.set_high_watermark(hw);
        let done: Vec<(u64, Vec<PendingAck>)> = {
            let mut pending = replica.pending.borrow_mut();
            let rest = pending.split_off(&(commit + 1));
            std::mem::replace(&mut *pending, rest).into_iter().collect()
        };
        for (index, waiters) in done {
            for waiter in waiters {
                let outcome = self.offsets_if_term(replica.group, index, waiter.term);
                waiter.reply.send(outcome);
            }
        }
        if !leading {
            // A deposed leader's uncommitted proposals may be overwritten: tell them now.
            fail_all(replica, || BrokerError::NotLeaderOrFollower);
        }
    }

    /// The offsets of the entry at `index` if it is still the one proposed in `term`.
    fn offsets_if_term(&self, group: u64, index: u64, term: u64) -> Replicated {
        let groups = self.groups.borrow();
        let node = groups
            .group(group)
            .ok_or(BrokerError::NotLeaderOrFollower)?;
        match node.log_term(index) {
            Ok(t) if t == term => node
                .storage()
                .batch_offsets_of(index)
                .ok_or(BrokerError::NotLeaderOrFollower),
            _ => Err(BrokerError::NotLeaderOrFollower),
        }
    }

    /// Fills the payload caches a leader found empty while sending to a lagging follower.
    async fn load_missing(&self) {
        let wanted: Vec<(Rc<Replica>, u64, u64)> = {
            let groups = self.groups.borrow();
            groups
                .groups()
                .filter_map(|(group, node)| {
                    let (lo, hi) = node.storage().take_missing()?;
                    Some((self.replica(group)?, lo, hi))
                })
                .collect()
        };
        for (replica, lo, hi) in wanted {
            let plan = {
                let groups = self.groups.borrow();
                groups
                    .group(replica.group)
                    .and_then(|node| node.storage().read_back_plan(lo, hi))
            };
            let Some((offset, count)) = plan else {
                continue;
            };
            match ReplicaStorage::read_back(replica.partition.log(), offset, count, READ_BACK_BYTES)
                .await
            {
                Ok(batches) => {
                    let mut groups = self.groups.borrow_mut();
                    if let Ok(node) = groups.group_mut(replica.group) {
                        node.storage_mut().insert_loaded(lo, batches);
                        // Send now rather than at the next heartbeat answer (a lagging
                        // follower would otherwise catch up one read-back per 200 ms).
                        node.resume_appends();
                    }
                }
                Err(err) => tracing::warn!(group = replica.group, error = %err, "read-back failed"),
            }
        }
    }

    /// Records each group's leader, epoch and (when leading) ISR; queues changed ones.
    fn report_leadership(&self) {
        let now = Instant::now();
        let replicas: Vec<Rc<Replica>> = self.replicas.borrow().values().cloned().collect();
        for replica in replicas {
            self.report_replica(&replica, now);
        }
    }

    /// Reports the groups among `stepped` whose replica has just learned of a new leader,
    /// before the round's write: a follower names its leader as soon as it hears from it, so
    /// Metadata on its broker agrees with the leader's (CreateTopics answers once the leaders
    /// are known) without waiting for the follower's fsync. True when anything was queued.
    fn report_new_leaders(&self, stepped: &BTreeSet<u64>) -> bool {
        let now = Instant::now();
        let mut queued = false;
        for group in stepped {
            let Some(replica) = self.replica(*group) else {
                continue;
            };
            let learned = {
                let groups = self.groups.borrow();
                let Some(node) = groups.group(*group) else {
                    continue;
                };
                let known = (node.leader().map_or(-1, |id| id as i32), node.term() as i32);
                let reported = replica
                    .last_report
                    .borrow()
                    .as_ref()
                    .map(|r| (r.leader, r.epoch));
                known.0 >= 0 && reported != Some(known)
            };
            if learned {
                queued |= self.report_replica(&replica, now);
            }
        }
        queued
    }

    /// Records one group's leader, epoch and (when leading) ISR; queues it if it changed.
    fn report_replica(&self, replica: &Rc<Replica>, now: Instant) -> bool {
        {
            let report = {
                let groups = self.groups.borrow();
                let Some(node) = groups.group(replica.group) else {
                    return false;
                };
                if node.is_leader() {
                    let last = node.last_index();
                    let mut caught_up = replica.caught_up_at.borrow_mut();
                    let was_leading =
                        replica.last_report.borrow().as_ref().is_some_and(|r| {
                            r.leader == self.node_id && r.epoch == node.term() as i32
                        });
                    if !was_leading {
                        // A new leader inherits the ISR, as Kafka's does: every replica counts
                        // as in sync until it fails to catch up within REPLICA_LAG_MAX (the
                        // commit itself always needs a majority, whatever the ISR says). Not
                        // the leader it replaces: an election means that one stopped
                        // answering (KRaft drops it from the ISR likewise); after a transfer
                        // it is back within a heartbeat.
                        let previous = replica.last_known_leader.get();
                        for id in &replica.replicas {
                            if *id == previous {
                                caught_up.remove(&(*id as NodeId));
                            } else {
                                caught_up.insert(*id as NodeId, now);
                            }
                        }
                    }
                    for id in &replica.replicas {
                        let peer = *id as NodeId;
                        if is_caught_up(node, peer, last) {
                            caught_up.insert(peer, now);
                        }
                    }
                }
                LeaderReport {
                    group: replica.group,
                    leader: node.leader().map_or(-1, |id| id as i32),
                    epoch: node.term() as i32,
                    isr: None,
                }
            };
            let report = if report.leader == self.node_id {
                LeaderReport {
                    isr: Some(self.isr(replica)),
                    ..report
                }
            } else {
                report
            };
            if report.leader >= 0 {
                replica.last_known_leader.set(report.leader);
            }
            let changed = replica.last_report.borrow().as_ref() != Some(&report);
            let moved = replica
                .last_report
                .borrow()
                .as_ref()
                .is_none_or(|r| (r.leader, r.epoch) != (report.leader, report.epoch));
            if moved {
                tracing::info!(
                    group = replica.group,
                    leader = report.leader,
                    epoch = report.epoch,
                    "partition leadership changed"
                );
            }
            if changed {
                *replica.last_report.borrow_mut() = Some(report.clone());
                self.changed_reports.borrow_mut().push(report);
            }
            changed
        }
    }
}

/// Appends a Ready's batches (the plan cuts a replaced suffix first) and waits until they
/// are durable, then syncs the hard state if its term or vote moved.
async fn persist_one(
    replica: &Replica,
    restart: Option<Anchor>,
    writes: EntryWrites,
    hard_state: Option<HardState>,
) -> Result<(), BrokerError> {
    let storage_err = |err: ringlet_io::LogError| BrokerError::Storage(err.to_string());
    // A restart empties the log; a cut replaces its suffix from the first entry written.
    let replaced_from = match restart {
        Some(_) => Some(0),
        None => writes
            .first_index()
            .filter(|_| writes.cuts(replica.partition.log())),
    };
    let written = writes.written_batches();
    let producers = ProducerWrites::before(
        &replica.partition,
        replaced_from.is_some(),
        written.producer_batches,
    )?;
    if let Some(anchor) = restart {
        tracing::info!(
            group = replica.group,
            offset = anchor.base_offset,
            index = anchor.first_index,
            "behind the leader's log start: restarting the log there"
        );
        ReplicaStorage::restart_log(replica.partition.log(), &replica.state_dir, anchor)
            .await
            .map_err(storage_err)?;
    }
    // Entries written from an index replace whatever the log held there, in the sidecar
    // too (Raft's own entries, log-start commands among them), even without a log cut.
    let written_from = restart.map(|_| 0).or(writes.first_index());
    ReplicaStorage::write(replica.partition.log(), &replica.state_dir, writes)
        .await
        .map_err(storage_err)?;
    producers.after(&replica.partition).await?;
    replica.record_log_start_commands(written_from, written.log_start_commands);
    if let Some(hs) = hard_state {
        let synced = replica.synced_hard_state.get();
        if hs.term != synced.term || hs.vote != synced.vote {
            ReplicaStorage::write_hard_state(&replica.state_dir, hs)
                .await
                .map_err(storage_err)?;
        }
    }
    Ok(())
}

/// The commit index within this replica's own log: a follower may learn a commit index
/// beyond what it has written, and its high watermark only covers batches it has.
fn written_commit(node: &RawNode<ReplicaStorage>) -> u64 {
    node.commit_index()
        .min(ringlet_raft::Storage::last_index(node.storage()))
}

/// The leader's own evidence that `peer` is in sync: it holds `last` AND was heard from
/// lately (an idle partition's dead follower still "matches" the last index, but it stops
/// answering).
fn is_caught_up(node: &RawNode<ReplicaStorage>, peer: NodeId, last: u64) -> bool {
    node.progress(peer)
        .is_some_and(|p| p.matched >= last && p.recent_active)
}

/// A retry of the batch at `first_offset`: its offsets, at once for acks=1 or once it is
/// committed, as its original's acks=all waiter would have been answered.
fn answer_duplicate(
    node: &RawNode<ReplicaStorage>,
    replica: &Replica,
    first_offset: i64,
    acks: Acks,
    reply: OneshotSender<Replicated>,
) {
    let storage = node.storage();
    let found = storage.index_of_offset(first_offset).and_then(|index| {
        let offsets = storage.batch_offsets_of(index)?;
        Some((index, node.log_term(index).ok()?, offsets))
    });
    let Some((index, term, offsets)) = found else {
        // Below the log start by now: nothing to answer with but a retriable error.
        reply.send(Err(BrokerError::NotLeaderOrFollower));
        return;
    };
    if acks == Acks::Leader || index <= node.commit_index() {
        reply.send(Ok(offsets));
        return;
    }
    replica
        .pending
        .borrow_mut()
        .entry(index)
        .or_default()
        .push(PendingAck { term, acks, reply });
}

fn fail_all(replica: &Replica, error: impl Fn() -> BrokerError) {
    let pending = std::mem::take(&mut *replica.pending.borrow_mut());
    for waiter in pending.into_values().flatten() {
        waiter.reply.send(Err(error()));
    }
}
