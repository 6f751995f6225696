//! Byte formats of the controller log's files (see the parent module for the layout). Pure
//! functions over byte slices: decoding never panics, whatever the bytes.

use bytes::Bytes;
use ringlet_raft::{ConfState, Entry, EntryKind, HardState, RaftError};

/// `u32 length | u32 crc32c` before every record.
const HEADER_BYTES: usize = 8;
/// `u64 term | u64 index | u8 kind` at the start of every record body.
const FIXED_BYTES: usize = 17;

/// Appends `entry`'s record to `buf`.
pub(super) fn encode_record(entry: &Entry, buf: &mut Vec<u8>) -> ringlet_raft::Result<()> {
    let length = u32::try_from(FIXED_BYTES + entry.data.len())
        .map_err(|_| RaftError::Storage(format!("entry {} is too large", entry.index)))?;
    let body_start = buf.len() + HEADER_BYTES;
    buf.extend_from_slice(&length.to_be_bytes());
    buf.extend_from_slice(&[0; 4]); // the CRC, filled in below
    buf.extend_from_slice(&entry.term.to_be_bytes());
    buf.extend_from_slice(&entry.index.to_be_bytes());
    buf.push(match entry.kind {
        EntryKind::Normal => 0,
        EntryKind::ConfChange => 1,
    });
    buf.extend_from_slice(&entry.data);
    let crc = crc32c::crc32c(&buf[body_start..]);
    buf[body_start - 4..body_start].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// What [`scan`] found in a log file.
pub(super) struct Scanned {
    pub entries: Vec<Entry>,
    /// Where each entry's record starts.
    pub positions: Vec<u64>,
    /// Bytes of valid records; the file is cut here when `problem` is set.
    pub valid_len: u64,
    /// Why scanning stopped before the end of the file.
    pub problem: Option<String>,
}

/// Reads records from `bytes` until the end or the first invalid one. The first entry must
/// have index `first_index`, each next one the following index and a term no lower.
pub(super) fn scan(bytes: &[u8], first_index: u64) -> Scanned {
    let mut scanned = Scanned {
        entries: Vec::new(),
        positions: Vec::new(),
        valid_len: 0,
        problem: None,
    };
    let mut pos = 0usize;
    while pos < bytes.len() {
        let expected = first_index + scanned.entries.len() as u64;
        let min_term = scanned.entries.last().map_or(0, |e| e.term);
        match decode_record(&bytes[pos..], expected, min_term) {
            Ok((entry, size)) => {
                scanned.entries.push(entry);
                scanned.positions.push(pos as u64);
                pos += size;
            }
            Err(problem) => {
                scanned.problem = Some(format!("record at byte {pos}: {problem}"));
                break;
            }
        }
    }
    scanned.valid_len = pos as u64;
    scanned
}

/// One record from the start of `bytes` and its size in bytes.
fn decode_record(bytes: &[u8], expected: u64, min_term: u64) -> Result<(Entry, usize), String> {
    if bytes.len() < HEADER_BYTES {
        return Err(format!("{} bytes, shorter than a header", bytes.len()));
    }
    let length = u32_at(bytes, 0) as usize;
    let crc = u32_at(bytes, 4);
    let body = &bytes[HEADER_BYTES..];
    if length < FIXED_BYTES || length > body.len() {
        return Err(format!("length {length} with {} bytes left", body.len()));
    }
    let body = &body[..length];
    if crc32c::crc32c(body) != crc {
        return Err("CRC mismatch".to_string());
    }
    let term = u64_at(body, 0);
    let index = u64_at(body, 8);
    let kind = match body[16] {
        0 => EntryKind::Normal,
        1 => EntryKind::ConfChange,
        other => return Err(format!("unknown entry kind {other}")),
    };
    if index != expected {
        return Err(format!("index {index} where {expected} was expected"));
    }
    if term < min_term {
        return Err(format!("term {term} below the previous entry's {min_term}"));
    }
    let data = Bytes::copy_from_slice(&body[FIXED_BYTES..]);
    let entry = Entry {
        term,
        index,
        kind,
        data,
    };
    Ok((entry, HEADER_BYTES + length))
}

pub(super) fn encode_hard_state(hard_state: &HardState) -> Vec<u8> {
    let words = [hard_state.term, hard_state.vote_word(), hard_state.commit];
    words.iter().flat_map(|word| word.to_be_bytes()).collect()
}

pub(super) fn decode_hard_state(payload: &[u8]) -> Option<HardState> {
    if payload.len() != 24 {
        return None;
    }
    Some(HardState {
        term: u64_at(payload, 0),
        vote: HardState::vote_from_word(u64_at(payload, 8)),
        commit: u64_at(payload, 16),
    })
}

/// `u32 voters | voter ids | u32 learners | learner ids`.
pub(super) fn encode_conf(conf: &ConfState) -> Vec<u8> {
    let mut out = Vec::new();
    for ids in [&conf.voters, &conf.learners] {
        out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        ids.iter()
            .for_each(|id| out.extend_from_slice(&id.to_be_bytes()));
    }
    out
}

pub(super) fn decode_conf(payload: &[u8]) -> Option<ConfState> {
    let (voters, rest) = decode_ids(payload)?;
    let (learners, rest) = decode_ids(rest)?;
    rest.is_empty().then_some(ConfState { voters, learners })
}

fn decode_ids(bytes: &[u8]) -> Option<(Vec<u64>, &[u8])> {
    let count = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let end = count.checked_mul(8)?.checked_add(4)?;
    let ids = bytes.get(4..end)?;
    let ids = ids.chunks_exact(8).map(|chunk| u64_at(chunk, 0)).collect();
    Some((ids, &bytes[end..]))
}

/// Callers have checked that `bytes` holds `at + 4` bytes.
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Callers have checked that `bytes` holds `at + 8` bytes.
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_round_trip_and_reject_garbage() {
        // Node 0 is a node: its vote must not read back as "no vote", nor the reverse.
        for vote in [Some(2), Some(0), None] {
            let hard_state = HardState {
                term: 3,
                vote,
                commit: 9,
            };
            assert_eq!(
                decode_hard_state(&encode_hard_state(&hard_state)),
                Some(hard_state)
            );
        }
        assert_eq!(decode_hard_state(&[0; 23]), None);
        let conf = ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
        };
        let encoded = encode_conf(&conf);
        assert_eq!(decode_conf(&encoded), Some(conf));
        for len in 0..encoded.len() {
            assert_eq!(decode_conf(&encoded[..len]), None, "prefix of {len} bytes");
        }
        assert_eq!(decode_conf(&[0xff; 12]), None);
    }

    #[test]
    fn every_truncation_of_a_record_is_refused() {
        let entry = Entry::normal(2, 1, Bytes::from_static(b"payload"));
        let mut buf = Vec::new();
        encode_record(&entry, &mut buf).unwrap();
        assert_eq!(scan(&buf, 1).entries, vec![entry]);
        for len in 0..buf.len() {
            let scanned = scan(&buf[..len], 1);
            assert!(scanned.entries.is_empty() && scanned.valid_len == 0);
            assert_eq!(scanned.problem.is_some(), len > 0);
        }
        assert!(scan(&buf, 2).problem.is_some(), "an index out of sequence");
    }
}
