//! Validation of the records of one produced partition, pure.
//!
//! Runs on the connection's shard before any bus hop, so a bad batch costs no
//! hop and CRC work is spread over the shards that accept connections. The
//! rules are Kafka's (`ProduceRequest.validateRecords`, `LogValidator`): since
//! produce v3 a partition carries exactly one magic-2 batch; its CRC32C must
//! match (else CORRUPT_MESSAGE); it may not exceed the topic's
//! `max.message.bytes` (else MESSAGE_TOO_LARGE); clients may not write control
//! batches (INVALID_RECORD). The record count is checked against the offset
//! range and the records present by `records_count`; records are otherwise read
//! only when the topic's config needs them (`produce_rules`).

use ringlet_protocol::record_batch::{self, BatchError, RecordBatchHeader};

/// Why the records of one produced partition are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsRejected {
    /// INVALID_RECORD: structurally valid bytes that Kafka does not accept from a producer.
    #[error("invalid record batch: {0}")]
    Invalid(String),
    /// CORRUPT_MESSAGE: length or CRC do not check out.
    #[error("corrupt record batch: {0}")]
    Corrupt(BatchError),
    /// MESSAGE_TOO_LARGE: the batch exceeds the topic's `max.message.bytes`.
    #[error("record batch of {size_bytes} bytes exceeds max.message.bytes {max_bytes}")]
    TooLarge { size_bytes: usize, max_bytes: usize },
    /// MESSAGE_TOO_LARGE: the batch's compressed records inflate past the broker's bound.
    #[error("record batch decompresses to more than {max_bytes} bytes")]
    InflatesTooMuch { max_bytes: usize },
    /// INVALID_RECORD with per-record errors (ProduceResponse v8+ `record_errors`); the
    /// message is Kafka's `processRecordErrors` summary.
    #[error("{}", record_errors_summary(.0))]
    RecordErrors(Vec<RecordError>),
}

/// One refused record: its position in the batch and why (Kafka's `RecordError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// Kafka's text for a batch refused by record errors, the first three spelled out as Java's
/// `List.toString` of `RecordError`s prints them.
fn record_errors_summary(errors: &[RecordError]) -> String {
    let shown: Vec<String> = errors
        .iter()
        .take(3)
        .map(|e| {
            format!(
                "RecordError(batchIndex={}, message='{}')",
                e.batch_index, e.message
            )
        })
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only \
         showing the first three errors at most: [{}]",
        errors.len(),
        shown.join(", ")
    )
}

/// Checks the records of one produced partition and returns the single batch's header.
pub fn check_produced_records(
    records: &[u8],
    max_message_bytes: usize,
) -> Result<RecordBatchHeader, RecordsRejected> {
    if records.is_empty() {
        return Err(RecordsRejected::Invalid(
            "produce request has no record batch".into(),
        ));
    }
    // Size first, as Kafka does, so a huge batch is refused before CRC work.
    if let Some(size_bytes) = record_batch::batch_size_hint(records) {
        if size_bytes > max_message_bytes {
            return Err(RecordsRejected::TooLarge {
                size_bytes,
                max_bytes: max_message_bytes,
            });
        }
    }
    let ranges = record_batch::split_batches(records).map_err(RecordsRejected::Corrupt)?;
    if ranges.len() != 1 {
        return Err(RecordsRejected::Invalid(format!(
            "produce requests v3+ must carry exactly one record batch per partition, got {}",
            ranges.len()
        )));
    }
    let header = match record_batch::validate_batch(records) {
        Ok(header) => header,
        Err(BatchError::BadMagic(magic)) => {
            return Err(RecordsRejected::Invalid(format!(
                "record batch magic {magic}: only magic 2 is accepted"
            )))
        }
        // Kafka answers a negative count or offset range INVALID_RECORD, not CORRUPT_MESSAGE.
        Err(err @ BatchError::InvalidField { .. }) => {
            return Err(RecordsRejected::Invalid(err.to_string()))
        }
        Err(err) => return Err(RecordsRejected::Corrupt(err)),
    };
    if header.is_control() {
        return Err(RecordsRejected::Invalid(
            "clients may not produce control batches".into(),
        ));
    }
    Ok(header)
}

/// Whether the broker stamps this topic's batches with the append time.
pub fn uses_log_append_time(message_timestamp_type: &str) -> bool {
    message_timestamp_type.eq_ignore_ascii_case("LogAppendTime")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A real v2 batch: header fields, one record, CRC32C over attributes..end.
    pub(crate) fn batch_with(
        attributes: i16,
        records_count: i32,
        last_offset_delta: i32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes()); // base_offset
        b.extend_from_slice(&0i32.to_be_bytes()); // batch_length, patched below
        b.extend_from_slice(&(-1i32).to_be_bytes()); // partition_leader_epoch
        b.push(2); // magic
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, patched below
        b.extend_from_slice(&attributes.to_be_bytes());
        b.extend_from_slice(&last_offset_delta.to_be_bytes());
        b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // base_timestamp
        b.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // max_timestamp
        b.extend_from_slice(&(-1i64).to_be_bytes()); // producer_id
        b.extend_from_slice(&(-1i16).to_be_bytes()); // producer_epoch
        b.extend_from_slice(&(-1i32).to_be_bytes()); // base_sequence
        b.extend_from_slice(&records_count.to_be_bytes());
        b.extend_from_slice(payload);
        let batch_length = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&batch_length.to_be_bytes());
        let crc = crc32c_of(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn crc32c_of(bytes: &[u8]) -> u32 {
        // Bitwise CRC32C (Castagnoli, reflected 0x82F63B78): independent of the code under test.
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// One uncompressed record: length, attributes, ts delta, offset delta, key, value, headers.
    pub(crate) const ONE_RECORD: &[u8] = &[0x12, 0, 0, 0, 0x01, 0x06, b'a', b'b', b'c', 0];

    #[test]
    fn a_valid_batch_passes_and_its_header_is_returned() {
        let batch = batch_with(0, 1, 0, ONE_RECORD);
        let header = check_produced_records(&batch, 1 << 20).expect("valid");
        assert_eq!(header.records_count, 1);
        assert_eq!(header.size_bytes(), batch.len());
    }

    #[test]
    fn a_flipped_payload_bit_is_corrupt() {
        let mut batch = batch_with(0, 1, 0, ONE_RECORD);
        let last = batch.len() - 2;
        batch[last] ^= 0x40;
        assert!(matches!(
            check_produced_records(&batch, 1 << 20),
            Err(RecordsRejected::Corrupt(BatchError::CrcMismatch { .. }))
        ));
    }

    #[test]
    fn too_large_is_refused_before_crc() {
        let mut batch = batch_with(0, 1, 0, ONE_RECORD);
        batch[30] ^= 1; // would also fail the CRC
        assert_eq!(
            check_produced_records(&batch, 40),
            Err(RecordsRejected::TooLarge {
                size_bytes: batch.len(),
                max_bytes: 40
            })
        );
    }

    #[test]
    fn empty_two_batches_control_and_old_magic_are_invalid() {
        assert!(matches!(
            check_produced_records(&[], 1 << 20),
            Err(RecordsRejected::Invalid(_))
        ));
        let one = batch_with(0, 1, 0, ONE_RECORD);
        let two = [one.clone(), one.clone()].concat();
        assert!(matches!(
            check_produced_records(&two, 1 << 20),
            Err(RecordsRejected::Invalid(_))
        ));
        let control = batch_with(0x20, 1, 0, ONE_RECORD);
        assert!(matches!(
            check_produced_records(&control, 1 << 20),
            Err(RecordsRejected::Invalid(_))
        ));
        let mut old_magic = one.clone();
        old_magic[16] = 1;
        assert!(matches!(
            check_produced_records(&old_magic, 1 << 20),
            Err(RecordsRejected::Invalid(_))
        ));
    }

    #[test]
    fn truncated_batch_is_corrupt() {
        let batch = batch_with(0, 1, 0, ONE_RECORD);
        assert!(matches!(
            check_produced_records(&batch[..batch.len() - 1], 1 << 20),
            Err(RecordsRejected::Corrupt(_))
        ));
    }

    #[test]
    fn log_append_time_is_recognised_by_config_value() {
        assert!(uses_log_append_time("LogAppendTime"));
        assert!(!uses_log_append_time("CreateTime"));
    }
}
