//! The crate's one error enum.

use crate::message::{GroupId, NodeId};

/// Everything that can go wrong in the Raft crate. Protocol-level rejections
/// (stale terms, conflicting appends) are not errors: they are answered with
/// messages. Errors are for callers: a proposal to a follower, a read of a
/// compacted index, a malformed wire batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    #[error("raft index {index} is compacted (log starts at {first_index})")]
    Compacted { index: u64, first_index: u64 },
    #[error("raft index {index} is beyond the last index {last_index}")]
    Unavailable { index: u64, last_index: u64 },
    /// The entry exists but its payload is not in memory: the storage is reading it back
    /// from disk (asynchronously, driven by the caller). Unlike [`RaftError::Compacted`] it
    /// is transient: a leader sends nothing now and retries, it never sends a snapshot.
    #[error("raft index {index} is being loaded from disk; retry later")]
    EntriesLoading { index: u64 },
    #[error("node {id} is not the leader (known leader: {leader:?})")]
    NotLeader { id: NodeId, leader: Option<NodeId> },
    #[error("node {id} is transferring leadership to {to}; proposals are paused")]
    TransferInProgress { id: NodeId, to: NodeId },
    #[error("configuration change rejected: {reason}")]
    ConfChangeRejected { reason: String },
    #[error("malformed wire batch at byte {offset}: {reason}")]
    Wire { offset: usize, reason: &'static str },
    #[error("group {group} is not hosted on this node")]
    UnknownGroup { group: GroupId },
    #[error("invalid raft config: {0}")]
    Config(String),
    #[error("storage error: {0}")]
    Storage(String),
}

pub type Result<T> = std::result::Result<T, RaftError>;
