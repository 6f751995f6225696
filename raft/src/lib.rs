//! Pure multi-group Raft for Ringlet.
//!
//! Every partition is one Raft group (group 0 is the metadata controller).
//! This crate is the consensus core only: no I/O, no clock, no async, no
//! unseeded randomness. A [`RawNode`] is one replica of one group as a state
//! machine driven by [`RawNode::step`], [`RawNode::tick`] and
//! [`RawNode::propose`]; its outputs come out of [`RawNode::ready`] and are
//! acknowledged with [`RawNode::advance`] (the raft-rs model). Election
//! jitter comes from a [`SplitMix64`] the caller seeds, so every run replays.
//!
//! A [`GroupManager`] hosts many groups on one shard: it ticks them all from
//! one timer and coalesces their messages into one [`wire::Batch`] per
//! destination node, in which an idle group's heartbeat is just its id.
//!
//! Module map: `node` (RawNode, Ready), `election` (elections, pre-vote,
//! check-quorum, transfer), `replication` (append, commit, heartbeats,
//! snapshots), `membership` (learners, one-at-a-time changes), `log` (the
//! unstable tail over [`Storage`]), `progress` (per-follower flow control),
//! `kafka_mapping` (indexes vs offsets), `wire` (batch encoding), `manager`,
//! `sim` (the deterministic cluster simulator used by tests and the example).

pub mod election;
pub mod error;
pub mod kafka_mapping;
pub mod log;
pub mod manager;
pub mod membership;
pub mod message;
pub mod node;
pub mod progress;
pub mod replication;
pub mod rng;
pub mod sim;
pub mod storage;
pub mod wire;

pub use error::{RaftError, Result};
pub use manager::GroupManager;
pub use message::{
    ConfChange, ConfState, Entry, EntryKind, GroupId, HardState, Message, MessageBody, NodeId,
    Snapshot, SnapshotMeta, NO_NODE,
};
pub use node::{Config, RawNode, Ready, Role};
pub use rng::SplitMix64;
pub use storage::{MemStorage, Storage};
