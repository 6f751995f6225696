//! Reads: hot data from the batch cache, cold data by DMA reads located through the sparse
//! index; and timestamp lookups through the time index.

use super::scan::{for_each_batch, scan_segment, ScanEnd};
use super::segment::{self, SegmentIndex};
use super::{Inner, LogError, PartitionLog, ReadBatches};
use crate::rt::DirectFile;
use bytes::{Bytes, BytesMut};
use ringlet_protocol::record_batch::record_timestamps;
use std::io;
use std::rc::Rc;

/// Largest batch a cold read or scan accepts: stored batches may predate a smaller
/// `max_batch_bytes`, so this is a sanity bound against garbage lengths only.
pub(super) const STORED_BATCH_MAX_BYTES: usize = 256 << 20;

/// Where a cold read or a timestamp scan has to look.
struct SegmentPlan {
    base_offset: i64,
    size_bytes: u64,
    file: Option<Rc<DirectFile>>,
    index: Option<Rc<SegmentIndex>>,
    active_position: Option<u64>,
    generation: u64,
}

impl PartitionLog {
    /// Whole batches starting with the one that contains `start_offset`, up to `max_bytes`
    /// but always at least one batch (KIP-74). Empty at the log end; `OffsetOutOfRange`
    /// outside `[log_start, log_end]`.
    pub async fn read(&self, start_offset: i64, max_bytes: usize) -> Result<ReadBatches, LogError> {
        loop {
            let plan = {
                let state = self.inner.state.borrow();
                self.inner.check_open(&state)?;
                if start_offset < state.log_start || start_offset > state.visible_end {
                    return Err(state.out_of_range(start_offset));
                }
                if start_offset == state.visible_end {
                    return Ok(ReadBatches {
                        data: Bytes::new(),
                        first_offset: start_offset,
                        next_offset: start_offset,
                    });
                }
                if let Some((parts, first, next)) = state.cache.read(start_offset, max_bytes) {
                    return Ok(ReadBatches {
                        data: concat(parts),
                        first_offset: first,
                        next_offset: next,
                    });
                }
                plan_segment(&self.inner, start_offset)
            };
            let generation = plan.generation;
            let result = read_cold(&self.inner, plan, start_offset, max_bytes).await;
            let state = self.inner.state.borrow();
            if state.generation != generation {
                continue; // truncated or log start moved meanwhile: answer from the new state
            }
            return match result {
                Ok(Some(read)) => Ok(read),
                Ok(None) => Err(state.out_of_range(start_offset)),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    Err(state.out_of_range(start_offset))
                }
                Err(err) if err.kind() == io::ErrorKind::InvalidData => Err(LogError::Corrupt {
                    what: "segment",
                    path: self.inner.dir.clone(),
                    detail: err.to_string(),
                }),
                Err(err) => Err(LogError::io("read segment", self.inner.dir.clone(), err)),
            };
        }
    }

    /// ListOffsets by timestamp: the first record (exact for uncompressed batches, else the
    /// batch's base offset and max timestamp) whose timestamp is `>= timestamp_ms`.
    pub async fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let (plan, log_start) = {
            let state = self.inner.state.borrow();
            self.inner.check_open(&state)?;
            let found = state.segments.values().find(|meta| {
                !meta.is_empty()
                    && meta.end_offset > state.log_start
                    && meta.max_timestamp >= timestamp_ms
            });
            let Some(meta) = found else {
                return Ok(None);
            };
            (plan_segment(&self.inner, meta.base_offset), state.log_start)
        };
        let found = find_by_time(&self.inner, plan, timestamp_ms, log_start).await;
        found.map_err(|err| LogError::io("timestamp lookup", self.inner.dir.clone(), err))
    }
}

impl Inner {
    pub(super) fn check_open(&self, state: &super::State) -> Result<(), LogError> {
        if state.closed {
            return Err(LogError::Closed {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }
}

fn concat(parts: Vec<Bytes>) -> Bytes {
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or_default();
    }
    let total = parts.iter().map(Bytes::len).sum();
    let mut out = BytesMut::with_capacity(total);
    for part in parts {
        out.extend_from_slice(&part);
    }
    out.freeze()
}

fn plan_segment(inner: &Inner, offset: i64) -> SegmentPlan {
    let state = inner.state.borrow();
    let base_offset = state
        .segment_for(offset)
        .unwrap_or(state.active.base_offset);
    let size_bytes = state.segments.get(&base_offset).map_or(0, |m| m.size_bytes);
    let relative = (offset.max(base_offset) - base_offset) as u32;
    let (file, index, active_position) = if base_offset == state.active.base_offset {
        let position = state.active.index.position_floor(relative) as u64;
        (Some(state.active.file.clone()), None, Some(position))
    } else {
        (None, state.closed_index(base_offset), None)
    };
    SegmentPlan {
        base_offset,
        size_bytes,
        file,
        index,
        active_position,
        generation: state.generation,
    }
}

/// Opens the plan's file (closed segments are opened per read, so idle logs hold one fd) and
/// the position to scan from for `offset`, loading the closed segment's index if needed.
async fn locate(
    inner: &Inner,
    plan: &SegmentPlan,
    relative: impl Fn(&SegmentIndex) -> u32,
) -> io::Result<(Rc<DirectFile>, u64)> {
    if let (Some(file), Some(position)) = (&plan.file, plan.active_position) {
        return Ok((file.clone(), position));
    }
    let path = segment::log_path(&inner.dir, plan.base_offset);
    let file = Rc::new(DirectFile::open_read(&path).await?);
    let index = match &plan.index {
        Some(index) => index.clone(),
        None => {
            let index = Rc::new(load_closed_index(inner, &file, plan).await?);
            let mut state = inner.state.borrow_mut();
            if state.generation == plan.generation {
                state.remember_closed_index(plan.base_offset, index.clone());
            }
            index
        }
    };
    let rel = relative(&index);
    Ok((file, u64::from(index.position_floor(rel))))
}

/// Reads a closed segment's index files, or rebuilds the index in memory by scanning when they
/// are missing or stale (files are only rewritten at open, never from the read path).
async fn load_closed_index(
    inner: &Inner,
    file: &DirectFile,
    plan: &SegmentPlan,
) -> io::Result<SegmentIndex> {
    let offsets_path = segment::index_path(&inner.dir, plan.base_offset);
    let times_path = segment::time_index_path(&inner.dir, plan.base_offset);
    let offsets = crate::rt::read_small_file(&offsets_path).await?;
    let times = crate::rt::read_small_file(&times_path).await?;
    if let (Some(offsets), Some(times)) = (offsets, times) {
        let decoded =
            segment::decode_index_files(&offsets, &times, plan.base_offset, plan.size_bytes);
        if let Ok((_, index)) = decoded {
            return Ok(index);
        }
    }
    let interval = inner.state.borrow().config.index_interval_bytes;
    let scanned = scan_segment(file, plan.base_offset, interval, STORED_BATCH_MAX_BYTES).await?;
    Ok(scanned.index)
}

async fn read_cold(
    inner: &Inner,
    plan: SegmentPlan,
    start_offset: i64,
    max_bytes: usize,
) -> io::Result<Option<ReadBatches>> {
    let base = plan.base_offset;
    let relative = ((start_offset - base).max(0)) as u32;
    let (file, position) = locate(inner, &plan, |_| relative).await?;
    let mut out = BytesMut::new();
    let mut first_offset = None;
    let mut next_offset = start_offset;
    let (end, stopped_at) = for_each_batch(
        &file,
        position,
        plan.size_bytes,
        None,
        STORED_BATCH_MAX_BYTES,
        |batch| {
            if batch.last_offset < start_offset {
                return true;
            }
            if first_offset.is_some() && out.len() + batch.bytes.len() > max_bytes {
                return false;
            }
            first_offset.get_or_insert(batch.base_offset);
            out.extend_from_slice(batch.bytes);
            next_offset = batch.last_offset + 1;
            true
        },
    )
    .await?;
    if let (None, ScanEnd::Invalid(why)) = (first_offset, end) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("corrupt batch at byte {stopped_at} of segment {base}: {why}"),
        ));
    }
    Ok(first_offset.map(|first_offset| ReadBatches {
        data: out.freeze(),
        first_offset,
        next_offset,
    }))
}

async fn find_by_time(
    inner: &Inner,
    plan: SegmentPlan,
    timestamp_ms: i64,
    log_start: i64,
) -> io::Result<Option<(i64, i64)>> {
    // The active segment's time index is in memory; a closed one's comes with its index.
    let active_relative = {
        let state = inner.state.borrow();
        (plan.base_offset == state.active.base_offset)
            .then(|| state.active.index.offset_floor_for_time(timestamp_ms))
    };
    let mut plan = plan;
    if let Some(relative) = active_relative {
        let state = inner.state.borrow();
        plan.active_position = Some(u64::from(state.active.index.position_floor(relative)));
    }
    let (file, position) = locate(inner, &plan, |index| {
        index.offset_floor_for_time(timestamp_ms)
    })
    .await?;
    let mut found = None;
    let mut decode_error = None;
    for_each_batch(
        &file,
        position,
        plan.size_bytes,
        None,
        STORED_BATCH_MAX_BYTES,
        |batch| {
            if batch.max_timestamp < timestamp_ms || batch.last_offset < log_start {
                return true;
            }
            match first_record_at_or_after(batch.bytes, batch.base_offset, timestamp_ms, log_start)
            {
                Ok(Some(hit)) => found = Some(hit),
                Ok(None) => found = Some((batch.base_offset.max(log_start), batch.max_timestamp)),
                Err(err) => decode_error = Some(err),
            }
            false
        },
    )
    .await?;
    if let Some(err) = decode_error {
        return Err(io::Error::new(io::ErrorKind::InvalidData, err));
    }
    Ok(found)
}

/// Exact record lookup inside an uncompressed batch; `None` for compressed batches.
fn first_record_at_or_after(
    batch: &[u8],
    base_offset: i64,
    timestamp_ms: i64,
    log_start: i64,
) -> Result<Option<(i64, i64)>, String> {
    let stamps = record_timestamps(batch).map_err(|err| err.to_string())?;
    let Some(stamps) = stamps else {
        return Ok(None);
    };
    let hit = stamps
        .into_iter()
        .find(|(delta, ts)| *ts >= timestamp_ms && base_offset + i64::from(*delta) >= log_start);
    Ok(hit.map(|(delta, ts)| (base_offset + i64::from(delta), ts)))
}
