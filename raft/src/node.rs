//! `RawNode`: one replica of one Raft group as a pure state machine.
//!
//! Inputs: [`RawNode::step`] (a message), [`RawNode::tick`] (a unit of logical
//! time), [`RawNode::propose`] and the local commands (transfer, membership).
//! Outputs come out of [`RawNode::ready`]: entries and hard state to persist,
//! messages to send *after* persisting, committed entries to apply. The caller
//! then calls [`RawNode::advance`]. The protocol itself lives in
//! `election.rs`, `replication.rs` and `membership.rs`.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::{RaftError, Result};
use crate::log::RaftLog;
use crate::message::{
    ConfChange, ConfState, Entry, EntryKind, HardState, Message, MessageBody, NodeId, Snapshot,
};
use crate::progress::Progress;
use crate::rng::SplitMix64;
use crate::storage::Storage;

#[derive(Debug, Clone)]
pub struct Config {
    pub id: NodeId,
    /// Followers wait a random number of ticks in `[election_ticks, 2 * election_ticks)`.
    pub election_ticks: u64,
    pub heartbeat_ticks: u64,
    /// Flow control: appends in flight to one follower in Replicate state.
    pub max_inflight_appends: usize,
    pub max_append_bytes: u64,
    /// Bytes of committed entries handed out per Ready.
    pub max_apply_bytes: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
}

impl Config {
    pub fn new(id: NodeId) -> Self {
        Self {
            id,
            election_ticks: 10,
            heartbeat_ticks: 2,
            max_inflight_appends: 64,
            max_append_bytes: 1 << 20,
            max_apply_bytes: 4 << 20,
            pre_vote: true,
            check_quorum: true,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return Err(RaftError::Config(format!(
                "need 0 < heartbeat_ticks ({}) < election_ticks ({})",
                self.heartbeat_ticks, self.election_ticks
            )));
        }
        if self.max_inflight_appends == 0 {
            return Err(RaftError::Config(
                "max_inflight_appends must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// What the caller must do, in order: persist `snapshot`, `entries` and
/// `hard_state`; then send `messages`; then apply `committed_entries`; then
/// call [`RawNode::advance`] with this Ready.
#[derive(Debug, Default)]
pub struct Ready {
    pub hard_state: Option<HardState>,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub messages: Vec<Message>,
    pub committed_entries: Vec<Entry>,
}

pub struct RawNode<S: Storage> {
    pub(crate) cfg: Config,
    pub(crate) id: NodeId,
    pub(crate) term: u64,
    pub(crate) vote: Option<NodeId>,
    pub(crate) role: Role,
    pub(crate) leader_id: Option<NodeId>,
    pub(crate) log: RaftLog<S>,
    pub(crate) conf: ConfState,
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) votes: BTreeMap<NodeId, bool>,
    pub(crate) msgs: Vec<Message>,
    pub(crate) election_elapsed: u64,
    pub(crate) heartbeat_elapsed: u64,
    pub(crate) randomized_election_ticks: u64,
    pub(crate) rng: SplitMix64,
    pub(crate) transferee: Option<NodeId>,
    /// Ticks left in which a follower without a leader campaigns on every tick
    /// ([`RawNode::campaign_now`]).
    pub(crate) eager_ticks: u64,
    /// Index of the last configuration change entry in the log.
    pub(crate) pending_conf_index: u64,
    persisted_hard_state: HardState,
}

impl<S: Storage> RawNode<S> {
    /// Start (or restart) a replica over `storage`. Membership is the snapshot's
    /// plus every committed configuration change after it.
    pub fn new(cfg: Config, storage: S, rng: SplitMix64) -> Result<Self> {
        cfg.validate()?;
        let hard_state = storage.hard_state();
        let conf = storage.snapshot().meta.conf;
        let log = RaftLog::new(storage);
        let mut node = Self {
            id: cfg.id,
            cfg,
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader_id: None,
            log,
            conf,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            msgs: Vec::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_ticks: 0,
            rng,
            transferee: None,
            eager_ticks: 0,
            pending_conf_index: 0,
            persisted_hard_state: hard_state,
        };
        node.replay_conf_changes(node.log.first_index(), node.log.committed)?;
        node.reset_timers();
        Ok(node)
    }

    pub fn id(&self) -> NodeId {
        self.id
    }
    pub fn term(&self) -> u64 {
        self.term
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    /// The leader this replica currently follows, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader_id
    }
    pub fn commit_index(&self) -> u64 {
        self.log.committed
    }
    /// Last index handed out in `committed_entries` and acknowledged by `advance`.
    pub fn applied_index(&self) -> u64 {
        self.log.applied
    }
    pub fn last_index(&self) -> u64 {
        self.log.last_index()
    }
    pub fn first_index(&self) -> u64 {
        self.log.first_index()
    }
    pub fn log_term(&self, index: u64) -> Result<u64> {
        self.log.term(index)
    }
    pub fn log_entries(&self, lo: u64, hi: u64) -> Result<Vec<Entry>> {
        self.log.entries(lo, hi, u64::MAX)
    }
    pub fn conf_state(&self) -> &ConfState {
        &self.conf
    }
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }
    pub fn storage(&self) -> &S {
        &self.log.storage
    }
    /// For the caller to persist a Ready. Do not change what was persisted otherwise.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.log.storage
    }
    pub fn into_storage(self) -> S {
        self.log.storage
    }
    /// The leader's view of `peer`'s replication, for tests and metrics.
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        self.progress.get(&peer)
    }

    /// Advance logical time by one tick.
    pub fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
    }

    /// Append a Kafka record batch (opaque here). Returns its Raft index.
    pub fn propose(&mut self, data: Bytes) -> Result<u64> {
        self.propose_entry(EntryKind::Normal, data)
    }

    pub(crate) fn propose_entry(&mut self, kind: EntryKind, data: Bytes) -> Result<u64> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                id: self.id,
                leader: self.leader(),
            });
        }
        if let Some(to) = self.transferee {
            return Err(RaftError::TransferInProgress { id: self.id, to });
        }
        let index = self.log.last_index() + 1;
        self.log.append(&[Entry {
            term: self.term,
            index,
            kind,
            data,
        }]);
        self.bcast_append();
        Ok(index)
    }

    pub fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || !self.log.unstable_entries().is_empty()
            || self.log.unstable_snapshot().is_some()
            || self.hard_state() != self.persisted_hard_state
            || self.log.has_next_committed()
    }

    pub fn ready(&mut self) -> Ready {
        let hard_state = self.hard_state();
        Ready {
            hard_state: (hard_state != self.persisted_hard_state).then_some(hard_state),
            snapshot: self.log.unstable_snapshot().cloned(),
            entries: self.log.unstable_entries().to_vec(),
            messages: std::mem::take(&mut self.msgs),
            committed_entries: self.log.next_committed(self.cfg.max_apply_bytes),
        }
    }

    /// For a state machine that IS the log (a Kafka partition: committing a batch is all
    /// there is to applying it): count everything committed as applied, so Readys stop
    /// handing committed entries out (a restarted replica would otherwise re-read its whole
    /// log through `Storage::entries`).
    pub fn mark_committed_applied(&mut self) {
        let committed = self.log.committed.min(self.log.last_index());
        self.log.applied = self.log.applied.max(committed);
    }

    /// Everything in `ready` was persisted, sent and applied.
    pub fn advance(&mut self, ready: &Ready) {
        if let Some(hs) = ready.hard_state {
            self.persisted_hard_state = hs;
        }
        if let Some(snapshot) = &ready.snapshot {
            self.log.stable_snapshot_to(snapshot.meta.index);
            self.log.applied = self.log.applied.max(snapshot.meta.index);
        }
        if let Some(last) = ready.entries.last() {
            self.log.stable_to(last.index, last.term);
            if self.role == Role::Leader {
                let persisted = self.log.persisted;
                if let Some(pr) = self.progress.get_mut(&self.id) {
                    pr.maybe_update(persisted);
                }
                if self.maybe_commit() {
                    self.bcast_append();
                }
            }
        }
        if let Some(last) = ready.committed_entries.last() {
            self.log.applied = self.log.applied.max(last.index);
        }
    }

    pub(crate) fn send(&mut self, to: NodeId, term: u64, body: MessageBody) {
        self.msgs.push(Message {
            from: self.id,
            to,
            term,
            body,
        });
    }

    pub(crate) fn reset_timers(&mut self) {
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let base = self.cfg.election_ticks;
        self.randomized_election_ticks = self.rng.gen_range(base, 2 * base);
    }

    /// Rebuild membership on restart from the committed configuration entries.
    fn replay_conf_changes(&mut self, lo: u64, hi: u64) -> Result<()> {
        if hi < lo {
            return Ok(());
        }
        for entry in self.log.conf_change_entries(lo, hi + 1)? {
            self.pending_conf_index = entry.index;
            if let Some(cc) = ConfChange::decode(&entry.data) {
                crate::membership::apply_to_conf(&mut self.conf, cc);
            }
        }
        Ok(())
    }
}
