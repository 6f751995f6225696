//! Kafka's record-count rules for a produced batch, pure: the header's count must agree with
//! its offset range, and with the records actually present.
//!
//! The count is four bytes a client chooses. A broker that stores a batch whose count is not
//! its records hands every reader a number that sizes nothing real: a batch of one record
//! declaring `i32::MAX` records made a read path reserve 32 GiB and abort the process. Kafka
//! refuses such batches with INVALID_RECORD (`LogValidator.validateBatch` checks the header,
//! `DefaultRecordBatch`'s record iterator the records), and so does this module, with Kafka's
//! messages.
//!
//! An uncompressed batch's records are walked in place (a few varints per record, nothing
//! allocated). A compressed batch's records are read only when a topic rule decompresses them
//! anyway (`produce_rules`, which then calls [`check_records_present`]); otherwise its count is
//! bounded by the most records the broker's decompression bound could hold, so that no count
//! the broker stores exceeds what a reader could ever meet. Decompressing every produced batch
//! to count it, as Kafka does, would cost the produce path a full decompression.

use ringlet_protocol::record_batch::{BatchCompression, RecordBatchHeader, HEADER_SIZE};
use ringlet_protocol::records::walk_records;

use super::produce_rules::DECOMPRESSED_BATCH_BYTES_MAX;
use super::records_check::RecordsRejected;

/// The smallest record v2 allows: length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each.
pub const RECORD_BYTES_MIN: usize = 7;

/// Checks the count of a batch that passed `check_produced_records` (`batch` is the whole
/// batch, header included) produced to `topic`-`partition`.
pub fn check_record_count(
    batch: &[u8],
    header: &RecordBatchHeader,
    topic: &str,
    partition: i32,
) -> Result<(), RecordsRejected> {
    check_offset_range(header, topic, partition)?;
    if header.compression() == BatchCompression::None {
        return check_records_present(&batch[HEADER_SIZE..], header);
    }
    let most = DECOMPRESSED_BATCH_BYTES_MAX / RECORD_BYTES_MIN;
    if usize::try_from(header.records_count).map_or(true, |count| count > most) {
        return Err(RecordsRejected::Invalid(format!(
            "Record batch declares {} records, more than {most} records can be decompressed \
             in topic partition {topic}-{partition}.",
            header.records_count
        )));
    }
    Ok(())
}

/// `LogValidator.validateBatch` for magic 2: the offset range `[base, base + last_offset_delta]`
/// must hold exactly `records_count` offsets.
fn check_offset_range(
    header: &RecordBatchHeader,
    topic: &str,
    partition: i32,
) -> Result<(), RecordsRejected> {
    let first = header.base_offset;
    let last = header.last_offset();
    let count_from_offsets = i64::from(header.last_offset_delta) + 1;
    let count = header.records_count;
    let refuse = |message: String| Err(RecordsRejected::Invalid(message));
    if count_from_offsets <= 0 {
        return refuse(format!(
            "Batch has an invalid offset range: [{first}, {last}] in topic partition \
             {topic}-{partition}."
        ));
    }
    if count <= 0 {
        return refuse(format!(
            "Invalid reported count for record batch: {count} in topic partition \
             {topic}-{partition}."
        ));
    }
    if count_from_offsets != i64::from(count) {
        return refuse(format!(
            "Inconsistent batch offset range [{first}, {last}] and count of records {count} in \
             topic partition {topic}-{partition}."
        ));
    }
    Ok(())
}

/// The uncompressed records `section` must hold exactly the header's count of well-formed
/// records (Kafka's record iterator: "premature EOF" when fewer, "records still remaining"
/// when more).
pub fn check_records_present(
    section: &[u8],
    header: &RecordBatchHeader,
) -> Result<(), RecordsRejected> {
    let present = walk_records(section, |_| true)
        .map_err(|err| RecordsRejected::Invalid(format!("Found invalid record: {err}")))?;
    let declared = usize::try_from(header.records_count).unwrap_or(0);
    if present < declared {
        return Err(RecordsRejected::Invalid(
            "Incorrect declared batch size, premature EOF reached".into(),
        ));
    }
    if present > declared {
        return Err(RecordsRejected::Invalid(
            "Incorrect declared batch size, records still remaining in file".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::records_check::check_produced_records;
    use crate::partition::records_check::tests::{batch_with, ONE_RECORD};

    fn check(batch: &[u8]) -> Result<(), RecordsRejected> {
        let header = check_produced_records(batch, 1 << 20)?;
        check_record_count(batch, &header, "t", 0)
    }

    fn invalid_message(result: Result<(), RecordsRejected>) -> String {
        match result {
            Err(RecordsRejected::Invalid(message)) => message,
            other => panic!("expected INVALID_RECORD, got {other:?}"),
        }
    }

    #[test]
    fn a_count_matching_offsets_and_records_passes() {
        assert_eq!(check(&batch_with(0, 1, 0, ONE_RECORD)), Ok(()));
        let two = [ONE_RECORD, ONE_RECORD].concat();
        assert_eq!(check(&batch_with(0, 2, 1, &two)), Ok(()));
    }

    #[test]
    fn the_count_of_the_crafted_batch_is_refused_by_its_offset_range() {
        let message = invalid_message(check(&batch_with(0, i32::MAX, 0, ONE_RECORD)));
        assert_eq!(
            message,
            "Inconsistent batch offset range [0, 0] and count of records 2147483647 in topic \
             partition t-0."
        );
    }

    #[test]
    fn a_consistent_header_over_too_few_records_is_premature_eof() {
        let batch = batch_with(0, i32::MAX, i32::MAX - 1, ONE_RECORD);
        let message = invalid_message(check(&batch));
        assert_eq!(
            message,
            "Incorrect declared batch size, premature EOF reached"
        );
    }

    #[test]
    fn more_records_than_declared_remain_in_file() {
        let two = [ONE_RECORD, ONE_RECORD].concat();
        let message = invalid_message(check(&batch_with(0, 1, 0, &two)));
        assert_eq!(
            message,
            "Incorrect declared batch size, records still remaining in file"
        );
    }

    #[test]
    fn zero_count_and_negative_range_are_kafkas_messages() {
        let message = invalid_message(check(&batch_with(0, 0, 0, ONE_RECORD)));
        assert!(message.starts_with("Invalid reported count for record batch: 0"));
        let mut header =
            check_produced_records(&batch_with(0, 1, 0, ONE_RECORD), 1 << 20).expect("valid batch");
        header.last_offset_delta = -1;
        let message = invalid_message(check_offset_range(&header, "t", 0));
        assert!(message.starts_with("Batch has an invalid offset range"));
    }

    #[test]
    fn a_record_running_past_the_batch_is_invalid() {
        let mut record = ONE_RECORD.to_vec();
        record[0] = 0x7e; // length 63, far past the bytes present
        let message = invalid_message(check(&batch_with(0, 1, 0, &record)));
        assert!(message.starts_with("Found invalid record"), "{message}");
    }

    #[test]
    fn a_compressed_count_is_bounded_by_the_decompression_bound() {
        // zstd bits; the records are not read, only the count is bounded.
        let most = (DECOMPRESSED_BATCH_BYTES_MAX / RECORD_BYTES_MIN) as i32;
        let at_most = batch_with(4, most, most - 1, ONE_RECORD);
        assert_eq!(check(&at_most), Ok(()));
        let past = batch_with(4, most + 1, most, ONE_RECORD);
        assert!(invalid_message(check(&past)).contains("more than"));
    }
}
