//! Fetch size accounting (KIP-74), pure.
//!
//! A fetch names partitions in order, each with a `partition_max_bytes`, and the
//! whole response has a `max_bytes`. Kafka fills partitions in request order:
//! the first partition that has data always gets at least one whole batch (so a
//! batch larger than either limit still makes progress); every later partition
//! gets only the whole batches that fit in both its own limit and what is left
//! of the response budget, possibly none.
//!
//! The partitions of one fetch live on several shards and are read in parallel,
//! one hop per owning shard; each shard cannot know whether a partition on
//! another shard already used the budget. So each shard reads as if its first
//! partition were the first of the fetch (bounded by `max_bytes` per shard), and
//! the connection's shard applies the exact rule afterwards with
//! [`apply_response_budget`]. Over-read bytes are dropped, never sent; the extra
//! memory is bounded by one `max_bytes` per involved shard.

use bytes::Bytes;

/// Size of the batch header fields that give a batch's length:
/// base_offset (8) + batch_length (4).
const BATCH_LENGTH_PREFIX_BYTES: usize = 12;

/// Length of the longest prefix of `records` made of whole batches that fits in `limit_bytes`.
///
/// Stops at the first batch whose declared length is malformed or runs past the
/// buffer: only whole batches are ever sent.
pub fn whole_batches_prefix_len(records: &[u8], limit_bytes: usize) -> usize {
    let mut end = 0usize;
    while let Some(header) = records.get(end..end + BATCH_LENGTH_PREFIX_BYTES) {
        let batch_length = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let Ok(batch_length) = usize::try_from(batch_length) else {
            break;
        };
        let next = end + BATCH_LENGTH_PREFIX_BYTES + batch_length;
        if next > records.len() || next > limit_bytes {
            break;
        }
        end = next;
    }
    end
}

/// Length of the prefix of `records` made of whole batches that lie wholly below
/// `end_offset` (a replica's high watermark: later batches are not committed yet).
pub fn batches_below_offset_len(records: &[u8], end_offset: i64) -> usize {
    let mut end = 0usize;
    while let Some(header) = records.get(end..end + 61) {
        let base_offset = i64::from_be_bytes(header[0..8].try_into().unwrap_or_default());
        let batch_length = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let last_delta = i32::from_be_bytes([header[23], header[24], header[25], header[26]]);
        let Ok(batch_length) = usize::try_from(batch_length) else {
            break;
        };
        let next = end + BATCH_LENGTH_PREFIX_BYTES + batch_length;
        if next > records.len() || base_offset + i64::from(last_delta) >= end_offset {
            break;
        }
        end = next;
    }
    end
}

/// One partition's read, in request order, as it enters budget accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetedRead {
    /// Whole batches read from the log (empty when there was nothing or an error).
    pub records: Bytes,
    /// The request's `partition_max_bytes` for this partition (negative treated as 0).
    pub partition_max_bytes: i32,
}

/// Applies the response-wide budget in request order and returns the bytes kept.
///
/// The first partition with data keeps everything it read (the owning shard
/// already limited it to one batch beyond `partition_max_bytes` at most); each
/// later one keeps the whole batches that fit in
/// `min(partition_max_bytes, remaining response budget)`.
pub fn apply_response_budget(reads: &mut [BudgetedRead], max_bytes: i32) -> usize {
    let max_bytes = usize::try_from(max_bytes).unwrap_or(0);
    let mut used = 0usize;
    let mut first_with_data_seen = false;
    for read in reads.iter_mut() {
        if read.records.is_empty() {
            continue;
        }
        if !first_with_data_seen {
            first_with_data_seen = true;
            used += read.records.len();
            continue;
        }
        let partition_limit = usize::try_from(read.partition_max_bytes).unwrap_or(0);
        let limit = partition_limit.min(max_bytes.saturating_sub(used));
        let keep = whole_batches_prefix_len(&read.records, limit);
        read.records.truncate(keep);
        used += keep;
    }
    used
}

/// Bytes a shard may read for the partitions of one hop: the response budget, as
/// the shard cannot see the other shards' reads (see the module docs).
pub fn shard_read_limit(max_bytes: i32, broker_fetch_max_bytes: usize) -> usize {
    usize::try_from(max_bytes)
        .unwrap_or(0)
        .min(broker_fetch_max_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake batch: only the length prefix matters to the accounting.
    fn batch(total_len: usize) -> Vec<u8> {
        assert!(total_len >= BATCH_LENGTH_PREFIX_BYTES);
        let mut b = vec![0u8; total_len];
        let declared = (total_len - BATCH_LENGTH_PREFIX_BYTES) as i32;
        b[8..12].copy_from_slice(&declared.to_be_bytes());
        b
    }

    fn batches(lens: &[usize]) -> Bytes {
        Bytes::from(lens.iter().flat_map(|&l| batch(l)).collect::<Vec<u8>>())
    }

    fn read(lens: &[usize], partition_max_bytes: i32) -> BudgetedRead {
        BudgetedRead {
            records: batches(lens),
            partition_max_bytes,
        }
    }

    #[test]
    fn prefix_counts_only_whole_batches() {
        let buf = batches(&[100, 50, 70]);
        assert_eq!(whole_batches_prefix_len(&buf, 0), 0);
        assert_eq!(whole_batches_prefix_len(&buf, 99), 0);
        assert_eq!(whole_batches_prefix_len(&buf, 100), 100);
        assert_eq!(whole_batches_prefix_len(&buf, 219), 150);
        assert_eq!(whole_batches_prefix_len(&buf, usize::MAX), 220);
    }

    #[test]
    fn prefix_stops_at_a_truncated_or_negative_batch() {
        let mut buf = batches(&[100, 50]).to_vec();
        buf.truncate(120);
        assert_eq!(whole_batches_prefix_len(&buf, usize::MAX), 100);
        let mut negative = batch(40);
        negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(whole_batches_prefix_len(&negative, usize::MAX), 0);
    }

    #[test]
    fn first_partition_with_data_keeps_an_oversized_batch() {
        let mut reads = vec![read(&[], 100), read(&[5000], 100), read(&[50], 100)];
        let used = apply_response_budget(&mut reads, 1000);
        assert_eq!(
            reads[1].records.len(),
            5000,
            "KIP-74: progress despite limits"
        );
        assert!(reads[2].records.is_empty(), "budget already exhausted");
        assert_eq!(used, 5000);
    }

    #[test]
    fn later_partitions_get_whole_batches_within_both_limits() {
        let mut reads = vec![
            read(&[300], 1000),
            read(&[200, 200, 200], 500),   // partition limit 500 -> 400
            read(&[100, 100, 100], 10000), // remaining 1000-700=300 -> 300
            read(&[20], 10000),            // nothing left
        ];
        let used = apply_response_budget(&mut reads, 1000);
        let kept: Vec<usize> = reads.iter().map(|r| r.records.len()).collect();
        assert_eq!(kept, vec![300, 400, 300, 0]);
        assert_eq!(used, 1000);
    }

    #[test]
    fn negative_limits_keep_only_the_first_batch_rule() {
        let mut reads = vec![read(&[64], -1), read(&[64], -1)];
        apply_response_budget(&mut reads, -1);
        assert_eq!(reads[0].records.len(), 64);
        assert!(reads[1].records.is_empty());
    }

    #[test]
    fn shard_read_limit_is_capped_by_the_broker() {
        assert_eq!(shard_read_limit(-1, 1 << 20), 0);
        assert_eq!(shard_read_limit(i32::MAX, 1 << 20), 1 << 20);
        assert_eq!(shard_read_limit(4096, 1 << 20), 4096);
    }
}
