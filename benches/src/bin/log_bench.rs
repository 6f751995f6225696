//! Partition-log micro-benchmark: appends of 1 KiB-record batches (16 KiB and 1 MiB) with and
//! without durability waits, and group commit with many concurrent durable appenders.
//!
//! Reports MB/s and per-append latency p50/p99/p99.9 (hdrhistogram). Run through
//! `scripts/bench-log.sh`, which also runs `fio` on the same file system as the baseline and
//! prints the ratios. Each scenario stops at `--mib` MiB or `--seconds`, whichever comes first.

use bytes::{Bytes, BytesMut};
use clap::Parser;
use hdrhistogram::Histogram;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use ringlet_io::{LogConfig, PartitionLog};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Benchmark the ringlet partition log")]
struct Args {
    /// Directory on the file system under test (a fresh sub-directory per scenario).
    #[arg(long)]
    dir: PathBuf,
    /// Stop a scenario after this many MiB appended.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Stop a scenario after this many seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent appenders for the group-commit scenario.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Comma-separated scenario names, or "all".
    #[arg(long, default_value = "all")]
    scenarios: String,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    batch_bytes: usize,
    durable: bool,
    appenders: usize,
}

#[derive(serde::Serialize)]
struct Outcome {
    scenario: String,
    batch_bytes: usize,
    durable: bool,
    appenders: usize,
    appends: u64,
    mib_per_s: f64,
    appends_per_s: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    fdatasyncs: u64,
    segment_writes: u64,
}

fn scenarios(concurrency: usize) -> Vec<Scenario> {
    let s = |name, batch_bytes, durable, appenders| Scenario {
        name,
        batch_bytes,
        durable,
        appenders,
    };
    vec![
        s("16k", 16 << 10, false, 1),
        s("16k-durable", 16 << 10, true, 1),
        s("1m", 1 << 20, false, 1),
        s("1m-durable", 1 << 20, true, 1),
        s("16k-durable-group", 16 << 10, true, concurrency),
    ]
}

/// A real v2 batch of 1 KiB records totalling about `batch_bytes`.
fn make_batch(batch_bytes: usize) -> Bytes {
    let records: Vec<Record> = (0..(batch_bytes / 1024).max(1))
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(vec![(i % 251) as u8; 1000])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    if let Err(err) = RecordBatchEncoder::encode(&mut buf, &records, &options) {
        eprintln!("cannot encode a batch: {err}");
        std::process::exit(2);
    }
    buf.freeze()
}

async fn run_scenario(args: &Args, scenario: Scenario) -> Result<Outcome, String> {
    let dir = args.dir.join(format!("log-{}", scenario.name));
    let _ = std::fs::remove_dir_all(&dir);
    let config = LogConfig {
        max_batch_bytes: 8 << 20,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(&dir, config)
        .await
        .map_err(|e| e.to_string())?;
    let template = make_batch(scenario.batch_bytes);
    let budget_bytes = args.mib << 20;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let appended_bytes = Rc::new(Cell::new(0u64));
    let histogram = Rc::new(RefCell::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?,
    ));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..scenario.appenders {
        let (log, template) = (log.clone(), template.clone());
        let (appended_bytes, histogram) = (appended_bytes.clone(), histogram.clone());
        tasks.push(glommio::spawn_local(async move {
            while appended_bytes.get() < budget_bytes && Instant::now() < deadline {
                let records = BytesMut::from(&template[..]);
                let begin = Instant::now();
                let info = log
                    .append(records, 0, None)
                    .await
                    .map_err(|e| e.to_string())?;
                if scenario.durable {
                    log.wait_durable(info.last_offset)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                let micros = begin.elapsed().as_micros().max(1) as u64;
                let _ = histogram.borrow_mut().record(micros.min(60_000_000));
                appended_bytes.set(appended_bytes.get() + template.len() as u64);
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = log.stats();
    log.delete().await.map_err(|e| e.to_string())?;
    let histogram = histogram.borrow();
    Ok(Outcome {
        scenario: scenario.name.to_owned(),
        batch_bytes: template.len(),
        durable: scenario.durable,
        appenders: scenario.appenders,
        appends: histogram.len(),
        mib_per_s: appended_bytes.get() as f64 / (1 << 20) as f64 / elapsed,
        appends_per_s: histogram.len() as f64 / elapsed,
        p50_us: histogram.value_at_quantile(0.50),
        p99_us: histogram.value_at_quantile(0.99),
        p999_us: histogram.value_at_quantile(0.999),
        fdatasyncs: stats.group_syncs,
        segment_writes: stats.segment_writes,
    })
}

fn main() {
    let args = Args::parse();
    if let Err(err) = ringlet_io::raise_memlock_limit() {
        eprintln!("warning: {err}");
    }
    let wanted: Vec<Scenario> = scenarios(args.concurrency)
        .into_iter()
        .filter(|s| args.scenarios == "all" || args.scenarios.split(',').any(|n| n == s.name))
        .collect();
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
        .io_memory(4 << 20)
        .make();
    let executor = match executor {
        Ok(executor) => executor,
        Err(err) => {
            eprintln!("cannot start a glommio executor: {err}");
            std::process::exit(2);
        }
    };
    let outcomes = executor.run(async move {
        let mut outcomes = Vec::new();
        for scenario in wanted {
            match run_scenario(&args, scenario).await {
                Ok(outcome) => outcomes.push(outcome),
                Err(err) => {
                    eprintln!("scenario {} failed: {err}", scenario.name);
                    std::process::exit(1);
                }
            }
        }
        outcomes
    });
    for outcome in &outcomes {
        match serde_json::to_string(outcome) {
            Ok(line) => println!("{line}"),
            Err(err) => eprintln!("cannot encode result: {err}"),
        }
    }
}
