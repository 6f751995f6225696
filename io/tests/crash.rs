//! Crash test with real processes: a child appends with several concurrent appenders and prints
//! `durable <base> <last> <crc32c>` after each `wait_durable`; the parent SIGKILLs it at a
//! random moment, reopens the log, and checks that every batch reported durable is present and
//! identical, that the log is dense, and that no bytes beyond the last valid batch remain.
//! Seeded; the seed is printed (rerun with TEST_SEED=...).

mod common;

use common::{batch, batches_of, run, seed, Rng};
use ringlet_io::{LogConfig, PartitionLog};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_DIR_ENV: &str = "RINGLET_CRASH_CHILD_DIR";
const CHILD_SEED_ENV: &str = "RINGLET_CRASH_CHILD_SEED";
const ROUNDS: usize = 50;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        index_interval_bytes: 1024,
        ..LogConfig::default()
    }
}

/// The child side. A no-op unless the parent set the environment variable.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let child_seed: u64 = std::env::var(CHILD_SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    run(async move {
        let log = PartitionLog::open(Path::new(&dir), config())
            .await
            .expect("child open");
        println!("ready {}", log.log_end_offset());
        let mut tasks = Vec::new();
        for appender in 0..8u64 {
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let mut rng = Rng::new(child_seed.wrapping_mul(31).wrapping_add(appender));
                loop {
                    let tag = rng.next_u64();
                    let raw = batch(1 + rng.below(8) as usize, rng.below(4000) as usize, 1, tag);
                    let info = log.append(raw, 1, None).await.expect("child append");
                    log.wait_durable(info.last_offset)
                        .await
                        .expect("child durable");
                    // Read back what the log stored, so the CRC covers the stamped offset too.
                    let stored = log.read(info.base_offset, 1).await.expect("child read");
                    let (base, last, bytes) = batches_of(&stored.data).remove(0);
                    println!("durable {base} {last} {}", crc32c::crc32c(&bytes));
                }
            }));
        }
        for task in tasks {
            task.await;
        }
    });
}

struct Durable {
    base: i64,
    last: i64,
    crc: u32,
}

/// Runs one child until a random moment, SIGKILLs it, and returns its durable reports.
fn run_child_and_kill(dir: &Path, child_seed: u64, kill_after: Duration) -> Vec<Durable> {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_SEED_ENV, child_seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(line) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    // Kill relative to the moment the child has recovered and starts appending, so every
    // round kills it mid-append rather than during process start-up.
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                // libtest prints "test crash_child ... " without a newline before our output.
                let ready = line.contains("ready ");
                lines.push(line);
                if ready {
                    break;
                }
            }
            Err(err) => panic!("child never became ready: {err}"),
        }
    }
    std::thread::sleep(kill_after);
    // Child::kill sends SIGKILL on Unix.
    child.kill().expect("SIGKILL child");
    child.wait().expect("reap child");
    reader.join().expect("reader thread");
    lines.extend(rx.try_iter());
    lines
        .iter()
        .filter_map(|line| {
            let at = line.find("durable ")?;
            let mut parts = line[at + "durable ".len()..].split(' ');
            Some(Durable {
                base: parts.next()?.parse().ok()?,
                last: parts.next()?.parse().ok()?,
                // A line cut by the kill mid-write fails to parse and is ignored.
                crc: parts.next()?.parse().ok()?,
            })
        })
        .collect()
}

#[test]
fn sigkill_during_appends_loses_nothing_durable() {
    if std::env::var(CHILD_DIR_ENV).is_ok() {
        return;
    }
    let seed = seed("crash");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    let mut reported = 0usize;
    for round in 0..ROUNDS {
        let kill_after = Duration::from_micros(rng.below(60_000));
        let durable = run_child_and_kill(&path, rng.next_u64(), kill_after);
        reported += durable.len();
        eprintln!("crash round {round}: {} durable reports", durable.len());
        let check_path = path.clone();
        run(async move { verify_after_crash(check_path, durable, round).await });
    }
    eprintln!("crash: {ROUNDS} rounds, {reported} durable batches reported before the kills");
    assert!(
        reported > ROUNDS,
        "children reported only {reported} durable batches: test is not exercising appends"
    );
}

async fn verify_after_crash(path: PathBuf, durable: Vec<Durable>, round: usize) {
    let log = PartitionLog::open(&path, config()).await.expect("recover");
    let end = log.log_end_offset();
    for report in &durable {
        assert!(
            report.last < end,
            "round {round}: durable batch {} lost (end {end})",
            report.base
        );
        let read = log.read(report.base, 1).await.expect("read durable batch");
        let (base, last, bytes) = batches_of(&read.data).remove(0);
        assert_eq!((base, last), (report.base, report.last), "round {round}");
        assert_eq!(
            crc32c::crc32c(&bytes),
            report.crc,
            "round {round}: batch {base} differs"
        );
    }
    // Dense and valid from start to end, and no byte past the last valid batch on disk.
    let mut offset = log.log_start_offset();
    while offset < end {
        let read = log.read(offset, 1 << 20).await.expect("read all");
        for (base, last, _) in batches_of(&read.data) {
            assert_eq!(base, offset, "round {round}: offsets must be dense");
            offset = last + 1;
        }
    }
    let on_disk: u64 = std::fs::read_dir(&path)
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    assert_eq!(on_disk, log.size_bytes(), "round {round}: tail not clean");
}
