//! Smoke run of the benchmark harness (issue 7): the real `ringlet-bench` binary drives a real
//! Ringlet broker for 10 seconds (2 s warm-up + 8 s measured) through librdkafka, then we check
//! that the JSON result and the HTML report exist and that the counts add up: every message
//! produced was acknowledged and consumed exactly once. No performance thresholds: speed is
//! for benchmarks, not tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Broker;
use serde_json::Value;

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

#[test]
fn ten_second_harness_run_writes_json_and_report_and_every_message_is_consumed() {
    let bench = ringlet_bench_binary();
    let mut broker = Broker::start();
    let out = tempfile::tempdir().expect("output directory");
    let run_json = out.path().join("run.json");
    let run_html = out.path().join("run.html");
    let workload = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/workloads/smoke.toml");
    let output = Command::new(&bench)
        .arg("run")
        .arg("--workload")
        .arg(&workload)
        .args(["--bootstrap", &broker.bootstrap(), "--broker", "ringlet"])
        .args(["--broker-pid", &broker.pid().to_string()])
        .args(["--warmup-s", "2", "--duration-s", "8", "--no-progress"])
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
        "ringlet-bench failed ({}):\n{stdout}\n{stderr}\n{}",
        output.status,
        broker.log_tail(60)
    );

    let run = read_json(&run_json);
    let sent = u64_at(&run, "/produced/sent");
    let acked = u64_at(&run, "/produced/acked");
    assert!(sent > 0, "the run sent nothing: {stdout}");
    assert_eq!(acked, sent, "every sent message acknowledged");
    assert_eq!(u64_at(&run, "/produced/failed"), 0);
    let per_group = run
        .pointer("/consumed/per_group")
        .and_then(Value::as_array)
        .expect("per-group consumed counts");
    assert_eq!(
        per_group.len(),
        1,
        "the smoke workload has one consumer group"
    );
    assert_eq!(per_group[0].as_u64(), Some(acked), "produced = consumed");
    assert_eq!(run["counts_match"], Value::Bool(true));
    // Latency samples exist for the measured window (after warm-up), for both measurements.
    assert!(u64_at(&run, "/produce_latency/count") > 0);
    assert!(u64_at(&run, "/end_to_end_latency/count") > 0);
    // The broker was sampled from /proc.
    assert_eq!(u64_at(&run, "/broker_process/pid"), u64::from(broker.pid()));
    assert!(u64_at(&run, "/broker_process/peak_rss_bytes") > 0);

    let html = std::fs::read_to_string(&run_html).expect("run.html written");
    assert!(
        html.contains("<svg") && html.contains("smoke"),
        "report has charts"
    );

    // The side-by-side report step over the same result.
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
