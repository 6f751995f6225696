//! Crash-safe moves of a replica's log start. The Raft index of the first kept batch lives
//! in the state file's anchor, so the anchor and the log start must move together:
//!
//! - **Retention** (any replica, only below its commit): the anchor is written first, then
//!   the log start moved. A crash in between leaves the log starting before the anchor,
//!   and [`finish_interrupted_moves`] moves it on open.
//! - **Snapshot install** (a follower below the leader's log start): the target anchor is
//!   written to [`RESET_FILE`] first, an intent record; then the state file, the log
//!   restart (`PartitionLog::restart_at`), the emptying of the sidecar (Raft's own
//!   entries, `replica_storage_sidecar`) and the intent's removal. Open redoes every step
//!   while the intent exists, so a crash anywhere leaves either the old log or the new one.
//!
//! Retention also drops the sidecar's entries below the new anchor, last: open ignores
//! those anyway, so a crash before it loses nothing.

use std::path::Path;

use ringlet_io::log::PartitionLog;
use ringlet_io::LogError;
use ringlet_raft::HardState;

use super::replica_storage::{Anchor, ReplicaStorage, STATE_FILE};
use super::replica_storage_io::{load_state, load_state_file, remove_file_durably, write_state};
use super::replica_storage_sidecar as sidecar;

/// The anchor a snapshot install is restarting the log at (present only during one).
pub const RESET_FILE: &str = "raft_reset";

impl ReplicaStorage {
    /// Retention: moves the log start of `log` to `anchor` (from
    /// [`ReplicaStorage::anchor_at_offset`]), the anchor first. Then call
    /// [`ReplicaStorage::compact_to`].
    pub async fn move_log_start(
        log: &PartitionLog,
        state_dir: &Path,
        anchor: Anchor,
    ) -> Result<(), LogError> {
        let (_, hs) = load_state(state_dir)?;
        write_state(
            state_dir,
            STATE_FILE,
            anchor,
            at_least_committed(hs, anchor),
        )?;
        log.advance_log_start(anchor.base_offset).await?;
        sidecar::drop_below(state_dir, anchor.first_index)
    }

    /// Snapshot install: restarts `log` empty at `anchor`. Durable when it returns; then
    /// `install_snapshot` updates the view.
    pub async fn restart_log(
        log: &PartitionLog,
        state_dir: &Path,
        anchor: Anchor,
    ) -> Result<(), LogError> {
        let (_, hs) = load_state(state_dir)?;
        let hs = at_least_committed(hs, anchor);
        write_state(state_dir, RESET_FILE, anchor, hs)?;
        finish_restart(log, state_dir, anchor, hs).await
    }
}

/// Completes a move a crash interrupted (a no-op otherwise) and returns the replica's state
/// as it then is. Called by `ReplicaStorage::open`.
pub(super) async fn finish_interrupted_moves(
    log: &PartitionLog,
    state_dir: &Path,
) -> Result<(Anchor, HardState), LogError> {
    if let Some((anchor, hs)) = load_state_file(state_dir, RESET_FILE)? {
        tracing::info!(dir = %log.dir().display(), offset = anchor.base_offset, "finishing an interrupted log restart");
        finish_restart(log, state_dir, anchor, hs).await?;
        return Ok((anchor, hs));
    }
    let (anchor, hs) = load_state(state_dir)?;
    if log.log_start_offset() < anchor.base_offset {
        tracing::info!(dir = %log.dir().display(), offset = anchor.base_offset, "finishing an interrupted log-start move");
        log.advance_log_start(anchor.base_offset).await?;
    }
    Ok((anchor, hs))
}

async fn finish_restart(
    log: &PartitionLog,
    state_dir: &Path,
    anchor: Anchor,
    hs: HardState,
) -> Result<(), LogError> {
    write_state(state_dir, STATE_FILE, anchor, hs)?;
    log.restart_at(anchor.base_offset).await?;
    sidecar::store(state_dir, &[])?;
    remove_file_durably(state_dir, RESET_FILE)
}

/// Everything before the log start is committed: the commit hint never points below it.
fn at_least_committed(hs: HardState, anchor: Anchor) -> HardState {
    HardState {
        commit: hs.commit.max(anchor.first_index - 1),
        ..hs
    }
}
