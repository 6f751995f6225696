//! read_committed reads: only what is below the last stable offset, plus the aborted
//! transactions a consumer needs to drop the aborted records among it.
//!
//! The last stable offset is always a batch boundary (the first offset of a transaction's
//! first batch, or the high watermark), so cutting the read to whole batches below it
//! loses nothing a read_committed consumer may see.

use bytes::Bytes;
use ringlet_protocol::record_batch::{batch_size_hint, parse_header};

use super::txn_index::AbortedTxn;
use super::Partition;

/// Length of the prefix of `records` (whole batches) whose batches end below `limit_offset`,
/// and the offset after the last batch kept (`None` when nothing is kept).
pub fn prefix_below(records: &[u8], limit_offset: i64) -> (usize, Option<i64>) {
    let mut kept = 0usize;
    let mut next_offset = None;
    while kept < records.len() {
        let rest = &records[kept..];
        let (Some(size), Ok(header)) = (batch_size_hint(rest), parse_header(rest)) else {
            break;
        };
        if header.last_offset() >= limit_offset || size > rest.len() {
            break;
        }
        kept += size;
        next_offset = Some(header.last_offset() + 1);
    }
    (kept, next_offset)
}

impl Partition {
    /// Cuts `records` (read from `fetch_offset`) to below `last_stable_offset` and returns
    /// them with the aborted transactions overlapping what is returned.
    pub fn committed_view(
        &self,
        records: Bytes,
        fetch_offset: i64,
        last_stable_offset: i64,
    ) -> (Bytes, Vec<AbortedTxn>) {
        let (kept, next_offset) = prefix_below(&records, last_stable_offset);
        let Some(upper_bound) = next_offset else {
            return (Bytes::new(), Vec::new());
        };
        let aborted = self
            .producers()
            .borrow()
            .aborted()
            .overlapping(fetch_offset, upper_bound);
        (records.slice(..kept), aborted)
    }
}

#[cfg(test)]
mod tests {
    use super::super::txn_markers::{control_batch, TxnMarker};
    use super::*;

    fn batch_at(base_offset: i64) -> Vec<u8> {
        let marker = TxnMarker {
            producer_id: 1,
            producer_epoch: 0,
            commit: true,
            coordinator_epoch: 0,
        };
        let mut batch = control_batch(&marker, 0).to_vec();
        batch[..8].copy_from_slice(&base_offset.to_be_bytes());
        batch
    }

    #[test]
    fn only_whole_batches_below_the_limit_are_kept() {
        let records = [batch_at(3), batch_at(4), batch_at(5)].concat();
        let one = batch_at(3).len();
        assert_eq!(prefix_below(&records, 5), (2 * one, Some(5)));
        assert_eq!(prefix_below(&records, 3), (0, None));
        assert_eq!(prefix_below(&records, 100), (3 * one, Some(6)));
    }
}
