//! Kafka record batch (magic 2) view: header fields, CRC32C check, offset rebasing.
//!
//! A produce request carries record batches that the broker stores exactly as received. This
//! module reads their fixed 61-byte header, checks the length, the magic byte and the CRC32C
//! (which covers the bytes from `attributes` to the end of the batch), and patches the two
//! fields the broker owns that lie *outside* the CRC: the base offset and the partition leader
//! epoch. Nothing here allocates per record or re-encodes a batch; the only rewrite that touches
//! CRC-covered bytes is [`set_log_append_time`], which Kafka also does for `LogAppendTime` topics.
//!
//! Header layout (big endian), offsets in bytes:
//! `base_offset:i64 @0, batch_length:i32 @8, partition_leader_epoch:i32 @12, magic:i8 @16,
//! crc:u32 @17, attributes:i16 @21, last_offset_delta:i32 @23, base_timestamp:i64 @27,
//! max_timestamp:i64 @35, producer_id:i64 @43, producer_epoch:i16 @51, base_sequence:i32 @53,
//! records_count:i32 @57`, records from @61.

use std::ops::Range;

/// Size of the fixed batch header, up to the first record.
pub const HEADER_SIZE: usize = 61;
/// Bytes before the `batch_length` count starts: base offset (8) + batch length (4).
pub const LOG_OVERHEAD: usize = 12;
/// The only record-batch format this broker stores.
pub const MAGIC_V2: i8 = 2;

const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Why a byte range is not a valid v2 record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch too short: {len} bytes, need at least {needed}")]
    TooShort { len: usize, needed: usize },
    #[error("batch length field {batch_length} does not match the {available} bytes available")]
    LengthMismatch { batch_length: i32, available: usize },
    #[error("unsupported record batch magic {0} (only magic 2 is stored)")]
    BadMagic(i8),
    #[error("CRC32C mismatch: header says {expected:#010x}, bytes give {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("invalid header field {field}: {value}")]
    InvalidField { field: &'static str, value: i64 },
    #[error("malformed record inside batch: {0}")]
    MalformedRecord(&'static str),
}

/// Compression codec from the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchCompression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    Unknown(u8),
}

/// Whether timestamps were set by the producer or by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The decoded fixed header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl RecordBatchHeader {
    pub fn compression(&self) -> BatchCompression {
        match (self.attributes & COMPRESSION_MASK) as u8 {
            0 => BatchCompression::None,
            1 => BatchCompression::Gzip,
            2 => BatchCompression::Snappy,
            3 => BatchCompression::Lz4,
            4 => BatchCompression::Zstd,
            other => BatchCompression::Unknown(other),
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Offset of the last record: `base_offset + last_offset_delta`. Saturating: a client's
    /// batch carries any base offset it likes until the log stamps its own.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Total size of the batch on the wire and on disk, header included.
    pub fn size_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

/// Decodes the fixed header. Checks only that 61 bytes are present; see [`validate_batch`].
pub fn parse_header(buf: &[u8]) -> Result<RecordBatchHeader, BatchError> {
    if buf.len() < HEADER_SIZE {
        return Err(BatchError::TooShort {
            len: buf.len(),
            needed: HEADER_SIZE,
        });
    }
    Ok(RecordBatchHeader {
        base_offset: be_i64(buf, 0),
        batch_length: be_i32(buf, BATCH_LENGTH_AT),
        partition_leader_epoch: be_i32(buf, LEADER_EPOCH_AT),
        magic: buf[MAGIC_AT] as i8,
        crc: be_i32(buf, CRC_AT) as u32,
        attributes: be_i16(buf, ATTRIBUTES_AT),
        last_offset_delta: be_i32(buf, 23),
        base_timestamp: be_i64(buf, 27),
        max_timestamp: be_i64(buf, MAX_TIMESTAMP_AT),
        producer_id: be_i64(buf, 43),
        producer_epoch: be_i16(buf, 51),
        base_sequence: be_i32(buf, 53),
        records_count: be_i32(buf, 57),
    })
}

/// Reads the total size (`12 + batch_length`) of the batch starting at `buf[0]` from its first
/// 12 bytes; `None` if fewer than 12 bytes are present or the length field is negative.
pub fn batch_size_hint(buf: &[u8]) -> Option<usize> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let batch_length = be_i32(buf, BATCH_LENGTH_AT);
    usize::try_from(batch_length)
        .ok()
        .map(|len| len + LOG_OVERHEAD)
}

/// Checks that `buf` is exactly one well-formed v2 batch: length field, magic 2, sane header
/// fields and the CRC32C over `buf[21..]`.
pub fn validate_batch(buf: &[u8]) -> Result<RecordBatchHeader, BatchError> {
    let header = parse_header(buf)?;
    let declared = i64::from(header.batch_length) + LOG_OVERHEAD as i64;
    if header.batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32 || declared != buf.len() as i64 {
        return Err(BatchError::LengthMismatch {
            batch_length: header.batch_length,
            available: buf.len(),
        });
    }
    if header.magic != MAGIC_V2 {
        return Err(BatchError::BadMagic(header.magic));
    }
    let actual = crc32c::crc32c(&buf[ATTRIBUTES_AT..]);
    if actual != header.crc {
        return Err(BatchError::CrcMismatch {
            expected: header.crc,
            actual,
        });
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::InvalidField {
            field: "last_offset_delta",
            value: header.last_offset_delta.into(),
        });
    }
    if header.records_count < 0 {
        return Err(BatchError::InvalidField {
            field: "records_count",
            value: header.records_count.into(),
        });
    }
    Ok(header)
}

/// Splits a produce request's `records` bytes into the byte ranges of its batches, checking only
/// lengths (call [`validate_batch`] on each range). A trailing partial batch is an error.
pub fn split_batches(records: &[u8]) -> Result<Vec<Range<usize>>, BatchError> {
    let mut ranges = Vec::new();
    let mut at = 0usize;
    while at < records.len() {
        let rest = &records[at..];
        let size = batch_size_hint(rest).ok_or(BatchError::TooShort {
            len: rest.len(),
            needed: LOG_OVERHEAD,
        })?;
        if size < HEADER_SIZE || size > rest.len() {
            return Err(BatchError::LengthMismatch {
                batch_length: be_i32(rest, BATCH_LENGTH_AT),
                available: rest.len(),
            });
        }
        ranges.push(at..at + size);
        at += size;
    }
    Ok(ranges)
}

/// Writes the broker-assigned base offset (outside the CRC, so the CRC stays valid).
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
    buf[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Stamps the partition leader epoch (outside the CRC).
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    buf[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// For `message.timestamp.type=LogAppendTime`: sets the timestamp-type attribute bit and the max
/// timestamp to the broker's time, then recomputes the CRC (both fields are CRC-covered). Kafka
/// does the same; the records themselves are untouched. `buf` must be a validated batch.
pub fn set_log_append_time(buf: &mut [u8], timestamp_ms: i64) {
    let attributes = be_i16(buf, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
    buf[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    buf[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES_AT..]);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// `(offset_delta, timestamp_ms)` of each record in an uncompressed batch, in order, without
/// decoding keys, values or headers. Returns `Ok(None)` for compressed batches (their records
/// are not readable without decompression) and for `LogAppendTime` batches every record's
/// timestamp is the batch's max timestamp, as Kafka defines. The records are walked within the
/// bytes present: the batch's `records_count` bounds neither the loop nor the allocation.
pub fn record_timestamps(buf: &[u8]) -> Result<Option<Vec<(i32, i64)>>, BatchError> {
    let header = parse_header(buf)?;
    if header.compression() != BatchCompression::None {
        return Ok(None);
    }
    let append_time = header.timestamp_type() == TimestampType::LogAppendTime;
    let mut out = Vec::new();
    crate::records::walk_records(&buf[HEADER_SIZE..], |record| {
        let timestamp = if append_time {
            header.max_timestamp
        } else {
            header.base_timestamp.saturating_add(record.timestamp_delta)
        };
        out.push((record.offset_delta, timestamp));
        true
    })?;
    Ok(Some(out))
}

/// Zig-zag varint (up to 64 bits) at `buf[at..]`: value and bytes consumed.
pub(crate) fn read_varint(buf: &[u8], at: usize) -> Result<(i64, usize), BatchError> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let byte = *buf
            .get(at + i)
            .ok_or(BatchError::MalformedRecord("varint past batch end"))?;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = (raw >> 1) as i64 ^ -((raw & 1) as i64);
            return Ok((value, i + 1));
        }
    }
    Err(BatchError::MalformedRecord("varint longer than 10 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType as KTs,
    };

    fn record(offset: i64, timestamp: i64, value_len: usize) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: KTs::Creation,
            offset,
            // The encoder starts a new batch when `offset - sequence` changes.
            sequence: offset as i32 - 1,
            timestamp,
            key: Some(Bytes::from_static(b"key")),
            value: Some(Bytes::from(vec![b'v'; value_len])),
            headers: Default::default(),
        }
    }

    fn encode(records: &[Record], compression: Compression) -> BytesMut {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, records, &options).expect("encode batch");
        buf
    }

    fn three_records() -> Vec<Record> {
        vec![
            record(0, 1000, 10),
            record(1, 1005, 20),
            record(2, 1002, 30),
        ]
    }

    #[test]
    fn real_batch_validates_and_header_matches_encoder() {
        let buf = encode(&three_records(), Compression::None);
        let header = validate_batch(&buf).expect("valid");
        assert_eq!(header.magic, 2);
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.base_timestamp, 1000);
        assert_eq!(header.max_timestamp, 1005);
        assert_eq!(header.size_bytes(), buf.len());
        assert_eq!(header.compression(), BatchCompression::None);
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
        assert!(!header.is_transactional() && !header.is_control());
    }

    #[test]
    fn rebasing_keeps_crc_valid() {
        let mut buf = encode(&three_records(), Compression::None);
        set_base_offset(&mut buf, 1_000_000);
        set_partition_leader_epoch(&mut buf, 7);
        let header = validate_batch(&buf).expect("still valid");
        assert_eq!(header.base_offset, 1_000_000);
        assert_eq!(header.last_offset(), 1_000_002);
        assert_eq!(header.partition_leader_epoch, 7);
    }

    #[test]
    fn any_flipped_byte_in_crc_range_is_caught() {
        let buf = encode(&three_records(), Compression::None);
        for at in CRC_AT..buf.len() {
            let mut bad = buf.clone();
            bad[at] ^= 0x40;
            assert!(validate_batch(&bad).is_err(), "flip at {at} not detected");
        }
    }

    #[test]
    fn truncation_at_every_byte_is_an_error_not_a_panic() {
        let buf = encode(&three_records(), Compression::None);
        for len in 0..buf.len() {
            assert!(validate_batch(&buf[..len]).is_err());
            assert!(split_batches(&buf[..len]).is_err() || len == 0);
        }
    }

    #[test]
    fn bad_magic_is_typed() {
        let mut buf = encode(&three_records(), Compression::None);
        buf[MAGIC_AT] = 1;
        assert_eq!(validate_batch(&buf), Err(BatchError::BadMagic(1)));
    }

    #[test]
    fn split_finds_each_batch() {
        let mut all = encode(&three_records(), Compression::None);
        let second = encode(&[record(0, 5, 100)], Compression::Zstd);
        all.extend_from_slice(&second);
        let ranges = split_batches(&all).expect("split");
        assert_eq!(ranges.len(), 2);
        assert_eq!(ranges[1].len(), second.len());
        for range in ranges {
            validate_batch(&all[range]).expect("each valid");
        }
    }

    #[test]
    fn log_append_time_rewrites_crc() {
        let mut buf = encode(&three_records(), Compression::None);
        set_log_append_time(&mut buf, 42_000);
        let header = validate_batch(&buf).expect("valid after restamp");
        assert_eq!(header.max_timestamp, 42_000);
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        let stamps = record_timestamps(&buf)
            .expect("decode")
            .expect("uncompressed");
        assert!(stamps.iter().all(|(_, ts)| *ts == 42_000));
    }

    #[test]
    fn record_timestamps_ignore_a_forged_count() {
        // One real record and a header claiming i32::MAX: sized from the header, this walk
        // once asked for 32 GiB and aborted the broker on ListOffsets by timestamp.
        let mut buf = encode(&[record(0, 1000, 10)], Compression::None);
        buf[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&buf[ATTRIBUTES_AT..]);
        buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        let stamps = record_timestamps(&buf)
            .expect("walks")
            .expect("uncompressed");
        assert_eq!(stamps, vec![(0, 1000)]);
        assert!(stamps.capacity() < 1024);
    }

    #[test]
    fn last_offset_saturates_on_a_forged_base_offset() {
        let mut buf = encode(&three_records(), Compression::None);
        set_base_offset(&mut buf, i64::MAX);
        assert_eq!(parse_header(&buf).expect("header").last_offset(), i64::MAX);
    }

    #[test]
    fn record_timestamps_of_uncompressed_batch() {
        let buf = encode(&three_records(), Compression::None);
        let stamps = record_timestamps(&buf)
            .expect("decode")
            .expect("uncompressed");
        assert_eq!(stamps, vec![(0, 1000), (1, 1005), (2, 1002)]);
        let zstd = encode(&three_records(), Compression::Zstd);
        assert_eq!(record_timestamps(&zstd).expect("header ok"), None);
    }
}
