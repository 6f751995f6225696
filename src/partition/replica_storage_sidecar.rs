//! The sidecar of a replica: Raft's own entries (the leader's no-op, membership changes,
//! log-start commands: `replica_storage_batch::is_raft_only`), kept beside the Kafka log so
//! they take a Raft index but no Kafka offset.
//!
//! Each [`RaftOnlyEntry`] says where it sits: `position` is the Kafka offset of the next
//! batch stored after it (the log end when it was written), so the Raft log is the Kafka
//! log's batches with these entries merged in before the batch at their position
//! (`replica_storage_io::scan_log`). The index is stored too, and checked by the merge.
//!
//! The file ([`SIDECAR_FILE`], in the replica's state directory) is small (one entry per
//! leader change and DeleteRecords, no-ops 29 bytes) and replaced whole, atomically and
//! durably (temp file, fsync, rename, fsync of the directory), so it is never torn: every
//! write leaves one consistent set of entries. The crash-safety argument, with the log
//! recovering to a prefix of what was appended:
//! - a write stores the sidecar before it appends the Kafka batches of the same Ready, so a
//!   durable batch never follows a lost Raft entry (its index would shift);
//! - an entry whose position lies past the recovered log end (the batches before it were
//!   lost) is dropped on open, and the file rewritten without it;
//! - a replaced suffix is cut from the log (durably) before the sidecar is rewritten.

use std::path::Path;

use bytes::Bytes;
use ringlet_io::LogError;
use ringlet_raft::EntryKind;

use super::replica_storage_io::{read_optional, replace_file_durably};

/// Raft's own entries of one replica.
pub const SIDECAR_FILE: &str = "raft_entries";
const MAGIC: &[u8; 4] = b"RRE1";

/// One of Raft's own entries, and where it sits in the Kafka log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftOnlyEntry {
    pub index: u64,
    pub term: u64,
    /// The offset of the first Kafka batch after it (the log end while none is).
    pub position: i64,
    pub kind: EntryKind,
    pub data: Bytes,
}

/// The entries in `dir` (none when there is no file), in index order.
pub(super) fn load(dir: &Path) -> Result<Vec<RaftOnlyEntry>, LogError> {
    let path = dir.join(SIDECAR_FILE);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(Vec::new());
    };
    decode(&bytes).map_err(|detail| LogError::Corrupt {
        what: "raft sidecar file",
        path,
        detail,
    })
}

/// Replaces the entries in `dir` with `entries`, durably.
pub(super) fn store(dir: &Path, entries: &[RaftOnlyEntry]) -> Result<(), LogError> {
    replace_file_durably(dir, SIDECAR_FILE, &encode(entries))
}

/// Keeps only the entries from `first_index` on (a log-start move); no write when none goes.
pub(super) fn drop_below(dir: &Path, first_index: u64) -> Result<(), LogError> {
    let entries = load(dir)?;
    if entries.first().is_none_or(|e| e.index >= first_index) {
        return Ok(());
    }
    let kept: Vec<RaftOnlyEntry> = entries
        .into_iter()
        .filter(|e| e.index >= first_index)
        .collect();
    store(dir, &kept)
}

fn encode(entries: &[RaftOnlyEntry]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for entry in entries {
        out.extend_from_slice(&entry.index.to_be_bytes());
        out.extend_from_slice(&entry.term.to_be_bytes());
        out.extend_from_slice(&entry.position.to_be_bytes());
        out.push(match entry.kind {
            EntryKind::Normal => 0,
            EntryKind::ConfChange => 1,
        });
        out.extend_from_slice(&(entry.data.len() as u32).to_be_bytes());
        out.extend_from_slice(&entry.data);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<Vec<RaftOnlyEntry>, String> {
    let body_end = bytes.len().checked_sub(4).ok_or("too short")?;
    let (body, crc) = bytes.split_at(body_end);
    if crc32c::crc32c(body).to_be_bytes() != crc || body.get(..4) != Some(&MAGIC[..]) {
        return Err("bad magic or checksum".into());
    }
    let mut reader = Reader { bytes: body, at: 4 };
    let count = reader.u32()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let (index, term, position) = (reader.u64()?, reader.u64()?, reader.u64()? as i64);
        let kind = match reader.take(1)?[0] {
            0 => EntryKind::Normal,
            1 => EntryKind::ConfChange,
            other => return Err(format!("unknown entry kind {other}")),
        };
        let len = reader.u32()? as usize;
        let data = Bytes::copy_from_slice(reader.take(len)?);
        if entries
            .last()
            .is_some_and(|e: &RaftOnlyEntry| e.index >= index)
            || position < 0
        {
            return Err(format!("entry {index} at {position} out of order"));
        }
        entries.push(RaftOnlyEntry {
            index,
            term,
            position,
            kind,
            data,
        });
    }
    if reader.at != body.len() {
        return Err("trailing bytes".into());
    }
    Ok(entries)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(len).ok_or("length overflow")?;
        let out = self.bytes.get(self.at..end).ok_or("truncated record")?;
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut out = [0u8; 8];
        out.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<RaftOnlyEntry> {
        vec![
            RaftOnlyEntry {
                index: 1,
                term: 1,
                position: 0,
                kind: EntryKind::Normal,
                data: Bytes::new(),
            },
            RaftOnlyEntry {
                index: 7,
                term: 2,
                position: 40,
                kind: EntryKind::ConfChange,
                data: Bytes::from_static(b"123456789"),
            },
        ]
    }

    #[test]
    fn entries_round_trip() {
        assert_eq!(decode(&encode(&sample())), Ok(sample()));
        assert_eq!(decode(&encode(&[])), Ok(Vec::new()));
    }

    #[test]
    fn every_damaged_file_is_refused_without_a_panic() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            assert!(decode(&flipped).is_err(), "flipped byte {at}");
        }
    }

    #[test]
    fn drop_below_keeps_the_later_entries() {
        let dir = tempfile::tempdir().expect("temp dir");
        store(dir.path(), &sample()).expect("store");
        drop_below(dir.path(), 2).expect("drop");
        assert_eq!(load(dir.path()).expect("load"), sample()[1..].to_vec());
    }
}
