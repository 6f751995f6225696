//! Model-based randomized test: random appends (some concurrent), reads, durability waits,
//! suffix truncations, log-start moves and reopens (all in-memory state dropped), checked
//! against a plain `Vec` of batches. Seeded; the seed is printed (rerun with TEST_SEED=...).

mod common;

use common::{batch, batches_of, run, seed, stamped, Rng};
use ringlet_io::{LogConfig, LogError, PartitionLog};
use std::path::Path;
use std::rc::Rc;

struct ModelBatch {
    base: i64,
    last: i64,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Model {
    batches: Vec<ModelBatch>,
    log_start: i64,
    durable_end: i64,
}

impl Model {
    fn end(&self) -> i64 {
        self.batches.last().map_or(self.log_start, |b| b.last + 1)
    }

    fn index_containing(&self, offset: i64) -> usize {
        self.batches.partition_point(|b| b.last < offset)
    }
}

fn random_config(rng: &mut Rng) -> LogConfig {
    LogConfig {
        segment_bytes: 4096 * (1 + rng.below(6)),
        index_interval_bytes: 256 * (1 + rng.below(16)) as u32,
        cache_bytes_max: [0, 2048, 64 << 10][rng.below(3) as usize],
        ..LogConfig::default()
    }
}

#[test]
fn log_matches_model_under_random_operations() {
    let base_seed = seed("model");
    for round in 0..4u64 {
        let seed = base_seed.wrapping_add(round);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_owned();
        eprintln!("model round {round}: seed {seed}");
        run(run_model(path, seed, 250));
    }
}

async fn run_model(path: std::path::PathBuf, seed: u64, steps: usize) {
    let mut rng = Rng::new(seed);
    let config = random_config(&mut rng);
    let mut log = PartitionLog::open(&path, config.clone())
        .await
        .expect("open");
    let mut model = Model::default();
    let mut tag = 0u64;
    for _ in 0..steps {
        match rng.below(100) {
            0..=39 => append_some(&log, &mut model, &mut rng, &mut tag).await,
            40..=64 => check_read(&log, &model, &mut rng).await,
            65..=74 => {
                if model.end() > model.durable_end {
                    log.wait_durable(model.end() - 1)
                        .await
                        .expect("wait_durable");
                    model.durable_end = model.end();
                }
            }
            75..=82 => truncate_some(&log, &mut model, &mut rng).await,
            83..=89 => advance_start(&log, &mut model, &mut rng).await,
            _ => log = reopen(log, &path, &config, &mut model).await,
        }
        assert_eq!(log.log_end_offset(), model.end(), "log end");
        assert_eq!(log.log_start_offset(), model.log_start, "log start");
        assert!(
            log.durable_end_offset() >= model.durable_end,
            "durable end went back"
        );
    }
    reopen(log, &path, &config, &mut model).await;
}

async fn append_some(log: &Rc<PartitionLog>, model: &mut Model, rng: &mut Rng, tag: &mut u64) {
    let concurrent = 1 + rng.below(4) as usize;
    let mut tasks = Vec::new();
    let mut raws = Vec::new();
    for _ in 0..concurrent {
        *tag += 1;
        let raw = batch(
            1 + rng.below(4) as usize,
            rng.below(1500) as usize,
            *tag as i64,
            *tag,
        );
        raws.push(raw.clone());
        let log = log.clone();
        tasks.push(glommio::spawn_local(async move {
            log.append(raw, 2, None).await
        }));
    }
    for (task, raw) in tasks.into_iter().zip(raws) {
        let info = task.await.expect("append");
        assert_eq!(
            info.base_offset,
            model.end(),
            "offsets dense and in call order"
        );
        model.batches.push(ModelBatch {
            base: info.base_offset,
            last: info.last_offset,
            bytes: stamped(raw, info.base_offset, 2),
        });
    }
}

async fn check_read(log: &PartitionLog, model: &Model, rng: &mut Rng) {
    let span = (model.end() - model.log_start + 1) as u64;
    let offset = model.log_start + rng.below(span) as i64;
    let max_bytes = rng.below(6000) as usize;
    let read = log.read(offset, max_bytes).await.expect("read in range");
    if offset == model.end() {
        assert!(read.data.is_empty());
        return;
    }
    let got = batches_of(&read.data);
    let first = model.index_containing(offset);
    assert!(!got.is_empty(), "at least one batch");
    assert!(
        got.len() == 1 || read.data.len() <= max_bytes,
        "max_bytes honoured after the first"
    );
    for (i, (base, last, bytes)) in got.iter().enumerate() {
        let want = &model.batches[first + i];
        assert_eq!((*base, *last), (want.base, want.last));
        assert!(*bytes == want.bytes, "bytes of batch {base} differ");
    }
    assert_eq!(read.first_offset, model.batches[first].base);
    assert_eq!(read.next_offset, got.last().map_or(offset, |b| b.1 + 1));
    let before_start = log.read(model.log_start - 1, 100).await;
    assert!(model.log_start == 0 || matches!(before_start, Err(LogError::OffsetOutOfRange { .. })));
}

async fn truncate_some(log: &PartitionLog, model: &mut Model, rng: &mut Rng) {
    let first = model.index_containing(model.log_start);
    let candidates: Vec<i64> = model.batches[first..]
        .iter()
        .map(|b| b.base)
        .filter(|base| *base >= model.log_start)
        .chain(std::iter::once(model.end()))
        .collect();
    let offset = candidates[rng.below(candidates.len() as u64) as usize];
    log.truncate_suffix(offset)
        .await
        .expect("truncate at boundary");
    model.batches.retain(|b| b.base < offset);
    model.durable_end = model.durable_end.min(offset);
    if let Some(inside) = model.batches.last().filter(|b| b.last > b.base) {
        let mid = inside.base + 1;
        if mid >= model.log_start {
            let err = log
                .truncate_suffix(mid)
                .await
                .expect_err("mid-batch truncate");
            assert!(matches!(err, LogError::NotBatchBoundary { .. }), "{err}");
        }
    }
}

async fn advance_start(log: &PartitionLog, model: &mut Model, rng: &mut Rng) {
    let span = (model.end() - model.log_start + 1) as u64;
    let offset = model.log_start + rng.below(span) as i64;
    log.advance_log_start(offset)
        .await
        .expect("advance log start");
    model.log_start = model.log_start.max(offset);
}

/// Drops the log and opens the directory again: everything durable must be there byte for
/// byte; anything beyond must be a prefix of what was appended.
async fn reopen(
    log: Rc<PartitionLog>,
    path: &Path,
    config: &LogConfig,
    model: &mut Model,
) -> Rc<PartitionLog> {
    drop(log);
    let log = PartitionLog::open(path, config.clone())
        .await
        .expect("reopen");
    let end = log.log_end_offset();
    assert!(
        end >= model.durable_end,
        "lost durable data: end {end} < {}",
        model.durable_end
    );
    assert_eq!(
        log.log_start_offset(),
        model.log_start,
        "log start survives reopen"
    );
    model.batches.retain(|b| b.last < end);
    assert_eq!(
        model.end(),
        end,
        "recovered end lies on a batch boundary of the model"
    );
    let mut offset = model.log_start;
    while offset < end {
        let read = log.read(offset, 1 << 20).await.expect("read after reopen");
        for (base, last, bytes) in batches_of(&read.data) {
            let want = &model.batches[model.index_containing(base)];
            assert_eq!((base, last), (want.base, want.last));
            assert!(bytes == want.bytes, "batch {base} differs after reopen");
        }
        offset = read.next_offset;
    }
    model.durable_end = end;
    log
}
