//! The write path: append (validate, assign offsets, queue), the flush task (one O_DIRECT write
//! per group of queued batches, segment rolls) and group-committed `fdatasync`.

use super::cache::CachedBatch;
use super::segment::{self, SegmentIndex, SegmentMeta};
use super::{ActiveSegment, Failure, Inner, PartitionLog, PendingAppend, PendingBatch, State};
use super::{AppendInfo, LogError};
use crate::rt::{self, align_down, DirectFile, BLOCK_BYTES};
use crate::sync::oneshot;
use bytes::BytesMut;
use ringlet_protocol::record_batch as rb;
use std::rc::Rc;

impl PartitionLog {
    /// Appends the batches in `records` (one or more v2 batches). All are validated before any
    /// is queued; offsets are assigned in call order before the first `.await`. Returns once
    /// the batches are written and readable (not yet durable: see [`Self::wait_durable`]).
    pub async fn append(
        &self,
        records: BytesMut,
        leader_epoch: i32,
        log_append_time_ms: Option<i64>,
    ) -> Result<AppendInfo, LogError> {
        let (info, done, start_flush) = {
            let mut state = self.inner.state.borrow_mut();
            self.inner.check_usable(&state)?;
            let (info, batches) = stamp_batches(&state, records, leader_epoch, log_append_time_ms)?;
            state.next_offset = info.last_offset + 1;
            let (tx, rx) = oneshot();
            state.pending.push_back(PendingAppend { batches, done: tx });
            let start_flush = !state.flush_scheduled;
            state.flush_scheduled = true;
            (info, rx, start_flush)
        };
        // Spawned outside the borrow: the executor may poll the new task right away.
        if start_flush {
            rt::spawn_detached(flush_task(self.inner.clone()));
        }
        match done.await {
            Some(Ok(())) => Ok(info),
            Some(Err(err)) => Err(err),
            None => Err(LogError::AppendAborted {
                base_offset: info.base_offset,
                reason: "log dropped before the write finished".into(),
            }),
        }
    }

    /// Returns once every offset `<= offset` is on stable storage. Concurrent callers share
    /// one `fdatasync` (group commit).
    pub async fn wait_durable(&self, offset: i64) -> Result<(), LogError> {
        let done = {
            let mut state = self.inner.state.borrow_mut();
            if offset < state.durable_end {
                return Ok(());
            }
            self.inner.check_usable(&state)?;
            if offset >= state.next_offset {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start: state.log_start,
                    log_end: state.next_offset,
                });
            }
            let (tx, rx) = oneshot();
            state.sync_waiters.push((offset, tx));
            rx
        };
        maybe_start_sync(&self.inner);
        match done.await {
            Some(result) => result,
            None => Err(LogError::Closed {
                dir: self.inner.dir.clone(),
            }),
        }
    }
}

/// Validates every batch, then writes base offsets, epochs and (LogAppendTime) timestamps.
fn stamp_batches(
    state: &State,
    mut records: BytesMut,
    leader_epoch: i32,
    log_append_time_ms: Option<i64>,
) -> Result<(AppendInfo, Vec<PendingBatch>), LogError> {
    let ranges = rb::split_batches(&records).map_err(|source| LogError::InvalidBatch {
        batch_index: 0,
        source,
    })?;
    if ranges.is_empty() {
        return Err(LogError::EmptyAppend);
    }
    let mut headers = Vec::with_capacity(ranges.len());
    for (batch_index, range) in ranges.iter().enumerate() {
        if range.len() > state.config.max_batch_bytes {
            return Err(LogError::BatchTooLarge {
                size_bytes: range.len(),
                max_bytes: state.config.max_batch_bytes,
            });
        }
        let header = rb::validate_batch(&records[range.clone()]).map_err(|source| {
            LogError::InvalidBatch {
                batch_index,
                source,
            }
        })?;
        headers.push(header);
    }
    let mut next = state.next_offset;
    let mut info = AppendInfo {
        base_offset: next,
        last_offset: next,
        max_timestamp: -1,
        offset_of_max_timestamp: -1,
    };
    let mut stamped = Vec::with_capacity(ranges.len());
    for (range, header) in ranges.iter().zip(&headers) {
        let buf = &mut records[range.clone()];
        rb::set_base_offset(buf, next);
        rb::set_partition_leader_epoch(buf, leader_epoch);
        let mut max_timestamp = header.max_timestamp;
        if let Some(now_ms) = log_append_time_ms {
            rb::set_log_append_time(buf, now_ms);
            max_timestamp = now_ms;
        }
        let last = next + i64::from(header.last_offset_delta);
        if max_timestamp > info.max_timestamp {
            info.max_timestamp = max_timestamp;
            info.offset_of_max_timestamp = last;
        }
        stamped.push((range.clone(), next, last, max_timestamp));
        info.last_offset = last;
        next = last + 1;
    }
    let frozen = records.freeze();
    let batches = stamped
        .into_iter()
        .map(|(range, base, last, max_timestamp)| PendingBatch {
            bytes: frozen.slice(range),
            base_offset: base,
            last_offset: last,
            max_timestamp,
            leader_epoch,
        })
        .collect();
    Ok((info, batches))
}

/// Writes queued appends until the queue is empty. Runs as a detached task so a cancelled
/// `append` future cannot strand batches that later offsets depend on.
async fn flush_task(inner: Rc<Inner>) {
    let _io = inner.io_lock.acquire().await;
    loop {
        let work: Vec<PendingAppend> = {
            let mut state = inner.state.borrow_mut();
            if state.pending.is_empty() {
                state.flush_scheduled = false;
                return;
            }
            state.pending.drain(..).collect()
        };
        write_appends(&inner, work).await;
    }
}

/// Writes a group of appends: new epochs to the checkpoint first, then batches in as few
/// writes as segment rolls allow. On failure every unwritten append (including ones queued
/// meanwhile, whose offsets follow) fails and the log end stays where the data ends.
async fn write_appends(inner: &Rc<Inner>, work: Vec<PendingAppend>) {
    let unusable = {
        let state = inner.state.borrow();
        inner.check_usable(&state).err()
    };
    if let Some(err) = unusable {
        let reason = err.to_string();
        fail_appends(inner, work, &reason, None);
        return;
    }
    if let Err(failure) = record_new_epochs(inner, &work).await {
        fail_appends(inner, work, "checkpoint write failed", Some(failure));
        return;
    }
    let mut done = Vec::with_capacity(work.len());
    let mut group: Vec<&PendingBatch> = Vec::new();
    let mut result = Ok(());
    'outer: for append in &work {
        for batch in &append.batches {
            if needs_roll(inner, &group, batch) {
                if let Err(failure) = write_group(inner, &group).await {
                    result = Err(failure);
                    break 'outer;
                }
                group.clear();
                if let Err(failure) = roll(inner, batch.base_offset).await {
                    result = Err(failure);
                    break 'outer;
                }
            }
            group.push(batch);
        }
    }
    if result.is_ok() {
        result = write_group(inner, &group).await;
    }
    let visible_end = inner.state.borrow().visible_end;
    for append in work {
        let written = append
            .batches
            .last()
            .is_some_and(|b| b.last_offset < visible_end);
        if written {
            done.push(append.done);
        } else {
            let failure = result.clone().err();
            fail_appends(inner, vec![append], "earlier write failed", failure);
        }
    }
    for tx in done {
        tx.send(Ok(()));
    }
    maybe_start_sync(inner);
}

/// Fails `work` and everything still queued behind it, rewinding offset assignment.
fn fail_appends(inner: &Rc<Inner>, work: Vec<PendingAppend>, reason: &str, cause: Option<Failure>) {
    let queued: Vec<PendingAppend> = {
        let mut state = inner.state.borrow_mut();
        state.next_offset = state.visible_end;
        let visible_end = state.visible_end;
        state.epochs.retain(|(_, start)| *start < visible_end);
        abort_unwritten_waiters(&inner.dir, &mut state, reason);
        state.pending.drain(..).collect()
    };
    for append in work.into_iter().chain(queued) {
        let base_offset = append.batches.first().map_or(-1, |b| b.base_offset);
        let err = match &cause {
            Some(failure) => failure.to_error(),
            None => LogError::AppendAborted {
                base_offset,
                reason: reason.to_owned(),
            },
        };
        append.done.send(Err(err));
    }
}

/// Durability waiters for offsets that will now never be written get an error.
pub(super) fn abort_unwritten_waiters(dir: &std::path::Path, state: &mut State, reason: &str) {
    let visible_end = state.visible_end;
    let waiters = std::mem::take(&mut state.sync_waiters);
    for (offset, tx) in waiters {
        if offset >= visible_end {
            tx.send(Err(LogError::AppendAborted {
                base_offset: offset,
                reason: format!("{reason} ({})", dir.display()),
            }));
        } else {
            state.sync_waiters.push((offset, tx));
        }
    }
}

/// Adds cache entries for epochs newer than the latest and persists them before the data, so
/// a crash can leave an epoch without data (dropped on recovery) but never data without epoch.
async fn record_new_epochs(inner: &Rc<Inner>, work: &[PendingAppend]) -> Result<(), Failure> {
    let checkpoint = {
        let mut state = inner.state.borrow_mut();
        let mut changed = false;
        for batch in work.iter().flat_map(|a| a.batches.iter()) {
            let latest = state.epochs.last().map(|(e, _)| *e);
            if latest.is_none_or(|e| batch.leader_epoch > e) && batch.leader_epoch >= 0 {
                state.epochs.push((batch.leader_epoch, batch.base_offset));
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        state.checkpoint()
    };
    checkpoint
        .store(&inner.dir)
        .await
        .map_err(|err| Failure::from_io("write checkpoint", &inner.dir, &err))
}

fn needs_roll(inner: &Rc<Inner>, group: &[&PendingBatch], batch: &PendingBatch) -> bool {
    let state = inner.state.borrow();
    let meta = state.active_meta();
    let group_bytes: u64 = group.iter().map(|b| b.bytes.len() as u64).sum();
    if meta.is_empty() && group.is_empty() {
        return false;
    }
    let size_after = meta.size_bytes + group_bytes + batch.bytes.len() as u64;
    let too_big = size_after > state.config.segment_bytes;
    let first_ms = meta.first_append_ms.unwrap_or_else(rt::now_ms);
    let too_old = rt::now_ms().saturating_sub(first_ms) > state.config.segment_ms;
    too_big || too_old
}

/// Writes `group` (consecutive batches for the active segment) with one aligned write that
/// starts at the tail block, then makes the batches visible.
async fn write_group(inner: &Rc<Inner>, group: &[&PendingBatch]) -> Result<(), Failure> {
    if group.is_empty() {
        return Ok(());
    }
    let (file, size_before, buf, new_tail) = {
        let state = inner.state.borrow();
        let size_before = state.active_meta().size_bytes;
        let file = state.active.file.clone();
        let tail = &state.active.tail;
        let data_len: usize = group.iter().map(|b| b.bytes.len()).sum();
        let mut buf = file.alloc(tail.len() + data_len);
        let slice = buf.as_mut_slice();
        slice[..tail.len()].copy_from_slice(tail);
        let mut at = tail.len();
        for batch in group {
            slice[at..at + batch.bytes.len()].copy_from_slice(&batch.bytes);
            at += batch.bytes.len();
        }
        let new_tail_start = align_down(at as u64) as usize;
        let new_tail = slice[new_tail_start..at].to_vec();
        (file, size_before, buf, new_tail)
    };
    let position = align_down(size_before);
    file.write_aligned(position, buf)
        .await
        .map_err(|err| Failure::from_io("write segment", file.path(), &err))?;
    let mut state = inner.state.borrow_mut();
    assert_eq!(
        state.active_meta().size_bytes,
        size_before,
        "active segment changed during a write that holds io_lock"
    );
    state.active.tail = new_tail;
    state.stats.segment_writes += 1;
    for batch in group {
        publish_batch(&mut state, batch);
    }
    Ok(())
}

/// Makes one written batch visible: segment summary, indexes, cache, log end.
fn publish_batch(state: &mut State, batch: &PendingBatch) {
    assert_eq!(
        batch.base_offset, state.visible_end,
        "offsets must stay dense"
    );
    let interval = state.config.index_interval_bytes;
    let cache_max = state.config.cache_bytes_max;
    let base = state.active.base_offset;
    let meta = state.active_meta_mut();
    let position = meta.size_bytes as u32;
    let size = batch.bytes.len() as u64;
    meta.first_append_ms.get_or_insert_with(rt::now_ms);
    meta.observe_batch(batch.last_offset, batch.max_timestamp, size);
    let relative = (batch.base_offset - base) as u32;
    state.active.index.observe_batch(
        relative,
        position,
        size as u32,
        batch.max_timestamp,
        interval,
    );
    state.visible_end = batch.last_offset + 1;
    state.cache.push(
        CachedBatch {
            base_offset: batch.base_offset,
            last_offset: batch.last_offset,
            bytes: batch.bytes.clone(),
        },
        cache_max,
    );
}

/// Closes the active segment (drop padding, fdatasync, write its indexes) and starts a new one
/// at `new_base`. On failure the old segment stays active and consistent.
pub(super) async fn roll(inner: &Rc<Inner>, new_base: i64) -> Result<(), Failure> {
    let dir = inner.dir.clone();
    let (file, meta, index) = {
        let state = inner.state.borrow();
        assert_eq!(new_base, state.visible_end, "roll only at the log end");
        let index = state.active.index.clone();
        (
            state.active.file.clone(),
            state.active_meta().clone(),
            index,
        )
    };
    file.truncate(meta.size_bytes)
        .await
        .map_err(|err| Failure::from_io("truncate padding", file.path(), &err))?;
    file.fdatasync()
        .await
        .map_err(|err| Failure::from_io("fdatasync", file.path(), &err))?;
    let (offset_bytes, time_bytes) = segment::encode_index_files(&meta, &index);
    let index_path = segment::index_path(&dir, meta.base_offset);
    rt::write_file_atomic(&index_path, &offset_bytes)
        .await
        .map_err(|err| Failure::from_io("write index", &index_path, &err))?;
    let time_path = segment::time_index_path(&dir, meta.base_offset);
    rt::write_file_atomic(&time_path, &time_bytes)
        .await
        .map_err(|err| Failure::from_io("write time index", &time_path, &err))?;
    let new_path = segment::log_path(&dir, new_base);
    let new_file = create_empty_segment(&new_path).await?;
    let mut state = inner.state.borrow_mut();
    let old_base = state.active.base_offset;
    state
        .segments
        .insert(new_base, SegmentMeta::empty(new_base));
    state.active = ActiveSegment {
        file: Rc::new(new_file),
        base_offset: new_base,
        tail: Vec::new(),
        index: SegmentIndex::default(),
    };
    state.remember_closed_index(old_base, Rc::new(index));
    state.stats.rolls += 1;
    // The old segment was fdatasync'ed whole, so everything before the new one is durable.
    state.durable_end = state.durable_end.max(new_base);
    Ok(())
}

pub(super) async fn create_empty_segment(path: &std::path::Path) -> Result<DirectFile, Failure> {
    let fail = |op| move |err| Failure::from_io(op, path, &err);
    let file = DirectFile::open_rw(path)
        .await
        .map_err(fail("create segment"))?;
    file.truncate(0)
        .await
        .map_err(fail("truncate new segment"))?;
    let dir = path.parent().unwrap_or_else(|| std::path::Path::new("."));
    rt::sync_dir(dir).await.map_err(fail("fsync directory"))?;
    Ok(file)
}

/// Starts the sync task if some waiter can be served by an fdatasync now.
pub(super) fn maybe_start_sync(inner: &Rc<Inner>) {
    let start = {
        let mut state = inner.state.borrow_mut();
        let useful = state
            .sync_waiters
            .iter()
            .any(|(offset, _)| *offset < state.visible_end);
        let start = useful && !state.sync_running;
        state.sync_running |= start;
        start
    };
    if start {
        rt::spawn_detached(sync_task(inner.clone()));
    }
}

/// Group commit: each round snapshots the visible end, runs one fdatasync, and releases every
/// waiter it covers. Waiters that arrive during a sync are served by the next round.
async fn sync_task(inner: Rc<Inner>) {
    loop {
        let (file, target, generation) = {
            let mut state = inner.state.borrow_mut();
            release_sync_waiters(&inner, &mut state);
            let useful = state
                .sync_waiters
                .iter()
                .any(|(offset, _)| *offset < state.visible_end);
            if !useful || state.failed.is_some() || state.closed {
                state.sync_running = false;
                return;
            }
            (
                state.active.file.clone(),
                state.visible_end,
                state.generation,
            )
        };
        let result = file.fdatasync().await;
        let mut state = inner.state.borrow_mut();
        state.stats.group_syncs += 1;
        match result {
            Ok(()) if state.generation == generation => {
                state.durable_end = state.durable_end.max(target);
            }
            Ok(()) => {}
            Err(err) => {
                // After a failed fsync the kernel may have dropped dirty state; like
                // PostgreSQL we stop trusting the file until the log is reopened.
                tracing::error!(dir = %inner.dir.display(), "fdatasync failed: {err}");
                state.failed = Some(format!("fdatasync failed: {err}"));
            }
        }
    }
}

fn release_sync_waiters(inner: &Rc<Inner>, state: &mut State) {
    let durable_end = state.durable_end;
    let failed = state.failed.clone();
    let closed = state.closed;
    let waiters = std::mem::take(&mut state.sync_waiters);
    for (offset, tx) in waiters {
        if offset < durable_end {
            tx.send(Ok(()));
        } else if let Some(reason) = &failed {
            tx.send(Err(LogError::Failed {
                dir: inner.dir.clone(),
                reason: reason.clone(),
            }));
        } else if closed {
            tx.send(Err(LogError::Closed {
                dir: inner.dir.clone(),
            }));
        } else {
            state.sync_waiters.push((offset, tx));
        }
    }
}

/// The bytes of the last partial block of a segment of `size` bytes.
pub(super) async fn read_tail(file: &DirectFile, size: u64) -> std::io::Result<Vec<u8>> {
    let start = align_down(size);
    let len = (size - start) as usize;
    if len == 0 {
        return Ok(Vec::new());
    }
    let tail = file.read_at(start, len).await?;
    if tail.len() != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("tail block: read {} of {len} bytes", tail.len()),
        ));
    }
    debug_assert!(len < BLOCK_BYTES as usize);
    Ok(tail)
}
