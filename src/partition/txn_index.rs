//! The aborted-transactions index of one partition (Kafka's `.txnindex`, kept whole).
//!
//! One entry per aborted transaction: the producer, the transaction's first offset and the
//! offset of its ABORT marker. Entries are appended in marker order, so they are sorted by
//! `last_offset`, which lets a read_committed fetch find the ones overlapping its range
//! with a binary search. It is persisted in the producer-state snapshot and rebuilt from
//! the markers in the log after it, so it survives restarts.

/// One aborted transaction on a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of the ABORT marker.
    pub last_offset: i64,
}

/// Aborted transactions, sorted by marker offset.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AbortedTxnIndex {
    entries: Vec<AbortedTxn>,
}

impl AbortedTxnIndex {
    pub fn from_entries(mut entries: Vec<AbortedTxn>) -> Self {
        entries.sort_by_key(|e| e.last_offset);
        Self { entries }
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Adds an abort; markers come in offset order.
    pub fn push(&mut self, txn: AbortedTxn) {
        assert!(
            self.entries
                .last()
                .is_none_or(|last| last.last_offset < txn.last_offset),
            "aborted transactions are recorded in marker order"
        );
        self.entries.push(txn);
    }

    /// The aborted transactions a fetch of `[fetch_offset, upper_bound)` must report:
    /// those not ended before `fetch_offset` that began before `upper_bound` (Kafka
    /// `collectAbortedTransactions`).
    pub fn overlapping(&self, fetch_offset: i64, upper_bound: i64) -> Vec<AbortedTxn> {
        let start = self
            .entries
            .partition_point(|e| e.last_offset < fetch_offset);
        self.entries[start..]
            .iter()
            .filter(|e| e.first_offset < upper_bound)
            .copied()
            .collect()
    }

    /// Drops entries whose marker is below the log start (nothing left to filter).
    pub fn forget_below(&mut self, log_start_offset: i64) {
        let keep_from = self
            .entries
            .partition_point(|e| e.last_offset < log_start_offset);
        self.entries.drain(..keep_from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(producer_id: i64, first_offset: i64, last_offset: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
        }
    }

    #[test]
    fn overlapping_reports_transactions_touching_the_range() {
        let mut index = AbortedTxnIndex::default();
        index.push(txn(1, 0, 5));
        index.push(txn(2, 3, 10));
        index.push(txn(3, 12, 20));
        assert_eq!(index.overlapping(6, 12), vec![txn(2, 3, 10)]);
        assert_eq!(index.overlapping(0, 4), vec![txn(1, 0, 5), txn(2, 3, 10)]);
        assert_eq!(index.overlapping(11, 30), vec![txn(3, 12, 20)]);
        assert!(index.overlapping(21, 40).is_empty());
    }

    #[test]
    fn forget_below_keeps_entries_whose_marker_is_still_in_the_log() {
        let mut index = AbortedTxnIndex::from_entries(vec![txn(2, 3, 10), txn(1, 0, 5)]);
        index.forget_below(6);
        assert_eq!(index.entries(), &[txn(2, 3, 10)]);
    }
}
