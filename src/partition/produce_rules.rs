//! What a topic's config asks of a produced batch once its framing is checked
//! (`records_check`), pure. Runs on the connection's shard before any bus hop, so every replica
//! appends the same bytes and a refused batch costs no hop.
//!
//! - `cleanup.policy` with `compact`: every record needs a key. A batch with a keyless record
//!   is refused whole with INVALID_RECORD and one record error per keyless record, with
//!   Kafka's messages (`LogValidator.validateKey` / `processRecordErrors`).
//! - `compression.type` other than `producer`: a batch in another codec is re-packed in the
//!   topic's (`ringlet_protocol::records::with_codec`: header fields and record bytes as
//!   produced, new records section, length and CRC), as Kafka's `LogValidator` recompresses.
//!   The result must still fit `max.message.bytes` (Kafka re-checks it after recompression).
//!
//! Records are read only when a rule needs them, within the bytes present; a compressed batch
//! is decompressed into at most [`DECOMPRESSED_BATCH_BYTES_MAX`] bytes, so a small batch that
//! inflates without end is refused (MESSAGE_TOO_LARGE, which lets a Java producer split the
//! batch) instead of exhausting memory. Kafka has no such cap; it streams the records.

use ringlet_protocol::compression::CodecError;
use ringlet_protocol::record_batch::{BatchCompression, RecordBatchHeader, HEADER_SIZE};
use ringlet_protocol::records::{self, RecordsError};

use super::records_check::{RecordError, RecordsRejected};
use super::records_count::check_records_present;
use crate::config::topic_config::CompressionType;

/// The most a produced batch's records may decompress to: 64 MiB, sixty-four times Kafka's
/// default `message.max.bytes`. The check runs synchronously, so a shard holds at most one
/// such buffer at a time.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 64 << 20;

/// The rules of the topic partition a batch is produced to.
#[derive(Debug, Clone, Copy)]
pub struct TopicRules<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub compression: CompressionType,
    pub compacted: bool,
    pub max_message_bytes: usize,
}

/// Applies `rules` to a batch that passed `check_produced_records` and `check_record_count`;
/// `Some(bytes)` when the batch must be stored re-packed, `None` when it is stored as produced.
/// A compressed batch's records are counted here, where they are decompressed anyway.
pub fn apply_topic_rules(
    batch: &[u8],
    header: &RecordBatchHeader,
    rules: &TopicRules<'_>,
) -> Result<Option<Vec<u8>>, RecordsRejected> {
    let source = header.compression();
    let target = rules.compression.target().filter(|codec| *codec != source);
    if !rules.compacted && target.is_none() {
        return Ok(None);
    }
    let section =
        records::records_section(batch, DECOMPRESSED_BATCH_BYTES_MAX).map_err(rejected)?;
    if source != BatchCompression::None {
        check_records_present(&section, header)?;
    }
    if rules.compacted {
        check_keys(&section, rules)?;
    }
    let Some(target) = target else {
        return Ok(None);
    };
    repack(batch, &section, target, rules.max_message_bytes).map(Some)
}

/// Refuses the batch when any record has a null key, naming each such record.
fn check_keys(section: &[u8], rules: &TopicRules<'_>) -> Result<(), RecordsRejected> {
    let message = format!(
        "Compacted topic cannot accept message without key in topic partition {}-{}.",
        rules.topic, rules.partition
    );
    let mut keyless = Vec::new();
    records::walk_records(section, |record| {
        if !record.has_key {
            keyless.push(record.index);
        }
        true
    })
    .map_err(RecordsRejected::Corrupt)?;
    if keyless.is_empty() {
        return Ok(());
    }
    let record_errors = keyless
        .into_iter()
        .map(|index| RecordError {
            batch_index: i32::try_from(index).unwrap_or(i32::MAX),
            message: message.clone(),
        })
        .collect();
    Err(RecordsRejected::RecordErrors(record_errors))
}

fn repack(
    batch: &[u8],
    section: &[u8],
    target: BatchCompression,
    max_message_bytes: usize,
) -> Result<Vec<u8>, RecordsRejected> {
    let packed = records::with_codec(batch, section, target).map_err(rejected)?;
    if packed.len() > max_message_bytes {
        return Err(RecordsRejected::TooLarge {
            size_bytes: packed.len(),
            max_bytes: max_message_bytes,
        });
    }
    debug_assert!(packed.len() >= HEADER_SIZE);
    Ok(packed)
}

fn rejected(err: RecordsError) -> RecordsRejected {
    match err {
        RecordsError::Batch(err) => RecordsRejected::Corrupt(err),
        RecordsError::Codec(CodecError::TooLarge { max_bytes }) => {
            RecordsRejected::InflatesTooMuch { max_bytes }
        }
        RecordsError::Codec(err) => RecordsRejected::Invalid(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::records_check::check_produced_records;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    fn record(offset: i64, key: Option<&'static [u8]>, value: Vec<u8>) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: 9,
            producer_epoch: 1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: 5 + offset as i32,
            timestamp: 1_700_000_000_000 - offset,
            key: key.map(Bytes::from_static),
            value: Some(Bytes::from(value)),
            headers: Default::default(),
        }
    }

    fn batch(records: &[Record], compression: Compression) -> BytesMut {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, records, &options).expect("encode");
        buf
    }

    fn rules(compression: CompressionType, compacted: bool) -> TopicRules<'static> {
        TopicRules {
            topic: "t",
            partition: 2,
            compression,
            compacted,
            max_message_bytes: 1 << 20,
        }
    }

    fn apply(bytes: &[u8], rules: &TopicRules<'_>) -> Result<Option<Vec<u8>>, RecordsRejected> {
        let header = check_produced_records(bytes, rules.max_message_bytes).expect("valid");
        apply_topic_rules(bytes, &header, rules)
    }

    fn keyed() -> Vec<Record> {
        (0..3)
            .map(|i| record(i, Some(b"k"), vec![b'x'; 300]))
            .collect()
    }

    #[test]
    fn producer_codec_and_same_codec_store_as_produced() {
        let plain = batch(&keyed(), Compression::None);
        assert_eq!(
            apply(&plain, &rules(CompressionType::Producer, false)),
            Ok(None)
        );
        assert_eq!(
            apply(&plain, &rules(CompressionType::Uncompressed, false)),
            Ok(None)
        );
        let gzip = batch(&keyed(), Compression::Gzip);
        assert_eq!(apply(&gzip, &rules(CompressionType::Gzip, true)), Ok(None));
    }

    #[test]
    fn other_codecs_are_repacked_with_records_intact() {
        let plain = batch(&keyed(), Compression::None);
        let zstd = apply(&plain, &rules(CompressionType::Zstd, false))
            .expect("accepted")
            .expect("repacked");
        let header = check_produced_records(&zstd, 1 << 20).expect("valid CRC");
        assert_eq!(header.compression(), BatchCompression::Zstd);
        let back = apply(&zstd, &rules(CompressionType::Uncompressed, false))
            .expect("accepted")
            .expect("repacked");
        assert_eq!(back, plain.to_vec());
        let decoded = RecordBatchDecoder::decode(&mut Bytes::from(zstd)).expect("decodes");
        assert_eq!(decoded.records, keyed());
    }

    #[test]
    fn keyless_records_on_a_compacted_topic_fail_the_batch() {
        let mut records = keyed();
        records[1].key = None;
        records.push(record(3, None, vec![1]));
        for compression in [Compression::None, Compression::Lz4] {
            let bytes = batch(&records, compression);
            let err = apply(&bytes, &rules(CompressionType::Producer, true)).unwrap_err();
            let RecordsRejected::RecordErrors(errors) = &err else {
                panic!("{err:?}");
            };
            let indexes: Vec<i32> = errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(indexes, vec![1, 3]);
            assert_eq!(
                errors[0].message,
                "Compacted topic cannot accept message without key in topic partition t-2."
            );
            assert!(err.to_string().starts_with(
                "One or more records have been rejected due to 2 record errors in total"
            ));
            // Not compacted: the same batch is fine.
            assert!(apply(&bytes, &rules(CompressionType::Producer, false)).is_ok());
        }
        // An empty key is a key.
        let mut empty = keyed();
        empty[0].key = Some(Bytes::new());
        let bytes = batch(&empty, Compression::None);
        assert_eq!(
            apply(&bytes, &rules(CompressionType::Producer, true)),
            Ok(None)
        );
    }

    #[test]
    fn a_batch_inflating_past_the_cap_is_refused() {
        let big = vec![record(0, Some(b"k"), vec![0; DECOMPRESSED_BATCH_BYTES_MAX])];
        let bytes = batch(&big, Compression::Zstd);
        assert!(bytes.len() < 1 << 20, "{}", bytes.len());
        assert_eq!(
            apply(&bytes, &rules(CompressionType::Gzip, false)),
            Err(RecordsRejected::InflatesTooMuch {
                max_bytes: DECOMPRESSED_BATCH_BYTES_MAX
            })
        );
    }

    #[test]
    fn a_repacked_batch_must_still_fit_max_message_bytes() {
        // Incompressible values: gzip adds bytes to what the producer sent uncompressed.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let bytes = batch(&[record(0, Some(b"k"), noise)], Compression::None);
        let mut tight = rules(CompressionType::Gzip, false);
        tight.max_message_bytes = bytes.len();
        assert!(matches!(
            apply(&bytes, &tight),
            Err(RecordsRejected::TooLarge { .. })
        ));
    }

    #[test]
    fn a_compressed_record_count_the_records_do_not_match_is_invalid() {
        // Consistent with its offset range, so only the decompressed records can tell.
        let mut bytes = batch(&keyed(), Compression::Lz4).to_vec();
        bytes[23..27].copy_from_slice(&3i32.to_be_bytes()); // last_offset_delta
        bytes[57..61].copy_from_slice(&4i32.to_be_bytes()); // records_count
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            apply(&bytes, &rules(CompressionType::Producer, true)),
            Err(RecordsRejected::Invalid(
                "Incorrect declared batch size, premature EOF reached".into()
            ))
        );
    }
}
