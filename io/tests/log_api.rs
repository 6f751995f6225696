//! The partition log's API on real files: append, read (hot and cold), durability, rolls,
//! indexes, timestamps, truncation, log start, retention, epochs.

mod common;

use bytes::BytesMut;
use common::{batch, batches_of, read_all, run, stamped};
use ringlet_io::{LogConfig, LogError, PartitionLog, RetentionRunner};
use std::rc::Rc;

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 1024,
        cache_bytes_max: 16 << 10,
        ..LogConfig::default()
    }
}

#[test]
fn append_assigns_dense_offsets_and_reads_back_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    run(async move {
        let log = PartitionLog::open(&path, small_config())
            .await
            .expect("open");
        let mut expected = Vec::new();
        for i in 0..40u64 {
            let records = 1 + (i % 5) as usize;
            let raw = batch(records, 300, 1_000 + i as i64, i);
            let info = log.append(raw.clone(), 3, None).await.expect("append");
            assert_eq!(info.last_offset - info.base_offset, records as i64 - 1);
            expected.push(stamped(raw, info.base_offset, 3));
        }
        assert_eq!(log.log_start_offset(), 0);
        assert_eq!(
            log.log_end_offset(),
            expected
                .iter()
                .map(|b| batches_of(b)[0].1 - batches_of(b)[0].0 + 1)
                .sum::<i64>()
        );
        let all = read_all(&log, 0).await;
        assert!(
            all == expected.concat(),
            "cold+hot reads return the stored bytes"
        );
        // Every batch boundary and every offset inside a batch starts at the right batch.
        for stored in &expected {
            let (base, last, bytes) = batches_of(stored).remove(0);
            for offset in [base, last] {
                let read = log.read(offset, 1).await.expect("read one");
                assert_eq!(read.first_offset, base);
                assert!(
                    read.data == bytes,
                    "KIP-74: one whole batch even past max_bytes"
                );
            }
        }
        let end = log.log_end_offset();
        let empty = log.read(end, 1000).await.expect("read at end");
        assert!(empty.data.is_empty());
        assert!(matches!(
            log.read(end + 1, 10).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert!(log.segment_count() > 1, "16 KiB segments must have rolled");
        log.close().await.expect("close");
    });
}

#[test]
fn several_batches_in_one_append_and_all_or_nothing_validation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    run(async move {
        let log = PartitionLog::open(&path, small_config())
            .await
            .expect("open");
        let mut two = batch(3, 50, 10, 1);
        two.extend_from_slice(&batch(2, 50, 20, 2));
        let info = log.append(two, 0, None).await.expect("append two batches");
        assert_eq!((info.base_offset, info.last_offset), (0, 4));
        assert_eq!(info.max_timestamp, 21);

        let mut good_then_bad = batch(1, 50, 30, 3);
        let mut bad = batch(1, 50, 31, 4);
        let at = bad.len() - 1;
        bad[at] ^= 0xff;
        good_then_bad.extend_from_slice(&bad);
        let err = log
            .append(good_then_bad, 0, None)
            .await
            .expect_err("corrupt batch");
        assert!(
            matches!(err, LogError::InvalidBatch { batch_index: 1, .. }),
            "{err}"
        );
        let mut truncated = batch(1, 50, 30, 3);
        truncated.truncate(truncated.len() - 3);
        assert!(matches!(
            log.append(truncated, 0, None).await,
            Err(LogError::InvalidBatch { .. })
        ));
        assert!(matches!(
            log.append(BytesMut::new(), 0, None).await,
            Err(LogError::EmptyAppend)
        ));
        assert_eq!(
            log.log_end_offset(),
            5,
            "rejected appends leave the log untouched"
        );
        let next = log
            .append(batch(1, 10, 40, 5), 0, None)
            .await
            .expect("append after rejects");
        assert_eq!(next.base_offset, 5);
    });
}

#[test]
fn concurrent_appends_get_offsets_in_call_order_and_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    run(async move {
        let log = PartitionLog::open(&path, LogConfig::default())
            .await
            .expect("open");
        let mut tasks = Vec::new();
        for i in 0..64u64 {
            let log = log.clone();
            let raw = batch(2, 100, i as i64, i);
            // Offsets are assigned at the append future's first poll, before any await;
            // spawned tasks are first polled in spawn order.
            tasks.push(glommio::spawn_local(async move {
                let info = log.append(raw, 0, None).await.expect("append");
                log.wait_durable(info.last_offset).await.expect("durable");
                info.base_offset
            }));
        }
        let mut bases = Vec::new();
        for task in tasks {
            bases.push(task.await);
        }
        let expected: Vec<i64> = (0..64).map(|i| i * 2).collect();
        assert_eq!(bases, expected, "offsets follow call order");
        assert!(log.durable_end_offset() >= 128);
        let stats = log.stats();
        assert!(
            stats.group_syncs < 64,
            "64 waiters must share fdatasyncs: {stats:?}"
        );
        assert!(
            stats.segment_writes < 64,
            "queued appends must share writes: {stats:?}"
        );
    });
}

#[test]
fn durable_data_survives_reopen_and_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    run(async move {
        let mut expected = Vec::new();
        {
            let log = PartitionLog::open(&path, small_config())
                .await
                .expect("open");
            for i in 0..60u64 {
                let raw = batch(2, 500, 5_000 + i as i64 * 10, i);
                let info = log.append(raw.clone(), 1, None).await.expect("append");
                expected.push(stamped(raw, info.base_offset, 1));
            }
            log.wait_durable(log.log_end_offset() - 1)
                .await
                .expect("durable");
            assert!(log.segment_count() >= 3);
        }
        // Remove one index file and corrupt another: both must be rebuilt.
        let mut index_files: Vec<_> = std::fs::read_dir(&path)
            .expect("ls")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "index" || x == "timeindex")
            })
            .collect();
        index_files.sort();
        assert!(index_files.len() >= 4, "rolled segments have index files");
        std::fs::remove_file(&index_files[0]).expect("rm index");
        std::fs::write(&index_files[3], b"garbage").expect("corrupt index");
        let log = PartitionLog::open(&path, small_config())
            .await
            .expect("reopen");
        assert_eq!(log.durable_end_offset(), log.log_end_offset());
        assert!(
            read_all(&log, 0).await == expected.concat(),
            "bytes differ after reopen"
        );
        assert!(index_files[0].exists(), "missing index rewritten on open");
        for stored in expected.iter().step_by(7) {
            let (base, _, bytes) = batches_of(stored).remove(0);
            let read = log.read(base, 1).await.expect("cold read by index");
            assert!(read.data == bytes, "cold read of {base} differs");
        }
    });
}

#[test]
fn timestamps_find_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    run(async move {
        let log = PartitionLog::open(&path, small_config())
            .await
            .expect("open");
        for i in 0..50i64 {
            // Each batch has 4 records at ts = 10_000 + 100*i + {0,1,2,3}.
            log.append(batch(4, 400, 10_000 + 100 * i, i as u64), 0, None)
                .await
                .expect("append");
        }
        assert_eq!(log.max_timestamp(), Some((10_000 + 100 * 49 + 3, 199)));
        for i in [0i64, 7, 23, 49] {
            let found = log
                .offset_for_timestamp(10_000 + 100 * i + 2)
                .await
                .expect("lookup");
            assert_eq!(
                found,
                Some((4 * i + 2, 10_000 + 100 * i + 2)),
                "exact record for batch {i}"
            );
            let between = log
                .offset_for_timestamp(10_000 + 100 * i + 50)
                .await
                .expect("lookup");
            let expect_next = (i < 49).then(|| (4 * (i + 1), 10_000 + 100 * (i + 1)));
            assert_eq!(between, expect_next);
        }
        assert_eq!(
            log.offset_for_timestamp(0).await.expect("lookup"),
            Some((0, 10_000))
        );
        let appended = log
            .append(batch(2, 10, 1, 99), 0, Some(77_000))
            .await
            .expect("append time");
        assert_eq!(appended.max_timestamp, 77_000);
        let read = log.read(appended.base_offset, 1).await.expect("read");
        let header = ringlet_protocol::record_batch::validate_batch(&read.data).expect("valid");
        assert_eq!(header.max_timestamp, 77_000);
    });
}

#[test]
fn truncate_suffix_drops_offsets_and_checks_boundaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    run(async move {
        let log = PartitionLog::open(&path, small_config())
            .await
            .expect("open");
        let mut bases = Vec::new();
        for i in 0..80u64 {
            let info = log
                .append(batch(3, 400, i as i64, i), (i / 20) as i32, None)
                .await
                .expect("append");
            bases.push(info.base_offset);
        }
        let segments_before = log.segment_count();
        assert!(matches!(
            log.truncate_suffix(bases[30] + 1).await,
            Err(LogError::NotBatchBoundary { .. })
        ));
        log.truncate_suffix(bases[30]).await.expect("truncate");
        assert_eq!(log.log_end_offset(), bases[30]);
        assert!(log.segment_count() < segments_before);
        assert_eq!(log.end_offset_for_epoch(1), Some((1, bases[30])));
        assert_eq!(
            log.end_offset_for_epoch(3),
            Some((1, bases[30])),
            "epochs 2, 3 were truncated away"
        );
        assert_eq!(log.end_offset_for_epoch(0), Some((0, bases[20])));
        let replacement = log
            .append(batch(1, 10, 5, 999), 5, None)
            .await
            .expect("append after truncate");
        assert_eq!(replacement.base_offset, bases[30]);
        log.wait_durable(replacement.last_offset)
            .await
            .expect("durable");
        drop(log);
        let log = PartitionLog::open(&path, small_config())
            .await
            .expect("reopen");
        assert_eq!(log.log_end_offset(), bases[30] + 1);
        assert_eq!(log.end_offset_for_epoch(5), Some((5, bases[30] + 1)));
        let read = log.read(bases[29], usize::MAX).await.expect("read");
        assert_eq!(batches_of(&read.data).len(), 2);
        log.truncate_suffix(0).await.expect("truncate all");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    });
}

#[test]
fn log_start_and_retention_delete_whole_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    run(async move {
        let config = LogConfig {
            retention_ms: 1_000,
            ..small_config()
        };
        let log = PartitionLog::open(&path, config.clone())
            .await
            .expect("open");
        for i in 0..100i64 {
            // Old timestamps for the first 60 batches, recent ones after.
            let ts = if i < 60 { 1_000 + i } else { 1_000_000 + i };
            log.append(batch(2, 500, ts, i as u64), 0, None)
                .await
                .expect("append");
        }
        let segments = log.segment_count();
        let reader_before = log.read(0, 100).await.expect("read start");
        assert_eq!(reader_before.first_offset, 0);
        let deleted = log.enforce_retention(1_000_500).await.expect("retention");
        assert!(deleted > 0 && log.segment_count() == segments - deleted);
        let start = log.log_start_offset();
        assert!(
            start > 0 && start <= 120,
            "only segments with old data go: start {start}"
        );
        assert!(matches!(
            log.read(0, 100).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(
            log.read(start, 1)
                .await
                .expect("read at start")
                .first_offset,
            start
        );
        log.advance_log_start(150).await.expect("delete records");
        assert_eq!(log.log_start_offset(), 150);
        let read = log.read(150, 1).await.expect("read inside batch");
        assert!(read.first_offset <= 150 && read.next_offset > 150);
        log.set_config(LogConfig {
            retention_bytes: 40_000,
            retention_ms: -1,
            ..config.clone()
        });
        log.enforce_retention(i64::MAX)
            .await
            .expect("size retention");
        assert!(log.size_bytes() <= 40_000 + (16 << 10));
        drop(log);
        let log = PartitionLog::open(&path, config).await.expect("reopen");
        assert!(
            log.log_start_offset() >= 150,
            "log start persisted in the checkpoint"
        );
        // Deleting everything: log start at the end rolls, then every old segment goes.
        let end = log.log_end_offset();
        log.advance_log_start(end).await.expect("delete all");
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.read(end, 10).await.expect("empty").data.len(), 0);
    });
}

#[test]
fn retention_runner_works_in_low_priority_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    run(async move {
        let config = LogConfig {
            retention_ms: 0,
            ..small_config()
        };
        let log = PartitionLog::open(&path, config).await.expect("open");
        for i in 0..60u64 {
            log.append(batch(2, 500, 1_000, i), 0, None)
                .await
                .expect("append");
        }
        let runner = RetentionRunner::new();
        runner.register(&log);
        runner
            .spawn(std::time::Duration::from_millis(5))
            .expect("spawn");
        // Appends keep working while retention runs in the background.
        let mut rounds = 0;
        while log.log_start_offset() == 0 {
            log.append(batch(1, 100, 2_000, 1000 + rounds), 0, None)
                .await
                .expect("append");
            glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
            rounds += 1;
            assert!(rounds < 5_000, "retention never ran");
        }
        runner.stop();
        assert!(log.log_start_offset() > 0);
        let _keep: Rc<PartitionLog> = log;
    });
}

#[test]
fn close_refuses_use_and_delete_removes_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("topic-0");
    run(async move {
        let log = PartitionLog::open(&path, small_config())
            .await
            .expect("open");
        let info = log
            .append(batch(1, 10, 1, 1), 0, None)
            .await
            .expect("append");
        log.close().await.expect("close");
        assert_eq!(
            log.durable_end_offset(),
            info.last_offset + 1,
            "close makes data durable"
        );
        assert!(matches!(
            log.append(batch(1, 10, 1, 2), 0, None).await,
            Err(LogError::Closed { .. })
        ));
        log.delete().await.expect("delete");
        assert!(!path.exists());
    });
}

#[test]
fn idle_partition_memory_stays_within_the_stated_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    run(async move {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            cache_bytes_max: 64 << 10,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(&path, config.clone())
            .await
            .expect("open");
        for i in 0..400u64 {
            log.append(batch(16, 1000, i as i64, i), 0, None)
                .await
                .expect("append");
        }
        // Cold reads from several closed segments load (and cache) their indexes.
        for offset in (0..log.log_end_offset()).step_by(1500) {
            log.read(offset, 1).await.expect("cold read");
        }
        let entries_per_segment =
            (config.segment_bytes / u64::from(config.index_interval_bytes)) as usize;
        let bound = config.cache_bytes_max
            + 3 * entries_per_segment * 24
            + log.segment_count() * 128
            + 4096
            + 4096;
        let used = log.memory_bytes();
        eprintln!(
            "idle partition: {used} bytes in memory, bound {bound} ({} segments, {} MiB on disk)",
            log.segment_count(),
            log.size_bytes() >> 20
        );
        assert!(used <= bound, "{used} > {bound}");
    });
}
