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
//! The Ready contract: persist `snapshot`, `entries` (truncating from the
//! first entry's index) and `hard_state`, and only then send `messages` (a
//! vote or an acknowledgement must never leave before what it promises is
//! durable) and apply `committed_entries`; then call `advance`. Many groups'
//! Readys may share one fsync (group commit). Kafka semantics of indexes and
//! terms are in [`kafka_mapping`].
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
//!
//! Testing: `tests/paper_*.rs` are named after the thesis sections they
//! check; `tests/simulation.rs` runs 1,000 seeds of [`sim::World`] (drops,
//! duplicates, delays, partitions, crashes losing unpersisted state,
//! membership changes, compaction) with the [`sim::checker`] on every step;
//! `cargo run -p ringlet-raft --example sim -- --seed N` replays one seed and
//! `scripts/raft-sim-sweep.sh` runs many.
//!
//! Deliberately not here (yet): joint consensus (membership changes are one
//! server at a time, through learners), ReadIndex / lease reads, and sending
//! the leader's appends in parallel with its own disk write (thesis 10.2.1).

pub mod election;
pub mod error;
pub mod kafka_mapping;
#[cfg(test)]
mod loading_tests;
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
    Snapshot, SnapshotMeta,
};
pub use node::{Config, RawNode, Ready, Role};
pub use rng::SplitMix64;
pub use storage::{MemStorage, Storage};
