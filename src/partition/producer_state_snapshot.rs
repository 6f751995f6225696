//! The producer-state snapshot of a partition: `<partition dir>/producer_state.snapshot`.
//!
//! A snapshot is the whole `ProducerStates` (producers with their last batches, open
//! transactions, aborted index) as of an offset: every batch below it is included, none
//! at or above it. It is written atomically (temp, fsync, rename) on clean shutdown and
//! periodically; recovery loads it and replays the log from its offset (see
//! `producer_state_recovery`). A snapshot whose offset is beyond the recovered log end (the
//! tail was lost in a crash) or that does not decode is ignored and the state is rebuilt
//! from the whole log instead, so a bad snapshot can cost time but never correctness.
//!
//! Layout (big-endian): magic `RPS1`, snapshot offset i64, producer count u32, per producer
//! `pid i64, epoch i16, coordinator_epoch i32, last_timestamp i64, txn_first_offset i64
//! (-1 none), batch count u8, batches (first_seq i32, last_seq i32, first_offset i64,
//! last_offset i64, max_timestamp i64)`, aborted count u32, per aborted `pid i64,
//! first_offset i64, last_offset i64`; then CRC32C of all of the above.

use std::collections::VecDeque;
use std::path::Path;

use bytes::{Buf, BufMut};

use super::producer_state::{BatchMeta, ProducerEntry, ProducerStates, CACHED_BATCHES};
use super::txn_index::{AbortedTxn, AbortedTxnIndex};
use crate::error::BrokerError;

pub const SNAPSHOT_FILE: &str = "producer_state.snapshot";
const MAGIC: &[u8; 4] = b"RPS1";

/// Encodes `states` as of `offset`.
pub fn encode(states: &ProducerStates, offset: i64) -> Vec<u8> {
    let mut buf = Vec::new();
    buf.put_slice(MAGIC);
    buf.put_i64(offset);
    let producers: Vec<&ProducerEntry> = states.entries().collect();
    buf.put_u32(u32::try_from(producers.len()).unwrap_or(u32::MAX));
    for entry in producers {
        buf.put_i64(entry.producer_id);
        buf.put_i16(entry.epoch);
        buf.put_i32(entry.coordinator_epoch);
        buf.put_i64(entry.last_timestamp_ms);
        buf.put_i64(entry.txn_first_offset.unwrap_or(-1));
        buf.put_u8(u8::try_from(entry.batches.len()).unwrap_or(u8::MAX));
        for batch in &entry.batches {
            buf.put_i32(batch.first_seq);
            buf.put_i32(batch.last_seq);
            buf.put_i64(batch.first_offset);
            buf.put_i64(batch.last_offset);
            buf.put_i64(batch.max_timestamp_ms);
        }
    }
    let aborted = states.aborted().entries();
    buf.put_u32(u32::try_from(aborted.len()).unwrap_or(u32::MAX));
    for txn in aborted {
        buf.put_i64(txn.producer_id);
        buf.put_i64(txn.first_offset);
        buf.put_i64(txn.last_offset);
    }
    let crc = crc32c::crc32c(&buf);
    buf.put_u32(crc);
    buf
}

/// Decodes a snapshot: `(offset, states)`, or why it cannot be used.
pub fn decode(bytes: &[u8]) -> Result<(i64, ProducerStates), String> {
    if bytes.len() < MAGIC.len() + 8 + 4 + 4 + 4 {
        return Err(format!("{} bytes is too short", bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored_crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32c::crc32c(body) != stored_crc {
        return Err("checksum mismatch".into());
    }
    let mut buf = body;
    if &buf[..4] != MAGIC {
        return Err("bad magic".into());
    }
    buf.advance(4);
    let offset = buf.get_i64();
    let count = buf.get_u32();
    let mut producers = Vec::new();
    for _ in 0..count {
        producers.push(decode_producer(&mut buf)?);
    }
    need(buf, 4)?;
    let aborted_count = buf.get_u32();
    let mut aborted = Vec::new();
    for _ in 0..aborted_count {
        need(buf, 24)?;
        aborted.push(AbortedTxn {
            producer_id: buf.get_i64(),
            first_offset: buf.get_i64(),
            last_offset: buf.get_i64(),
        });
    }
    if buf.has_remaining() {
        return Err(format!("{} trailing bytes", buf.remaining()));
    }
    let states = ProducerStates::from_parts(producers, AbortedTxnIndex::from_entries(aborted));
    Ok((offset, states))
}

fn need(buf: &[u8], bytes: usize) -> Result<(), String> {
    if buf.remaining() < bytes {
        return Err("truncated".into());
    }
    Ok(())
}

fn decode_producer(buf: &mut &[u8]) -> Result<ProducerEntry, String> {
    need(buf, 8 + 2 + 4 + 8 + 8 + 1)?;
    let producer_id = buf.get_i64();
    let epoch = buf.get_i16();
    let coordinator_epoch = buf.get_i32();
    let last_timestamp_ms = buf.get_i64();
    let txn_first_offset = Some(buf.get_i64()).filter(|&o| o >= 0);
    let batch_count = usize::from(buf.get_u8());
    if batch_count > CACHED_BATCHES {
        return Err(format!("{batch_count} cached batches"));
    }
    let mut batches = VecDeque::with_capacity(batch_count);
    for _ in 0..batch_count {
        need(buf, 4 + 4 + 8 + 8 + 8)?;
        batches.push_back(BatchMeta {
            first_seq: buf.get_i32(),
            last_seq: buf.get_i32(),
            first_offset: buf.get_i64(),
            last_offset: buf.get_i64(),
            max_timestamp_ms: buf.get_i64(),
        });
    }
    Ok(ProducerEntry {
        producer_id,
        epoch,
        batches,
        last_timestamp_ms,
        coordinator_epoch,
        txn_first_offset,
    })
}

/// Writes the snapshot of `states` as of `offset` into `dir`, atomically and durably.
pub fn store(dir: &Path, states: &ProducerStates, offset: i64) -> Result<(), BrokerError> {
    // A deleted partition's directory is gone: never re-create it for a snapshot.
    if !dir.is_dir() {
        return Ok(());
    }
    crate::producer_ids::replace_file_durably(dir, SNAPSHOT_FILE, &encode(states, offset))
}

/// Removes the snapshot in `dir` (durably: a cut log must not meet it again on open).
pub fn remove(dir: &Path) -> Result<(), BrokerError> {
    let path = dir.join(SNAPSHOT_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(BrokerError::Storage(format!(
                "remove {}: {err}",
                path.display()
            )))
        }
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|err| BrokerError::Storage(format!("fsync {}: {err}", dir.display())))
}

/// The snapshot in `dir`, if there is a usable one.
pub fn load(dir: &Path) -> Option<(i64, ProducerStates)> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "cannot read producer snapshot");
            return None;
        }
    };
    match decode(&bytes) {
        Ok(decoded) => Some(decoded),
        Err(reason) => {
            tracing::warn!(path = %path.display(), reason, "ignoring producer snapshot");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::producer_state::IncomingBatch;
    use super::*;

    #[test]
    fn snapshots_round_trip_and_corruption_is_refused() {
        let mut states = ProducerStates::default();
        let plain = IncomingBatch {
            producer_id: 3,
            epoch: 1,
            first_seq: 0,
            last_offset_delta: 4,
            max_timestamp_ms: 99,
            transactional: false,
        };
        states.apply(&plain, 0);
        let txn = IncomingBatch {
            producer_id: 8,
            transactional: true,
            ..plain
        };
        states.apply(&txn, 5);
        states.apply_marker(8, 1, false, 2, 10, 100);
        states.apply(
            &IncomingBatch {
                first_seq: 5,
                ..txn
            },
            11,
        );
        let bytes = encode(&states, 16);
        let (offset, decoded) = decode(&bytes).expect("decodes");
        assert_eq!(offset, 16);
        assert_eq!(decoded.entry(3), states.entry(3));
        assert_eq!(decoded.entry(8), states.entry(8));
        assert_eq!(decoded.aborted(), states.aborted());
        let mut decoded = decoded;
        assert_eq!(decoded.last_stable_offset(16), 11);
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(decode(&flipped).is_err());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
