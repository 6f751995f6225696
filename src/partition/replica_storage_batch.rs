//! Which Raft entries are client batches (stored in the Kafka log, taking offsets) and which
//! are Raft's own (kept beside it, taking none), and the control batches that encode them.
//!
//! Raft's own entries are the leader's no-op at the start of its term (a `Normal` entry with
//! empty data), a membership change (`ConfChange`) and a log-start command (DeleteRecords: a
//! `Normal` entry holding a [`log_start_command`] batch). They take a Raft index but no
//! Kafka offset: `replica_storage_sidecar` keeps them, so the Kafka log holds only data
//! batches and transaction markers and its offsets are dense, as in Kafka.
//!
//! The log-start command travels through Raft as a one-record CONTROL batch (attributes:
//! control bit, not transactional; producer id -1) of type [`LOG_START_TYPE`], so it is
//! proposed like a client batch. Logs written before the sidecar existed may still hold
//! no-ops and membership changes as control batches ([`LEADER_CHANGE_TYPE`],
//! [`CONF_CHANGE_TYPE`]); [`decode_stored`] maps such a stored batch back to the entry Raft
//! appended, so those logs still open (their control batches keep the offsets they took).

use bytes::{BufMut, Bytes, BytesMut};
use ringlet_protocol::record_batch::{parse_header, BatchError, RecordBatchHeader, HEADER_SIZE};
use ringlet_raft::{ConfChange, Entry, EntryKind};

const CONTROL_BIT: i16 = 0x20;
/// Ringlet's log-start move (DeleteRecords on a replicated partition): the value is the
/// requested offset (i64, big-endian). A client batch to the Raft log; clients may not
/// produce control batches, so only the leader writes one.
pub const LOG_START_TYPE: i16 = 0x5201;
/// Kafka `ControlRecordType.LEADER_CHANGE`.
pub const LEADER_CHANGE_TYPE: i16 = 2;
/// Ringlet's membership-change control record ('R' << 8; Kafka uses 0..=6 as of 3.9).
pub const CONF_CHANGE_TYPE: i16 = 0x5200;

/// Whether `entry` is Raft's own (a no-op, a membership change, a log-start command): kept
/// beside the Kafka log, at no offset.
pub fn is_raft_only(entry: &Entry) -> bool {
    match entry.kind {
        EntryKind::ConfChange => true,
        EntryKind::Normal if entry.data.is_empty() => true,
        EntryKind::Normal => is_log_start_command(&entry.data),
    }
}

/// Whether `batch` is a [`log_start_command`].
pub fn is_log_start_command(batch: &[u8]) -> bool {
    parse_header(batch).is_ok_and(|header| log_start_target(&header, batch).is_some())
}

/// The bytes to write to the Kafka log for a client `entry` (as they are), or the control
/// batch that encodes a Raft-made one. The log stamps the base offset and the leader epoch.
pub fn entry_batch(entry: &Entry) -> BytesMut {
    match entry.kind {
        EntryKind::Normal if entry.data.is_empty() => control_batch(LEADER_CHANGE_TYPE, None),
        EntryKind::Normal => BytesMut::from(&entry.data[..]),
        EntryKind::ConfChange => control_batch(CONF_CHANGE_TYPE, Some(&entry.data)),
    }
}

/// Offsets an entry spans minus one (`lastOffsetDelta`), from the bytes Raft holds: -1
/// (no offset) for Raft's own entries.
pub fn last_offset_delta(entry: &Entry) -> Result<i64, BatchError> {
    if is_raft_only(entry) {
        return Ok(-1);
    }
    let header = parse_header(&entry.data)?;
    if header.last_offset_delta < 0 {
        return Err(BatchError::InvalidField {
            field: "last_offset_delta",
            value: header.last_offset_delta.into(),
        });
    }
    Ok(i64::from(header.last_offset_delta))
}

/// What a stored batch is as a Raft entry payload: `(kind, data)`.
pub fn decode_stored(batch: &Bytes) -> (EntryKind, Bytes) {
    let Ok(header) = parse_header(batch) else {
        return (EntryKind::Normal, batch.clone());
    };
    match control_record(&header, batch) {
        Some((LEADER_CHANGE_TYPE, _)) => (EntryKind::Normal, Bytes::new()),
        Some((CONF_CHANGE_TYPE, Some(value))) if ConfChange::decode(value).is_some() => {
            (EntryKind::ConfChange, Bytes::copy_from_slice(value))
        }
        _ => (EntryKind::Normal, batch.clone()),
    }
}

/// The control batch that moves every replica's log start to `offset` once committed.
pub fn log_start_command(offset: i64) -> BytesMut {
    control_batch(LOG_START_TYPE, Some(&offset.to_be_bytes()))
}

/// The offset of a stored [`log_start_command`] (`batch`, with its parsed `header`), else
/// `None`.
pub fn log_start_target(header: &RecordBatchHeader, batch: &[u8]) -> Option<i64> {
    match control_record(header, batch)? {
        (LOG_START_TYPE, Some(value)) => Some(i64::from_be_bytes(value.try_into().ok()?)),
        _ => None,
    }
}

/// One control record: key `version:i16 = 0, type:i16`, then the value (null when `None`).
fn control_batch(control_type: i16, value: Option<&[u8]>) -> BytesMut {
    let mut record = BytesMut::new();
    record.put_i8(0); // attributes
    put_varint(&mut record, 0); // timestamp delta
    put_varint(&mut record, 0); // offset delta
    put_varint(&mut record, 4); // key length
    record.put_i16(0); // key version
    record.put_i16(control_type);
    match value {
        Some(value) => {
            put_varint(&mut record, value.len() as i64);
            record.put_slice(value);
        }
        None => put_varint(&mut record, -1),
    }
    put_varint(&mut record, 0); // no headers

    let mut batch = BytesMut::with_capacity(HEADER_SIZE + 2 + record.len());
    batch.put_i64(0); // base offset, stamped by the log
    batch.put_i32(0); // batch length, set below
    batch.put_i32(-1); // partition leader epoch, stamped by the log
    batch.put_i8(2); // magic
    batch.put_u32(0); // crc, set below
    batch.put_i16(CONTROL_BIT);
    batch.put_i32(0); // last offset delta
    batch.put_i64(-1); // base timestamp: deterministic, so replicas store equal bytes
    batch.put_i64(-1); // max timestamp
    batch.put_i64(-1); // producer id
    batch.put_i16(-1); // producer epoch
    batch.put_i32(-1); // base sequence
    batch.put_i32(1); // records
    put_varint(&mut batch, record.len() as i64);
    batch.put_slice(&record);
    let batch_length = i32::try_from(batch.len() - 12).expect("a control batch is tiny");
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// `(type, value)` of a one-record control batch without a producer (ours), else `None`.
fn control_record<'a>(
    header: &RecordBatchHeader,
    batch: &'a [u8],
) -> Option<(i16, Option<&'a [u8]>)> {
    if !header.is_control() || header.producer_id != -1 || header.records_count != 1 {
        return None;
    }
    let record = batch.get(HEADER_SIZE..)?;
    let mut at = 0usize;
    let _length = read_varint(record, &mut at)?;
    at += 1; // attributes
    let _timestamp_delta = read_varint(record, &mut at)?;
    let _offset_delta = read_varint(record, &mut at)?;
    if read_varint(record, &mut at)? != 4 {
        return None;
    }
    let key = record.get(at..at + 4)?;
    at += 4;
    if key[..2] != [0, 0] {
        return None; // only key version 0 is known
    }
    let control_type = i16::from_be_bytes([key[2], key[3]]);
    let value = match read_varint(record, &mut at)? {
        len if len < 0 => None,
        len => Some(record.get(at..at + usize::try_from(len).ok()?)?),
    };
    Some((control_type, value))
}

/// A zigzag varint (Kafka record fields).
fn put_varint(buf: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        buf.put_u8((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    buf.put_u8(zigzag as u8);
}

fn read_varint(buf: &[u8], at: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::txn_markers::parse_marker;
    use ringlet_protocol::record_batch::validate_batch;

    #[test]
    fn the_no_op_is_a_valid_one_record_leader_change_batch() {
        let noop = Entry::normal(3, 7, Bytes::new());
        let batch = entry_batch(&noop).freeze();
        let header = validate_batch(&batch).expect("a valid v2 batch");
        assert!(header.is_control() && !header.is_transactional());
        assert_eq!((header.records_count, header.last_offset_delta), (1, 0));
        assert_eq!(header.producer_id, -1);
        assert_eq!(
            control_record(&header, &batch),
            Some((LEADER_CHANGE_TYPE, None))
        );
        // Not a transaction marker: producer state and read_committed ignore it.
        assert_eq!(parse_marker(&header, &batch), None);
        assert_eq!(decode_stored(&batch), (EntryKind::Normal, Bytes::new()));
        assert!(is_raft_only(&noop));
        assert_eq!(last_offset_delta(&noop), Ok(-1), "a no-op takes no offset");
    }

    #[test]
    fn conf_changes_round_trip_through_their_control_batch() {
        let data = ConfChange::AddLearner(4).encode();
        let entry = Entry {
            term: 2,
            index: 9,
            kind: EntryKind::ConfChange,
            data: data.clone(),
        };
        let batch = entry_batch(&entry).freeze();
        let header = validate_batch(&batch).expect("a valid v2 batch");
        assert_eq!(header.records_count, 1);
        assert_eq!(parse_marker(&header, &batch), None);
        assert_eq!(decode_stored(&batch), (EntryKind::ConfChange, data));
    }

    #[test]
    fn a_log_start_command_is_a_normal_entry_holding_its_offset() {
        let batch = log_start_command(1234).freeze();
        let header = validate_batch(&batch).expect("a valid v2 batch");
        assert!(header.is_control() && header.producer_id == -1);
        assert_eq!(parse_marker(&header, &batch), None);
        assert_eq!(log_start_target(&header, &batch), Some(1234));
        // Proposed as a client batch would be, and read back from disk as one.
        let entry = Entry::normal(1, 1, batch.clone());
        assert!(is_raft_only(&entry));
        assert_eq!(last_offset_delta(&entry), Ok(-1));
        assert_eq!(entry_batch(&entry).freeze(), batch);
        assert_eq!(decode_stored(&batch), (EntryKind::Normal, batch.clone()));
        let noop = entry_batch(&Entry::normal(1, 2, Bytes::new())).freeze();
        let noop_header = validate_batch(&noop).expect("a valid v2 batch");
        assert_eq!(log_start_target(&noop_header, &noop), None);
    }

    #[test]
    fn client_batches_are_stored_as_they_are() {
        let batch = crate::partition::txn_markers::control_batch(
            &crate::partition::txn_markers::TxnMarker {
                producer_id: 5,
                producer_epoch: 0,
                commit: true,
                coordinator_epoch: 1,
            },
            1,
        )
        .freeze();
        let entry = Entry::normal(1, 1, batch.clone());
        assert!(
            !is_raft_only(&entry),
            "a transaction marker takes an offset, as in Kafka"
        );
        assert_eq!(last_offset_delta(&entry), Ok(0));
        assert_eq!(&entry_batch(&entry)[..], &batch[..]);
        // A transaction marker has a producer: it stays a normal entry with its bytes.
        assert_eq!(decode_stored(&batch), (EntryKind::Normal, batch));
    }
}
