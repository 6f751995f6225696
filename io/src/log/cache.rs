//! Bounded cache of the most recently written batches, serving hot reads without I/O.
//!
//! The cache always holds a contiguous suffix of the visible log (batches in offset order
//! with no gaps), so a read that starts inside it can be answered from it alone.

use bytes::Bytes;
use std::collections::VecDeque;

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
        self.bytes += batch.bytes.len();
        self.batches.push_back(batch);
        self.shrink_to(max_bytes);
    }

    pub fn shrink_to(&mut self, max_bytes: usize) {
        while self.bytes > max_bytes {
            match self.batches.pop_front() {
                Some(old) => self.bytes -= old.bytes.len(),
                None => break,
            }
        }
    }

    pub fn clear(&mut self) {
        self.batches.clear();
        self.bytes = 0;
    }

    /// Drops batches at or after `offset` (suffix truncation).
    pub fn truncate_from(&mut self, offset: i64) {
        while let Some(last) = self.batches.back() {
            if last.last_offset < offset {
                break;
            }
            self.bytes -= last.bytes.len();
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
            self.bytes -= first.bytes.len();
            self.batches.pop_front();
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
