//! `ringlet_raft::Storage` over a partition's Kafka log: the replica side of "the Kafka log
//! is the Raft log".
//!
//! # Model
//!
//! One Raft entry is one record batch of the Kafka log, or one of Raft's own entries kept
//! beside it (below); its term is the batch's `partitionLeaderEpoch`, its index the
//! 1-based position of the entry in the partition's history (see
//! `ringlet_raft::kafka_mapping`). Indexes must agree on every replica, so they are counted
//! from an [`Anchor`] (`first_index` is the batch at `base_offset`) kept in the replica's
//! state file; a fresh log has index 1 at offset 0.
//!
//! `Storage` is synchronous and the log is async (glommio DMA files), so a
//! [`ReplicaStorage`] is an in-memory *view* and the caller (the driver of the Ready loop)
//! does the I/O:
//! - **metadata of every entry** in memory: `(term, base_offset, last_offset)`, 24 bytes a
//!   batch, rebuilt by [`ReplicaStorage::open`] from the batch headers of the whole log
//!   (the tail's payloads stay cached, so a restarted leader starts warm); plus every
//!   membership change (rare, tiny), so membership never waits for the disk;
//! - **payloads** in a bounded cache (16 MiB by default, oldest inserted evicted), filled
//!   by `append` and by read-backs. `entries` on an evicted payload answers
//!   `RaftError::EntriesLoading` (not `Compacted`: that would make the leader send a
//!   snapshot) and records the range; the driver drains it with
//!   [`ReplicaStorage::take_missing`], turns it into offsets with
//!   [`ReplicaStorage::read_back_plan`], reads with [`ReplicaStorage::read_back`], fills
//!   the cache with [`ReplicaStorage::insert_loaded`] and may poke the node
//!   (`RawNode::resume_appends`; otherwise the next heartbeat response retries);
//! - **writes**: for a Ready, the driver writes the entries ([`ReplicaStorage::write_plan`]
//!   then [`ReplicaStorage::write`], or [`ReplicaStorage::write_entries`]: truncate a
//!   replaced suffix, append, wait durable) and, when term or vote changed,
//!   [`ReplicaStorage::write_hard_state`]; only then `storage_mut().append(entries)` /
//!   `set_hard_state(hs)` (`ringlet_raft::manager::persist_ready`), which update the view.
//!
//! The async functions take no `&ReplicaStorage` (except the `write_entries` shortcut), so
//! a driver that keeps its nodes in a `RefCell` never holds a borrow across an `.await`.
//!
//! # Dense Kafka offsets: Raft's own entries take no offset
//!
//! Raft's own entries (the leader's no-op, membership changes, log-start commands) take a
//! Raft index but no Kafka offset: they are not in the Kafka log but in a small sidecar
//! file beside it (`replica_storage_sidecar`), each with the offset of the Kafka batch that
//! follows it. In the view such an entry spans no offsets (`last_offset == base_offset -
//! 1`), so the high watermark at it is the offset after the batches before it, a cut at it
//! cuts the log there, and OffsetForLeaderEpoch ends an epoch where the next one's no-op
//! sits. The Kafka log holds only what Kafka's does (data batches, transaction markers), so
//! its offsets are dense and nothing Kafka-facing translates: fetch, ListOffsets, the time
//! index, producer state and retention read the log as it is.
//!
//! Why not an offset translator (Redpanda's: every batch in the log at a Raft offset,
//! every Kafka-facing read and write translated, Raft batches filtered out of fetches)?
//! The translator touches every reader of the log (fetch, ListOffsets, the time and
//! transaction indexes, producer state, retention, DeleteRecords, follower fetch); the
//! sidecar touches only this storage view, its recovery and its log-start moves, and
//! Raft's own entries are rare (one no-op per leader change), so a small file rewritten
//! whole is cheap.
//!
//! Retention moves the log start and the anchor together (`replica_storage::compact`,
//! `replica_storage_moves`); a follower below the leader's log start gets a snapshot, which
//! is just that position, and restarts its log empty there.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use ringlet_protocol::record_batch::parse_header;
use ringlet_raft::kafka_mapping::{self, BatchOffsets};
use ringlet_raft::{
    ConfState, Entry, EntryKind, HardState, RaftError, Snapshot, SnapshotMeta, Storage,
};

use super::replica_storage_batch::{decode_stored, is_raft_only, last_offset_delta};
use super::replica_storage_cache::PayloadCache;
use super::replica_storage_sidecar::RaftOnlyEntry;

mod compact;

pub use super::replica_storage_batch::{CONF_CHANGE_TYPE, LEADER_CHANGE_TYPE};
pub use super::replica_storage_io::{EntryWrites, STATE_FILE};

/// Default bound of the payload cache of one partition, 16 MiB: a follower up to about a
/// second behind a busy partition is served from memory; one further behind by read-backs
/// from the log. A 4 MiB cache thrashed at 20 MB/s per partition (the read-backs evicted the
/// fresh appends the caught-up followers needed next). Every replica keeps one, filled only
/// by what it is written: a shard-wide budget, like the log's batch cache, is still to do.
pub const DEFAULT_CACHE_BYTES: usize = 16 << 20;
/// Missing ranges remembered at once; more are merged into the last one.
const MISSING_RANGES_MAX: usize = 8;

/// Where one entry lies in the Kafka log: Raft's own entries span no offset
/// (`last_offset == base_offset - 1`, `base_offset` the next batch's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub term: u64,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// Raft index `first_index` is the batch at Kafka offset `base_offset`; `prev_term` is the
/// term of `first_index - 1` (0 before any entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub first_index: u64,
    pub base_offset: i64,
    pub prev_term: u64,
}

impl Default for Anchor {
    fn default() -> Self {
        Self {
            first_index: 1,
            base_offset: 0,
            prev_term: 0,
        }
    }
}

/// Why entries cannot be stored after the current view.
#[derive(Debug)]
pub(super) enum PlanError {
    Gap(String),
    NotABatch {
        position: usize,
        source: ringlet_protocol::record_batch::BatchError,
    },
}

/// The Raft storage view of one partition replica. See the module docs.
pub struct ReplicaStorage {
    hard_state: HardState,
    anchor: Anchor,
    /// Membership at `anchor.first_index - 1`.
    conf: ConfState,
    /// `metas[i]` is index `anchor.first_index + i`.
    metas: Vec<BatchMeta>,
    /// Raft's own entries (kept in the sidecar, never evicted): index -> payload.
    raft_only: BTreeMap<u64, (EntryKind, Bytes)>,
    /// A planned write rewrote the sidecar and its entries never reached the view (the
    /// write failed): the file may hold entries the view lacks, so the next write
    /// rewrites it whatever it holds. Cleared by `append`.
    sidecar_unsettled: Cell<bool>,
    cache: PayloadCache,
    /// `[lo, hi)` ranges `entries` needed and did not have, oldest first.
    missing: RefCell<Vec<(u64, u64)>>,
    /// Log-start commands (DeleteRecords) the open scan found: `(index, offset)`, for the
    /// driver to apply the committed ones a crash may have left unapplied.
    pub(super) scanned_log_start_commands: Vec<(u64, i64)>,
}

impl ReplicaStorage {
    /// An empty view starting at `anchor` (what [`ReplicaStorage::open`] fills from the log).
    pub fn new(anchor: Anchor, hard_state: HardState, voters: &[u64]) -> Self {
        Self {
            hard_state,
            anchor,
            conf: ConfState::with_voters(voters),
            metas: Vec::new(),
            raft_only: BTreeMap::new(),
            sidecar_unsettled: Cell::new(false),
            cache: PayloadCache::new(DEFAULT_CACHE_BYTES),
            missing: RefCell::new(Vec::new()),
            scanned_log_start_commands: Vec::new(),
        }
    }

    pub fn anchor(&self) -> Anchor {
        self.anchor
    }

    /// `(base_offset, last_offset)` of the entry at `index`.
    pub fn batch_offsets_of(&self, index: u64) -> Option<(i64, i64)> {
        self.batch_meta(index)
            .map(|m| (m.base_offset, m.last_offset))
    }

    pub fn batch_meta(&self, index: u64) -> Option<BatchMeta> {
        let at = index.checked_sub(self.anchor.first_index)?;
        self.metas.get(usize::try_from(at).ok()?).copied()
    }

    /// The Raft index of the batch containing `offset`.
    pub fn index_of_offset(&self, offset: i64) -> Option<u64> {
        let at = self.metas.partition_point(|m| m.last_offset < offset);
        let meta = self.metas.get(at)?;
        (meta.base_offset <= offset).then_some(self.anchor.first_index + at as u64)
    }

    /// The base offset of the batch holding `offset` (the offset itself at the log end);
    /// `None` below the log start.
    pub fn batch_start_of(&self, offset: i64) -> Option<i64> {
        if offset >= self.next_offset() {
            return Some(offset);
        }
        let index = self.index_of_offset(offset)?;
        self.batch_meta(index).map(|meta| meta.base_offset)
    }

    /// Kafka high watermark for `commit_index`: one past the last committed offset, or the
    /// log start when nothing since it is committed.
    pub fn high_watermark(&self, commit_index: u64) -> i64 {
        let commit = commit_index.min(self.last_index());
        let log_start = self.anchor.base_offset as u64;
        kafka_mapping::high_watermark(self, commit, log_start) as i64
    }

    /// Raft's own entries from `from_index` on, as the sidecar stores them.
    pub(super) fn raft_only_from(&self, from_index: u64) -> Vec<RaftOnlyEntry> {
        let entries = self.raft_only.range(from_index..);
        entries
            .filter_map(|(index, (kind, data))| {
                let meta = self.batch_meta(*index)?;
                Some(RaftOnlyEntry {
                    index: *index,
                    term: meta.term,
                    position: meta.base_offset,
                    kind: *kind,
                    data: data.clone(),
                })
            })
            .collect()
    }

    /// Raft's own entries before `index` (those a write from `index` keeps).
    pub(super) fn raft_only_before(&self, index: u64) -> Vec<RaftOnlyEntry> {
        let mut kept = self.raft_only_from(0);
        kept.retain(|e| e.index < index);
        kept
    }

    /// Whether a write from `index` that adds `adds_own` of Raft's own entries must
    /// rewrite the sidecar: it adds some, replaces some, or a failed write may have left
    /// the file out of step with the view. Called by the write plan, which then rewrites.
    pub(super) fn sidecar_needs_rewrite(&self, index: u64, adds_own: bool) -> bool {
        let rewrite = adds_own
            || self.raft_only.range(index..).next().is_some()
            || self.sidecar_unsettled.get();
        self.sidecar_unsettled.set(rewrite);
        rewrite
    }

    /// The offset after the last stored batch (where the next entry starts).
    pub fn next_offset(&self) -> i64 {
        self.metas
            .last()
            .map_or(self.anchor.base_offset, |m| m.last_offset + 1)
    }

    /// Bound of the payload cache (default [`DEFAULT_CACHE_BYTES`]).
    pub fn set_cache_bytes_max(&mut self, max_bytes: usize) {
        self.cache.set_max_bytes(max_bytes);
    }

    pub fn cached_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// The oldest range `entries` could not serve, clipped to the log and past what is
    /// cached meanwhile, for the driver to read back.
    pub fn take_missing(&self) -> Option<(u64, u64)> {
        let mut missing = self.missing.borrow_mut();
        while !missing.is_empty() {
            let (mut lo, hi) = missing.remove(0);
            lo = lo.max(self.first_index());
            let hi = hi.min(self.last_index() + 1);
            while lo < hi && self.payload(lo).is_some() {
                lo += 1;
            }
            if lo < hi {
                return Some((lo, hi));
            }
        }
        None
    }

    /// Where the driver should [`ReplicaStorage::read_back`] `[lo, hi)` (from
    /// [`ReplicaStorage::take_missing`]): the base offset of `lo` and the number of Kafka
    /// batches (Raft's own entries are not in the log, and always in memory).
    pub fn read_back_plan(&self, lo: u64, hi: u64) -> Option<(i64, usize)> {
        let hi = hi.min(self.last_index() + 1);
        let start = self.batch_meta(lo).filter(|_| lo < hi)?;
        let own = self.raft_only.range(lo..hi).count() as u64;
        let count = usize::try_from(hi - lo - own).ok()?;
        (count > 0).then_some((start.base_offset, count))
    }

    /// Puts batches read back from the log into the cache: `batches` are the Kafka batches
    /// of the entries from `lo` on, Raft's own entries skipped. A batch whose header no
    /// longer matches the entry at its index (the suffix was replaced while it was being
    /// read) is dropped.
    pub fn insert_loaded(&mut self, lo: u64, batches: Vec<Bytes>) {
        let indexes = (lo..).filter(|index| !self.raft_only.contains_key(index));
        let indexes: Vec<u64> = indexes.take(batches.len()).collect();
        for (index, batch) in indexes.into_iter().zip(batches) {
            let (Some(meta), Ok(header)) = (self.batch_meta(index), parse_header(&batch)) else {
                continue;
            };
            let stored = BatchMeta {
                term: super::replica_storage_io::term_of_epoch(header.partition_leader_epoch),
                base_offset: header.base_offset,
                last_offset: header.last_offset(),
            };
            if stored != meta {
                continue;
            }
            let (kind, data) = decode_stored(&batch);
            self.cache.insert(index, kind, data);
        }
    }

    /// The bytes to write to the Kafka log for `entry`: a client batch as is, or the
    /// control batch of a Raft-made entry (the no-op, a membership change).
    pub fn entry_batch(entry: &Entry) -> BytesMut {
        super::replica_storage_batch::entry_batch(entry)
    }

    /// Where `entries` would lie if appended now (they must start within the log or right
    /// after it, and be consecutive).
    pub(super) fn plan(&self, entries: &[Entry]) -> Result<Vec<BatchMeta>, PlanError> {
        let Some(first) = entries.first() else {
            return Ok(Vec::new());
        };
        if first.index < self.first_index() || first.index > self.last_index() + 1 {
            return Err(PlanError::Gap(format!(
                "append at {} leaves a gap or rewrites below the log start (log is {}..={})",
                first.index,
                self.first_index(),
                self.last_index()
            )));
        }
        let mut base = match first.index.checked_sub(1).and_then(|i| self.batch_meta(i)) {
            Some(prev) => prev.last_offset + 1,
            None => self.anchor.base_offset,
        };
        let mut out = Vec::with_capacity(entries.len());
        for (position, entry) in entries.iter().enumerate() {
            if entry.index != first.index + position as u64 {
                return Err(PlanError::Gap(format!(
                    "entry {} out of order",
                    entry.index
                )));
            }
            let delta = last_offset_delta(entry)
                .map_err(|source| PlanError::NotABatch { position, source })?;
            out.push(BatchMeta {
                term: entry.term,
                base_offset: base,
                last_offset: base + delta,
            });
            base += delta + 1;
        }
        Ok(out)
    }

    /// Adds the next entry found in the log on open, with its decoded payload. Membership
    /// changes (in logs written before the sidecar) stay in memory like Raft's own entries.
    pub(super) fn push_stored(&mut self, meta: BatchMeta, kind: EntryKind, data: Bytes) {
        let index = self.last_index() + 1;
        self.metas.push(meta);
        match kind {
            EntryKind::ConfChange => {
                self.raft_only.insert(index, (kind, data));
            }
            EntryKind::Normal => self.cache.insert(index, kind, data),
        }
    }

    /// Adds the next entry, one of Raft's own from the sidecar, on open.
    pub(super) fn push_raft_only(&mut self, entry: RaftOnlyEntry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.metas.push(BatchMeta {
            term: entry.term,
            base_offset: entry.position,
            last_offset: entry.position - 1,
        });
        self.raft_only.insert(entry.index, (entry.kind, entry.data));
    }

    fn payload(&self, index: u64) -> Option<(EntryKind, Bytes)> {
        if let Some((kind, data)) = self.raft_only.get(&index) {
            return Some((*kind, data.clone()));
        }
        self.cache
            .get(index)
            .map(|(kind, data)| (kind, data.clone()))
    }

    fn record_missing(&self, lo: u64, hi: u64) {
        let mut missing = self.missing.borrow_mut();
        if let Some(range) = missing.iter_mut().find(|(l, h)| lo <= *h && *l <= hi) {
            *range = (range.0.min(lo), range.1.max(hi));
        } else if missing.len() < MISSING_RANGES_MAX {
            missing.push((lo, hi));
        } else if let Some(last) = missing.last_mut() {
            *last = (last.0.min(lo), last.1.max(hi));
        }
    }

    fn check_range(&self, lo: u64, hi: u64) -> ringlet_raft::Result<()> {
        ringlet_raft::storage::check_range(self.first_index(), self.last_index(), lo, hi)
    }

    fn entry(&self, index: u64, kind: EntryKind, data: Bytes) -> Entry {
        let term = self.batch_meta(index).map_or(0, |m| m.term);
        Entry {
            term,
            index,
            kind,
            data,
        }
    }
}

impl Storage for ReplicaStorage {
    fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The position before the log start: its index and term, the membership there, and
    /// (as data) the Kafka offset the log starts at. A follower below it restarts its log
    /// there ([`ReplicaStorage::install_snapshot`]): the batches before it are gone.
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                index: self.anchor.first_index - 1,
                term: self.anchor.prev_term,
                conf: self.conf.clone(),
            },
            data: Bytes::copy_from_slice(&self.anchor.base_offset.to_be_bytes()),
        }
    }

    fn first_index(&self) -> u64 {
        self.anchor.first_index
    }

    fn last_index(&self) -> u64 {
        self.anchor.first_index + self.metas.len() as u64 - 1
    }

    fn term(&self, index: u64) -> ringlet_raft::Result<u64> {
        if index + 1 == self.first_index() {
            return Ok(self.anchor.prev_term);
        }
        self.check_range(index, index + 1)?;
        Ok(self.batch_meta(index).map_or(0, |m| m.term))
    }

    /// Served from memory. A missing payload ends the answer early (or, if it is the first,
    /// fails with `EntriesLoading`) and is recorded for [`ReplicaStorage::take_missing`].
    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> ringlet_raft::Result<Vec<Entry>> {
        self.check_range(lo, hi)?;
        let mut out = Vec::new();
        let mut total_bytes = 0u64;
        for index in lo..hi {
            let Some((kind, data)) = self.payload(index) else {
                self.record_missing(index, hi);
                if out.is_empty() {
                    return Err(RaftError::EntriesLoading { index });
                }
                break;
            };
            let entry = self.entry(index, kind, data);
            total_bytes += entry.size_bytes();
            if !out.is_empty() && total_bytes > max_bytes {
                break;
            }
            out.push(entry);
        }
        Ok(out)
    }

    fn conf_changes(&self, lo: u64, hi: u64) -> ringlet_raft::Result<Vec<Entry>> {
        self.check_range(lo, hi)?;
        let changes = self.raft_only.range(lo..hi);
        let changes = changes.filter(|(_, (kind, _))| *kind == EntryKind::ConfChange);
        let entries = changes.map(|(i, (kind, data))| self.entry(*i, *kind, data.clone()));
        Ok(entries.collect())
    }

    /// Updates the view only: the driver has written `entries` to the log.
    fn append(&mut self, entries: &[Entry]) -> ringlet_raft::Result<()> {
        let metas = self.plan(entries).map_err(|err| match err {
            PlanError::Gap(reason) => RaftError::Storage(reason),
            PlanError::NotABatch { position, source } => RaftError::Storage(format!(
                "entry {} is not a record batch: {source}",
                entries[position].index
            )),
        })?;
        let Some(first) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        // The driver appends only what it wrote: the sidecar it planned is the file's.
        self.sidecar_unsettled.set(false);
        self.metas.truncate((first - self.first_index()) as usize);
        self.cache.truncate_from(first);
        self.raft_only.split_off(&first);
        for (entry, meta) in entries.iter().zip(metas) {
            self.metas.push(meta);
            if is_raft_only(entry) {
                self.raft_only
                    .insert(entry.index, (entry.kind, entry.data.clone()));
            } else {
                self.cache
                    .insert(entry.index, entry.kind, entry.data.clone());
            }
        }
        Ok(())
    }

    /// Updates the view only: the driver has written it (when term or vote changed) with
    /// [`ReplicaStorage::write_hard_state`].
    fn set_hard_state(&mut self, hard_state: HardState) -> ringlet_raft::Result<()> {
        self.hard_state = hard_state;
        Ok(())
    }

    /// Updates the view only: the driver has restarted the log empty at the snapshot's
    /// offset ([`ReplicaStorage::anchor_of_snapshot`], `PartitionLog::restart_at`).
    fn install_snapshot(&mut self, snapshot: Snapshot) -> ringlet_raft::Result<()> {
        let anchor = Self::anchor_of_snapshot(&snapshot)
            .map_err(|reason| RaftError::Storage(reason.to_string()))?;
        self.reset_to(anchor, snapshot.meta.conf);
        self.hard_state.commit = self.hard_state.commit.max(snapshot.meta.index);
        Ok(())
    }
}

impl BatchOffsets for ReplicaStorage {
    fn batch_offsets(&self, index: u64) -> Option<(u64, u64)> {
        let meta = self.batch_meta(index)?;
        Some((meta.base_offset as u64, (meta.last_offset + 1) as u64))
    }
}
