//! The storage trait the partition log implements, and an in-memory
//! implementation for tests and the simulator.
//!
//! The node only reads through the trait; the caller writes through it while
//! handling a [`crate::Ready`] (append with suffix truncation, hard state,
//! snapshot install), then tells the node with [`crate::RawNode::advance`].
//! Whatever a storage holds is by definition what survives a crash.

use crate::error::{RaftError, Result};
use crate::message::{ConfState, Entry, EntryKind, HardState, Snapshot, SnapshotMeta};

pub trait Storage {
    fn hard_state(&self) -> HardState;
    /// The snapshot at `first_index() - 1`: its term and membership.
    fn snapshot(&self) -> Snapshot;
    /// First index still present; `snapshot().meta.index + 1`.
    fn first_index(&self) -> u64;
    /// Last index present (`first_index() - 1` when empty).
    fn last_index(&self) -> u64;
    /// Term of `index`, valid from `first_index() - 1` (the snapshot) to `last_index()`.
    fn term(&self, index: u64) -> Result<u64>;
    /// Entries in `[lo, hi)`, stopping once `max_bytes` is exceeded but always at least one.
    /// A storage that keeps payloads on disk may answer [`RaftError::EntriesLoading`] (or a
    /// shorter prefix) while it loads them; the node retries later.
    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>>;
    /// The configuration-change entries among `[lo, hi)`, in order. Membership must never
    /// depend on payloads being in memory, so a storage whose `entries` can answer
    /// `EntriesLoading` keeps these few entries in memory and overrides this.
    fn conf_changes(&self, lo: u64, hi: u64) -> Result<Vec<Entry>> {
        let mut entries = self.entries(lo, hi, u64::MAX)?;
        entries.retain(|e| e.kind == EntryKind::ConfChange);
        Ok(entries)
    }
    /// Persist `entries`, first truncating everything at and after `entries[0].index`
    /// (for Kafka: truncate the log at that batch's base offset).
    fn append(&mut self, entries: &[Entry]) -> Result<()>;
    fn set_hard_state(&mut self, hard_state: HardState) -> Result<()>;
    /// Drop the whole log and start it after `snapshot.meta.index`.
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()>;
}

/// The answer every storage gives for entries `[lo, hi)` outside `first_index..=last_index`:
/// `Compacted` below the log start, `Unavailable` past its end.
pub fn check_range(first_index: u64, last_index: u64, lo: u64, hi: u64) -> Result<()> {
    if lo < first_index {
        return Err(RaftError::Compacted {
            index: lo,
            first_index,
        });
    }
    if hi > last_index + 1 {
        return Err(RaftError::Unavailable {
            index: hi - 1,
            last_index,
        });
    }
    Ok(())
}

/// Takes the bytes limit semantics shared by every storage: keep adding until
/// the limit is passed, but never return nothing.
pub fn limit_size(entries: &mut Vec<Entry>, max_bytes: u64) {
    let mut total = 0u64;
    let mut keep = 0usize;
    for entry in entries.iter() {
        total += entry.size_bytes();
        if keep > 0 && total > max_bytes {
            break;
        }
        keep += 1;
    }
    entries.truncate(keep.max(1).min(entries.len()));
}

#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    hard_state: HardState,
    snapshot: Snapshot,
    /// `entries[i].index == snapshot.meta.index + 1 + i`.
    entries: Vec<Entry>,
}

impl MemStorage {
    /// A fresh replica whose initial membership is `voters`.
    pub fn new_with_voters(voters: &[u64]) -> Self {
        Self::new_with_conf(ConfState::with_voters(voters))
    }

    pub fn new_with_conf(conf: ConfState) -> Self {
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index: 0,
                term: 0,
                conf,
            },
            data: Default::default(),
        };
        Self {
            hard_state: HardState::default(),
            snapshot,
            entries: Vec::new(),
        }
    }

    /// Move the log start past `index` (retention, or the controller's state
    /// machine snapshot). `conf` is the membership at `index`, which the caller knows.
    pub fn compact(&mut self, index: u64, conf: ConfState, data: bytes::Bytes) -> Result<()> {
        if index < self.first_index() {
            return Ok(());
        }
        if index > self.hard_state.commit {
            return Err(RaftError::Storage(format!(
                "cannot compact to {index}: beyond the persisted commit {}",
                self.hard_state.commit
            )));
        }
        let term = self.term(index)?;
        let drop = (index - self.snapshot.meta.index) as usize;
        self.entries.drain(..drop);
        self.snapshot = Snapshot {
            meta: SnapshotMeta { index, term, conf },
            data,
        };
        Ok(())
    }

    pub fn all_entries(&self) -> &[Entry] {
        &self.entries
    }
}

impl Storage for MemStorage {
    fn hard_state(&self) -> HardState {
        self.hard_state
    }

    fn snapshot(&self) -> Snapshot {
        self.snapshot.clone()
    }

    fn first_index(&self) -> u64 {
        self.snapshot.meta.index + 1
    }

    fn last_index(&self) -> u64 {
        self.snapshot.meta.index + self.entries.len() as u64
    }

    fn term(&self, index: u64) -> Result<u64> {
        let snap_index = self.snapshot.meta.index;
        if index == snap_index {
            return Ok(self.snapshot.meta.term);
        }
        if index < snap_index {
            return Err(RaftError::Compacted {
                index,
                first_index: snap_index + 1,
            });
        }
        if index > self.last_index() {
            return Err(RaftError::Unavailable {
                index,
                last_index: self.last_index(),
            });
        }
        Ok(self.entries[(index - snap_index - 1) as usize].term)
    }

    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>> {
        check_range(self.first_index(), self.last_index(), lo, hi)?;
        let base = self.snapshot.meta.index + 1;
        let mut out = self.entries[(lo - base) as usize..(hi - base) as usize].to_vec();
        limit_size(&mut out, max_bytes);
        Ok(out)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index < self.first_index() || first.index > self.last_index() + 1 {
            return Err(RaftError::Storage(format!(
                "append at {} leaves a gap or rewrites the snapshot (log is {}..={})",
                first.index,
                self.first_index(),
                self.last_index()
            )));
        }
        let keep = (first.index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> Result<()> {
        self.hard_state = hard_state;
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        self.entries.clear();
        if self.hard_state.commit < snapshot.meta.index {
            self.hard_state.commit = snapshot.meta.index;
        }
        self.snapshot = snapshot;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ent(term: u64, index: u64) -> Entry {
        Entry::normal(term, index, Bytes::from(vec![0u8; 10]))
    }

    #[test]
    fn append_truncates_conflicting_suffix() {
        let mut s = MemStorage::new_with_voters(&[1]);
        s.append(&[ent(1, 1), ent(1, 2), ent(1, 3)]).unwrap();
        s.append(&[ent(2, 2)]).unwrap();
        assert_eq!(s.last_index(), 2);
        assert_eq!(s.term(2).unwrap(), 2);
        assert!(s.append(&[ent(2, 5)]).is_err(), "a gap must be refused");
    }

    #[test]
    fn compaction_moves_first_index_and_keeps_term() {
        let mut s = MemStorage::new_with_voters(&[1]);
        s.append(&[ent(1, 1), ent(1, 2), ent(2, 3)]).unwrap();
        s.set_hard_state(HardState {
            term: 2,
            vote: Some(1),
            commit: 3,
        })
        .unwrap();
        s.compact(2, ConfState::with_voters(&[1]), Bytes::new())
            .unwrap();
        assert_eq!(s.first_index(), 3);
        assert_eq!(s.term(2).unwrap(), 1);
        assert!(matches!(s.term(1), Err(RaftError::Compacted { .. })));
        assert!(matches!(
            s.entries(2, 4, u64::MAX),
            Err(RaftError::Compacted { .. })
        ));
        assert_eq!(s.entries(3, 4, u64::MAX).unwrap().len(), 1);
    }

    #[test]
    fn size_limit_returns_at_least_one_entry() {
        let mut s = MemStorage::new_with_voters(&[1]);
        s.append(&[ent(1, 1), ent(1, 2), ent(1, 3)]).unwrap();
        assert_eq!(s.entries(1, 4, 0).unwrap().len(), 1);
        assert_eq!(s.entries(1, 4, 68).unwrap().len(), 2);
    }
}
