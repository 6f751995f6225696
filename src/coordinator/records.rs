//! `__consumer_offsets` record keys and values in Kafka's own layouts, so the log reads like
//! Kafka's (kafka-protocol 0.18 does not ship these types):
//!
//! * OffsetCommitKey v1: `i16 version, string group, string topic, i32 partition`
//! * OffsetCommitValue v3: `i16 version, i64 offset, i32 leader_epoch, string metadata,
//!   i64 commit_timestamp`
//! * GroupMetadataKey v2: `i16 version, string group`
//! * GroupMetadataValue v3: `i16 version, string protocol_type, i32 generation,
//!   nullable string protocol, nullable string leader, i64 current_state_timestamp,
//!   [member_id, nullable group_instance_id, client_id, client_host, i32 rebalance_timeout,
//!   i32 session_timeout, bytes subscription, bytes assignment]`
//!
//! Strings are i16-length-prefixed (-1 = null), bytes i32-length-prefixed; a null record
//! value is a tombstone. Unknown versions are skipped on load (logged), never a panic.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::group::{CommittedOffset, GroupRecord, GroupSnapshot, MemberSnapshot};

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad __consumer_offsets record: {0}")]
pub struct RecordFormatError(pub String);

fn put_string(buf: &mut BytesMut, value: &str) {
    let len = i16::try_from(value.len()).unwrap_or(i16::MAX);
    buf.put_i16(len);
    buf.put_slice(&value.as_bytes()[..len as usize]);
}

fn put_nullable(buf: &mut BytesMut, value: Option<&str>) {
    match value {
        Some(value) => put_string(buf, value),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, value: &[u8]) {
    buf.put_i32(i32::try_from(value.len()).unwrap_or(i32::MAX));
    buf.put_slice(value);
}

/// The (key, value) of a record.
pub fn encode(record: &GroupRecord) -> (Bytes, Option<Bytes>) {
    let mut key = BytesMut::new();
    match record {
        GroupRecord::Offset {
            group_id,
            topic,
            partition,
            value,
        } => {
            key.put_i16(OFFSET_KEY_VERSION);
            put_string(&mut key, group_id);
            put_string(&mut key, topic);
            key.put_i32(*partition);
            (key.freeze(), value.as_ref().map(encode_offset))
        }
        GroupRecord::Metadata { group_id, value } => {
            key.put_i16(GROUP_KEY_VERSION);
            put_string(&mut key, group_id);
            (key.freeze(), value.as_ref().map(encode_group))
        }
    }
}

fn encode_offset(value: &CommittedOffset) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(OFFSET_VALUE_VERSION);
    buf.put_i64(value.offset);
    buf.put_i32(value.leader_epoch);
    put_string(&mut buf, &value.metadata);
    buf.put_i64(value.commit_timestamp_ms);
    buf.freeze()
}

fn encode_group(value: &GroupSnapshot) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_VALUE_VERSION);
    put_string(&mut buf, &value.protocol_type);
    buf.put_i32(value.generation_id);
    put_nullable(&mut buf, value.protocol_name.as_deref());
    put_nullable(&mut buf, value.leader_id.as_deref());
    buf.put_i64(value.state_timestamp_ms);
    buf.put_i32(i32::try_from(value.members.len()).unwrap_or(i32::MAX));
    for m in &value.members {
        put_string(&mut buf, &m.member_id);
        put_nullable(&mut buf, m.group_instance_id.as_deref());
        put_string(&mut buf, &m.client_id);
        put_string(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// A cursor that fails instead of panicking on short input.
struct Reader(Bytes);

impl Reader {
    fn need(&self, n: usize) -> Result<(), RecordFormatError> {
        if self.0.remaining() < n {
            return Err(RecordFormatError(format!("needs {n} more bytes")));
        }
        Ok(())
    }
    fn i16(&mut self) -> Result<i16, RecordFormatError> {
        self.need(2)?;
        Ok(self.0.get_i16())
    }
    fn i32(&mut self) -> Result<i32, RecordFormatError> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }
    fn i64(&mut self) -> Result<i64, RecordFormatError> {
        self.need(8)?;
        Ok(self.0.get_i64())
    }
    fn nullable(&mut self) -> Result<Option<String>, RecordFormatError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        self.need(len as usize)?;
        let raw = self.0.split_to(len as usize);
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| RecordFormatError("string is not UTF-8".into()))
    }
    fn string(&mut self) -> Result<String, RecordFormatError> {
        Ok(self.nullable()?.unwrap_or_default())
    }
    fn bytes(&mut self) -> Result<Bytes, RecordFormatError> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Bytes::new());
        }
        self.need(len as usize)?;
        Ok(self.0.split_to(len as usize))
    }
}

/// Reads a record back.
pub fn decode(key: Bytes, value: Option<Bytes>) -> Result<GroupRecord, RecordFormatError> {
    let mut key = Reader(key);
    match key.i16()? {
        0 | 1 => {
            let group_id = key.string()?;
            let topic = key.string()?;
            let partition = key.i32()?;
            let value = value.map(decode_offset).transpose()?;
            Ok(GroupRecord::Offset {
                group_id,
                topic,
                partition,
                value,
            })
        }
        2 => {
            let group_id = key.string()?;
            let value = value.map(decode_group).transpose()?;
            Ok(GroupRecord::Metadata { group_id, value })
        }
        other => Err(RecordFormatError(format!("unknown key version {other}"))),
    }
}

fn decode_offset(value: Bytes) -> Result<CommittedOffset, RecordFormatError> {
    let mut r = Reader(value);
    let version = r.i16()?;
    if !(1..=3).contains(&version) {
        return Err(RecordFormatError(format!("offset value version {version}")));
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

fn decode_group(value: Bytes) -> Result<GroupSnapshot, RecordFormatError> {
    let mut r = Reader(value);
    let version = r.i16()?;
    if version != GROUP_VALUE_VERSION {
        return Err(RecordFormatError(format!("group value version {version}")));
    }
    let protocol_type = r.string()?;
    let generation_id = r.i32()?;
    let protocol_name = r.nullable()?;
    let leader_id = r.nullable()?;
    let state_timestamp_ms = r.i64()?;
    let count = r.i32()?.max(0);
    let mut members = Vec::new();
    for _ in 0..count {
        members.push(MemberSnapshot {
            member_id: r.string()?,
            group_instance_id: r.nullable()?,
            client_id: r.string()?,
            client_host: r.string()?,
            rebalance_timeout_ms: r.i32()?,
            session_timeout_ms: r.i32()?,
            subscription: r.bytes()?,
            assignment: r.bytes()?,
        });
    }
    Ok(GroupSnapshot {
        protocol_type,
        generation_id,
        protocol_name,
        leader_id,
        state_timestamp_ms,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_truncation_fails_cleanly() {
        let records = vec![
            GroupRecord::Offset {
                group_id: "g".into(),
                topic: "t".into(),
                partition: 7,
                value: Some(CommittedOffset {
                    offset: 42,
                    leader_epoch: 3,
                    metadata: "m".into(),
                    commit_timestamp_ms: 99,
                }),
            },
            GroupRecord::Offset {
                group_id: "g".into(),
                topic: "t".into(),
                partition: 7,
                value: None,
            },
            GroupRecord::Metadata {
                group_id: "g".into(),
                value: Some(GroupSnapshot {
                    protocol_type: "consumer".into(),
                    generation_id: 5,
                    protocol_name: Some("range".into()),
                    leader_id: Some("a".into()),
                    state_timestamp_ms: 1,
                    members: vec![MemberSnapshot {
                        member_id: "a".into(),
                        group_instance_id: Some("i".into()),
                        client_id: "c".into(),
                        client_host: "/h".into(),
                        rebalance_timeout_ms: 10,
                        session_timeout_ms: 20,
                        subscription: Bytes::from_static(b"sub"),
                        assignment: Bytes::from_static(b"asg"),
                    }],
                }),
            },
        ];
        for record in records {
            let (key, value) = encode(&record);
            assert_eq!(decode(key.clone(), value.clone()).unwrap(), record);
            if let Some(value) = value {
                for cut in 0..value.len() {
                    assert!(decode(key.clone(), Some(value.slice(..cut))).is_err());
                }
            }
        }
    }

    #[test]
    fn offset_key_matches_kafkas_bytes() {
        let (key, _) = encode(&GroupRecord::Offset {
            group_id: "g".into(),
            topic: "t".into(),
            partition: 1,
            value: None,
        });
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 1]);
    }
}
