//! The records inside a v2 batch: walked in place, decompressed within a bound, and re-packed
//! under another codec.
//!
//! A record is `length varint, attributes i8, timestamp_delta varlong, offset_delta varint,
//! key_length varint (-1 = null), key, value_length varint, value, header_count varint,
//! headers`. The walk reads each record's length fields, checks that they fill the record
//! exactly, and jumps over keys, values and headers, so it costs a few varints per record and
//! allocates nothing; it stops at the end of the bytes present, never trusting the batch's
//! `records_count` for a loop bound or an allocation.
//!
//! Re-packing ([`with_codec`]) keeps every header field and every record byte as produced and
//! replaces only the codec bits, the records section, the batch length and the CRC: record
//! bytes carry deltas from the batch's base offset and base timestamp, which do not change, so
//! offsets, timestamps, keys, values and headers (duplicate header keys included) stay exactly
//! as the producer wrote them, as do the producer id, epoch, base sequence and the
//! transactional and control flags.

use std::borrow::Cow;

use crate::compression::{self, CodecError};
use crate::record_batch::{
    parse_header, read_varint, BatchCompression, BatchError, TimestampType, HEADER_SIZE,
};

/// What the walk exposes of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView {
    /// Position of the record in its batch, from 0 (Kafka's `batch_index`).
    pub index: usize,
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    /// False for a null key (length -1); an empty key is a key.
    pub has_key: bool,
}

/// Why a batch's records could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Calls `visit` for each record of an uncompressed records section, in order, until it
/// returns false or the bytes end; returns how many records were visited. A record that runs
/// past the end of `section` is an error.
pub fn walk_records(
    section: &[u8],
    mut visit: impl FnMut(&RecordView) -> bool,
) -> Result<usize, BatchError> {
    let mut at = 0usize;
    let mut index = 0usize;
    while at < section.len() {
        let (view, next) = read_record(section, at, index)?;
        index += 1;
        if !visit(&view) {
            break;
        }
        at = next;
    }
    Ok(index)
}

/// The record starting at `section[at]` and where the next one starts. Every field the record
/// declares (key, value, each header) must lie within the record's own length and fill it
/// exactly, as Kafka's `DefaultRecord.readFrom` requires, so a record a client could not read
/// is refused here rather than stored.
fn read_record(section: &[u8], at: usize, index: usize) -> Result<(RecordView, usize), BatchError> {
    let (length, n) = read_varint(section, at)?;
    let body_start = at + n;
    let body_end = usize::try_from(length)
        .ok()
        .and_then(|len| body_start.checked_add(len))
        .filter(|end| *end <= section.len())
        .ok_or(BatchError::MalformedRecord("record length past batch end"))?;
    let body = &section[..body_end];
    let mut cursor = body_start + 1; // attributes: i8, unused in v2
    let (timestamp_delta, n) = read_varint(body, cursor)?;
    cursor += n;
    let (offset_delta, n) = read_varint(body, cursor)?;
    cursor += n;
    let (key_length, n) = read_varint(body, cursor)?;
    if key_length < -1 {
        return Err(BatchError::MalformedRecord("negative key length"));
    }
    cursor = skip_field(body, cursor + n, key_length)?;
    cursor = skip_value_and_headers(body, cursor)?;
    if cursor != body_end {
        return Err(BatchError::MalformedRecord(
            "record fields do not fill the record length",
        ));
    }
    let offset_delta = i32::try_from(offset_delta)
        .map_err(|_| BatchError::MalformedRecord("offset delta out of range"))?;
    let view = RecordView {
        index,
        offset_delta,
        timestamp_delta,
        has_key: key_length >= 0,
    };
    Ok((view, body_end))
}

/// Past the value and the headers of a record whose body ends at `body.len()`; each length is
/// checked against the bytes left before it is used, and the header count bounds nothing but
/// a loop that stops at the first header that does not fit.
fn skip_value_and_headers(body: &[u8], at: usize) -> Result<usize, BatchError> {
    let (value_length, n) = read_varint(body, at)?;
    if value_length < -1 {
        return Err(BatchError::MalformedRecord("negative value length"));
    }
    let mut cursor = skip_field(body, at + n, value_length)?;
    let (header_count, n) = read_varint(body, cursor)?;
    if header_count < 0 {
        return Err(BatchError::MalformedRecord("negative header count"));
    }
    cursor += n;
    for _ in 0..header_count {
        let (key_length, n) = read_varint(body, cursor)?;
        if key_length < 0 {
            return Err(BatchError::MalformedRecord("negative header key length"));
        }
        cursor = skip_field(body, cursor + n, key_length)?;
        let (value_length, n) = read_varint(body, cursor)?;
        if value_length < -1 {
            return Err(BatchError::MalformedRecord("negative header value length"));
        }
        cursor = skip_field(body, cursor + n, value_length)?;
    }
    Ok(cursor)
}

/// Where a field of `length` bytes (-1: null, no bytes) starting at `at` ends, if it fits.
fn skip_field(body: &[u8], at: usize, length: i64) -> Result<usize, BatchError> {
    let length = usize::try_from(length.max(0))
        .map_err(|_| BatchError::MalformedRecord("field length out of range"))?;
    at.checked_add(length)
        .filter(|end| *end <= body.len())
        .ok_or(BatchError::MalformedRecord("record field past record end"))
}

/// The records section of a validated batch, decompressed when the batch is compressed; the
/// decompressed form may be at most `max_bytes` long.
pub fn records_section(batch: &[u8], max_bytes: usize) -> Result<Cow<'_, [u8]>, RecordsError> {
    let header = parse_header(batch)?;
    let section = &batch[HEADER_SIZE..];
    Ok(match header.compression() {
        BatchCompression::None => Cow::Borrowed(section),
        codec => Cow::Owned(compression::decompress(codec, section, max_bytes)?),
    })
}

/// `batch` (validated) with its records section replaced by `records` (the batch's records,
/// uncompressed) compressed with `codec`; length, codec bits and CRC32C recomputed.
pub fn with_codec(
    batch: &[u8],
    records: &[u8],
    codec: BatchCompression,
) -> Result<Vec<u8>, RecordsError> {
    const ATTRIBUTES_AT: usize = 21;
    const CRC_AT: usize = 17;
    let header = parse_header(batch)?;
    let packed = compression::compress(codec, records)?;
    let mut out = Vec::with_capacity(HEADER_SIZE + packed.len());
    out.extend_from_slice(&batch[..HEADER_SIZE]);
    out.extend_from_slice(&packed);
    let batch_length =
        i32::try_from(out.len() - crate::record_batch::LOG_OVERHEAD).map_err(|_| {
            BatchError::InvalidField {
                field: "batch_length",
                value: out.len() as i64,
            }
        })?;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (header.attributes & !0x07) | codec_bits(codec);
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

fn codec_bits(codec: BatchCompression) -> i16 {
    match codec {
        BatchCompression::None => 0,
        BatchCompression::Gzip => 1,
        BatchCompression::Snappy => 2,
        BatchCompression::Lz4 => 3,
        BatchCompression::Zstd => 4,
        BatchCompression::Unknown(bits) => i16::from(bits & 0x07),
    }
}

/// `(offset, timestamp)` of the first record of a validated batch whose timestamp is the
/// batch's max timestamp, as Kafka's `RecordBatch.offsetOfMaxTimestamp` (KAFKA-16310): the
/// batch's last offset is not the answer when records arrived out of timestamp order. In a
/// `LogAppendTime` batch every record has the max timestamp, so it is the first record.
pub fn offset_of_max_timestamp(
    batch: &[u8],
    max_bytes: usize,
) -> Result<Option<(i64, i64)>, RecordsError> {
    let header = parse_header(batch)?;
    let section = records_section(batch, max_bytes)?;
    let append_time = header.timestamp_type() == TimestampType::LogAppendTime;
    let mut found = None;
    walk_records(&section, |record| {
        let timestamp = header.base_timestamp.saturating_add(record.timestamp_delta);
        if append_time || timestamp == header.max_timestamp {
            let offset = header.base_offset + i64::from(record.offset_delta);
            found = Some((offset, header.max_timestamp));
            return false;
        }
        true
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::validate_batch;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as KTs,
    };

    fn record(offset: i64, timestamp: i64, key: Option<&'static [u8]>) -> Record {
        Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 3,
            producer_id: 77,
            producer_epoch: 2,
            timestamp_type: KTs::Creation,
            offset,
            sequence: 40 + offset as i32,
            timestamp,
            key: key.map(Bytes::from_static),
            value: Some(Bytes::from(vec![b'v'; 100 + offset as usize])),
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

    fn records() -> Vec<Record> {
        vec![
            record(0, 1_000, Some(b"a")),
            record(1, 5_000, None),
            record(2, 3_000, Some(b"")),
            record(3, 5_000, Some(b"d")),
        ]
    }

    #[test]
    fn walk_sees_every_record_and_null_keys() {
        let batch = encode(&records(), Compression::None);
        let mut seen = Vec::new();
        let count = walk_records(&batch[HEADER_SIZE..], |r| {
            seen.push((r.index, r.offset_delta, r.timestamp_delta, r.has_key));
            true
        })
        .expect("walk");
        assert_eq!(count, 4);
        assert_eq!(
            seen,
            vec![
                (0, 0, 0, true),
                (1, 1, 4_000, false),
                (2, 2, 2_000, true),
                (3, 3, 4_000, true)
            ]
        );
    }

    #[test]
    fn truncated_sections_are_errors_at_every_length() {
        let batch = encode(&records(), Compression::None);
        let section = &batch[HEADER_SIZE..];
        let whole = walk_records(section, |_| true).expect("whole");
        for len in 1..section.len() {
            if let Ok(count) = walk_records(&section[..len], |_| true) {
                assert!(count < whole, "cut at {len} still walked {count}");
            }
        }
    }

    /// A one-record section: `[length, attributes, ts delta, offset delta, key len, key...,
    /// value len, value..., header count, headers...]` with the length computed.
    fn one_record(body: &[u8]) -> Vec<u8> {
        let mut section = vec![(body.len() as u8) << 1];
        section.extend_from_slice(body);
        section
    }

    #[test]
    fn a_well_formed_record_with_a_header_walks() {
        // key "k", value "vv", one header "h" -> null.
        let body = [0, 0, 0, 2, b'k', 4, b'v', b'v', 2, 2, b'h', 1];
        assert_eq!(walk_records(&one_record(&body), |_| true), Ok(1));
    }

    #[test]
    fn record_fields_must_fill_the_record_exactly() {
        let cases: [(&str, &[u8]); 5] = [
            ("value past record end", &[0, 0, 0, 1, 20, b'v']),
            ("header count past end", &[0, 0, 0, 1, 0, 20]),
            ("bytes left over", &[0, 0, 0, 1, 0, 0, 9]),
            ("negative value length", &[0, 0, 0, 1, 3, 0]),
            ("negative header count", &[0, 0, 0, 1, 0, 3]),
        ];
        for (what, body) in cases {
            assert!(
                walk_records(&one_record(body), |_| true).is_err(),
                "{what} walked"
            );
        }
    }

    #[test]
    fn a_huge_header_count_stops_at_the_bytes_present() {
        // Header count i32::MAX (zig-zag varint), nothing after it.
        let body = [0, 0, 0, 1, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f];
        assert!(walk_records(&one_record(&body), |_| true).is_err());
    }

    #[test]
    fn recompressing_keeps_records_and_header_fields() {
        let source = encode(&records(), Compression::None);
        for (codec, kp) in [
            (BatchCompression::Gzip, Compression::Gzip),
            (BatchCompression::Snappy, Compression::Snappy),
            (BatchCompression::Lz4, Compression::Lz4),
            (BatchCompression::Zstd, Compression::Zstd),
        ] {
            let packed = with_codec(&source, &source[HEADER_SIZE..], codec).expect("pack");
            let header = validate_batch(&packed).expect("valid CRC and length");
            let before = validate_batch(&source).expect("source");
            assert_eq!(header.compression(), codec);
            assert_eq!(
                (
                    header.attributes & !0x07,
                    header.base_timestamp,
                    header.max_timestamp
                ),
                (
                    before.attributes,
                    before.base_timestamp,
                    before.max_timestamp
                )
            );
            assert_eq!(
                (
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence
                ),
                (77, 2, 40)
            );
            assert!(header.is_transactional());
            let mut bytes = Bytes::from(packed.clone());
            let decoded = RecordBatchDecoder::decode(&mut bytes).expect("a client decodes it");
            assert_eq!(decoded.compression, kp);
            assert_eq!(decoded.records, records());
            let unpacked = records_section(&packed, 1 << 20).expect("decompress");
            assert_eq!(&unpacked[..], &source[HEADER_SIZE..]);
            let back = with_codec(&packed, &unpacked, BatchCompression::None).expect("unpack");
            assert_eq!(back, source.to_vec());
        }
    }

    #[test]
    fn max_timestamp_is_the_first_record_carrying_it() {
        for compression in [Compression::None, Compression::Zstd] {
            let mut batch = encode(&records(), compression);
            crate::record_batch::set_base_offset(&mut batch, 100);
            assert_eq!(
                offset_of_max_timestamp(&batch, 1 << 20),
                Ok(Some((101, 5_000)))
            );
        }
        let mut append = encode(&records(), Compression::None);
        crate::record_batch::set_log_append_time(&mut append, 9_000);
        assert_eq!(
            offset_of_max_timestamp(&append, 1 << 20),
            Ok(Some((0, 9_000)))
        );
    }
}
