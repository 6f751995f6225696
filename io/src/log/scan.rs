//! Batch-by-batch scan of a segment file: recovery of the tail and rebuilding of indexes.
//!
//! A scan walks from a position, checking each batch's length, magic, CRC32C and that its base
//! offset continues the previous batch (offsets are dense). It stops at the first byte that is
//! not a valid batch. Zero bytes after the last batch are block padding left by O_DIRECT tail
//! writes and are not counted as corruption.

use super::segment::{SegmentIndex, SegmentMeta};
use crate::rt::DirectFile;
use ringlet_protocol::record_batch::{batch_size_hint, validate_batch, HEADER_SIZE};
use std::io;

/// Bytes read per DMA read while scanning.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// The file ends exactly after the last batch.
    Clean,
    /// Only zero bytes follow the last batch (O_DIRECT block padding).
    Padding,
    /// Bytes after `valid_bytes` are not a valid batch.
    Invalid(String),
}

pub struct ScanResult {
    pub meta: SegmentMeta,
    pub index: SegmentIndex,
    pub end: ScanEnd,
    /// (leader epoch, first offset) for every epoch increase seen, in order.
    pub epochs: Vec<(i32, i64)>,
    /// Physical file size seen by the scan.
    pub file_bytes: u64,
}

/// One batch found by [`for_each_batch`].
pub struct FoundBatch<'a> {
    pub position: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: &'a [u8],
}

/// Calls `visit` on each valid batch from `start_position` until `end_position`, the first
/// invalid byte, or until `visit` returns false. `expected_base` is the base offset the first
/// batch must have (`None`: any). Returns how the walk ended and the position after the last
/// visited batch.
pub async fn for_each_batch(
    file: &DirectFile,
    start_position: u64,
    end_position: u64,
    mut expected_base: Option<i64>,
    max_batch_bytes: usize,
    mut visit: impl FnMut(FoundBatch<'_>) -> bool,
) -> io::Result<(ScanEnd, u64)> {
    let mut position = start_position;
    let mut chunk: Vec<u8> = Vec::new();
    let mut chunk_start = position;
    loop {
        if position >= end_position {
            return Ok((ScanEnd::Clean, position));
        }
        let at = (position - chunk_start) as usize;
        let have = chunk.len().saturating_sub(at);
        let need = match batch_size_hint(&chunk[at.min(chunk.len())..]) {
            Some(size) => size,
            None if have >= 12 => {
                return Ok((ScanEnd::Invalid("negative length".into()), position))
            }
            None => 12,
        };
        if need > max_batch_bytes.max(HEADER_SIZE) {
            let end =
                tail_kind(file, position, end_position, &chunk[at.min(chunk.len())..]).await?;
            return Ok((end, position));
        }
        if have < need {
            let want = need
                .max(SCAN_CHUNK_BYTES)
                .min((end_position - position) as usize);
            chunk = file.read_at(position, want).await?;
            chunk_start = position;
            if chunk.len() < need {
                let end = tail_kind(file, position, end_position, &chunk).await?;
                return Ok((end, position));
            }
            continue;
        }
        let bytes = &chunk[at..at + need];
        let header = match validate_batch(bytes) {
            Ok(header) => header,
            Err(err) => {
                let end = match tail_kind(file, position, end_position, &chunk[at..]).await? {
                    ScanEnd::Padding => ScanEnd::Padding,
                    _ => ScanEnd::Invalid(err.to_string()),
                };
                return Ok((end, position));
            }
        };
        if let Some(expected) = expected_base {
            if header.base_offset != expected {
                let detail = format!(
                    "base offset {} where {expected} was due",
                    header.base_offset
                );
                return Ok((ScanEnd::Invalid(detail), position));
            }
        }
        let found = FoundBatch {
            position,
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
            bytes,
        };
        expected_base = Some(header.last_offset() + 1);
        position += need as u64;
        if !visit(found) {
            return Ok((ScanEnd::Clean, position));
        }
    }
}

/// Decides whether the bytes from `position` to the end are zero padding or garbage.
async fn tail_kind(
    file: &DirectFile,
    position: u64,
    end_position: u64,
    already: &[u8],
) -> io::Result<ScanEnd> {
    if already.iter().any(|b| *b != 0) {
        return Ok(ScanEnd::Invalid("garbage after last valid batch".into()));
    }
    let mut at = position + already.len() as u64;
    while at < end_position {
        let want = SCAN_CHUNK_BYTES.min((end_position - at) as usize);
        let bytes = file.read_at(at, want).await?;
        if bytes.is_empty() {
            break;
        }
        if bytes.iter().any(|b| *b != 0) {
            return Ok(ScanEnd::Invalid("garbage after zero bytes".into()));
        }
        at += bytes.len() as u64;
    }
    Ok(ScanEnd::Padding)
}

/// Scans a whole segment, rebuilding its summary and indexes.
pub async fn scan_segment(
    file: &DirectFile,
    base_offset: i64,
    index_interval_bytes: u32,
    max_batch_bytes: usize,
) -> io::Result<ScanResult> {
    let file_bytes = file.size().await?;
    let mut meta = SegmentMeta::empty(base_offset);
    let mut index = SegmentIndex::default();
    let mut epochs: Vec<(i32, i64)> = Vec::new();
    let (end, _) = for_each_batch(
        file,
        0,
        file_bytes,
        Some(base_offset),
        max_batch_bytes,
        |batch| {
            let size = batch.bytes.len() as u64;
            index.observe_batch(
                (batch.base_offset - base_offset) as u32,
                batch.position as u32,
                size as u32,
                batch.max_timestamp,
                index_interval_bytes,
            );
            meta.observe_batch(batch.last_offset, batch.max_timestamp, size);
            let epoch = leader_epoch_of(batch.bytes);
            if epochs.last().is_none_or(|(last, _)| epoch > *last) && epoch >= 0 {
                epochs.push((epoch, batch.base_offset));
            }
            true
        },
    )
    .await?;
    Ok(ScanResult {
        meta,
        index,
        end,
        epochs,
        file_bytes,
    })
}

fn leader_epoch_of(batch: &[u8]) -> i32 {
    i32::from_be_bytes([batch[12], batch[13], batch[14], batch[15]])
}
