//! Log-start moves of a [`ReplicaStorage`] against a real `PartitionLog`: retention (anchor
//! and log start together), snapshot install (restart empty at the leader's log start), and
//! the crash windows of both, recreated by leaving the files as a crash would.

use std::path::Path;
use std::rc::Rc;

use ringlet_io::log::{LogConfig, PartitionLog};
use ringlet_raft::{Entry, HardState, RaftError, Storage};

use super::replica_storage::{Anchor, ReplicaStorage, STATE_FILE};
use super::replica_storage_io::write_state;
use super::replica_storage_log_tests::{err, on_shard};
use super::replica_storage_moves::RESET_FILE;
use super::replica_storage_tests::data;

const VOTERS: [u64; 3] = [1, 2, 3];

async fn open(dir: &Path) -> Result<(Rc<PartitionLog>, ReplicaStorage), String> {
    let log = PartitionLog::open(dir, LogConfig::default())
        .await
        .map_err(err)?;
    let storage = ReplicaStorage::open(&log, dir, &VOTERS)
        .await
        .map_err(err)?;
    Ok((log, storage))
}

/// Five entries of three records each (offsets 0..15), all committed.
async fn five_committed(dir: &Path) -> Result<(Rc<PartitionLog>, ReplicaStorage), String> {
    let (log, mut s) = open(dir).await?;
    let entries: Vec<Entry> = (1..=5).map(|i| data(1, i, 3)).collect();
    ReplicaStorage::write_entries(&log, dir, &s, &entries)
        .await
        .map_err(err)?;
    s.append(&entries).map_err(err)?;
    let hs = HardState {
        term: 1,
        vote: Some(1),
        commit: 5,
    };
    ReplicaStorage::write_hard_state(dir, hs)
        .await
        .map_err(err)?;
    s.set_hard_state(hs).map_err(err)?;
    Ok((log, s))
}

#[test]
fn retention_moves_the_anchor_with_the_log_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let (log, mut s) = five_committed(&dir).await?;
        assert_eq!(s.anchor_at_offset(7), None, "not a batch boundary");
        assert_eq!(s.anchor_at_offset(0), None, "not past the start");
        let anchor = s.anchor_at_offset(6).ok_or("an anchor at offset 6")?;
        assert_eq!(
            anchor,
            Anchor {
                first_index: 3,
                base_offset: 6,
                prev_term: 1
            }
        );
        ReplicaStorage::move_log_start(&log, &dir, anchor)
            .await
            .map_err(err)?;
        s.compact_to(anchor);
        assert_eq!(log.log_start_offset(), 6);
        assert_eq!((s.first_index(), s.last_index()), (3, 5));
        assert_eq!(s.term(2).map_err(err)?, 1);
        assert!(matches!(
            s.entries(2, 4, u64::MAX),
            Err(RaftError::Compacted { .. })
        ));
        // The leader's snapshot names the new start.
        let snapshot = s.snapshot();
        assert_eq!((snapshot.meta.index, snapshot.meta.term), (2, 1));
        assert_eq!(ReplicaStorage::anchor_of_snapshot(&snapshot), Ok(anchor));

        log.close().await.map_err(err)?;
        let (_, again) = open(&dir).await?;
        assert_eq!(again.anchor(), anchor);
        assert_eq!((again.first_index(), again.last_index()), (3, 5));
        assert_eq!(again.next_offset(), 15);
        Ok(())
    });
}

#[test]
fn a_crash_between_anchor_and_log_start_is_finished_on_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let (log, s) = five_committed(&dir).await?;
        let anchor = s.anchor_at_offset(9).ok_or("an anchor at offset 9")?;
        // The anchor is durable, the log start was not moved yet.
        write_state(&dir, STATE_FILE, anchor, s.hard_state()).map_err(err)?;
        log.close().await.map_err(err)?;
        let (log, again) = open(&dir).await?;
        assert_eq!(log.log_start_offset(), 9);
        assert_eq!((again.first_index(), again.last_index()), (4, 5));
        Ok(())
    });
}

#[test]
fn a_snapshot_restarts_the_log_empty_at_the_leaders_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let (log, mut s) = five_committed(&dir).await?;
        // The leader's log starts at index 10, offset 40, after an entry of term 2.
        let leader = Anchor {
            first_index: 10,
            base_offset: 40,
            prev_term: 2,
        };
        let snapshot = ReplicaStorage::new(leader, HardState::default(), &VOTERS).snapshot();
        ReplicaStorage::restart_log(&log, &dir, leader)
            .await
            .map_err(err)?;
        s.install_snapshot(snapshot).map_err(err)?;
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (40, 40));
        assert_eq!((s.first_index(), s.last_index()), (10, 9));
        assert_eq!(s.term(9).map_err(err)?, 2);
        assert!(s.hard_state().commit >= 9);
        assert!(!dir.join(RESET_FILE).exists());
        // Replication goes on from there.
        let next = [data(3, 10, 2)];
        ReplicaStorage::write_entries(&log, &dir, &s, &next)
            .await
            .map_err(err)?;
        s.append(&next).map_err(err)?;
        assert_eq!(s.batch_offsets_of(10), Some((40, 41)));

        log.close().await.map_err(err)?;
        let (_, again) = open(&dir).await?;
        assert_eq!(again.anchor(), leader);
        assert_eq!(again.batch_offsets_of(10), Some((40, 41)));
        Ok(())
    });
}

#[test]
fn an_interrupted_restart_is_redone_on_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let (log, s) = five_committed(&dir).await?;
        // The intent is durable; nothing else happened (the old log and state are intact).
        let target = Anchor {
            first_index: 8,
            base_offset: 30,
            prev_term: 1,
        };
        write_state(&dir, RESET_FILE, target, s.hard_state()).map_err(err)?;
        log.close().await.map_err(err)?;
        let (log, again) = open(&dir).await?;
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (30, 30));
        assert_eq!(again.anchor(), target);
        assert_eq!((again.first_index(), again.last_index()), (8, 7));
        assert!(!dir.join(RESET_FILE).exists());
        Ok(())
    });
}
