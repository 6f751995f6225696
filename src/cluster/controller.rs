//! The metadata controller: Raft group 0 on the voter brokers (`--seeds`), on shard 0.
//!
//! Its committed log holds broker registrations, topics, partition assignments and configs
//! ([`MetadataCommand`]); applying it yields the [`MetadataState`] that every shard installs
//! as its read-only topic and broker tables. One driver task owns the Raft node and runs the
//! classic loop (step queued messages, tick, persist the Ready, send, advance, apply), so the
//! node is never touched between a Ready and its advance. Proposals wait for their index to
//! be applied and fail if a different entry (another leader's) landed there.
//!
//! The leader also tracks broker liveness from heartbeats (a broker silent for the session
//! timeout is fenced: it leaves the alive set, so new replicas avoid it and Metadata stops
//! listing it) and merges every broker's partition-leadership reports.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringlet_raft::{Config, EntryKind, GroupManager, NodeId, RawNode, SplitMix64};
use ringlet_shard::signal::{oneshot, Notify, OneshotSender};

use super::controller_log::ControllerLog;
use super::controller_rpc::{ControllerRequest, ControllerResponse, WireError};
use super::leaders::{LeaderReport, LeaderTable};
use super::metadata_stm::{BrokerRegistration, MetadataCommand, MetadataState};
use crate::error::BrokerError;

/// Group 0 is the controller (DESIGN.md).
pub const CONTROLLER_GROUP: u64 = 0;
/// How long a proposal waits to be applied.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// Committed commands handed to an observer (non-voter) per heartbeat.
const OBSERVER_BATCH: u64 = 256;

type Waiter = OneshotSender<Result<(), BrokerError>>;

pub struct Controller {
    node_id: i32,
    raft: RefCell<GroupManager<ControllerLog>>,
    stm: RefCell<MetadataState>,
    /// index -> (term proposed in, waiter).
    pending: RefCell<BTreeMap<u64, (u64, Waiter)>>,
    /// Broker -> last heartbeat (leader only; rebuilt by a new leader from heartbeats).
    last_seen: RefCell<HashMap<i32, Instant>>,
    became_leader_at: Cell<Option<Instant>>,
    reports: RefCell<LeaderTable>,
    session_timeout: Duration,
    inbox: RefCell<Vec<ringlet_raft::wire::Batch>>,
    wake: Notify,
    /// Bumped whenever the applied state changes, so installs can be ordered.
    applied_version: Cell<u64>,
}

impl Controller {
    /// Opens the controller log under `dir` with `voters` as the initial membership.
    pub fn open(
        node_id: i32,
        voters: &[i32],
        dir: &std::path::Path,
        session_timeout: Duration,
    ) -> Result<Rc<Self>, BrokerError> {
        let voters: Vec<NodeId> = voters.iter().map(|id| *id as NodeId).collect();
        let log = ControllerLog::open(dir, &voters)?;
        let mut config = Config::new(node_id as NodeId);
        config.election_ticks = 10;
        config.heartbeat_ticks = 2;
        let seed = 0x5EED_0000 ^ node_id as u64;
        let node = RawNode::new(config, log, SplitMix64::new(seed))
            .map_err(|err| BrokerError::Startup(format!("controller raft: {err}")))?;
        let mut raft = GroupManager::new(node_id as NodeId);
        raft.add_group(CONTROLLER_GROUP, node)
            .map_err(|err| BrokerError::Startup(format!("controller raft: {err}")))?;
        Ok(Rc::new(Controller {
            node_id,
            raft: RefCell::new(raft),
            stm: RefCell::new(MetadataState::default()),
            pending: RefCell::new(BTreeMap::new()),
            last_seen: RefCell::new(HashMap::new()),
            became_leader_at: Cell::new(None),
            reports: RefCell::new(LeaderTable::default()),
            session_timeout,
            inbox: RefCell::new(Vec::new()),
            wake: Notify::new(),
            applied_version: Cell::new(0),
        }))
    }

    /// The controller leader as this voter knows it.
    pub fn leader(&self) -> Option<i32> {
        let raft = self.raft.borrow();
        let node = raft.group(CONTROLLER_GROUP)?;
        node.leader().map(|id| id as i32)
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.node_id)
    }

    /// The applied metadata (topics, brokers).
    pub fn state(&self) -> std::cell::Ref<'_, MetadataState> {
        self.stm.borrow()
    }

    pub fn applied_version(&self) -> u64 {
        self.applied_version.get()
    }

    /// Queues a Raft batch from a peer (its group-0 messages) for the driver.
    pub fn receive(&self, batch: ringlet_raft::wire::Batch) {
        self.inbox.borrow_mut().push(batch);
        self.wake.notify();
    }

    /// Proposes `command` if this voter leads; resolves once applied.
    pub async fn propose(&self, command: &MetadataCommand) -> Result<(), BrokerError> {
        let receiver = {
            let mut raft = self.raft.borrow_mut();
            let node = raft
                .group_mut(CONTROLLER_GROUP)
                .map_err(|err| BrokerError::internal(err.to_string()))?;
            let term = node.term();
            let index = node.propose(command.encode()).map_err(|_| {
                BrokerError::NotController(format!("node {} does not lead", self.node_id))
            })?;
            let (sender, receiver) = oneshot();
            self.pending.borrow_mut().insert(index, (term, sender));
            receiver
        };
        self.wake.notify();
        match ringlet_shard::task::timeout(PROPOSE_TIMEOUT, receiver).await {
            Some(Some(outcome)) => outcome,
            Some(None) => Err(BrokerError::NotController(
                "the controller lost its leadership before applying the request".into(),
            )),
            None => Err(BrokerError::RequestTimedOut(
                "the controller did not apply the request in time".into(),
            )),
        }
    }

    /// The leader's answer to a broker heartbeat: registers the broker when needed (in the
    /// background), records it alive, merges its reports, and hands an observer the committed
    /// commands after `applied_index`.
    pub fn heartbeat(
        self: &Rc<Self>,
        registration: BrokerRegistration,
        reports: Vec<LeaderReport>,
        observer_applied: Option<u64>,
    ) -> ControllerResponse {
        if !self.is_leader() {
            return ControllerResponse::NotLeader {
                leader: self.leader(),
            };
        }
        let node = registration.node_id;
        self.last_seen.borrow_mut().insert(node, Instant::now());
        let registered = self.stm.borrow().brokers().get(node) == Some(&registration);
        if !registered {
            let controller = Rc::clone(self);
            ringlet_shard::task::spawn_local(async move {
                let command = MetadataCommand::RegisterBroker(registration);
                if let Err(err) = controller.propose(&command).await {
                    tracing::warn!(broker = node, error = %err, "broker registration failed");
                }
            })
            .detach();
        }
        self.reports.borrow_mut().merge(reports);
        let commands = observer_applied
            .map(|after| {
                self.committed_after(after)
                    .into_iter()
                    .map(|(index, data)| (index, data.to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        ControllerResponse::Heartbeat {
            alive: self.alive_brokers(),
            reports: self.reports.borrow().reports().cloned().collect(),
            commands,
            metadata_applied: self.applied_index(),
        }
    }

    /// The last metadata command this replica has applied.
    pub fn applied_index(&self) -> u64 {
        self.stm.borrow().applied_index()
    }

    /// Registered brokers whose session has not expired. A new leader has heard no
    /// heartbeat yet: until a session has passed it counts a voter alive once it answered
    /// the leader's Raft traffic, and any other broker alive on trust.
    pub fn alive_brokers(&self) -> Vec<i32> {
        let now = Instant::now();
        let grace = self
            .became_leader_at
            .get()
            .is_some_and(|at| now.duration_since(at) < self.session_timeout);
        let last_seen = self.last_seen.borrow();
        let raft = self.raft.borrow();
        let node = raft.group(CONTROLLER_GROUP);
        let answered_raft = |id: i32| {
            id == self.node_id
                || node
                    .and_then(|n| n.progress(id as NodeId))
                    .is_some_and(|p| p.matched > 0)
        };
        let is_voter = |id: i32| node.is_some_and(|n| n.conf_state().is_voter(id as NodeId));
        self.stm
            .borrow()
            .brokers()
            .ids()
            .into_iter()
            .filter(|id| {
                let heard = last_seen
                    .get(id)
                    .is_some_and(|at| now.duration_since(*at) < self.session_timeout);
                heard || (grace && (!is_voter(*id) || answered_raft(*id)))
            })
            .collect()
    }

    /// Runs a request on the leader: placement for topic creation and growth happens here,
    /// with the leader's view of which brokers are alive.
    pub async fn execute(self: &Rc<Self>, request: ControllerRequest) -> ControllerResponse {
        if !self.is_leader() {
            return ControllerResponse::NotLeader {
                leader: self.leader(),
            };
        }
        let command = match request {
            ControllerRequest::Propose(command) => Ok(command),
            ControllerRequest::CreateTopic {
                name,
                topic_id,
                configs,
                partitions,
                replication_factor,
            } => self
                .place(partitions, replication_factor, 0)
                .map(|replicas| MetadataCommand::CreateTopic {
                    name,
                    topic_id,
                    configs,
                    replicas,
                }),
            ControllerRequest::CreatePartitions { name, new_total } => {
                self.grow_plan(&name, new_total)
            }
            ControllerRequest::Heartbeat {
                registration,
                reports,
                observer_applied,
            } => return self.heartbeat(registration, reports, observer_applied),
            ControllerRequest::WriteTxnMarkers { .. } => Err(BrokerError::InvalidRequest(
                "transaction markers go to partition leaders, not the controller".into(),
            )),
        };
        match command {
            Ok(command) => proposed(self.propose(&command).await),
            Err(err) => proposed(Err(err)),
        }
    }

    fn place(
        &self,
        partitions: i32,
        replication_factor: i32,
        first_partition: i32,
    ) -> Result<Vec<Vec<i32>>, BrokerError> {
        let brokers = self.stm.borrow().brokers();
        let live: Vec<(i32, Option<String>)> = self
            .alive_brokers()
            .into_iter()
            .map(|id| (id, brokers.get(id).and_then(|b| b.rack.clone())))
            .collect();
        let load = self.stm.borrow().preferred_leader_load();
        super::placement::assign_replicas(
            partitions,
            replication_factor,
            &live,
            &load,
            first_partition,
        )
    }

    fn grow_plan(&self, name: &str, new_total: i32) -> Result<MetadataCommand, BrokerError> {
        let meta = self
            .stm
            .borrow()
            .topics()
            .get(name)
            .cloned()
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        if new_total <= meta.partitions {
            return Err(BrokerError::InvalidPartitions(format!(
                "Topic currently has {} partitions, which is higher than the requested {new_total}.",
                meta.partitions
            )));
        }
        let factor = meta
            .assignments
            .first()
            .map_or(1, |assignment| assignment.replicas.len() as i32);
        let new_replicas = self.place(new_total - meta.partitions, factor, meta.partitions)?;
        Ok(MetadataCommand::CreatePartitions {
            name: name.to_string(),
            new_replicas,
        })
    }

    /// Committed commands after `after` (for observers), as encoded bytes with their index.
    pub fn committed_after(&self, after: u64) -> Vec<(u64, Bytes)> {
        let raft = self.raft.borrow();
        let Some(node) = raft.group(CONTROLLER_GROUP) else {
            return Vec::new();
        };
        let commit = node.commit_index();
        let lo = (after + 1).max(node.first_index());
        let hi = commit.min(lo + OBSERVER_BATCH - 1);
        if lo > hi {
            return Vec::new();
        }
        node.log_entries(lo, hi + 1)
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| entry.kind == EntryKind::Normal && !entry.data.is_empty())
            .map(|entry| (entry.index, entry.data))
            .collect()
    }

    /// One driver step: messages, tick, Ready. Returns the frames to send and whether the
    /// applied state changed.
    pub fn step(&self, tick: bool) -> (Vec<(NodeId, Bytes)>, bool) {
        let inbox = std::mem::take(&mut *self.inbox.borrow_mut());
        let mut committed = Vec::new();
        let frames = {
            let mut raft = self.raft.borrow_mut();
            for batch in inbox {
                if let Err(err) = raft.step_batch(batch) {
                    tracing::debug!(error = %err, "controller raft message refused");
                }
            }
            if tick {
                raft.tick();
            }
            let persisted = raft.process_ready(|_, _, ready| {
                committed.extend(ready.committed_entries.iter().cloned());
            });
            if let Err(err) = persisted {
                // Not advanced: nothing of this Ready is sent or applied (its committed
                // entries come again with the next Ready). A failed write leaves the log
                // refusing appends until a restart, so this voter stops taking part rather
                // than lie; a refused snapshot (never sent by a sound leader: this log is
                // not compacted) is dropped the same way. Either way, no crash.
                tracing::error!(error = %err, "controller log refused a Ready");
                committed.clear();
            }
            raft.take_frames()
        };
        self.track_leadership();
        let changed = self.apply(committed);
        (frames, changed)
    }

    fn track_leadership(&self) {
        let leading = self.is_leader();
        match (leading, self.became_leader_at.get()) {
            (true, None) => {
                tracing::info!(node = self.node_id, "became the controller leader");
                self.became_leader_at.set(Some(Instant::now()));
                self.last_seen.borrow_mut().clear();
            }
            (false, Some(_)) => {
                self.became_leader_at.set(None);
                self.fail_pending("the controller lost its leadership");
            }
            _ => {}
        }
    }

    fn fail_pending(&self, why: &str) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for (_, (_, waiter)) in pending {
            waiter.send(Err(BrokerError::NotController(why.to_string())));
        }
    }

    /// Applies committed entries; answers the proposals they complete.
    fn apply(&self, committed: Vec<ringlet_raft::Entry>) -> bool {
        let mut changed = false;
        for entry in committed {
            let outcome = if entry.kind != EntryKind::Normal || entry.data.is_empty() {
                None
            } else {
                changed = true;
                Some(self.apply_one(entry.index, &entry.data))
            };
            let waiter = self.pending.borrow_mut().remove(&entry.index);
            if let Some((term, waiter)) = waiter {
                let result = match outcome {
                    Some(result) if term == entry.term => result,
                    _ => Err(BrokerError::NotController(
                        "another controller leader overwrote the request".into(),
                    )),
                };
                waiter.send(result);
            }
        }
        if changed {
            self.applied_version.set(self.applied_version.get() + 1);
        }
        changed
    }

    fn apply_one(&self, index: u64, data: &[u8]) -> Result<(), BrokerError> {
        let command = MetadataCommand::decode(data)?;
        let outcome = self.stm.borrow_mut().apply(index, &command);
        match &outcome {
            Ok(()) => tracing::info!(index, ?command, "applied metadata command"),
            Err(err) => tracing::info!(index, ?command, error = %err, "metadata command refused"),
        }
        outcome
    }

    /// Waits for work or for the next tick.
    pub async fn wait(&self, until_tick: Duration) {
        ringlet_shard::task::timeout(until_tick, self.wake.notified()).await;
    }
}

/// Answer to a forwarded proposal.
pub fn proposed(outcome: Result<(), BrokerError>) -> ControllerResponse {
    match outcome {
        Ok(()) => ControllerResponse::Proposed(None),
        Err(BrokerError::NotController(_)) => ControllerResponse::NotLeader { leader: None },
        Err(err) => ControllerResponse::Proposed(Some(WireError::from_error(&err))),
    }
}

/// The applied tables as `Arc` snapshots, to install on every shard.
pub fn snapshot(
    state: &MetadataState,
) -> (
    Arc<super::TopicTable>,
    Arc<super::metadata_stm::BrokerTable>,
) {
    (state.topics(), state.brokers())
}
