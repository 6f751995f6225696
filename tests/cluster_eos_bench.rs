//! Numbers, not assertions (ignored by default; run with
//! `cargo test -p ringlet --test cluster_eos_bench -- --ignored --nocapture`): the throughput
//! cost of replication and of transactions on a real 3-broker cluster, in one run: acks=all on
//! RF 1 and RF 3, and transactions (a commit every 100 records) on RF 3 and RF 1. 1 KiB
//! records, librdkafka, a fresh 3-partition topic per measurement, the same wall time per mode
//! (`EOS_BENCH_SECONDS`, default 15). The modes run interleaved twice (A B C D A B C D) so
//! noise shows as the difference between rounds; each row is compared with acks=all RF 3 of
//! its own round. Transactional rows add commits/s and commit_transaction latency.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::eos_load::{self, Guarantee};
use common::kafka::{base_config, block_on, create_replicated_topic, CLIENT_TIMEOUT};
use common::unique_topic;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

/// Counts delivery reports, so a transaction is committed once its records are in
/// (rust-rdkafka's flush waits for events in 100 ms steps: it would dominate the numbers).
/// Failures are counted, not asserted here: a panic cannot cross librdkafka's callback.
#[derive(Default)]
struct Acks {
    ok: AtomicUsize,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Acks {
    fn reported(&self) -> usize {
        self.ok.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err((err, _)) => {
                let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| err.to_string());
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

const RECORD_BYTES: usize = 1024;
const PER_TRANSACTION: usize = 100;
const PARTITIONS: i32 = 3;
const ROUNDS: usize = 2;
/// How long a new RF 3 topic may take to be led by its preferred replicas.
const PREFERRED_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    replication: i32,
    transactional: bool,
}

const fn mode(name: &'static str, replication: i32, transactional: bool) -> Mode {
    Mode {
        name,
        replication,
        transactional,
    }
}

/// Run in this order each round; index [`BASELINE`] is what the others are compared with.
const MODES: [Mode; 4] = [
    mode("acks=all RF=1", 1, false),
    mode("acks=all RF=3", 3, false),
    mode("txn/100 RF=3", 3, true),
    mode("txn/100 RF=1", 1, true),
];
const BASELINE: usize = 1;

/// One measurement: throughput, and for transactions the commit rate and the mean, p50 and
/// p99 wall time of commit_transaction in milliseconds.
struct Run {
    records_per_second: f64,
    commits_per_second: f64,
    commit_ms: (f64, f64, f64),
}

/// A fresh topic whose partitions all have a leader and every replica in sync. For RF 3 it
/// also waits (at most [`PREFERRED_WAIT`], then says so and goes on) until each partition is
/// led by its preferred replica, so the leaders are spread over the brokers.
fn fresh_topic(cluster: &mut Cluster, replication: i32) -> String {
    let topic = unique_topic("cluster-eos-bench");
    create_replicated_topic(&cluster.bootstrap(), &topic, PARTITIONS, replication);
    let deadline = Instant::now() + PREFERRED_WAIT;
    let in_sync = |isr: &[i32]| isr.len() == replication as usize;
    loop {
        let views: Vec<_> = (0..PARTITIONS)
            .map(|p| cluster.wait_for_partition(&topic, p, in_sync))
            .collect();
        let leaders: Vec<i32> = views.iter().map(|view| view.leader).collect();
        if views.iter().all(|v| v.replicas.first() == Some(&v.leader)) {
            return topic;
        }
        if Instant::now() > deadline {
            eprintln!("{topic}: not all led by the preferred replica; leaders {leaders:?}");
            return topic;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deletes `topic` once measured, so the runs do not fill the disk (acks=all writes GBs).
fn delete_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        base_config(bootstrap).create().expect("create admin");
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let result = block_on(admin.delete_topics(&[topic], &options));
    if !matches!(result.as_deref(), Ok([Ok(_)])) {
        eprintln!("{topic}: DeleteTopics: {result:?}");
    }
}

/// The bench producer for `mode`.
fn producer(bootstrap: &str, mode: Mode) -> BaseProducer<Acks> {
    let guarantee = if mode.transactional {
        Guarantee::Transactional
    } else {
        Guarantee::AcksAll
    };
    eos_load::producer(bootstrap, guarantee, Acks::default())
}

/// Runs `mode` for `measure` on a fresh topic; every record sent must be acknowledged.
fn run(cluster: &mut Cluster, mode: Mode, measure: Duration) -> Run {
    let topic = fresh_topic(cluster, mode.replication);
    let producer = producer(&cluster.bootstrap(), mode);
    let payload = vec![b'x'; RECORD_BYTES];
    let mut commit_us = Vec::new();
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < measure {
        if mode.transactional {
            producer.begin_transaction().expect("begin_transaction");
        }
        for _ in 0..PER_TRANSACTION {
            eos_load::send(&producer, &topic, PARTITIONS, sent, &payload);
            sent += 1;
        }
        if mode.transactional {
            while producer.context().reported() < sent {
                producer.poll(Duration::from_millis(1));
            }
            let commit = Instant::now();
            let result = producer.commit_transaction(CLIENT_TIMEOUT);
            commit_us.push(commit.elapsed().as_micros());
            if let Err(err) = result {
                panic!("{}: commit: {err}\n{}", mode.name, cluster.log_tails(30));
            }
        } else {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(CLIENT_TIMEOUT).expect("flush");
    let elapsed = start.elapsed().as_secs_f64();
    let acks = producer.context();
    let ok = acks.ok.load(Ordering::Relaxed);
    let failed = acks.failed.load(Ordering::Relaxed);
    let first_error = acks.first_error.lock().ok().and_then(|e| e.clone());
    assert!(
        ok == sent && failed == 0,
        "{}: {sent} sent, {ok} acknowledged, {failed} failed (first: {first_error:?})",
        mode.name
    );
    drop(producer);
    delete_topic(&cluster.bootstrap(), &topic);
    Run {
        records_per_second: sent as f64 / elapsed,
        commits_per_second: commit_us.len() as f64 / elapsed,
        commit_ms: latency(&mut commit_us),
    }
}

/// Mean, p50 and p99 of `us` in milliseconds (zeros when empty).
fn latency(us: &mut [u128]) -> (f64, f64, f64) {
    if us.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    us.sort_unstable();
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    let mean = us.iter().sum::<u128>() as f64 / us.len() as f64 / 1000.0;
    (mean, at(0.50), at(0.99))
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn replication_and_transactions_on_three_brokers() {
    let seconds = std::env::var("EOS_BENCH_SECONDS").map_or(15, |s| {
        s.parse()
            .expect("EOS_BENCH_SECONDS: a whole number of seconds")
    });
    let measure = Duration::from_secs(seconds);
    let mut cluster = Cluster::start_for_transactions(3);
    // Warm-up (topic creation paths, __transaction_state, page cache), not reported.
    run(&mut cluster, MODES[2], measure.min(Duration::from_secs(5)));
    let mut rounds: Vec<[Run; MODES.len()]> = Vec::new();
    for round in 1..=ROUNDS {
        rounds.push(MODES.map(|mode| {
            let result = run(&mut cluster, mode, measure);
            let rate = result.records_per_second;
            eprintln!("round {round} {}: {rate:.0} records/s", mode.name);
            result
        }));
    }
    println!(
        "1 KiB records, {PARTITIONS} partitions, {measure:?} per mode, 3 brokers, {ROUNDS} rounds"
    );
    println!(
        "{:<14} {:>5} {:>10} {:>8} {:>9} {:>9} {:>8} {:>8}",
        "mode", "round", "records/s", "vs RF=3", "commits/s", "mean ms", "p50 ms", "p99 ms"
    );
    for (i, mode) in MODES.iter().enumerate() {
        for (round, runs) in rounds.iter().enumerate() {
            let rate = runs[i].records_per_second;
            let ratio = rate / runs[BASELINE].records_per_second;
            let mut line = format!(
                "{:<14} {:>5} {rate:>10.0} {ratio:>8.2}",
                mode.name,
                round + 1
            );
            if mode.transactional {
                let (mean, p50, p99) = runs[i].commit_ms;
                let commits = runs[i].commits_per_second;
                line += &format!(" {commits:>9.1} {mean:>9.2} {p50:>8.2} {p99:>8.2}");
            }
            println!("{line}");
        }
    }
    for id in cluster.ids() {
        let log = cluster.broker(id).log_text();
        let problems: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            .collect();
        println!("node {id}: {} ERROR/WARN log lines", problems.len());
        for line in problems.iter().take(5) {
            println!("  {line}");
        }
    }
}
