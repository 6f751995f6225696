//! Smoke runs of the benchmark harness (issue 7): the real `ringlet-bench` binary drives a real
//! Ringlet broker through librdkafka (10 s with assigned consumers; 8 s with two real consumer
//! groups), then we check that the JSON result and the HTML report exist and that the counts
//! add up: every message produced was acknowledged and consumed exactly once by every group.
//! No performance thresholds: speed is for benchmarks, not tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Broker;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;

const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

fn metadata_client(bootstrap: &str) -> BaseConsumer {
    common::kafka::base_config(bootstrap)
        .set("group.id", "bench-smoke-inspector")
        .create()
        .expect("metadata client")
}

/// Topics the broker lists now.
fn topic_names(bootstrap: &str) -> Vec<String> {
    let metadata = metadata_client(bootstrap)
        .fetch_metadata(None, ADMIN_TIMEOUT)
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect()
}

/// The `ringlet-bench` binary, built by cargo into the same target directory and profile as
/// this test (a root-package test cannot depend on another package's binary, so we ask cargo;
/// it is a no-op when the binary is up to date). `RINGLET_BENCH_BIN` overrides it.
fn ringlet_bench_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RINGLET_BENCH_BIN") {
        return PathBuf::from(path);
    }
    let broker_exe = Path::new(env!("CARGO_BIN_EXE_ringlet"));
    let profile_dir = broker_exe.parent().expect("broker binary has a directory");
    let target_dir = profile_dir
        .parent()
        .expect("profile directory has a parent");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile directory name")
        .to_string();
    let cargo_profile = if profile == "debug" {
        "dev"
    } else {
        profile.as_str()
    };
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "ringlet-benches", "--bin", "ringlet-bench"])
        .args(["--profile", cargo_profile])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo to build ringlet-bench");
    assert!(
        status.success(),
        "cargo build of ringlet-bench failed: {status}"
    );
    let binary = profile_dir.join("ringlet-bench");
    assert!(
        binary.exists(),
        "{} missing after the build",
        binary.display()
    );
    binary
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("{} not written: {err}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()))
}

fn u64_at(value: &Value, pointer: &str) -> u64 {
    value
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no integer at {pointer} in {value:#}"))
}

/// Runs `benches/workloads/{workload}.toml` against `broker` with `ringlet-bench run`
/// (JSON and HTML into `out`), asserts it succeeded, and returns the JSON result.
fn run_workload(bench: &Path, broker: &mut Broker, workload: &str, out: &Path) -> Value {
    let run_json = out.join(format!("{workload}.json"));
    let run_html = out.join(format!("{workload}.html"));
    let workload_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/workloads")
        .join(format!("{workload}.toml"));
    let output = Command::new(bench)
        .arg("run")
        .arg("--workload")
        .arg(&workload_file)
        .args(["--bootstrap", &broker.bootstrap(), "--broker", "ringlet"])
        .args(["--broker-pid", &broker.pid().to_string(), "--no-progress"])
        .arg("--out")
        .arg(&run_json)
        .arg("--html")
        .arg(&run_html)
        .output()
        .expect("run ringlet-bench");
    broker.assert_alive("after the benchmark run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ringlet-bench {workload} failed ({}):\n{stdout}\n{stderr}\n{}",
        output.status,
        broker.log_tail(60)
    );
    let html = std::fs::read_to_string(&run_html).expect("run html written");
    assert!(
        html.contains("<svg") && html.contains(workload),
        "report has charts"
    );
    read_json(&run_json)
}

/// Every sent message acknowledged, and every one of the `groups` groups consumed exactly the
/// acknowledged messages; latency samples exist for both measurements.
fn assert_counts_add_up(run: &Value, groups: usize) {
    let sent = u64_at(run, "/produced/sent");
    let acked = u64_at(run, "/produced/acked");
    assert!(sent > 0, "the run sent nothing: {run:#}");
    assert_eq!(acked, sent, "every sent message acknowledged");
    assert_eq!(u64_at(run, "/produced/failed"), 0);
    let per_group = run
        .pointer("/consumed/per_group")
        .and_then(Value::as_array)
        .expect("per-group consumed counts");
    assert_eq!(per_group.len(), groups, "one count per consumer group");
    for (group, consumed) in per_group.iter().enumerate() {
        assert_eq!(
            consumed.as_u64(),
            Some(acked),
            "group {group}: produced = consumed"
        );
    }
    assert_eq!(run["counts_match"], Value::Bool(true));
    assert!(u64_at(run, "/produce_latency/count") > 0);
    assert!(u64_at(run, "/end_to_end_latency/count") > 0);
}

#[test]
fn ten_second_harness_run_writes_json_and_report_and_every_message_is_consumed() {
    let bench = ringlet_bench_binary();
    let mut broker = Broker::start();
    let out = tempfile::tempdir().expect("output directory");
    // smoke.toml: 2 s warm-up + 8 s measured, one group of 2 assigned consumers.
    let run = run_workload(&bench, &mut broker, "smoke", out.path());
    assert_counts_add_up(&run, 1);
    // The broker was sampled from /proc.
    assert_eq!(u64_at(&run, "/broker_process/pid"), u64::from(broker.pid()));
    assert!(u64_at(&run, "/broker_process/peak_rss_bytes") > 0);
    // The run deleted its topics afterwards: only internal topics may be left.
    let leftover = topic_names(&broker.bootstrap());
    assert!(
        leftover.iter().all(|t| !t.starts_with("bench-")),
        "the run's topics were deleted: {leftover:?}"
    );

    // The side-by-side report step over the same result.
    let run_json = out.path().join("smoke.json");
    let report_dir = out.path().join("report");
    let status = Command::new(&bench)
        .args(["report", "--brokers", "ringlet", "--out"])
        .arg(&report_dir)
        .arg(&run_json)
        .status()
        .expect("run ringlet-bench report");
    assert!(status.success());
    let results = read_json(&report_dir.join("results.json"));
    let rows = results["rows"].as_array().expect("comparison rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["counts_match"], Value::Bool(true));
    let report = std::fs::read_to_string(report_dir.join("report.html")).expect("report.html");
    assert!(report.contains("<svg"));
}

/// `consumer_mode = "group"`: two real consumer groups of two members each (the broker's
/// coordinator assigns the partitions), and each group reads every message exactly once.
#[test]
fn group_mode_fans_out_to_two_real_consumer_groups_and_each_reads_everything() {
    let bench = ringlet_bench_binary();
    let mut broker = Broker::start();
    let out = tempfile::tempdir().expect("output directory");
    let run = run_workload(&bench, &mut broker, "smoke-groups", out.path());
    assert_counts_add_up(&run, 2);
    assert!(
        run["group_join_s"].as_f64().is_some(),
        "group mode waits for stable groups: {run:#}"
    );
    let assignments = run
        .pointer("/consumed/assignments_per_group")
        .and_then(Value::as_array)
        .expect("assignments per group");
    assert_eq!(assignments.len(), 2);
    for (group, count) in assignments.iter().enumerate() {
        // Both members of the group were assigned by the coordinator.
        assert!(
            count.as_u64().unwrap_or(0) >= 2,
            "group {group}: every member got an assignment: {assignments:?}"
        );
    }
}
