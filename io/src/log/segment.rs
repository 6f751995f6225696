//! Segment metadata and the two sparse indexes of a segment, with their on-disk encoding.
//!
//! Files of the segment with base offset B (20-digit zero-padded, so names sort by offset):
//! `B.log` (batches exactly as appended), `B.index` (relative offset -> file position, one entry
//! per `index_interval_bytes` of log) and `B.timeindex` (max timestamp so far -> relative
//! offset). Index files are written once, atomically, when the segment is rolled; their header
//! records the segment's exact size, so an index whose size disagrees with the `.log` file is
//! stale and gets rebuilt by scanning. The active segment's indexes live only in memory and
//! are rebuilt by the recovery scan on open.

use std::path::{Path, PathBuf};

const INDEX_MAGIC: u32 = 0x524c_4958; // "RLIX"
const INDEX_VERSION: u16 = 1;
const HEADER_BYTES: usize = 64;

pub fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.log"))
}

pub fn index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.index"))
}

pub fn time_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.timeindex"))
}

/// Parses `00000000000000000042.log` into 42.
pub fn parse_log_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// What the log keeps in memory for every segment, idle or not (about 80 bytes).
#[derive(Debug, Clone)]
pub struct SegmentMeta {
    pub base_offset: i64,
    /// Logical size: bytes of whole valid batches.
    pub size_bytes: u64,
    /// Next offset after the segment's last batch (== base_offset when empty).
    pub end_offset: i64,
    /// Largest batch max_timestamp in the segment, -1 if empty.
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// Wall-clock ms when the segment got its first batch (for `segment.ms`).
    pub first_append_ms: Option<i64>,
}

impl SegmentMeta {
    pub fn empty(base_offset: i64) -> Self {
        Self {
            base_offset,
            size_bytes: 0,
            end_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_append_ms: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.end_offset == self.base_offset
    }

    /// Folds one stored batch into the summary.
    pub fn observe_batch(&mut self, last_offset: i64, max_timestamp: i64, size_bytes: u64) {
        self.end_offset = last_offset + 1;
        self.size_bytes += size_bytes;
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
    }
}

/// Sparse indexes of one segment. Offsets are relative to the segment base (u32, so a segment
/// holds fewer than 2^32 offsets and 4 GiB, which `segment_bytes` enforces).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentIndex {
    /// (relative offset of a batch's base, file position of that batch), increasing.
    pub offsets: Vec<(u32, u32)>,
    /// (max timestamp seen so far in the segment, relative base offset of the batch where it
    /// first appeared), both increasing.
    pub times: Vec<(i64, u32)>,
    /// Bytes appended since the last offset-index entry.
    pub bytes_since_entry: u32,
}

impl SegmentIndex {
    /// Records a batch at `position`; adds an offset entry every `interval_bytes` and a time
    /// entry whenever the segment's max timestamp grows past the last entry.
    pub fn observe_batch(
        &mut self,
        relative_offset: u32,
        position: u32,
        size_bytes: u32,
        max_timestamp: i64,
        interval_bytes: u32,
    ) {
        if self.offsets.is_empty() || self.bytes_since_entry >= interval_bytes {
            self.offsets.push((relative_offset, position));
            self.bytes_since_entry = 0;
            let grows = self.times.last().is_none_or(|(ts, _)| max_timestamp > *ts);
            if grows {
                self.times.push((max_timestamp, relative_offset));
            }
        }
        self.bytes_since_entry = self.bytes_since_entry.saturating_add(size_bytes);
    }

    /// File position to start scanning from to find `relative_offset`.
    pub fn position_floor(&self, relative_offset: u32) -> u32 {
        match self
            .offsets
            .partition_point(|(rel, _)| *rel <= relative_offset)
        {
            0 => 0,
            n => self.offsets[n - 1].1,
        }
    }

    /// Relative offset of a batch at or before the first batch whose max timestamp is
    /// `>= timestamp_ms`; scanning from its position finds the answer.
    pub fn offset_floor_for_time(&self, timestamp_ms: i64) -> u32 {
        match self.times.partition_point(|(ts, _)| *ts < timestamp_ms) {
            0 => 0,
            n => self.times[n - 1].1,
        }
    }

    pub fn truncate_to(&mut self, relative_end: u32) {
        self.offsets.retain(|(rel, _)| *rel < relative_end);
        self.times.retain(|(_, rel)| *rel < relative_end);
    }

    pub fn memory_bytes(&self) -> usize {
        self.offsets.capacity() * 8 + self.times.capacity() * 16
    }
}

/// Encodes both index files of a rolled segment: (offset index bytes, time index bytes).
pub fn encode_index_files(meta: &SegmentMeta, index: &SegmentIndex) -> (Vec<u8>, Vec<u8>) {
    let mut offsets = Vec::with_capacity(index.offsets.len() * 8);
    for (rel, pos) in &index.offsets {
        offsets.extend_from_slice(&rel.to_be_bytes());
        offsets.extend_from_slice(&pos.to_be_bytes());
    }
    let mut times = Vec::with_capacity(index.times.len() * 12);
    for (ts, rel) in &index.times {
        times.extend_from_slice(&ts.to_be_bytes());
        times.extend_from_slice(&rel.to_be_bytes());
    }
    (
        with_header(meta, 0, index.offsets.len(), offsets),
        with_header(meta, 1, index.times.len(), times),
    )
}

fn with_header(meta: &SegmentMeta, kind: u16, entries: usize, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(&INDEX_MAGIC.to_be_bytes());
    out.extend_from_slice(&INDEX_VERSION.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&meta.base_offset.to_be_bytes());
    out.extend_from_slice(&meta.size_bytes.to_be_bytes());
    out.extend_from_slice(&meta.end_offset.to_be_bytes());
    out.extend_from_slice(&meta.max_timestamp.to_be_bytes());
    out.extend_from_slice(&meta.offset_of_max_timestamp.to_be_bytes());
    out.extend_from_slice(&(entries as u32).to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out), &body);
    out.extend_from_slice(&crc.to_be_bytes());
    out.resize(HEADER_BYTES, 0);
    out.extend_from_slice(&body);
    out
}

/// Why an index file cannot be used (the caller rebuilds it by scanning).
pub type IndexProblem = String;

struct Decoded {
    meta: SegmentMeta,
    entries: usize,
    body: Vec<u8>,
}

fn decode(
    bytes: &[u8],
    kind: u16,
    base_offset: i64,
    log_size: u64,
) -> Result<Decoded, IndexProblem> {
    if bytes.len() < HEADER_BYTES {
        return Err(format!("{} bytes, shorter than the header", bytes.len()));
    }
    let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
    let u16_at = |at: usize| u16::from_be_bytes(bytes[at..at + 2].try_into().unwrap_or([0; 2]));
    let i64_at = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    if u32_at(0) != INDEX_MAGIC || u16_at(4) != INDEX_VERSION || u16_at(6) != kind {
        return Err("bad magic, version or kind".into());
    }
    let body_len = u32_at(52) as usize;
    if HEADER_BYTES + body_len > bytes.len() {
        return Err("body longer than file".into());
    }
    let body = &bytes[HEADER_BYTES..HEADER_BYTES + body_len];
    let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[..56]), body);
    if crc != u32_at(56) {
        return Err("CRC mismatch".into());
    }
    let meta = SegmentMeta {
        base_offset: i64_at(8),
        size_bytes: i64_at(16) as u64,
        end_offset: i64_at(24),
        max_timestamp: i64_at(32),
        offset_of_max_timestamp: i64_at(40),
        first_append_ms: None,
    };
    if meta.base_offset != base_offset {
        return Err(format!("base offset {} != {base_offset}", meta.base_offset));
    }
    if meta.size_bytes != log_size {
        return Err(format!(
            "stale: covers {} bytes, segment has {log_size}",
            meta.size_bytes
        ));
    }
    Ok(Decoded {
        meta,
        entries: u32_at(48) as usize,
        body: body.to_vec(),
    })
}

/// Decodes both index files; checks CRCs, base offset and that they cover `log_size` bytes.
pub fn decode_index_files(
    offset_bytes: &[u8],
    time_bytes: &[u8],
    base_offset: i64,
    log_size: u64,
) -> Result<(SegmentMeta, SegmentIndex), IndexProblem> {
    let offsets = decode(offset_bytes, 0, base_offset, log_size)?;
    let times = decode(time_bytes, 1, base_offset, log_size)?;
    if offsets.body.len() != offsets.entries * 8 || times.body.len() != times.entries * 12 {
        return Err("entry count disagrees with body length".into());
    }
    let mut index = SegmentIndex::default();
    for chunk in offsets.body.chunks_exact(8) {
        let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        index.offsets.push((rel, pos));
    }
    for chunk in times.body.chunks_exact(12) {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&chunk[..8]);
        let rel = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
        index.times.push((i64::from_be_bytes(ts), rel));
    }
    Ok((offsets.meta, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_files_round_trip_and_detect_staleness() {
        let mut meta = SegmentMeta::empty(100);
        let mut index = SegmentIndex::default();
        for i in 0..50u32 {
            index.observe_batch(i * 3, i * 1000, 1000, 10 + i64::from(i % 7), 4096);
            meta.observe_batch(100 + i64::from(i * 3) + 2, 10 + i64::from(i % 7), 1000);
        }
        let (a, b) = encode_index_files(&meta, &index);
        let (meta2, index2) = decode_index_files(&a, &b, 100, meta.size_bytes).expect("decode");
        assert_eq!(
            index2,
            SegmentIndex {
                bytes_since_entry: 0,
                ..index.clone()
            }
        );
        assert_eq!(meta2.end_offset, meta.end_offset);
        assert!(decode_index_files(&a, &b, 100, meta.size_bytes + 1).is_err());
        let mut corrupt = a.clone();
        corrupt[70] ^= 1;
        assert!(decode_index_files(&corrupt, &b, 100, meta.size_bytes).is_err());
        assert_eq!(index.position_floor(0), 0);
        assert!(index.position_floor(149) >= index.position_floor(60));
    }

    #[test]
    fn log_names_parse() {
        assert_eq!(parse_log_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_log_name("42.log"), None);
        assert_eq!(parse_log_name("00000000000000000042.index"), None);
    }
}
