//! The Raft log as the node sees it: what storage holds plus an "unstable"
//! tail that the caller has not persisted yet (handed out in the next Ready).
//!
//! The unstable tail may start below storage's last index: it then replaces
//! the storage suffix from `unstable_offset` on, which the caller performs
//! by `Storage::append` truncating first. Indexes `<= committed` never change.

use crate::error::{RaftError, Result};
use crate::message::{Entry, EntryKind, Snapshot};
use crate::storage::{limit_size, Storage};

pub struct RaftLog<S: Storage> {
    pub(crate) storage: S,
    unstable: Vec<Entry>,
    /// Index of `unstable[0]` (or where it would be).
    unstable_offset: u64,
    /// A snapshot received from the leader and not yet installed by the caller.
    unstable_snapshot: Option<Snapshot>,
    pub(crate) committed: u64,
    /// Last index handed out for applying (and acknowledged by `advance`).
    pub(crate) applied: u64,
    /// Last index known to be on stable storage.
    pub(crate) persisted: u64,
}

impl<S: Storage> RaftLog<S> {
    pub fn new(storage: S) -> Self {
        let last = storage.last_index();
        let first = storage.first_index();
        let committed = storage.hard_state().commit.clamp(first - 1, last);
        Self {
            storage,
            unstable: Vec::new(),
            unstable_offset: last + 1,
            unstable_snapshot: None,
            committed,
            applied: first - 1,
            persisted: last,
        }
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// For persisting the unstable tail; the caller then calls `stable_to`.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    pub fn committed_index(&self) -> u64 {
        self.committed
    }

    pub fn first_index(&self) -> u64 {
        match &self.unstable_snapshot {
            Some(s) => s.meta.index + 1,
            None => self.storage.first_index(),
        }
    }

    pub fn last_index(&self) -> u64 {
        if !self.unstable.is_empty() {
            return self.unstable_offset + self.unstable.len() as u64 - 1;
        }
        match &self.unstable_snapshot {
            Some(s) => s.meta.index,
            None => self.storage.last_index(),
        }
    }

    pub fn last_term(&self) -> u64 {
        self.term(self.last_index())
            .expect("the last index always has a term")
    }

    pub fn term(&self, index: u64) -> Result<u64> {
        if let Some(s) = &self.unstable_snapshot {
            if index == s.meta.index {
                return Ok(s.meta.term);
            }
        }
        let first = self.first_index();
        if index + 1 < first {
            return Err(RaftError::Compacted {
                index,
                first_index: first,
            });
        }
        let last = self.last_index();
        if index > last {
            return Err(RaftError::Unavailable {
                index,
                last_index: last,
            });
        }
        if index >= self.unstable_offset {
            return Ok(self.unstable[(index - self.unstable_offset) as usize].term);
        }
        if self.unstable_snapshot.is_some() {
            return Err(RaftError::Compacted {
                index,
                first_index: first,
            });
        }
        self.storage.term(index)
    }

    pub fn match_term(&self, index: u64, term: u64) -> bool {
        self.term(index).map(|t| t == term).unwrap_or(false)
    }

    /// Thesis section 3.6 "up-to-date": compare last terms, then lengths.
    pub fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        let my_term = self.last_term();
        last_term > my_term || (last_term == my_term && last_index >= self.last_index())
    }

    /// Entries in `[lo, hi)`, at most about `max_bytes` (at least one).
    pub fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        self.check_range(lo, hi)?;
        let mut out = Vec::new();
        if lo < self.unstable_offset {
            out = self
                .storage
                .entries(lo, hi.min(self.unstable_offset), max_bytes)?;
            if out.len() as u64 != hi.min(self.unstable_offset) - lo {
                return Ok(out); // size limit hit inside storage
            }
        }
        if hi > self.unstable_offset {
            let from = lo.max(self.unstable_offset) - self.unstable_offset;
            let to = hi - self.unstable_offset;
            out.extend_from_slice(&self.unstable[from as usize..to as usize]);
        }
        limit_size(&mut out, max_bytes);
        Ok(out)
    }

    /// The configuration-change entries in `[lo, hi)`. Goes through
    /// [`Storage::conf_changes`], so it never depends on payloads being in memory.
    pub fn conf_change_entries(&self, lo: u64, hi: u64) -> Result<Vec<Entry>> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        self.check_range(lo, hi)?;
        let mut out = Vec::new();
        if lo < self.unstable_offset {
            out = self
                .storage
                .conf_changes(lo, hi.min(self.unstable_offset))?;
        }
        if hi > self.unstable_offset {
            let from = (lo.max(self.unstable_offset) - self.unstable_offset) as usize;
            let to = (hi - self.unstable_offset) as usize;
            let unstable = self.unstable[from..to].iter();
            out.extend(
                unstable
                    .filter(|e| e.kind == EntryKind::ConfChange)
                    .cloned(),
            );
        }
        Ok(out)
    }

    /// `[lo, hi)` lies within the log (first index to last index).
    fn check_range(&self, lo: u64, hi: u64) -> Result<()> {
        let first = self.first_index();
        if lo < first {
            return Err(RaftError::Compacted {
                index: lo,
                first_index: first,
            });
        }
        let last = self.last_index();
        if hi > last + 1 {
            return Err(RaftError::Unavailable {
                index: hi - 1,
                last_index: last,
            });
        }
        Ok(())
    }

    /// Append to the unstable tail, replacing any suffix from `entries[0].index`.
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        assert!(
            first.index > self.committed,
            "raft invariant: truncating committed entry {} (committed {})",
            first.index,
            self.committed
        );
        assert!(
            first.index <= self.last_index() + 1,
            "raft invariant: gap at {}",
            first.index
        );
        let end = self.unstable_offset + self.unstable.len() as u64;
        if first.index == end {
            self.unstable.extend_from_slice(entries);
        } else if first.index <= self.unstable_offset {
            self.unstable_offset = first.index;
            self.unstable = entries.to_vec();
            self.persisted = self.persisted.min(first.index - 1);
        } else {
            self.unstable
                .truncate((first.index - self.unstable_offset) as usize);
            self.unstable.extend_from_slice(entries);
        }
    }

    /// The first entry whose index exists with a different term, or is new; 0 if all match.
    pub fn find_conflict(&self, entries: &[Entry]) -> u64 {
        entries
            .iter()
            .find(|e| !self.match_term(e.index, e.term))
            .map(|e| e.index)
            .unwrap_or(0)
    }

    /// Fast backtracking (thesis 3.5): the largest index `<= index`
    /// whose term is `<= term`, with that term. Everything above it cannot match.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut i = index.min(self.last_index());
        loop {
            match self.term(i) {
                Ok(t) if t > term && i > 0 => i -= 1,
                Ok(t) => return (i, t),
                Err(_) => return (i, 0),
            }
        }
    }

    pub fn commit_to(&mut self, index: u64) -> bool {
        if index <= self.committed {
            return false;
        }
        assert!(
            index <= self.last_index(),
            "raft invariant: commit {index} beyond last index {}",
            self.last_index()
        );
        self.committed = index;
        true
    }

    pub fn unstable_entries(&self) -> &[Entry] {
        &self.unstable
    }

    pub fn unstable_snapshot(&self) -> Option<&Snapshot> {
        self.unstable_snapshot.as_ref()
    }

    /// The caller persisted the unstable tail up to (`index`, `term`).
    pub fn stable_to(&mut self, index: u64, term: u64) {
        if index >= self.unstable_offset && self.match_term(index, term) {
            let n = (index + 1 - self.unstable_offset) as usize;
            if n <= self.unstable.len() {
                self.unstable.drain(..n);
                self.unstable_offset = index + 1;
            }
        }
        if self.match_term(index, term) {
            self.persisted = self.persisted.max(index);
        }
    }

    pub fn stable_snapshot_to(&mut self, index: u64) {
        if self
            .unstable_snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index == index)
        {
            self.unstable_snapshot = None;
            self.persisted = self.persisted.max(index);
        }
    }

    /// Replace the whole log with `snapshot` (the follower was too far behind).
    pub fn restore(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta.index;
        assert!(
            index > self.committed,
            "raft invariant: snapshot {index} at or below commit"
        );
        self.committed = index;
        self.unstable.clear();
        self.unstable_offset = index + 1;
        self.persisted = self.persisted.min(index);
        self.unstable_snapshot = Some(snapshot);
    }

    /// Committed entries not yet handed out, up to `max_bytes` (at least one).
    pub fn next_committed(&self, max_bytes: u64) -> Vec<Entry> {
        let lo = self.applied.max(self.first_index() - 1) + 1;
        let hi = self.committed.min(self.last_index()) + 1;
        self.entries(lo, hi, max_bytes).unwrap_or_default()
    }

    pub fn has_next_committed(&self) -> bool {
        self.committed.min(self.last_index()) > self.applied.max(self.first_index() - 1)
    }
}
