//! How Raft indexes relate to Kafka offsets.
//!
//! **One Raft entry is one Kafka record batch, or one of Raft's own entries**
//! (the leader's no-op, a membership change, a log-start command), and the Raft
//! index is the 1-based sequence number of entries in the partition's history
//! (index 0 is "before the log"). A batch spans `base_offset .. end_offset`;
//! Raft's own entries span no offset (`base_offset == end_offset`, the offset
//! of the batch after them), so Kafka offsets stay dense over client batches.
//! Entries are ordered, so `base_offset(i + 1) == end_offset(i)`. The Raft term
//! of an entry is the batch's `partitionLeaderEpoch`.
//!
//! Consequences, each a helper below:
//! - **High watermark** = `end_offset(commit_index)`: a batch is visible to
//!   consumers exactly when its entry is committed. With nothing committed
//!   since the log start, it is the log start offset.
//! - **Truncation** of the Raft log at index `i` (a follower dropping a
//!   conflicting suffix) truncates the Kafka log at `base_offset(i)`.
//! - **OffsetForLeaderEpoch(e)** answers with the largest epoch `e' <= e` present
//!   in the log and its end offset: the base offset of the first batch with an
//!   epoch `> e'`, or the log end offset if `e'` is the latest epoch. Terms in a
//!   Raft log never decrease, so this is a binary search over indexes.
//! - **Log start** (retention) moves the Raft log start: compaction to the
//!   last index whose batch lies wholly below the new log start offset.
//!
//! Offsets never leave this mapping: the Raft core sees indexes and terms only.

use crate::storage::Storage;

/// The partition log's batch index, as the mapping needs it.
pub trait BatchOffsets {
    /// `(base_offset, end_offset)` of the entry at Raft index `index`: the offsets it
    /// spans, end exclusive (equal for an entry that takes no offset).
    fn batch_offsets(&self, index: u64) -> Option<(u64, u64)>;
}

/// Kafka high watermark for a Raft commit index.
pub fn high_watermark(
    offsets: &impl BatchOffsets,
    commit_index: u64,
    log_start_offset: u64,
) -> u64 {
    match offsets.batch_offsets(commit_index) {
        Some((_, end)) => end.max(log_start_offset),
        None => log_start_offset,
    }
}

/// Kafka offset at which to truncate when Raft drops entries from `index` on.
pub fn truncation_offset(offsets: &impl BatchOffsets, index: u64) -> Option<u64> {
    offsets.batch_offsets(index).map(|(base, _)| base)
}

/// The first Raft index whose term exceeds `epoch` (or `last_index + 1`).
pub fn first_index_after_epoch(storage: &impl Storage, epoch: u64) -> u64 {
    let (mut lo, mut hi) = (storage.first_index(), storage.last_index() + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match storage.term(mid) {
            Ok(term) if term <= epoch => lo = mid + 1,
            _ => hi = mid,
        }
    }
    lo
}

/// OffsetForLeaderEpoch: `Some((epoch_found, end_offset))`, or `None` when no
/// batch of epoch `<= epoch` is left (Kafka's UNDEFINED_EPOCH answer).
pub fn end_offset_for_epoch(
    storage: &impl Storage,
    offsets: &impl BatchOffsets,
    epoch: u64,
    log_end_offset: u64,
) -> Option<(u64, u64)> {
    let after = first_index_after_epoch(storage, epoch);
    let found_epoch = storage.term(after - 1).ok().filter(|t| *t > 0)?;
    let end_offset = if after > storage.last_index() {
        log_end_offset
    } else {
        truncation_offset(offsets, after)?
    };
    Some((found_epoch, end_offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Entry, HardState};
    use crate::storage::MemStorage;
    use bytes::Bytes;

    /// Batch `i` holds `i` records: offsets are the triangular numbers.
    struct Triangular;
    impl BatchOffsets for Triangular {
        fn batch_offsets(&self, index: u64) -> Option<(u64, u64)> {
            (index > 0).then(|| {
                let base = (index - 1) * index / 2;
                (base, base + index)
            })
        }
    }

    /// Entry 1 is a no-op (no offset), entries 2 and 3 hold one record each.
    struct NoOpFirst;
    impl BatchOffsets for NoOpFirst {
        fn batch_offsets(&self, index: u64) -> Option<(u64, u64)> {
            match index {
                1 => Some((0, 0)),
                2 | 3 => Some((index - 2, index - 1)),
                _ => None,
            }
        }
    }

    fn log_with_terms(terms: &[u64]) -> MemStorage {
        let mut s = MemStorage::new_with_voters(&[1]);
        let entries: Vec<Entry> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| Entry::normal(*t, i as u64 + 1, Bytes::new()))
            .collect();
        s.append(&entries).unwrap();
        s.set_hard_state(HardState {
            term: *terms.last().unwrap(),
            vote: Some(1),
            commit: 0,
        })
        .unwrap();
        s
    }

    #[test]
    fn high_watermark_is_one_past_the_last_committed_offset() {
        // batches 1,2,3 cover offsets 0 | 1-2 | 3-5
        assert_eq!(high_watermark(&Triangular, 3, 0), 6);
        assert_eq!(high_watermark(&Triangular, 0, 0), 0);
        assert_eq!(truncation_offset(&Triangular, 3), Some(3));
    }

    #[test]
    fn entries_without_offsets_keep_offsets_dense() {
        assert_eq!(
            high_watermark(&NoOpFirst, 1, 0),
            0,
            "a committed no-op shows nothing"
        );
        assert_eq!(high_watermark(&NoOpFirst, 3, 0), 2);
        assert_eq!(truncation_offset(&NoOpFirst, 1), Some(0));
        assert_eq!(truncation_offset(&NoOpFirst, 2), Some(0));
    }

    #[test]
    fn offset_for_leader_epoch_follows_term_boundaries() {
        let s = log_with_terms(&[1, 1, 3, 3, 3, 5]);
        let leo = 21; // six triangular batches end at offset 20
                      // epoch 1 ends where batch 3 (the first of epoch 3) starts: offset 3.
        assert_eq!(end_offset_for_epoch(&s, &Triangular, 1, leo), Some((1, 3)));
        // epoch 2 was never used: answer with epoch 1, same end.
        assert_eq!(end_offset_for_epoch(&s, &Triangular, 2, leo), Some((1, 3)));
        assert_eq!(end_offset_for_epoch(&s, &Triangular, 3, leo), Some((3, 15)));
        assert_eq!(
            end_offset_for_epoch(&s, &Triangular, 9, leo),
            Some((5, leo))
        );
        assert_eq!(end_offset_for_epoch(&s, &Triangular, 0, leo), None);
    }
}
