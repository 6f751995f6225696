//! A replica's producer state across writes of its real log: written batches are added at
//! the offsets the log gave them, and a write that replaces a suffix replays the state from
//! the log (and drops a snapshot that may describe the replaced batches).

use std::rc::Rc;

use ringlet_io::log::{LogConfig, PartitionLog};
use ringlet_raft::{Entry, Storage};

use super::ProducerWrites;
use crate::partition::replica_storage::ReplicaStorage;
use crate::partition::replica_storage_log_tests::{err, on_shard};
use crate::partition::replica_storage_tests::producer_batch;
use crate::partition::Partition;

/// Plans, writes and applies `entries` as the replica driver does.
async fn persist(
    partition: &Partition,
    storage: &mut ReplicaStorage,
    entries: &[Entry],
) -> Result<(), String> {
    let writes = storage.write_plan(entries).map_err(err)?;
    let replacing = writes.cuts(partition.log());
    let batches = writes.written_batches().producer_batches;
    let producers = ProducerWrites::before(partition, replacing, batches).map_err(err)?;
    ReplicaStorage::write(partition.log(), partition.log().dir(), writes)
        .await
        .map_err(err)?;
    producers.after(partition).await.map_err(err)?;
    storage.append(entries).map_err(err)
}

fn last_seq(partition: &Partition, producer_id: i64) -> Option<i32> {
    let states = partition.producers().borrow();
    states.entry(producer_id).map(|entry| entry.last_seq())
}

#[test]
fn written_batches_count_and_a_replaced_suffix_is_replayed_away() {
    on_shard(|| async {
        let dir = tempfile::tempdir().map_err(err)?;
        let log = PartitionLog::open(dir.path(), LogConfig::default())
            .await
            .map_err(err)?;
        let mut storage = ReplicaStorage::open(&log, dir.path(), &[1, 2, 3])
            .await
            .map_err(err)?;
        let partition = Partition::new("t".into(), 0, Rc::clone(&log), false);
        partition.set_replicated(1);

        let first = Entry::normal(1, 1, producer_batch(2, 1, 7, 0));
        let second = Entry::normal(1, 2, producer_batch(3, 2, 7, 2));
        persist(&partition, &mut storage, &[first, second]).await?;
        assert_eq!(last_seq(&partition, 7), Some(4));
        let states = partition.producers().borrow().clone();
        let batches = &states.entry(7).expect("producer 7").batches;
        let offsets: Vec<(i64, i64)> = batches
            .iter()
            .map(|b| (b.first_offset, b.last_offset))
            .collect();
        assert_eq!(
            offsets,
            vec![(0, 1), (2, 4)],
            "the offsets the log gave them"
        );
        partition.store_producer_snapshot();
        let snapshot = dir.path().join("producer_state.snapshot");
        assert!(snapshot.exists(), "a snapshot to be dropped");

        // A new leader's entry replaces index 2: producer 7's second batch is gone.
        let replacement = Entry::normal(2, 2, producer_batch(1, 3, 8, 0));
        persist(&partition, &mut storage, &[replacement]).await?;
        assert_eq!(last_seq(&partition, 7), Some(1));
        assert_eq!(last_seq(&partition, 8), Some(0));
        assert!(!snapshot.exists(), "the snapshot of the replaced suffix");
        assert_eq!(partition.producers_end(), Some(log.next_offset()));

        // While a replay is pending (a cut in flight), no snapshot of the old state is taken.
        partition.forget_producer_snapshot().map_err(err)?;
        partition.store_producer_snapshot();
        assert!(!snapshot.exists(), "a snapshot taken during a cut");
        partition.rebuild_producers().await.map_err(err)?;
        partition.store_producer_snapshot();
        assert!(snapshot.exists(), "a snapshot once the state is replayed");
        log.close().await.map_err(err)
    });
}
