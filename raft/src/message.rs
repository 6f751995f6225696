//! The data Raft exchanges and persists: entries, hard state, configuration,
//! snapshots and messages. Plain structs, no behaviour beyond small helpers.

use bytes::Bytes;

/// A broker (and, since one node hosts at most one replica of a group, a Raft peer) id. Every
/// value is a node, 0 included (Kafka's broker ids start at 0); "no node" is `None`.
pub type NodeId = u64;
/// A Raft group id: 0 is the metadata controller, every partition has its own.
pub type GroupId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A Kafka record batch (or, with empty data, the leader's no-op at the start of its term).
    Normal,
    /// An encoded [`ConfChange`].
    ConfChange,
}

/// One Raft log entry. In Ringlet one entry is one Kafka record batch; see
/// [`crate::kafka_mapping`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub term: u64,
    pub index: u64,
    pub kind: EntryKind,
    pub data: Bytes,
}

impl Entry {
    pub fn normal(term: u64, index: u64, data: Bytes) -> Self {
        Self {
            term,
            index,
            kind: EntryKind::Normal,
            data,
        }
    }

    /// Bytes counted against message and read size limits: payload plus a
    /// rough header allowance, so empty entries are not free.
    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64 + 24
    }
}

/// What must be on stable storage before any message of the same Ready is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: u64,
    /// Who this node voted for in `term`, if anyone.
    pub vote: Option<NodeId>,
    pub commit: u64,
}

/// How storage formats write "no vote" in a vote word: no node has this id (Kafka ids are
/// `i32`).
const NO_VOTE_WORD: u64 = u64::MAX;

impl HardState {
    /// The vote as one word for a storage format, [`NO_VOTE_WORD`] for none.
    pub fn vote_word(&self) -> u64 {
        self.vote.unwrap_or(NO_VOTE_WORD)
    }

    /// The vote a storage format's word stands for. Formats written before node id 0 was
    /// allowed stored "no vote" as 0; read back it is a vote for node 0, a node those
    /// clusters do not have, so the replica only refuses other candidates until the term
    /// moves on, which Raft always allows.
    pub fn vote_from_word(word: u64) -> Option<NodeId> {
        (word != NO_VOTE_WORD).then_some(word)
    }
}

/// Group membership. Voters count towards quorums; learners only replicate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfState {
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
}

impl ConfState {
    pub fn with_voters(voters: &[NodeId]) -> Self {
        Self {
            voters: voters.to_vec(),
            learners: Vec::new(),
        }
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Voters then learners, each sorted: a deterministic iteration order.
    pub fn members(&self) -> Vec<NodeId> {
        let mut voters = self.voters.clone();
        voters.sort_unstable();
        let mut learners = self.learners.clone();
        learners.sort_unstable();
        voters.extend(learners);
        voters
    }

    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// One-server-at-a-time membership change (thesis section 4.1 and 4.2.1):
/// a new server joins as a learner, catches up, and only then is promoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfChange {
    AddLearner(NodeId),
    PromoteLearner(NodeId),
    RemoveNode(NodeId),
}

impl ConfChange {
    pub fn encode(&self) -> Bytes {
        let (tag, id) = match *self {
            ConfChange::AddLearner(id) => (1u8, id),
            ConfChange::PromoteLearner(id) => (2, id),
            ConfChange::RemoveNode(id) => (3, id),
        };
        let mut out = vec![tag];
        out.extend_from_slice(&id.to_be_bytes());
        Bytes::from(out)
    }

    pub fn decode(data: &[u8]) -> Option<Self> {
        if data.len() != 9 {
            return None;
        }
        let id = u64::from_be_bytes(data[1..9].try_into().ok()?);
        match data[0] {
            1 => Some(ConfChange::AddLearner(id)),
            2 => Some(ConfChange::PromoteLearner(id)),
            3 => Some(ConfChange::RemoveNode(id)),
            _ => None,
        }
    }
}

/// Where the log starts after compaction: everything up to `index` is gone
/// and is represented by `data` (empty for a Kafka partition, whose "state"
/// below the log start offset is simply deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub index: u64,
    pub term: u64,
    pub conf: ConfState,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: u64,
    pub body: MessageBody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageBody {
    /// Replicate `entries` after (`prev_index`, `prev_term`).
    Append {
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    /// Success: `index` is the follower's new match index. Rejection: `index`
    /// is the rejected `prev_index` and (`hint_index`, `hint_term`) is the
    /// follower's last entry that could still match (fast backtracking).
    AppendResponse {
        reject: bool,
        index: u64,
        hint_index: u64,
        hint_term: u64,
        commit: u64,
    },
    /// `pre_vote` asks "would you vote for me?" without anyone changing term;
    /// `transfer` bypasses the leader lease of check-quorum (leadership transfer).
    Vote {
        pre_vote: bool,
        transfer: bool,
        last_index: u64,
        last_term: u64,
    },
    VoteResponse {
        pre_vote: bool,
        reject: bool,
    },
    /// Full heartbeat: `commit` is capped at the follower's match index.
    Heartbeat {
        commit: u64,
    },
    /// `need_full` asks the leader to stop sending id-only heartbeats.
    HeartbeatResponse {
        commit: u64,
        need_full: bool,
    },
    /// Id-only heartbeat: "I am still the leader you acknowledged, nothing new".
    /// On the wire it is just the group id; the receiver fills in its own term.
    /// The leader sends it only to a follower that acknowledged it in the
    /// current term and holds its whole log and commit index; a follower that
    /// does not follow the sender (e.g. it restarted) answers
    /// `HeartbeatResponse { need_full: true }`. It never moves a commit index,
    /// so a stale or duplicated one is harmless to safety; at worst it resets
    /// an election timer or counts as check-quorum activity once too often.
    HeartbeatLight,
    /// Id-only answer to [`MessageBody::HeartbeatLight`].
    HeartbeatLightResponse,
    /// Leadership transfer: campaign now, skipping pre-vote.
    TimeoutNow,
    /// The follower needs entries the leader has compacted: move its log start.
    InstallSnapshot {
        snapshot: Snapshot,
    },
}

impl MessageBody {
    pub fn is_vote_request(&self) -> bool {
        matches!(self, MessageBody::Vote { .. })
    }

    pub fn is_from_leader(&self) -> bool {
        matches!(
            self,
            MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::HeartbeatLight
                | MessageBody::InstallSnapshot { .. }
                | MessageBody::TimeoutNow
        )
    }
}
