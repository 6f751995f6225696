//! `__transaction_state` record keys and values in Kafka's layouts (TransactionLogKey /
//! TransactionLogValue JSON schemas), so the log reads like Kafka's:
//!
//! * key v0: `i16 version, string transactional_id`
//! * value v0: `i16 version, i64 producer_id, i16 producer_epoch, i32 timeout_ms,
//!   i8 state, nullable [string topic, [i32 partition]], i64 last_update_ms, i64 start_ms`
//! * value v1 (read only): the same fields in the flexible encoding (compact strings and
//!   arrays, tagged fields; tag 0 = previous producer id).
//!
//! Values are written as v0. A null value is a tombstone (the id expired). Unknown versions
//! and short input are errors, never a panic.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::machine::{TxnMetadata, TxnState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad __transaction_state record: {0}")]
pub struct TxnRecordError(pub String);

fn put_string(buf: &mut BytesMut, value: &str) {
    let len = i16::try_from(value.len()).unwrap_or(i16::MAX);
    buf.put_i16(len);
    buf.put_slice(&value.as_bytes()[..len as usize]);
}

/// The key of `transactional_id`.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut key = BytesMut::new();
    key.put_i16(KEY_VERSION);
    put_string(&mut key, transactional_id);
    key.freeze()
}

/// A TransactionLogValue v0.
pub fn encode_value(meta: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(VALUE_VERSION);
    buf.put_i64(meta.producer_id);
    buf.put_i16(meta.producer_epoch);
    buf.put_i32(meta.timeout_ms);
    buf.put_i8(meta.state.id());
    let by_topic = partitions_by_topic(&meta.partitions);
    buf.put_i32(i32::try_from(by_topic.len()).unwrap_or(i32::MAX));
    for (topic, partitions) in by_topic {
        put_string(&mut buf, topic);
        buf.put_i32(i32::try_from(partitions.len()).unwrap_or(i32::MAX));
        for partition in partitions {
            buf.put_i32(partition);
        }
    }
    buf.put_i64(meta.last_update_timestamp_ms);
    buf.put_i64(meta.start_timestamp_ms);
    buf.freeze()
}

/// Partitions grouped by topic, in order.
pub fn partitions_by_topic(partitions: &BTreeSet<(String, i32)>) -> BTreeMap<&str, Vec<i32>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic.as_str()).or_default().push(*partition);
    }
    by_topic
}

/// A cursor over one record that fails instead of panicking on short input; `flexible`
/// switches to the compact encodings of v1.
struct Reader {
    data: Bytes,
    flexible: bool,
}

impl Reader {
    fn need(&self, n: usize) -> Result<(), TxnRecordError> {
        if self.data.remaining() < n {
            return Err(TxnRecordError(format!("needs {n} more bytes")));
        }
        Ok(())
    }
    fn i8(&mut self) -> Result<i8, TxnRecordError> {
        self.need(1)?;
        Ok(self.data.get_i8())
    }
    fn i16(&mut self) -> Result<i16, TxnRecordError> {
        self.need(2)?;
        Ok(self.data.get_i16())
    }
    fn i32(&mut self) -> Result<i32, TxnRecordError> {
        self.need(4)?;
        Ok(self.data.get_i32())
    }
    fn i64(&mut self) -> Result<i64, TxnRecordError> {
        self.need(8)?;
        Ok(self.data.get_i64())
    }
    fn varint(&mut self) -> Result<u64, TxnRecordError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            self.need(1)?;
            let byte = self.data.get_u8();
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(TxnRecordError("varint too long".into()))
    }
    /// An array or string length; None = null.
    fn length(&mut self, wide: bool) -> Result<Option<usize>, TxnRecordError> {
        let len: i64 = if self.flexible {
            self.varint()? as i64 - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        if len < 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| TxnRecordError("bad length".into()))?;
        if len > self.data.remaining() {
            return Err(TxnRecordError(format!("length {len} past the end")));
        }
        Ok(Some(len))
    }
    fn string(&mut self) -> Result<String, TxnRecordError> {
        let len = self.length(false)?.unwrap_or(0);
        let raw = self.data.split_to(len);
        String::from_utf8(raw.to_vec()).map_err(|_| TxnRecordError("string is not UTF-8".into()))
    }
    /// Skips tagged fields, returning tag 0 (previous producer id) if present.
    fn tagged_fields(&mut self) -> Result<Option<i64>, TxnRecordError> {
        let mut previous = None;
        for _ in 0..self.varint()? {
            let tag = self.varint()?;
            let size = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
            self.need(size)?;
            let mut field = self.data.split_to(size);
            if tag == 0 && size == 8 {
                previous = Some(field.get_i64());
            }
        }
        Ok(previous)
    }
}

/// The transactional id of a key.
pub fn decode_key(key: Bytes) -> Result<String, TxnRecordError> {
    let mut r = Reader {
        data: key,
        flexible: false,
    };
    match r.i16()? {
        0 => r.string(),
        other => Err(TxnRecordError(format!("unknown key version {other}"))),
    }
}

/// A value (v0 or v1) back into metadata for `transactional_id`.
pub fn decode_value(transactional_id: &str, value: Bytes) -> Result<TxnMetadata, TxnRecordError> {
    let mut r = Reader {
        data: value,
        flexible: false,
    };
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return Err(TxnRecordError(format!("value version {version}")));
    }
    r.flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state_id = r.i8()?;
    let state = TxnState::from_id(state_id)
        .ok_or_else(|| TxnRecordError(format!("unknown state {state_id}")))?;
    let mut partitions = BTreeSet::new();
    for _ in 0..r.length(true)?.unwrap_or(0) {
        let topic = r.string()?;
        for _ in 0..r.length(true)?.unwrap_or(0) {
            partitions.insert((topic.clone(), r.i32()?));
        }
        if r.flexible {
            r.tagged_fields()?;
        }
    }
    let last_update_timestamp_ms = r.i64()?;
    let start_timestamp_ms = r.i64()?;
    let last_producer_id = if r.flexible {
        r.tagged_fields()?.unwrap_or(NO_PRODUCER_ID)
    } else {
        NO_PRODUCER_ID
    };
    Ok(TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        last_producer_id,
        producer_epoch,
        last_producer_epoch: NO_PRODUCER_EPOCH,
        timeout_ms,
        state,
        partitions,
        start_timestamp_ms,
        last_update_timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TxnMetadata {
        TxnMetadata {
            transactional_id: "tx".into(),
            producer_id: 7,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch: 3,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                ("a".to_string(), 1),
                ("a".to_string(), 0),
                ("b".to_string(), 2),
            ]
            .into_iter()
            .collect(),
            start_timestamp_ms: 10,
            last_update_timestamp_ms: 20,
        }
    }

    #[test]
    fn v0_round_trips_and_truncation_fails_cleanly() {
        let meta = sample();
        let key = encode_key("tx");
        assert_eq!(&key[..], &[0, 0, 0, 2, b't', b'x']);
        assert_eq!(decode_key(key).unwrap(), "tx");
        let value = encode_value(&meta);
        assert_eq!(decode_value("tx", value.clone()).unwrap(), meta);
        for cut in 0..value.len() {
            assert!(decode_value("tx", value.slice(..cut)).is_err());
        }
    }

    #[test]
    fn reads_flexible_v1_with_previous_producer_id() {
        // v1: pid 7, tag 0 (previous pid 5) at the end, epoch 3, timeout, Ongoing, one topic.
        let mut v = BytesMut::new();
        v.put_i16(1);
        v.put_i64(7);
        v.put_i16(3);
        v.put_i32(60_000);
        v.put_i8(1);
        v.put_u8(2); // one topic (compact: n + 1)
        v.put_u8(2); // "a" (compact: len + 1)
        v.put_u8(b'a');
        v.put_u8(3); // two partitions
        v.put_i32(0);
        v.put_i32(1);
        v.put_u8(0); // topic tagged fields
        v.put_i64(20);
        v.put_i64(10);
        v.put_u8(1); // one tagged field
        v.put_u8(0); // tag 0
        v.put_u8(8); // 8 bytes
        v.put_i64(5);
        let meta = decode_value("tx", v.freeze()).unwrap();
        assert_eq!(meta.last_producer_id, 5);
        assert_eq!(meta.state, TxnState::Ongoing);
        assert_eq!(meta.partitions.len(), 2);
        assert_eq!(meta.start_timestamp_ms, 10);
    }
}
