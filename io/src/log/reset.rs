//! Restarting a log empty at a later offset: a Raft follower that was behind the leader's
//! log start installs the leader's position instead of the batches retention deleted.
//!
//! Crash safety comes from the order: the checkpoint (log start = the new offset) is made
//! durable first. From then on, whatever the crash leaves of the old segments, `open`
//! finds the log start past the recovered data and restarts the log empty there; a caller
//! that needs the reset to be complete even if an old segment starting at exactly that
//! offset survived (see `ringlet`'s replica state) simply calls [`PartitionLog::restart_at`]
//! again.

use super::admin::{abort_queued, remove_segment_files};
use super::segment::{self, SegmentIndex, SegmentMeta};
use super::writer::create_empty_segment;
use super::{ActiveSegment, LogError, PartitionLog};
use crate::rt;
use std::rc::Rc;

impl PartitionLog {
    /// Drops every batch and restarts the log, empty, at `offset` (which may be past the
    /// current end, or anywhere at or after the current log start). Appends still queued
    /// are aborted. Durable when it returns.
    pub async fn restart_at(&self, offset: i64) -> Result<(), LogError> {
        let _io = self.inner.io_lock.acquire().await;
        let (checkpoint, doomed) = {
            let mut state = self.inner.state.borrow_mut();
            self.inner.check_usable(&state)?;
            if offset < state.log_start {
                return Err(state.out_of_range(offset));
            }
            abort_queued(&self.inner, &mut state, "log restarted at a later offset");
            state.log_start = offset;
            state.epochs.clear();
            let doomed: Vec<i64> = state.segments.keys().copied().collect();
            (state.checkpoint(), doomed)
        };
        checkpoint
            .store(&self.inner.dir)
            .await
            .map_err(|err| LogError::io("write checkpoint", self.inner.dir.clone(), err))?;
        for base in doomed {
            remove_segment_files(&self.inner.dir, base).await?;
        }
        let path = segment::log_path(&self.inner.dir, offset);
        let file = create_empty_segment(&path)
            .await
            .map_err(|f| f.to_error())?;
        rt::sync_dir(&self.inner.dir)
            .await
            .map_err(|err| LogError::io("fsync directory", self.inner.dir.clone(), err))?;
        let mut state = self.inner.state.borrow_mut();
        state.segments.clear();
        state.segments.insert(offset, SegmentMeta::empty(offset));
        state.closed_indexes.clear();
        state.active = ActiveSegment {
            file: Rc::new(file),
            base_offset: offset,
            tail: Vec::new(),
            index: SegmentIndex::default(),
        };
        state.generation += 1;
        state.visible_end = offset;
        state.next_offset = offset;
        state.durable_end = offset;
        state.cache.clear();
        Ok(())
    }
}
