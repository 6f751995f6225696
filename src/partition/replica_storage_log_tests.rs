//! [`ReplicaStorage`] against a real `PartitionLog`: writes, reopen, suffix rewrite,
//! read-back. The log needs a glommio executor, which the broker crate reaches only
//! through `ringlet_shard`'s runtime (one shard here).

use std::future::Future;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use ringlet_io::log::{LogConfig, PartitionLog};
use ringlet_raft::{ConfChange, Entry, HardState, Storage};
use ringlet_shard::runtime::{Runtime, RuntimeConfig};

use super::replica_storage::{BatchMeta, ReplicaStorage};
use super::replica_storage_tests::{conf, data};

struct NoState;

/// Runs `test` on a one-shard runtime and fails the test with its error.
pub(super) fn on_shard<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + 'static,
{
    ringlet_shard::memlock::raise_memlock_limit(1).expect("memlock");
    let config = RuntimeConfig {
        shards: 1,
        inbox_capacity: 4,
        thread_name: "replica-storage-test".into(),
        io_memory_bytes: 256 * 1024,
    };
    let runtime = Runtime::start(config, |_| async { Ok::<_, String>(Rc::new(NoState)) })
        .expect("runtime starts");
    let result = runtime
        .handle()
        .invoke_on_blocking(0, move |_: Rc<NoState>| test())
        .expect("shard answers");
    runtime.stop().expect("runtime stops");
    result.expect("test on the shard");
}

pub(super) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The driver's order for one Ready: write, then update the view.
async fn persist(
    log: &PartitionLog,
    storage: &mut ReplicaStorage,
    entries: &[Entry],
) -> Result<(), String> {
    ReplicaStorage::write_entries(log, log.dir(), storage, entries)
        .await
        .map_err(err)?;
    storage.append(entries).map_err(err)
}

fn metas(s: &ReplicaStorage) -> Vec<BatchMeta> {
    (s.first_index()..=s.last_index())
        .filter_map(|i| s.batch_meta(i))
        .collect()
}

/// The bytes of a batch that the log does not stamp (everything but offset and epoch).
fn unstamped(batch: &Bytes) -> (Bytes, Bytes) {
    (batch.slice(8..12), batch.slice(16..))
}

async fn reopen(dir: &Path, log: Rc<PartitionLog>) -> Result<ReplicaStorage, String> {
    log.close().await.map_err(err)?;
    let log = PartitionLog::open(dir, LogConfig::default())
        .await
        .map_err(err)?;
    ReplicaStorage::open(&log, dir, &[1, 2, 3])
        .await
        .map_err(err)
}

#[test]
fn written_entries_reopen_to_the_same_view() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .map_err(err)?;
        let mut s = ReplicaStorage::open(&log, &dir, &[1, 2, 3])
            .await
            .map_err(err)?;
        let noop = Entry::normal(1, 1, Bytes::new());
        let first = [noop, data(1, 2, 3), conf(1, 3, ConfChange::AddLearner(4))];
        persist(&log, &mut s, &first).await?;
        persist(&log, &mut s, &[data(2, 4, 2), data(3, 5, 1)]).await?;
        assert_eq!(
            log.log_end_offset(),
            6,
            "only the data batches are in the log"
        );
        assert_eq!(log.log_end_offset(), s.next_offset());
        assert_eq!(log.durable_end_offset(), s.next_offset());
        let hs = HardState {
            term: 3,
            vote: Some(1),
            commit: 4,
        };
        ReplicaStorage::write_hard_state(&dir, hs)
            .await
            .map_err(err)?;

        let before = s.entries(1, 6, u64::MAX).map_err(err)?;
        let again = reopen(&dir, log).await?;
        assert_eq!(metas(&again), metas(&s));
        assert_eq!(again.hard_state(), hs);
        assert_eq!(again.conf_changes(1, 6).map_err(err)?.len(), 1);
        let after = again.entries(1, 6, u64::MAX).map_err(err)?;
        for (b, a) in before.iter().zip(&after) {
            assert_eq!((a.index, a.term, a.kind), (b.index, b.term, b.kind));
            if b.data.is_empty() || b.kind == ringlet_raft::EntryKind::ConfChange {
                assert_eq!(a.data, b.data);
            } else {
                assert_eq!(unstamped(&a.data), unstamped(&b.data));
            }
        }
        Ok(())
    });
}

#[test]
fn a_replaced_suffix_truncates_the_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .map_err(err)?;
        let mut s = ReplicaStorage::open(&log, &dir, &[1, 2, 3])
            .await
            .map_err(err)?;
        let old: Vec<Entry> = (1..=4).map(|i| data(1, i, 3)).collect();
        persist(&log, &mut s, &old).await?;
        assert_eq!(log.log_end_offset(), 12);
        // A new leader of term 2 had other batches from index 3 on.
        let new = [data(2, 3, 1), data(2, 4, 1), data(2, 5, 1)];
        let writes = s.write_plan(&new).map_err(err)?;
        let infos = ReplicaStorage::write(&log, &dir, writes)
            .await
            .map_err(err)?;
        s.append(&new).map_err(err)?;
        assert_eq!(infos.len(), 1, "one append for one term");
        assert_eq!((infos[0].base_offset, infos[0].last_offset), (6, 8));
        assert_eq!(log.log_end_offset(), 9);
        assert_eq!(log.end_offset_for_epoch(1), Some((1, 6)));
        let read = log.read(6, 1 << 20).await.map_err(err)?;
        let header = ringlet_protocol::record_batch::parse_header(&read.data).map_err(err)?;
        assert_eq!(
            (header.partition_leader_epoch, header.records_count),
            (2, 1)
        );
        let again = reopen(&dir, log).await?;
        assert_eq!(metas(&again), metas(&s));
        Ok(())
    });
}

#[test]
fn read_back_returns_the_stored_batches() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .map_err(err)?;
        let mut s = ReplicaStorage::open(&log, &dir, &[1]).await.map_err(err)?;
        let entries: Vec<Entry> = (1..=5).map(|i| data(1, i, i as i32)).collect();
        persist(&log, &mut s, &entries).await?;
        s.set_cache_bytes_max(0);
        assert!(s.entries(1, 6, u64::MAX).is_err());
        let (lo, hi) = s.take_missing().ok_or("a missing range")?;
        assert_eq!((lo, hi), (1, 6));
        let (offset, count) = s.read_back_plan(lo, hi).ok_or("a plan")?;
        let loaded = ReplicaStorage::read_back(&log, offset, count, 1 << 20)
            .await
            .map_err(err)?;
        assert_eq!(loaded.len(), 5);
        s.set_cache_bytes_max(1 << 20);
        s.insert_loaded(lo, loaded);
        let served = s.entries(1, 6, u64::MAX).map_err(err)?;
        for (a, b) in served.iter().zip(&entries) {
            assert_eq!(unstamped(&a.data), unstamped(&b.data));
        }
        // A byte budget smaller than one batch still reads one.
        let (offset, count) = s.read_back_plan(2, 6).ok_or("a plan")?;
        let one = ReplicaStorage::read_back(&log, offset, count, 1)
            .await
            .map_err(err)?;
        assert_eq!(one.len(), 1);
        Ok(())
    });
}

fn noop(term: u64, index: u64) -> Entry {
    Entry::normal(term, index, Bytes::new())
}

#[test]
fn raft_entries_are_merged_back_between_the_batches_on_open() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .map_err(err)?;
        let mut s = ReplicaStorage::open(&log, &dir, &[1, 2, 3])
            .await
            .map_err(err)?;
        persist(&log, &mut s, &[noop(1, 1), data(1, 2, 2), noop(2, 3)]).await?;
        persist(&log, &mut s, &[data(2, 4, 1)]).await?;
        // A new leader (term 3) replaces from index 3: the term-2 no-op goes, with no
        // Kafka batch of its own to cut, and the batch after it is cut from the log.
        persist(&log, &mut s, &[noop(3, 3), data(3, 4, 3)]).await?;
        assert_eq!(log.log_end_offset(), 5);
        let again = reopen(&dir, log).await?;
        assert_eq!(metas(&again), metas(&s));
        assert_eq!(again.term(3).map_err(err)?, 3);
        assert_eq!(again.batch_offsets_of(4), Some((2, 4)));
        Ok(())
    });
}

#[test]
fn raft_entries_past_the_recovered_log_end_are_dropped() {
    use super::replica_storage_sidecar::{load, store, RaftOnlyEntry};
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .map_err(err)?;
        let mut s = ReplicaStorage::open(&log, &dir, &[1, 2, 3])
            .await
            .map_err(err)?;
        persist(&log, &mut s, &[noop(1, 1), data(1, 2, 3)]).await?;
        // A crash after the sidecar of the next write was stored (the no-op at the log
        // end, kept) and of one whose batches before its no-op were lost (dropped).
        let at = |index, term, position| RaftOnlyEntry {
            index,
            term,
            position,
            kind: ringlet_raft::EntryKind::Normal,
            data: Bytes::new(),
        };
        let stored = vec![at(1, 1, 0), at(3, 2, 3), at(5, 3, 9)];
        store(&dir, &stored).map_err(err)?;
        let again = reopen(&dir, log).await?;
        assert_eq!((again.last_index(), again.next_offset()), (3, 3));
        assert_eq!(again.term(3).map_err(err)?, 2);
        assert_eq!(load(&dir).map_err(err)?, stored[..2].to_vec(), "rewritten");

        // A sidecar that does not fit the log is refused, not trusted.
        store(&dir, &[at(2, 1, 0)]).map_err(err)?;
        let log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .map_err(err)?;
        assert!(ReplicaStorage::open(&log, &dir, &[1, 2, 3]).await.is_err());
        Ok(())
    });
}

#[test]
fn read_back_skips_raft_entries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .map_err(err)?;
        let mut s = ReplicaStorage::open(&log, &dir, &[1]).await.map_err(err)?;
        let entries = [data(1, 1, 2), noop(2, 2), data(2, 3, 2), data(2, 4, 1)];
        persist(&log, &mut s, &entries).await?;
        s.set_cache_bytes_max(0);
        assert!(s.entries(1, 5, u64::MAX).is_err());
        let (lo, hi) = s.take_missing().ok_or("a missing range")?;
        let (offset, count) = s.read_back_plan(lo, hi).ok_or("a plan")?;
        assert_eq!(
            (offset, count),
            (0, 3),
            "three batches in the log for four entries"
        );
        let loaded = ReplicaStorage::read_back(&log, offset, count, 1 << 20)
            .await
            .map_err(err)?;
        s.set_cache_bytes_max(1 << 20);
        s.insert_loaded(lo, loaded);
        let served = s.entries(1, 5, u64::MAX).map_err(err)?;
        assert_eq!(served.len(), 4);
        for (a, b) in served.iter().zip(&entries) {
            assert_eq!(a.index, b.index);
            if b.data.is_empty() {
                assert!(a.data.is_empty());
            } else {
                assert_eq!(unstamped(&a.data), unstamped(&b.data));
            }
        }
        Ok(())
    });
}

#[test]
fn a_failed_write_of_raft_entries_leaves_no_stale_entry_behind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    on_shard(move || async move {
        let log = PartitionLog::open(&dir, LogConfig::default())
            .await
            .map_err(err)?;
        let mut s = ReplicaStorage::open(&log, &dir, &[1, 2, 3])
            .await
            .map_err(err)?;
        persist(&log, &mut s, &[data(1, 1, 2)]).await?;
        // The no-op's sidecar is stored, then the write "fails": the view never gets it.
        let writes = s.write_plan(&[noop(2, 2)]).map_err(err)?;
        ReplicaStorage::write(&log, &dir, writes)
            .await
            .map_err(err)?;
        // Another leader's batch takes index 2 instead; no Raft entry of its own.
        persist(&log, &mut s, &[data(3, 2, 1)]).await?;
        let again = reopen(&dir, log).await?;
        assert_eq!(metas(&again), metas(&s));
        assert_eq!(again.term(2).map_err(err)?, 3);
        Ok(())
    });
}
