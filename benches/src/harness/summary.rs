//! Plain-text tables for the terminal: one run's summary, and the side-by-side comparison
//! with ratios against the baseline broker and fractions of the physical limits.

use std::fmt::Write;

use super::json::{Comparison, RunResult};
use super::stats::LatencySummary;

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1_000.0)
}

fn latency_row(label: &str, l: &LatencySummary) -> String {
    format!(
        "  {label:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}   ({} samples)\n",
        ms(l.p50_us),
        ms(l.p90_us),
        ms(l.p99_us),
        ms(l.p999_us),
        ms(l.p9999_us),
        ms(l.max_us),
        l.count
    )
}

/// Multi-line summary of one run.
pub fn run_summary(run: &RunResult) -> String {
    let mut out = String::new();
    let w = &run.workload;
    let _ = writeln!(
        out,
        "{} / {} (iteration {}): {} B x {} topic(s) x {} partitions, {} producer(s), {} group(s) x {} consumer(s), acks={}, {} s + {} s warm-up",
        run.broker, w.name, run.iteration, w.message_size_bytes, w.topics, w.partitions_per_topic,
        w.producers, w.consumer_groups, w.consumers_per_group, w.acks, w.duration_s, w.warmup_s
    );
    let _ = writeln!(
        out,
        "  throughput       produce {:>10.0} msg/s {:>8.2} MB/s   consume {:>10.0} msg/s {:>8.2} MB/s",
        run.produce_throughput.messages_per_s,
        run.produce_throughput.mb_per_s,
        run.consume_throughput.messages_per_s,
        run.consume_throughput.mb_per_s
    );
    let _ = writeln!(
        out,
        "  accounting       window start to last ack: produce drain {:.2} s after the window, consume drain {:.2} s",
        run.produce_drain_s, run.consume_drain_s
    );
    if let Some(offered) = run.offered_messages_per_s {
        let _ = writeln!(
            out,
            "  offered rate     {offered:.0} msg/s -> {}",
            match run.sustained {
                Some(true) => "sustained",
                _ => "NOT sustained (latency measures a growing backlog)",
            }
        );
    }
    if let Some(probe) = &run.rate_probe {
        let _ = writeln!(
            out,
            "  rate probe       {} s at max rate: produce {:.0} msg/s, consume {:.0} msg/s per group -> max {:.0} msg/s",
            probe.probe_s,
            probe.produce_messages_per_s,
            probe.consume_messages_per_s_per_group,
            probe.max_sustained_messages_per_s
        );
    }
    if let Some(join_s) = run.group_join_s {
        let _ = writeln!(
            out,
            "  consumer groups  stable after {join_s:.2} s; assignments per group {:?}",
            run.consumed.assignments_per_group
        );
    }
    let _ = writeln!(
        out,
        "  latency ms       {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "p50", "p90", "p99", "p99.9", "p99.99", "max"
    );
    out.push_str(&latency_row("produce", &run.produce_latency));
    out.push_str(&latency_row("end-to-end", &run.end_to_end_latency));
    let p = &run.produced;
    let _ = writeln!(
        out,
        "  counts           sent {} acked {} failed {} consumed per group {:?} -> {}",
        p.sent,
        p.acked,
        p.failed,
        run.consumed.per_group,
        if run.counts_match {
            "match"
        } else {
            "MISMATCH"
        }
    );
    let _ = writeln!(
        out,
        "  errors           delivery {} request {} retries {} consumer {} queue-full waits {}",
        p.failed, p.request_errors, p.retries, run.consumed.errors, p.queue_full_waits
    );
    if let Some(e) = p.first_error.as_ref().or(run.consumed.first_error.as_ref()) {
        let _ = writeln!(out, "  first error      {e}");
    }
    if let Some(proc) = &run.broker_process {
        let _ = writeln!(
            out,
            "  broker process   pid {} cpu {:.2} s = {:.2} cores, peak RSS {:.1} MiB; {:.2} MB/s per broker core",
            proc.pid,
            proc.cpu_s,
            proc.cores_used,
            proc.peak_rss_bytes as f64 / 1_048_576.0,
            run.produce_throughput.mb_per_s / proc.cores_used.max(1e-9)
        );
    }
    if let (Some(before), Some(after)) = (
        run.broker_rss_before_bytes,
        run.broker_rss_after_delete_bytes,
    ) {
        let _ = writeln!(
            out,
            "  broker RSS       {:.1} MiB before the run, {:.1} MiB after its topics were deleted",
            before as f64 / 1_048_576.0,
            after as f64 / 1_048_576.0
        );
    }
    if let Some(proc) = &run.bench_process {
        let _ = writeln!(out, "  load generator   cpu {:.2} cores", proc.cores_used);
    }
    if let (Some(before), Some(after)) = (run.load_before, run.load_after) {
        let _ = writeln!(
            out,
            "  machine load     {:.2} {:.2} {:.2} before, {:.2} {:.2} {:.2} after (/proc/loadavg)",
            before[0], before[1], before[2], after[0], after[1], after[2]
        );
    }
    out
}

fn opt(value: Option<f64>, precision: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.precision$}"))
}

/// The comparison table: one line per (workload, broker).
pub fn comparison_table(comparison: &Comparison) -> String {
    let mut out = String::new();
    if let Some(limits) = &comparison.limits {
        let _ = writeln!(
            out,
            "physical limits: loopback TCP {} MB/s, sequential O_DIRECT write {} MB/s",
            opt(limits.loopback_tcp_bytes_per_s.map(|b| b / 1e6), 0),
            opt(limits.disk_seq_write_bytes_per_s.map(|b| b / 1e6), 0)
        );
    }
    let _ =
        writeln!(
        out,
        "{:<22} {:<10} {:>3} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>9} {:>8} {:>7} {:>7} {:>7} {:>7} {:>5} counts",
        "workload", "broker", "n", "prod msg/s", "prod MB/s", "cons MB/s", "e2e p50", "e2e p99",
        "e2e p99.9", "cores", "MB/s/core", "RSS MiB", "x tput", "x p99", "%lo", "%disk", "load"
    );
    for row in &comparison.rows {
        let _ = writeln!(
            out,
            "{:<22} {:<10} {:>3} {:>11.0} {:>9.2} {:>9.2} {:>9} {:>9} {:>9} {:>6} {:>9} {:>8} {:>7} {:>7} {:>7} {:>7} {:>5} {}{}",
            row.workload,
            row.broker,
            row.iterations,
            row.produce_messages_per_s,
            row.produce_mb_per_s,
            row.consume_mb_per_s,
            ms(row.e2e_p50_us),
            ms(row.e2e_p99_us),
            ms(row.e2e_p999_us),
            opt(row.broker_cores_used, 2),
            opt(row.produce_mb_per_s_per_broker_core, 1),
            opt(row.peak_rss_bytes.map(|b| b as f64 / 1_048_576.0), 0),
            opt(row.throughput_ratio_vs_baseline, 2),
            opt(row.e2e_p99_ratio_vs_baseline, 2),
            opt(row.fraction_of_loopback.map(|f| f * 100.0), 1),
            opt(row.fraction_of_disk.map(|f| f * 100.0), 1),
            opt(row.load_before_1m, 1),
            if row.counts_match { "ok" } else { "MISMATCH" },
            match row.sustained {
                Some(false) => " (rate NOT sustained)",
                _ => "",
            }
        );
    }
    out.push_str("(latencies in ms; x = ratio to the first broker; %lo/%disk = produce bytes/s as % of loopback TCP / O_DIRECT write; load = 1-min load average before the run)\n");
    out
}
