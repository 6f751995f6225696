//! The soak (issue #19): mixed load for a long time against one broker and, at the same time,
//! against a cluster of three, looking for anything that breaks a guarantee or stops a broker.
//! Run by `scripts/soak.sh --minutes N`, which also turns core dumps on, can run the brokers
//! under glibc's heap checks, and saves the backtrace of any core.
//!
//! Each topology runs, until the deadline: a fixed-rate acks=all producer, an idempotent
//! producer (five requests in flight), a transactional producer (commits and aborts),
//! max-rate bursts with every codec into a topic under size retention and a group consumer on
//! it, a consumer group whose members join and leave, connection churn, and topic create and
//! delete. On three brokers a follower is also killed with SIGKILL and restarted on a seeded
//! schedule. At the end every producer's acknowledgements are checked against what is stored,
//! and every broker log is kept and searched for panics and heap errors. A broker that exits on
//! its own ends that topology's run at once. Any finding fails the test, with the time it
//! happened, so a long run shows whether its last hour was clean.
//!
//! Settings: SOAK_MINUTES (default 2), SOAK_TOPOLOGY (both, one or three), SOAK_SEED,
//! SOAK_OUT (where broker logs are kept; default target/soak).

#[path = "../common/mod.rs"]
mod common;

mod bulk;
mod churn;
mod groups;
mod numbered;
mod run;
mod target;
mod topics;
mod transactional;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::seeded::Seeded;
use run::Run;
use target::Target;

/// How often the supervisor prints the counters.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

struct Settings {
    minutes: u64,
    one: bool,
    three: bool,
    seed: u64,
    out: PathBuf,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok();
        let topology = var("SOAK_TOPOLOGY").unwrap_or_else(|| "both".into());
        Settings {
            minutes: var("SOAK_MINUTES")
                .and_then(|m| m.parse().ok())
                .unwrap_or(2),
            one: topology == "both" || topology == "one",
            three: topology == "both" || topology == "three",
            seed: var("SOAK_SEED")
                .and_then(|s| s.parse().ok())
                .unwrap_or(std::process::id() as u64),
            out: var("SOAK_OUT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soak")),
        }
    }
}

#[test]
#[ignore = "runs for minutes to hours: scripts/soak.sh --minutes N"]
fn mixed_load_for_a_long_time_breaks_nothing() {
    let settings = Arc::new(Settings::from_env());
    eprintln!(
        "soak: {} minutes, seed {} (replay the schedules with SOAK_SEED={}), logs to {}",
        settings.minutes,
        settings.seed,
        settings.seed,
        settings.out.display()
    );
    let mut runs = Vec::new();
    if settings.one {
        let settings = settings.clone();
        runs.push(std::thread::spawn(move || soak(Target::one(), &settings)));
    }
    if settings.three {
        let settings = settings.clone();
        runs.push(std::thread::spawn(move || soak(Target::three(), &settings)));
    }
    let findings: Vec<String> = runs
        .into_iter()
        .flat_map(|run| run.join().expect("a soak topology's thread panicked"))
        .collect();
    assert!(
        findings.is_empty(),
        "the soak found {}:\n{}",
        findings.len(),
        findings.join("\n")
    );
}

/// One topology's soak; returns its findings.
fn soak(mut target: Target, settings: &Settings) -> Vec<String> {
    let run = Run::new(
        target.label(),
        target.bootstrap(),
        target.replication(),
        settings.seed,
    );
    let topics = topics::create_all(&run);
    let workers = [
        run.spawn("fixed-rate", numbered::fixed_rate),
        run.spawn("idempotent", numbered::idempotent),
        run.spawn("transactional", transactional::run),
        run.spawn("bulk-producer", bulk::producer),
        run.spawn("bulk-consumer", bulk::consumer),
        run.spawn("groups", groups::run),
        run.spawn("connections", churn::connections),
        run.spawn("topics", churn::topics),
    ];
    supervise(
        &mut target,
        &run,
        &topics,
        Duration::from_secs(settings.minutes * 60),
    );
    run.stop();
    run.say("stopping the load; checking what every producer was told against what is stored");
    for worker in workers {
        let _ = worker.join();
    }
    if let Some(dead) = target.dead_broker() {
        run.finding(dead);
    }
    target.keep_logs(&run, &settings.out);
    run.say(format!(
        "done: {}; {} findings",
        run.counters(),
        run.findings().len()
    ));
    run.findings()
}

/// Until `length` has passed: watches that every broker lives, prints progress, and (three
/// brokers) kills and restarts a follower every one to three minutes.
fn supervise(target: &mut Target, run: &Run, topics: &[(String, i32)], length: Duration) {
    let started = Instant::now();
    let mut random = Seeded::new(run.seed ^ 0x6b69_6c6c);
    let mut next_progress = PROGRESS_EVERY;
    let mut next_fault = Duration::from_secs(random.between(60, 180));
    while started.elapsed() < length {
        if let Some(dead) = target.dead_broker() {
            run.finding(dead);
            return;
        }
        if started.elapsed() >= next_progress {
            run.say(run.counters());
            next_progress += PROGRESS_EVERY;
        }
        if started.elapsed() >= next_fault {
            let fault = || target.kill_a_follower(run, &mut random, topics);
            if !run.guarded("a follower's kill -9 and restart", fault) {
                return; // a node that does not come back leaves nothing to soak
            }
            next_fault = started.elapsed() + Duration::from_secs(random.between(60, 180));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
