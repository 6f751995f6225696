//! The bounded payload cache of a [`super::replica_storage::ReplicaStorage`]: Raft index ->
//! entry payload, evicting the oldest *inserted* first. Insertion order rather than index
//! order, so payloads just read back for a lagging follower survive the appends that keep
//! arriving at the tail until the follower has been sent them.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use ringlet_raft::EntryKind;

/// Per-entry bookkeeping counted against the budget, so no-ops are not free.
const ENTRY_OVERHEAD_BYTES: usize = 48;

#[derive(Debug, Clone)]
struct Cached {
    kind: EntryKind,
    data: Bytes,
    /// Insertion sequence number, matched against `order` on eviction.
    seq: u64,
}

#[derive(Debug)]
pub(super) struct PayloadCache {
    entries: BTreeMap<u64, Cached>,
    /// `(seq, index)` in insertion order; stale pairs (truncated or replaced) are skipped.
    order: VecDeque<(u64, u64)>,
    next_seq: u64,
    bytes: usize,
    max_bytes: usize,
}

impl PayloadCache {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
            bytes: 0,
            max_bytes,
        }
    }

    pub fn get(&self, index: u64) -> Option<(EntryKind, &Bytes)> {
        self.entries.get(&index).map(|c| (c.kind, &c.data))
    }

    pub fn insert(&mut self, index: u64, kind: EntryKind, data: Bytes) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += cost(&data);
        if let Some(old) = self.entries.insert(index, Cached { kind, data, seq }) {
            self.bytes -= cost(&old.data);
        }
        self.order.push_back((seq, index));
        self.evict();
    }

    /// Drops every index `>= index` (a replaced suffix).
    pub fn truncate_from(&mut self, index: u64) {
        for (_, gone) in self.entries.split_off(&index) {
            self.bytes -= cost(&gone.data);
        }
        self.compact_order();
    }

    /// Drops every index `< index` (retention moved the log start past them).
    pub fn drop_below(&mut self, index: u64) {
        let kept = self.entries.split_off(&index);
        for (_, gone) in std::mem::replace(&mut self.entries, kept) {
            self.bytes -= cost(&gone.data);
        }
        self.compact_order();
    }

    pub fn set_max_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
        self.evict();
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Oldest first while over budget, but never the newest entry (a batch larger than the
    /// whole budget is still served from memory until the next insert).
    fn evict(&mut self) {
        while self.bytes > self.max_bytes && self.entries.len() > 1 {
            let Some((seq, index)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&index).is_some_and(|c| c.seq == seq) {
                if let Some(gone) = self.entries.remove(&index) {
                    self.bytes -= cost(&gone.data);
                }
            }
        }
        self.compact_order();
    }

    /// Keeps `order` from growing with stale pairs when nothing is being evicted.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(seq, index)| entries.get(index).is_some_and(|c| c.seq == *seq));
        }
    }
}

fn cost(data: &Bytes) -> usize {
    data.len() + ENTRY_OVERHEAD_BYTES
}
