//! Bounded cache of the most recently written batches, serving hot reads without I/O.
//!
//! The cache always holds a contiguous suffix of the visible log (batches in offset order
//! with no gaps), so a read that starts inside it can be answered from it alone.
//!
//! Two bounds apply. Each log's own (`LogConfig::cache_bytes_max`, 1 MiB by default), and a
//! budget shared by every log of the shard: logs live on their shard's thread, so the budget
//! is thread-local. Without the shared budget the cache grows with the partition count: 1,000
//! busy partitions held 1,000 x 1 MiB (measured: broker RSS 1.26 GiB in the 1,000-partition
//! benchmark). Over budget, the log that appends gives up its own oldest batches, down to the
//! newest one, so the total stays within the budget plus one batch per log. Idle logs keep
//! what they cached; the appending ones shrink.

use bytes::Bytes;
use std::cell::Cell;
use std::collections::VecDeque;

/// Default budget for the batch caches of all logs of one shard.
pub const DEFAULT_SHARD_CACHE_BUDGET_BYTES: usize = 256 << 20;

/// Environment variable that sets the per-shard budget (bytes) when a shard's first log
/// caches a batch.
pub const SHARD_CACHE_BUDGET_ENV: &str = "RINGLET_LOG_CACHE_BYTES_PER_SHARD";

thread_local! {
    static SHARD_CACHED_BYTES: Cell<usize> = const { Cell::new(0) };
    static SHARD_BUDGET_BYTES: Cell<usize> = Cell::new(budget_from_env());
}

fn budget_from_env() -> usize {
    std::env::var(SHARD_CACHE_BUDGET_ENV)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(DEFAULT_SHARD_CACHE_BUDGET_BYTES)
}

/// Sets the batch-cache budget shared by the logs of the calling thread (shard).
pub fn set_shard_cache_budget_bytes(bytes: usize) {
    SHARD_BUDGET_BYTES.with(|budget| budget.set(bytes));
}

/// Bytes the logs of the calling thread (shard) hold in their batch caches now.
pub fn shard_cached_bytes() -> usize {
    SHARD_CACHED_BYTES.with(Cell::get)
}

fn shard_over_budget() -> bool {
    shard_cached_bytes() > SHARD_BUDGET_BYTES.with(Cell::get)
}

pub struct CachedBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub bytes: Bytes,
}

#[derive(Default)]
pub struct BatchCache {
    batches: VecDeque<CachedBatch>,
    bytes: usize,
}

impl BatchCache {
    /// Appends a batch that directly follows the cached ones, evicting the oldest to stay
    /// within `max_bytes`. A batch larger than the bound empties the cache (contiguity).
    pub fn push(&mut self, batch: CachedBatch, max_bytes: usize) {
        if let Some(last) = self.batches.back() {
            assert_eq!(
                last.last_offset + 1,
                batch.base_offset,
                "cache must stay contiguous"
            );
        }
        if batch.bytes.len() > max_bytes {
            self.clear();
            return;
        }
        self.add_bytes(batch.bytes.len());
        self.batches.push_back(batch);
        self.shrink_to(max_bytes);
        while self.batches.len() > 1 && shard_over_budget() {
            self.pop_oldest();
        }
    }

    pub fn shrink_to(&mut self, max_bytes: usize) {
        while self.bytes > max_bytes && self.pop_oldest() {}
    }

    /// Drops the oldest batch; false when the cache is empty.
    fn pop_oldest(&mut self) -> bool {
        match self.batches.pop_front() {
            Some(old) => {
                self.sub_bytes(old.bytes.len());
                true
            }
            None => false,
        }
    }

    fn add_bytes(&mut self, bytes: usize) {
        self.bytes += bytes;
        SHARD_CACHED_BYTES.with(|total| total.set(total.get() + bytes));
    }

    fn sub_bytes(&mut self, bytes: usize) {
        self.bytes -= bytes;
        SHARD_CACHED_BYTES.with(|total| total.set(total.get().saturating_sub(bytes)));
    }

    pub fn clear(&mut self) {
        self.batches.clear();
        let bytes = self.bytes;
        self.sub_bytes(bytes);
    }

    /// Drops batches at or after `offset` (suffix truncation).
    pub fn truncate_from(&mut self, offset: i64) {
        while let Some(last) = self.batches.back() {
            if last.last_offset < offset {
                break;
            }
            let bytes = last.bytes.len();
            self.sub_bytes(bytes);
            self.batches.pop_back();
        }
        // A batch straddling `offset` is not possible at a batch boundary, but stay contiguous.
        if self.batches.back().is_some_and(|b| b.last_offset >= offset) {
            self.clear();
        }
    }

    /// Drops batches wholly below `offset` (log start moved).
    pub fn drop_below(&mut self, offset: i64) {
        while let Some(first) = self.batches.front() {
            if first.last_offset >= offset {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Whole batches from the one containing `offset`, up to `max_bytes` but at least one.
    /// `None` when `offset` is not in the cache.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Option<(Vec<Bytes>, i64, i64)> {
        let first = self.batches.front()?;
        if offset < first.base_offset {
            return None;
        }
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = Vec::new();
        let mut total = 0usize;
        let mut next_offset = offset;
        for batch in self.batches.range(start..) {
            if !out.is_empty() && total + batch.bytes.len() > max_bytes {
                break;
            }
            total += batch.bytes.len();
            next_offset = batch.last_offset + 1;
            out.push(batch.bytes.clone());
        }
        let first_offset = self.batches.get(start)?.base_offset;
        Some((out, first_offset, next_offset))
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for BatchCache {
    /// A closed or deleted log returns its bytes to the shard's budget.
    fn drop(&mut self) {
        let bytes = self.bytes;
        self.sub_bytes(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base_offset: i64, size: usize) -> CachedBatch {
        CachedBatch {
            base_offset,
            last_offset: base_offset,
            bytes: Bytes::from(vec![7u8; size]),
        }
    }

    #[test]
    fn the_shard_budget_bounds_the_caches_of_all_logs_together() {
        // Each test runs on its own thread, so this budget and total are this test's alone.
        set_shard_cache_budget_bytes(10_000);
        let mut logs: Vec<BatchCache> = (0..10).map(|_| BatchCache::default()).collect();
        for round in 0..20 {
            for cache in &mut logs {
                cache.push(batch(round, 1_000), 1 << 20);
            }
        }
        // Within the budget plus one (the newest) batch per log, and each log keeps its newest.
        assert!(
            shard_cached_bytes() <= 10_000 + 10 * 1_000,
            "{}",
            shard_cached_bytes()
        );
        assert_eq!(
            shard_cached_bytes(),
            logs.iter().map(BatchCache::bytes).sum::<usize>()
        );
        for cache in &logs {
            let (parts, first, next) = cache.read(19, 1 << 20).expect("newest batch cached");
            assert_eq!((parts.len(), first, next), (1, 19, 20));
        }
        drop(logs);
        assert_eq!(shard_cached_bytes(), 0, "dropped caches return their bytes");
    }

    #[test]
    fn under_the_budget_only_the_per_log_bound_applies() {
        set_shard_cache_budget_bytes(usize::MAX);
        let mut cache = BatchCache::default();
        for offset in 0..10 {
            cache.push(batch(offset, 100), 450);
        }
        assert_eq!(cache.bytes(), 400);
        assert_eq!(shard_cached_bytes(), 400);
        cache.truncate_from(8);
        cache.drop_below(7);
        assert_eq!((cache.bytes(), shard_cached_bytes()), (100, 100));
        cache.clear();
        assert_eq!(shard_cached_bytes(), 0);
    }
}
