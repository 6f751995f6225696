//! Moving a replica's log start: retention on any replica (the anchor moves with the log
//! start, so Raft indexes stay the same on every replica), and the snapshot install of a
//! follower that is below the leader's log start.
//!
//! A partition's Raft "snapshot" holds no state machine: it is only the position before
//! the log start (index, term, membership) and the Kafka offset there. Installing it means
//! restarting the log empty at that offset.

use ringlet_raft::{ConfState, Snapshot};

use super::{Anchor, ReplicaStorage};

impl ReplicaStorage {
    /// The anchor a follower takes from a leader's snapshot (see `Storage::snapshot`).
    pub fn anchor_of_snapshot(snapshot: &Snapshot) -> Result<Anchor, &'static str> {
        let bytes: [u8; 8] = snapshot.data[..]
            .try_into()
            .map_err(|_| "partition snapshot data is not one offset")?;
        let base_offset = i64::from_be_bytes(bytes);
        if base_offset < 0 {
            return Err("partition snapshot offset is negative");
        }
        Ok(Anchor {
            first_index: snapshot.meta.index + 1,
            base_offset,
            prev_term: snapshot.meta.term,
        })
    }

    /// Forgets every entry: the log now starts, empty, at `anchor`.
    pub(in crate::partition) fn reset_to(&mut self, anchor: Anchor, conf: ConfState) {
        self.anchor = anchor;
        self.conf = conf;
        self.metas.clear();
        self.raft_only.clear();
        self.cache.truncate_from(0);
        self.missing.borrow_mut().clear();
    }

    /// The anchor for moving the log start to `offset`, a batch boundary in the view (or
    /// its end). `None` when `offset` is none of those, is not past the current start, or
    /// would drop a membership change (the membership at the anchor is only the initial
    /// one, and partition groups never change theirs).
    pub fn anchor_at_offset(&self, offset: i64) -> Option<Anchor> {
        if offset <= self.anchor.base_offset {
            return None;
        }
        let first_index = if offset == self.next_offset() {
            ringlet_raft::Storage::last_index(self) + 1
        } else {
            let index = self.index_of_offset(offset)?;
            (self.batch_meta(index)?.base_offset == offset).then_some(index)?
        };
        let mut dropped = self.raft_only.range(..first_index);
        if dropped.any(|(_, (kind, _))| *kind == ringlet_raft::EntryKind::ConfChange) {
            return None;
        }
        let prev_term = self.batch_meta(first_index - 1)?.term;
        Some(Anchor {
            first_index,
            base_offset: offset,
            prev_term,
        })
    }

    /// Updates the view after the driver moved the log start to `anchor` (from
    /// [`ReplicaStorage::anchor_at_offset`]).
    pub fn compact_to(&mut self, anchor: Anchor) {
        let dropped = anchor.first_index.saturating_sub(self.anchor.first_index) as usize;
        self.metas.drain(..dropped.min(self.metas.len()));
        self.cache.drop_below(anchor.first_index);
        self.raft_only = self.raft_only.split_off(&anchor.first_index);
        self.anchor = anchor;
    }
}
