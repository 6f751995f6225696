//! The result files: one `RunResult` per run (one workload against one broker), and the
//! `Comparison` that `ringlet-bench report` builds from many runs plus the machine's physical
//! limits (`results.json` of `scripts/bench-vs.sh`).
//!
//! Rows aggregate the iterations of one (workload, broker) pair by their median, and carry
//! ratios against the first broker named on the command line (the baseline of the same run)
//! and fractions of the physical limits measured in the same run.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::proc_stats::ProcUsage;
use super::stats::{LatencySummary, PerSecond, Throughput};
use super::workload::Workload;
use super::HarnessError;

/// 2: throughput counts the drain after the window; rate probe, offered rate, machine load,
/// broker RSS before and after the run, group assignments.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ProducedCounts {
    /// Handed to librdkafka.
    pub sent: u64,
    /// Acknowledged by the broker.
    pub acked: u64,
    /// Delivery failed (timed out or rejected).
    pub failed: u64,
    pub queue_full_waits: u64,
    pub retries: u64,
    pub request_errors: u64,
    pub first_error: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ConsumedCounts {
    /// Messages each group received (every group reads everything).
    pub per_group: Vec<u64>,
    /// Assignments the members of each group received (group mode; one per member is the
    /// initial join, more are rebalances). Empty in assign mode.
    #[serde(default)]
    pub assignments_per_group: Vec<u64>,
    pub errors: u64,
    pub malformed: u64,
    pub first_error: Option<String>,
}

/// One workload run against one broker.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RunResult {
    pub schema_version: u32,
    /// Label of the broker under test ("ringlet", "kafka", an address...).
    pub broker: String,
    pub bootstrap: String,
    pub iteration: u32,
    pub started_unix_s: u64,
    pub workload: Workload,
    /// Length of the measured window (after the warm-up), seconds.
    pub window_s: f64,
    pub produced: ProducedCounts,
    pub consumed: ConsumedCounts,
    /// Every group consumed exactly the acknowledged messages, and nothing failed.
    pub counts_match: bool,
    pub produce_throughput: Throughput,
    pub consume_throughput: Throughput,
    pub produce_latency: LatencySummary,
    pub end_to_end_latency: LatencySummary,
    pub produce_per_second: PerSecond,
    pub consume_per_second: PerSecond,
    /// Broker CPU and memory over the window (None: no pid given, e.g. a remote address).
    pub broker_process: Option<ProcUsage>,
    /// The load generator's own CPU: on a small machine it competes with the broker.
    pub bench_process: Option<ProcUsage>,
    /// Seconds from the window's end to the last acknowledgement: the producers stop sending
    /// at the end of the window and what librdkafka still holds is acknowledged in this
    /// drain, which `produce_throughput` includes (window start to last acknowledgement).
    #[serde(default)]
    pub produce_drain_s: f64,
    /// Same for consumption: window end to the last message received.
    #[serde(default)]
    pub consume_drain_s: f64,
    /// The fixed rate offered (fixed and fraction-of-max rates); None at maximum rate.
    #[serde(default)]
    pub offered_messages_per_s: Option<f64>,
    /// At a fixed rate: produce and per-group consume throughput both reached 95 % of the
    /// offered rate, so the latency figures describe a sustainable load.
    #[serde(default)]
    pub sustained: Option<bool>,
    /// The max-rate probe a fraction-of-max rate was derived from (when it ran here).
    #[serde(default)]
    pub rate_probe: Option<RateProbe>,
    /// Group mode: seconds from starting the consumers to a stable assignment of every group.
    #[serde(default)]
    pub group_join_s: Option<f64>,
    /// /proc/loadavg (1, 5, 15 min) before and after the run: on a shared machine this says
    /// how much else competed for the CPU.
    #[serde(default)]
    pub load_before: Option<[f64; 3]>,
    #[serde(default)]
    pub load_after: Option<[f64; 3]>,
    /// Broker RSS before the run's topics were created and after they were deleted.
    #[serde(default)]
    pub broker_rss_before_bytes: Option<u64>,
    #[serde(default)]
    pub broker_rss_after_delete_bytes: Option<u64>,
}

/// The max-rate probe behind a fraction-of-max rate.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RateProbe {
    pub probe_s: u64,
    pub produce_messages_per_s: f64,
    /// Consume throughput of one group (all groups read everything).
    pub consume_messages_per_s_per_group: f64,
    /// The lower of the two: the maximum sustained end to end.
    pub max_sustained_messages_per_s: f64,
    pub counts_match: bool,
}

/// What the machine can do, measured by `scripts/physical-limits.sh` in the same run.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Limits {
    pub loopback_tcp_bytes_per_s: Option<f64>,
    pub disk_seq_write_bytes_per_s: Option<f64>,
    pub notes: Vec<String>,
}

/// One (workload, broker) pair, median over its iterations.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ComparisonRow {
    pub workload: String,
    pub broker: String,
    pub iterations: usize,
    pub counts_match: bool,
    pub produce_messages_per_s: f64,
    pub produce_mb_per_s: f64,
    pub consume_mb_per_s: f64,
    pub produce_p50_us: u64,
    pub produce_p99_us: u64,
    #[serde(default)]
    pub produce_p999_us: u64,
    pub e2e_p50_us: u64,
    pub e2e_p99_us: u64,
    pub e2e_p999_us: u64,
    pub broker_cores_used: Option<f64>,
    pub produce_mb_per_s_per_broker_core: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    /// Fixed rates: every iteration sustained the offered rate.
    #[serde(default)]
    pub sustained: Option<bool>,
    /// Median 1-minute load average before the runs.
    #[serde(default)]
    pub load_before_1m: Option<f64>,
    /// Produce throughput / the baseline broker's, same workload.
    pub throughput_ratio_vs_baseline: Option<f64>,
    /// End-to-end p99 / the baseline broker's (lower is better).
    pub e2e_p99_ratio_vs_baseline: Option<f64>,
    /// Produce bytes/s as a fraction of loopback TCP bytes/s.
    pub fraction_of_loopback: Option<f64>,
    /// Produce bytes/s as a fraction of sequential O_DIRECT write bytes/s.
    pub fraction_of_disk: Option<f64>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Comparison {
    pub schema_version: u32,
    /// Brokers in command-line order; the first is the baseline of every ratio.
    pub brokers: Vec<String>,
    pub limits: Option<Limits>,
    pub rows: Vec<ComparisonRow>,
    pub runs: Vec<RunResult>,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn row_for(
    workload: &str,
    broker: &str,
    runs: &[&RunResult],
    limits: Option<&Limits>,
) -> ComparisonRow {
    let med = |f: &dyn Fn(&RunResult) -> f64| median(runs.iter().map(|r| f(r)).collect());
    let med_opt = |f: &dyn Fn(&RunResult) -> Option<f64>| {
        let values: Vec<f64> = runs.iter().filter_map(|r| f(r)).collect();
        (!values.is_empty()).then(|| median(values))
    };
    let produce_mb = med(&|r| r.produce_throughput.mb_per_s);
    let cores = med_opt(&|r| r.broker_process.as_ref().map(|p| p.cores_used));
    let produce_bytes_per_s = produce_mb * 1e6;
    ComparisonRow {
        workload: workload.to_string(),
        broker: broker.to_string(),
        iterations: runs.len(),
        counts_match: runs.iter().all(|r| r.counts_match),
        produce_messages_per_s: med(&|r| r.produce_throughput.messages_per_s),
        produce_mb_per_s: produce_mb,
        consume_mb_per_s: med(&|r| r.consume_throughput.mb_per_s),
        produce_p50_us: med(&|r| r.produce_latency.p50_us as f64) as u64,
        produce_p99_us: med(&|r| r.produce_latency.p99_us as f64) as u64,
        produce_p999_us: med(&|r| r.produce_latency.p999_us as f64) as u64,
        e2e_p50_us: med(&|r| r.end_to_end_latency.p50_us as f64) as u64,
        e2e_p99_us: med(&|r| r.end_to_end_latency.p99_us as f64) as u64,
        e2e_p999_us: med(&|r| r.end_to_end_latency.p999_us as f64) as u64,
        broker_cores_used: cores,
        produce_mb_per_s_per_broker_core: cores.filter(|c| *c > 0.0).map(|c| produce_mb / c),
        peak_rss_bytes: med_opt(&|r| r.broker_process.as_ref().map(|p| p.peak_rss_bytes as f64))
            .map(|v| v as u64),
        sustained: runs
            .iter()
            .map(|r| r.sustained)
            .collect::<Option<Vec<bool>>>()
            .map(|all| all.iter().all(|&s| s)),
        load_before_1m: med_opt(&|r| r.load_before.map(|l| l[0])),
        throughput_ratio_vs_baseline: None,
        e2e_p99_ratio_vs_baseline: None,
        fraction_of_loopback: limits
            .and_then(|l| l.loopback_tcp_bytes_per_s)
            .map(|limit| produce_bytes_per_s / limit),
        fraction_of_disk: limits
            .and_then(|l| l.disk_seq_write_bytes_per_s)
            .map(|limit| produce_bytes_per_s / limit),
    }
}

impl Comparison {
    /// Groups runs by (workload, broker) in first-seen order, then fills in the ratios
    /// against `brokers[0]`.
    pub fn build(brokers: Vec<String>, runs: Vec<RunResult>, limits: Option<Limits>) -> Comparison {
        let mut workloads: Vec<String> = Vec::new();
        for run in &runs {
            if !workloads.contains(&run.workload.name) {
                workloads.push(run.workload.name.clone());
            }
        }
        let mut rows = Vec::new();
        for workload in &workloads {
            let mut baseline: Option<ComparisonRow> = None;
            for broker in &brokers {
                let mine: Vec<&RunResult> = runs
                    .iter()
                    .filter(|r| &r.workload.name == workload && &r.broker == broker)
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let mut row = row_for(workload, broker, &mine, limits.as_ref());
                if let Some(base) = &baseline {
                    row.throughput_ratio_vs_baseline = (base.produce_mb_per_s > 0.0)
                        .then(|| row.produce_mb_per_s / base.produce_mb_per_s);
                    row.e2e_p99_ratio_vs_baseline = (base.e2e_p99_us > 0)
                        .then(|| row.e2e_p99_us as f64 / base.e2e_p99_us as f64);
                } else {
                    row.throughput_ratio_vs_baseline = Some(1.0);
                    row.e2e_p99_ratio_vs_baseline = Some(1.0);
                    baseline = Some(row.clone());
                }
                rows.push(row);
            }
        }
        Comparison {
            schema_version: SCHEMA_VERSION,
            brokers,
            limits,
            rows,
            runs,
        }
    }
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), HarnessError> {
    let text = serde_json::to_string_pretty(value).map_err(|err| HarnessError::Json {
        context: format!("encoding {}", path.display()),
        source: err,
    })?;
    std::fs::write(path, text).map_err(|source| HarnessError::Io {
        context: format!("writing {}", path.display()),
        source,
    })
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, HarnessError> {
    let text = std::fs::read_to_string(path).map_err(|source| HarnessError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    serde_json::from_str(&text).map_err(|err| HarnessError::Json {
        context: format!("decoding {}", path.display()),
        source: err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
