//! The durable segmented partition log.
//!
//! # Model
//!
//! A partition directory holds segments named by base offset (`B.log`, `B.index`,
//! `B.timeindex`, see [`segment`]) and a `checkpoint` (log start offset, leader-epoch cache,
//! room for Raft state). Batches are stored byte for byte as produced: the broker only writes
//! the base offset and the leader epoch, both outside the CRC.
//!
//! One [`PartitionLog`] lives on one shard (`!Send`, shared as `Rc`). Three offsets describe it:
//! `log_start <= durable_end <= log_end`. `log_end` is the visible end: every offset below it
//! has been written to the segment file and can be read. Appends get their offsets in call
//! order, synchronously, then wait for a *flush task* that writes every queued batch with one
//! O_DIRECT write (so concurrent appenders share a write). `wait_durable` parks on a *sync task*
//! that runs one `fdatasync` for every waiter queued so far (group commit). Both tasks are
//! spawned on demand and finish when idle, so an idle log costs no task.
//!
//! O_DIRECT needs 4 KiB-aligned writes. The active segment keeps its last partial block in
//! memory (`tail`) and every write starts at that block: tail + new batches + zero padding.
//! The file may therefore end with zero padding, which recovery recognises and drops.
//!
//! Mutations of files (flush, roll, truncate, log-start moves) hold `io_lock`, so they never
//! interleave; `fdatasync` runs outside it so writes continue while a sync is in flight, and a
//! `generation` counter stops a sync that raced with a truncation from claiming durability.
//!
//! Memory: see [`PartitionLog::memory_bytes`] and the crate docs for the bound.

mod admin;
mod cache;
mod checkpoint;
mod open;
mod read;
mod reset;
pub mod retention;
mod scan;
pub mod segment;
mod writer;

use crate::error::LogError;
use crate::rt::DirectFile;
use crate::sync::{AsyncLock, OneshotSender};
use bytes::Bytes;
use cache::BatchCache;
use segment::{SegmentIndex, SegmentMeta};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub use cache::{
    set_shard_cache_budget_bytes, shard_cached_bytes, DEFAULT_SHARD_CACHE_BUDGET_BYTES,
    SHARD_CACHE_BUDGET_ENV,
};
pub use retention::RetentionRunner;

/// Per-partition log settings (Kafka topic configs of the same names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`. Default 128 MiB: small enough that retention frees space in modest
    /// steps and a recovery scan of the active segment takes well under a second, large
    /// enough that rolls (two index writes and three fsyncs) are rare. Capped below 4 GiB
    /// because index positions are u32.
    pub segment_bytes: u64,
    /// `segment.ms`. Default 7 days (Kafka's): a quiet partition still rolls weekly, so time
    /// retention can delete its old data in week-sized steps.
    pub segment_ms: i64,
    /// `index.interval.bytes`. Default 4 KiB (Kafka's): one index entry per DMA block, so a
    /// cold read scans at most ~4 KiB before the wanted batch.
    pub index_interval_bytes: u32,
    /// `retention.ms`; -1 keeps data forever. Default 7 days.
    pub retention_ms: i64,
    /// `retention.bytes`; -1 means no size limit. Default -1.
    pub retention_bytes: i64,
    /// Bound on the in-memory cache of recent batches. Default 1 MiB. All logs of a shard
    /// also share a budget (`RINGLET_LOG_CACHE_BYTES_PER_SHARD`, default 256 MiB; see
    /// `set_shard_cache_budget_bytes`).
    pub cache_bytes_max: usize,
    /// Largest batch accepted (`max.message.bytes`). Default 1 MiB + 12 (Kafka's 1048588).
    pub max_batch_bytes: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 128 << 20,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            cache_bytes_max: 1 << 20,
            max_batch_bytes: 1_048_588,
        }
    }
}

impl LogConfig {
    fn sanitized(mut self) -> Self {
        self.segment_bytes = self.segment_bytes.clamp(4096, u32::MAX as u64 - (64 << 20));
        self.index_interval_bytes = self.index_interval_bytes.max(1);
        self.max_batch_bytes = self.max_batch_bytes.min(u32::MAX as usize / 2);
        self
    }
}

/// Offsets assigned to one `append` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// Last offset of the batch carrying `max_timestamp` (Kafka's batch-level answer).
    pub offset_of_max_timestamp: i64,
}

/// Whole batches returned by [`PartitionLog::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBatches {
    /// Contiguous batch bytes as stored (ready for a Fetch response).
    pub data: Bytes,
    /// Base offset of the first batch (may be below the requested offset).
    pub first_offset: i64,
    /// Offset to fetch next.
    pub next_offset: i64,
}

/// Counters of the I/O the log has issued since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// O_DIRECT segment writes (each may carry many appends).
    pub segment_writes: u64,
    /// `fdatasync` calls issued for durability waiters (group commit rounds).
    pub group_syncs: u64,
    /// Segment rolls.
    pub rolls: u64,
}

/// A write or sync failure, cloneable so it can be handed to every affected appender.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    op: &'static str,
    path: PathBuf,
    kind: std::io::ErrorKind,
    raw_os_error: Option<i32>,
    message: String,
}

impl Failure {
    pub(crate) fn from_io(op: &'static str, path: &Path, err: &std::io::Error) -> Self {
        Self {
            op,
            path: path.to_owned(),
            kind: err.kind(),
            raw_os_error: err.raw_os_error(),
            message: err.to_string(),
        }
    }

    pub(crate) fn to_error(&self) -> LogError {
        let source = match self.raw_os_error {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::new(self.kind, self.message.clone()),
        };
        LogError::io(self.op, self.path.clone(), source)
    }
}

pub(crate) struct PendingBatch {
    bytes: Bytes,
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
    leader_epoch: i32,
}

/// One queued `append` call: its batches and where to report the outcome.
pub(crate) struct PendingAppend {
    batches: Vec<PendingBatch>,
    done: OneshotSender<Result<(), LogError>>,
}

/// The segment being appended to.
pub(crate) struct ActiveSegment {
    file: Rc<DirectFile>,
    base_offset: i64,
    /// Bytes of the last, partial 4 KiB block (`size % 4096` bytes).
    tail: Vec<u8>,
    index: SegmentIndex,
}

/// Closed-segment indexes kept in memory at once (loaded on demand for cold reads).
const CLOSED_INDEX_CACHE_MAX: usize = 2;

pub(crate) struct State {
    config: LogConfig,
    /// Every segment by base offset; the last one is the active segment.
    segments: BTreeMap<i64, SegmentMeta>,
    active: ActiveSegment,
    log_start: i64,
    /// Next offset to hand out (includes queued, unwritten appends).
    next_offset: i64,
    /// Offsets below this are written and readable (the log end offset).
    visible_end: i64,
    /// Offsets below this are fdatasync'ed.
    durable_end: i64,
    pending: VecDeque<PendingAppend>,
    flush_scheduled: bool,
    sync_running: bool,
    sync_waiters: Vec<(i64, OneshotSender<Result<(), LogError>>)>,
    /// Bumped by every truncation or log-start move, so in-flight work can notice.
    generation: u64,
    cache: BatchCache,
    /// Leader-epoch cache: (epoch, first offset of the epoch), increasing.
    epochs: Vec<(i32, i64)>,
    raft_state: Vec<u8>,
    closed_indexes: VecDeque<(i64, Rc<SegmentIndex>)>,
    /// Set after an fdatasync error: the page state is unknown, so the log refuses writes.
    failed: Option<String>,
    closed: bool,
    stats: LogStats,
}

pub(crate) struct Inner {
    dir: PathBuf,
    state: RefCell<State>,
    io_lock: AsyncLock,
}

/// A partition's log. See the module docs for the model.
pub struct PartitionLog {
    inner: Rc<Inner>,
}

impl Inner {
    fn check_usable(&self, state: &State) -> Result<(), LogError> {
        if state.closed {
            return Err(LogError::Closed {
                dir: self.dir.clone(),
            });
        }
        if let Some(reason) = &state.failed {
            return Err(LogError::Failed {
                dir: self.dir.clone(),
                reason: reason.clone(),
            });
        }
        Ok(())
    }
}

impl State {
    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            offset,
            log_start: self.log_start,
            log_end: self.visible_end,
        }
    }

    fn active_meta(&self) -> &SegmentMeta {
        let meta = self.segments.get(&self.active.base_offset);
        meta.expect("active segment is always in the segment map")
    }

    fn active_meta_mut(&mut self) -> &mut SegmentMeta {
        let meta = self.segments.get_mut(&self.active.base_offset);
        meta.expect("active segment is always in the segment map")
    }

    /// Base offset of the segment holding `offset` (which must be within the log).
    fn segment_for(&self, offset: i64) -> Option<i64> {
        self.segments
            .range(..=offset)
            .next_back()
            .map(|(base, _)| *base)
    }

    fn remember_closed_index(&mut self, base_offset: i64, index: Rc<SegmentIndex>) {
        self.closed_indexes.retain(|(base, _)| *base != base_offset);
        self.closed_indexes.push_back((base_offset, index));
        while self.closed_indexes.len() > CLOSED_INDEX_CACHE_MAX {
            self.closed_indexes.pop_front();
        }
    }

    fn closed_index(&self, base_offset: i64) -> Option<Rc<SegmentIndex>> {
        let found = self
            .closed_indexes
            .iter()
            .find(|(base, _)| *base == base_offset);
        found.map(|(_, index)| index.clone())
    }

    fn checkpoint(&self) -> checkpoint::Checkpoint {
        checkpoint::Checkpoint {
            log_start_offset: self.log_start,
            epochs: self.epochs.clone(),
            raft_state: self.raft_state.clone(),
        }
    }
}

impl PartitionLog {
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn log_start_offset(&self) -> i64 {
        self.inner.state.borrow().log_start
    }

    /// The log end offset: offsets below it are written and readable.
    pub fn log_end_offset(&self) -> i64 {
        self.inner.state.borrow().visible_end
    }

    /// The offset the next append gets: includes queued appends not yet readable. Producer
    /// state (idempotence, transactions) records a batch's offsets before awaiting its append.
    pub fn next_offset(&self) -> i64 {
        self.inner.state.borrow().next_offset
    }

    /// Offsets below this are on stable storage.
    pub fn durable_end_offset(&self) -> i64 {
        self.inner.state.borrow().durable_end
    }

    /// Largest batch max timestamp in the log and the last offset of the first batch carrying
    /// it (the earliest segment among equals, as Kafka's `maxBy`).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let state = self.inner.state.borrow();
        let best = state
            .segments
            .values()
            .filter(|meta| !meta.is_empty() && meta.end_offset > state.log_start)
            .rev() // max_by_key keeps the last of equal maxima
            .max_by_key(|meta| meta.max_timestamp)?;
        Some((best.max_timestamp, best.offset_of_max_timestamp))
    }

    /// OffsetForLeaderEpoch: the largest cached epoch `<= epoch` and the offset where it ends
    /// (the next epoch's start, or the log end for the latest epoch). `None` when no cached
    /// epoch is `<= epoch`.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let state = self.inner.state.borrow();
        let at = state.epochs.partition_point(|(e, _)| *e <= epoch);
        if at == 0 {
            return None;
        }
        let found_epoch = state.epochs[at - 1].0;
        let end = match state.epochs.get(at) {
            Some((_, next_start)) => *next_start,
            None => state.visible_end,
        };
        Some((found_epoch, end))
    }

    /// The leader-epoch cache, oldest first.
    pub fn leader_epochs(&self) -> Vec<(i32, i64)> {
        self.inner.state.borrow().epochs.clone()
    }

    /// Applies changed topic configs. A smaller cache bound takes effect at once; segment and
    /// retention settings apply to the next roll and retention pass.
    pub fn set_config(&self, config: LogConfig) {
        let mut state = self.inner.state.borrow_mut();
        let config = config.sanitized();
        state.cache.shrink_to(config.cache_bytes_max);
        state.config = config;
    }

    pub fn config(&self) -> LogConfig {
        self.inner.state.borrow().config.clone()
    }

    /// Bytes of batches on disk (logical segment sizes).
    pub fn size_bytes(&self) -> u64 {
        let state = self.inner.state.borrow();
        state.segments.values().map(|meta| meta.size_bytes).sum()
    }

    pub fn stats(&self) -> LogStats {
        self.inner.state.borrow().stats
    }

    pub fn segment_count(&self) -> usize {
        self.inner.state.borrow().segments.len()
    }

    /// Heap bytes this log holds now: batch cache, active and cached closed indexes, the tail
    /// block, per-segment metadata and queued appends.
    pub fn memory_bytes(&self) -> usize {
        let state = self.inner.state.borrow();
        let closed: usize = state
            .closed_indexes
            .iter()
            .map(|(_, i)| i.memory_bytes())
            .sum();
        let pending: usize = state
            .pending
            .iter()
            .flat_map(|p| p.batches.iter())
            .map(|b| b.bytes.len())
            .sum();
        std::mem::size_of::<State>()
            + state.cache.bytes()
            + state.active.index.memory_bytes()
            + closed
            + state.active.tail.capacity()
            + state.segments.len() * (std::mem::size_of::<SegmentMeta>() + 16)
            + state.epochs.capacity() * 16
            + pending
    }
}
