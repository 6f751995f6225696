//! Changes to the log's extent: suffix truncation (Raft followers), log-start moves
//! (DeleteRecords, retention), closing and deleting.

use super::read::STORED_BATCH_MAX_BYTES;
use super::scan::for_each_batch;
use super::segment::{self, SegmentIndex};
use super::writer::{abort_unwritten_waiters, read_tail, roll};
use super::{ActiveSegment, Failure, Inner, LogError, PartitionLog};
use crate::rt::{self, DirectFile};
use std::rc::Rc;

impl PartitionLog {
    /// Drops every offset `>= offset`, which must be a batch boundary in
    /// `[log_start, log_end]`. Appends still queued are aborted.
    pub async fn truncate_suffix(&self, offset: i64) -> Result<(), LogError> {
        let _io = self.inner.io_lock.acquire().await;
        let (target_base, boundary_check) = {
            let mut state = self.inner.state.borrow_mut();
            self.inner.check_usable(&state)?;
            if offset < state.log_start || offset > state.visible_end {
                return Err(state.out_of_range(offset));
            }
            abort_queued(&self.inner, &mut state, "log truncated");
            let base = state
                .segment_for(offset)
                .unwrap_or(state.active.base_offset);
            (base, offset != base && offset != state.visible_end)
        };
        if boundary_check && !self.is_batch_start(target_base, offset).await? {
            return Err(LogError::NotBatchBoundary { offset });
        }
        if offset == self.log_end_offset() {
            return Ok(());
        }
        self.remove_segments_above(target_base).await?;
        self.reactivate_truncated(target_base, offset).await?;
        let checkpoint = {
            let mut state = self.inner.state.borrow_mut();
            state.generation += 1;
            state.visible_end = offset;
            state.next_offset = offset;
            state.durable_end = state.durable_end.min(offset);
            state.cache.truncate_from(offset);
            let before = state.epochs.len();
            state.epochs.retain(|(_, start)| *start < offset);
            (state.epochs.len() != before).then(|| state.checkpoint())
        };
        if let Some(checkpoint) = checkpoint {
            checkpoint
                .store(&self.inner.dir)
                .await
                .map_err(|err| LogError::io("write checkpoint", self.inner.dir.clone(), err))?;
        }
        Ok(())
    }

    /// True when a batch of the segment at `base` starts exactly at `offset`.
    async fn is_batch_start(&self, base: i64, offset: i64) -> Result<bool, LogError> {
        let (path, size, position) = {
            let state = self.inner.state.borrow();
            let size = state.segments.get(&base).map_or(0, |m| m.size_bytes);
            let relative = (offset - base) as u32;
            let position = if base == state.active.base_offset {
                state.active.index.position_floor(relative)
            } else {
                0
            };
            (
                segment::log_path(&self.inner.dir, base),
                size,
                u64::from(position),
            )
        };
        let io_err = |err| LogError::io("scan segment", path.clone(), err);
        let file = DirectFile::open_read(&path).await.map_err(io_err)?;
        let mut found = false;
        for_each_batch(
            &file,
            position,
            size,
            None,
            STORED_BATCH_MAX_BYTES,
            |batch| {
                found = batch.base_offset == offset;
                batch.base_offset < offset
            },
        )
        .await
        .map_err(io_err)?;
        Ok(found)
    }

    /// Deletes every segment above `base`, newest first, so a crash never leaves a gap.
    async fn remove_segments_above(&self, base: i64) -> Result<(), LogError> {
        let doomed: Vec<i64> = {
            let mut state = self.inner.state.borrow_mut();
            let doomed: Vec<i64> = state.segments.range(base + 1..).map(|(b, _)| *b).collect();
            for b in &doomed {
                state.segments.remove(b);
                state.closed_indexes.retain(|(cached, _)| cached != b);
            }
            doomed
        };
        for b in doomed.into_iter().rev() {
            remove_segment_files(&self.inner.dir, b).await?;
        }
        Ok(())
    }

    /// Cuts the segment at `base` to end just before `offset` and makes it the active one.
    async fn reactivate_truncated(&self, base: i64, offset: i64) -> Result<(), LogError> {
        let dir = self.inner.dir.clone();
        let path = segment::log_path(&dir, base);
        let io_err = |op| {
            let path = path.clone();
            move |err| LogError::io(op, path, err)
        };
        let file = DirectFile::open_rw(&path)
            .await
            .map_err(io_err("open segment"))?;
        let (interval, size) = {
            let state = self.inner.state.borrow();
            let size = state.segments.get(&base).map_or(0, |m| m.size_bytes);
            (state.config.index_interval_bytes, size)
        };
        // Rebuild the summary and index of the kept prefix while finding the cut position;
        // truncation is rare (a diverged follower), so a scan of one segment is acceptable.
        let mut meta = super::segment::SegmentMeta::empty(base);
        let mut index = SegmentIndex::default();
        let mut cut_at = 0u64;
        for_each_batch(
            &file,
            0,
            size,
            Some(base),
            STORED_BATCH_MAX_BYTES,
            |batch| {
                if batch.base_offset >= offset {
                    return false;
                }
                let size = batch.bytes.len() as u64;
                index.observe_batch(
                    (batch.base_offset - base) as u32,
                    batch.position as u32,
                    size as u32,
                    batch.max_timestamp,
                    interval,
                );
                meta.observe_batch(batch.last_offset, batch.max_timestamp, size);
                cut_at = batch.position + size;
                true
            },
        )
        .await
        .map_err(io_err("scan segment"))?;
        assert!(
            meta.is_empty() || meta.end_offset == offset,
            "truncation must land on a batch boundary"
        );
        file.truncate(cut_at)
            .await
            .map_err(io_err("truncate segment"))?;
        file.fdatasync().await.map_err(io_err("fdatasync"))?;
        rt::remove_file(&segment::index_path(&dir, base))
            .await
            .map_err(io_err("remove index"))?;
        rt::remove_file(&segment::time_index_path(&dir, base))
            .await
            .map_err(io_err("remove index"))?;
        rt::sync_dir(&dir)
            .await
            .map_err(io_err("fsync directory"))?;
        let tail = read_tail(&file, cut_at)
            .await
            .map_err(io_err("read tail"))?;
        meta.first_append_ms = (!meta.is_empty()).then(rt::now_ms);
        let mut state = self.inner.state.borrow_mut();
        state.closed_indexes.retain(|(cached, _)| *cached != base);
        state.segments.insert(base, meta);
        state.active = ActiveSegment {
            file: Rc::new(file),
            base_offset: base,
            tail,
            index,
        };
        Ok(())
    }

    /// DeleteRecords: moves the log start to `offset` (`<= log_end`), persists it, and deletes
    /// the segments wholly below it. Moving backwards is a no-op.
    pub async fn advance_log_start(&self, offset: i64) -> Result<(), LogError> {
        let io = self.inner.io_lock.acquire().await;
        let doomed = self.advance_log_start_locked(offset).await?;
        drop(io);
        self.remove_detached_segments(&doomed).await
    }

    /// Unlinks segments already dropped from the map. Runs without `io_lock`: appends proceed
    /// meanwhile, and readers of these offsets already get `OffsetOutOfRange`.
    async fn remove_detached_segments(&self, doomed: &[i64]) -> Result<(), LogError> {
        for base in doomed {
            remove_segment_files(&self.inner.dir, *base).await?;
            rt::yield_now().await;
        }
        Ok(())
    }

    /// Moves the log start, persists it and detaches the segments wholly below it; returns
    /// their base offsets for the caller to unlink after releasing `io_lock` (which it holds).
    async fn advance_log_start_locked(&self, offset: i64) -> Result<Vec<i64>, LogError> {
        let roll_first = {
            let state = self.inner.state.borrow();
            self.inner.check_usable(&state)?;
            if offset > state.visible_end {
                return Err(state.out_of_range(offset));
            }
            if offset <= state.log_start {
                return Ok(Vec::new());
            }
            offset == state.visible_end && !state.active_meta().is_empty()
        };
        if roll_first {
            roll(&self.inner, offset)
                .await
                .map_err(|f: Failure| f.to_error())?;
        }
        let (checkpoint, doomed) = {
            let mut state = self.inner.state.borrow_mut();
            state.log_start = offset;
            state.generation += 1;
            if let Some(pos) = state.epochs.iter().rposition(|(_, start)| *start <= offset) {
                state.epochs.drain(..pos);
                state.epochs[0].1 = offset.max(state.epochs[0].1);
            }
            state.cache.drop_below(offset);
            let active = state.active.base_offset;
            let doomed: Vec<i64> = state
                .segments
                .values()
                .filter(|meta| meta.base_offset != active && meta.end_offset <= offset)
                .map(|meta| meta.base_offset)
                .collect();
            (state.checkpoint(), doomed)
        };
        checkpoint
            .store(&self.inner.dir)
            .await
            .map_err(|err| LogError::io("write checkpoint", self.inner.dir.clone(), err))?;
        {
            let mut state = self.inner.state.borrow_mut();
            for base in &doomed {
                state.segments.remove(base);
                state.closed_indexes.retain(|(cached, _)| cached != base);
            }
        }
        Ok(doomed)
    }

    /// Deletes whole segments older than `retention.ms` (by their newest timestamp) or beyond
    /// `retention.bytes`, oldest first. Returns how many segments were deleted.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        let io = self.inner.io_lock.acquire().await;
        let Some(start) = self.retention_cut(now_ms, i64::MAX)? else {
            return Ok(0);
        };
        let doomed = self.advance_log_start_locked(start).await?;
        drop(io);
        self.remove_detached_segments(&doomed).await?;
        Ok(doomed.len())
    }

    /// Where retention would move the log start now: the end of the newest segment that is
    /// past `retention.ms` or beyond `retention.bytes` (every older one is too), but not
    /// past `limit` (a replica keeps what is not yet committed). `None`: nothing to delete.
    /// A segment end is always a batch boundary.
    pub fn retention_cut(&self, now_ms: i64, limit: i64) -> Result<Option<i64>, LogError> {
        let state = self.inner.state.borrow();
        self.inner.check_usable(&state)?;
        let config = &state.config;
        let mut remaining: i64 = state.segments.values().map(|m| m.size_bytes as i64).sum();
        let mut new_start = None;
        for meta in state.segments.values() {
            if meta.is_empty() || meta.end_offset > limit {
                break;
            }
            let expired = config.retention_ms >= 0
                && meta.max_timestamp < now_ms.saturating_sub(config.retention_ms);
            let is_active = meta.base_offset == state.active.base_offset;
            let oversize = !is_active
                && config.retention_bytes >= 0
                && remaining - meta.size_bytes as i64 >= config.retention_bytes;
            if !(expired || oversize) {
                break;
            }
            remaining -= meta.size_bytes as i64;
            new_start = Some(meta.end_offset);
        }
        Ok(new_start.filter(|start| *start > state.log_start))
    }

    /// Writes everything queued, makes it durable, and refuses further use.
    pub async fn close(&self) -> Result<(), LogError> {
        let _io = self.inner.io_lock.acquire().await;
        let (file, end, usable) = {
            let state = self.inner.state.borrow();
            if state.closed {
                return Ok(());
            }
            let usable = self.inner.check_usable(&state);
            (state.active.file.clone(), state.visible_end, usable)
        };
        let synced = match usable {
            Ok(()) => file
                .fdatasync()
                .await
                .map_err(|err| LogError::io("fdatasync", file.path(), err)),
            Err(err) => Err(err),
        };
        let mut state = self.inner.state.borrow_mut();
        if synced.is_ok() {
            state.durable_end = state.durable_end.max(end);
        }
        state.closed = true;
        abort_queued(&self.inner, &mut state, "log closed");
        state.cache.clear();
        state.closed_indexes.clear();
        synced
    }

    /// DeleteTopics: closes the log and removes its directory.
    pub async fn delete(&self) -> Result<(), LogError> {
        if let Err(err) = self.close().await {
            tracing::warn!(dir = %self.inner.dir.display(), "closing a log being deleted: {err}");
        }
        rt::remove_dir_all(&self.inner.dir)
            .map_err(|err| LogError::io("remove log directory", self.inner.dir.clone(), err))
    }
}

/// Fails queued appends and durability waiters beyond the written end.
pub(super) fn abort_queued(inner: &Inner, state: &mut super::State, reason: &str) {
    for append in state.pending.drain(..) {
        let base_offset = append.batches.first().map_or(-1, |b| b.base_offset);
        append.done.send(Err(LogError::AppendAborted {
            base_offset,
            reason: reason.to_owned(),
        }));
    }
    state.next_offset = state.visible_end;
    abort_unwritten_waiters(&inner.dir, state, reason);
}

pub(super) async fn remove_segment_files(dir: &std::path::Path, base: i64) -> Result<(), LogError> {
    for path in [
        segment::log_path(dir, base),
        segment::index_path(dir, base),
        segment::time_index_path(dir, base),
    ] {
        rt::remove_file(&path)
            .await
            .map_err(|err| LogError::io("remove segment file", path.clone(), err))?;
    }
    rt::sync_dir(dir)
        .await
        .map_err(|err| LogError::io("fsync directory", dir.to_owned(), err))
}
