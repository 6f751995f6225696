//! The self-contained HTML report: inline SVG charts drawn here (no scripts, no CDN), so the
//! file opens anywhere and can be attached to an issue as is.
//!
//! Per workload: the end-to-end and produce latency percentile curves (HdrHistogram style:
//! x = percentile on a log scale of 1 / (1 - q), y = latency on a log scale), throughput over
//! time, then the side-by-side table with ratios and fractions of the physical limits.

use std::fmt::Write;

use super::json::{Comparison, RunResult};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const MARGIN_LEFT: f64 = 64.0;
const MARGIN_BOTTOM: f64 = 40.0;
const MARGIN_TOP: f64 = 28.0;
const MARGIN_RIGHT: f64 = 150.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One line of a chart, points already in plot space (logs taken by the caller).
struct Series {
    name: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

struct Axis {
    label: String,
    ticks: Vec<(f64, String)>,
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn bounds(
    series: &[Series],
    ticks_x: &[(f64, String)],
    ticks_y: &[(f64, String)],
) -> (f64, f64, f64, f64) {
    let xs = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .chain(ticks_x.iter().map(|t| t.0));
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(ticks_y.iter().map(|t| t.0));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let widen = |lo: f64, hi: f64| {
        if hi > lo {
            (lo, hi)
        } else {
            (lo - 1.0, lo + 1.0)
        }
    };
    let (x0, x1) = widen(x0, x1);
    let (y0, y1) = widen(y0, y1);
    (x0, x1, y0, y1)
}

fn svg_chart(title: &str, series: &[Series], x: &Axis, y: &Axis) -> String {
    if series.iter().all(|s| s.points.is_empty()) {
        return format!("<p class=\"empty\">{}: no data</p>", escape(title));
    }
    let (x0, x1, y0, y1) = bounds(series, &x.ticks, &y.ticks);
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let px = |v: f64| MARGIN_LEFT + (v - x0) / (x1 - x0) * plot_w;
    let py = |v: f64| MARGIN_TOP + plot_h - (v - y0) / (y1 - y0) * plot_h;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"{MARGIN_LEFT}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        escape(title)
    );
    let _ = write!(
        svg,
        "<rect x=\"{MARGIN_LEFT}\" y=\"{MARGIN_TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#999\"/>"
    );
    for (value, label) in &x.ticks {
        let xpos = px(*value);
        let _ = write!(
            svg,
            "<line x1=\"{xpos:.1}\" y1=\"{MARGIN_TOP}\" x2=\"{xpos:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>\
             <text x=\"{xpos:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            MARGIN_TOP + plot_h,
            MARGIN_TOP + plot_h + 14.0,
            escape(label)
        );
    }
    for (value, label) in &y.ticks {
        let ypos = py(*value);
        let _ = write!(
            svg,
            "<line x1=\"{MARGIN_LEFT}\" y1=\"{ypos:.1}\" x2=\"{:.1}\" y2=\"{ypos:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            MARGIN_LEFT + plot_w,
            MARGIN_LEFT - 4.0,
            ypos + 4.0,
            escape(label)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{}</text>",
        MARGIN_LEFT + plot_w / 2.0,
        HEIGHT - 6.0,
        escape(&x.label),
        MARGIN_TOP + plot_h / 2.0,
        MARGIN_TOP + plot_h / 2.0,
        escape(&y.label)
    );
    for (index, s) in series.iter().enumerate() {
        let path: Vec<String> = s
            .points
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", px(*a), py(*b)))
            .collect();
        let dash = if s.dashed {
            " stroke-dasharray=\"5,3\""
        } else {
            ""
        };
        let legend_y = MARGIN_TOP + 12.0 + index as f64 * 14.0;
        let legend_x = MARGIN_LEFT + plot_w + 8.0;
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\"{dash} points=\"{}\"/>\
             <line x1=\"{legend_x}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"2\"{dash}/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            s.color,
            path.join(" "),
            legend_y - 4.0,
            legend_x + 18.0,
            legend_y - 4.0,
            s.color,
            legend_x + 22.0,
            legend_y,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// x position of quantile q on the "nines" scale: log10(1 / (1 - q)), capped at six nines.
fn nines(q: f64) -> f64 {
    (1.0 / (1.0 - q).max(1e-6)).log10()
}

fn percentile_axis() -> Axis {
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"];
    Axis {
        label: "percentile".into(),
        ticks: labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i as f64, l.to_string()))
            .collect(),
    }
}

/// Powers of ten spanning the data (values already log10 of milliseconds).
fn log_ms_axis(series: &[Series]) -> Axis {
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else {
        (lo.floor(), hi.ceil().max(lo.floor() + 1.0))
    };
    let ticks = (lo as i32..=hi as i32)
        .map(|e| {
            let value = 10f64.powi(e);
            let label = if e < 0 {
                format!("{value:.e$}", e = (-e) as usize)
            } else {
                format!("{value:.0}")
            };
            (f64::from(e), label)
        })
        .collect();
    Axis {
        label: "latency (ms, log scale)".into(),
        ticks,
    }
}

fn color_of(brokers: &[String], broker: &str) -> &'static str {
    let index = brokers.iter().position(|b| b == broker).unwrap_or(0);
    COLORS[index % COLORS.len()]
}

fn latency_chart(title: &str, runs: &[&RunResult], brokers: &[String], end_to_end: bool) -> String {
    let series: Vec<Series> = runs
        .iter()
        .map(|run| {
            let summary = if end_to_end {
                &run.end_to_end_latency
            } else {
                &run.produce_latency
            };
            Series {
                name: format!("{} #{}", run.broker, run.iteration),
                color: color_of(brokers, &run.broker),
                dashed: run.iteration % 2 == 0,
                points: summary
                    .curve
                    .iter()
                    .map(|(q, us)| (nines(*q), (*us.max(&1) as f64 / 1_000.0).log10()))
                    .collect(),
            }
        })
        .collect();
    let y = log_ms_axis(&series);
    svg_chart(title, &series, &percentile_axis(), &y)
}

fn throughput_chart(title: &str, runs: &[&RunResult], brokers: &[String]) -> String {
    let series: Vec<Series> = runs
        .iter()
        .map(|run| Series {
            name: format!("{} #{}", run.broker, run.iteration),
            color: color_of(brokers, &run.broker),
            dashed: run.iteration % 2 == 0,
            points: run
                .produce_per_second
                .bytes
                .iter()
                .enumerate()
                .map(|(second, bytes)| (second as f64, *bytes as f64 / 1e6))
                .collect(),
        })
        .collect();
    let max_s = series
        .iter()
        .map(|s| s.points.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let max_mb = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let step_s = (max_s / 8).max(1);
    let x = Axis {
        label: "second of run (warm-up included)".into(),
        ticks: (0..=max_s)
            .step_by(step_s)
            .map(|s| (s as f64, s.to_string()))
            .collect(),
    };
    let y = Axis {
        label: "produce MB/s (acknowledged)".into(),
        ticks: (0..=4)
            .map(|i| {
                (
                    max_mb * f64::from(i) / 4.0,
                    format!("{:.1}", max_mb * f64::from(i) / 4.0),
                )
            })
            .collect(),
    };
    svg_chart(title, &series, &x, &y)
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:12px}\
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}\
.bad{color:#c00;font-weight:bold}.charts{display:flex;flex-wrap:wrap;gap:8px}";

fn fmt_opt(value: Option<f64>, precision: usize) -> String {
    value.map_or("&ndash;".into(), |v| format!("{v:.precision$}"))
}

fn limits_section(comparison: &Comparison) -> String {
    let Some(limits) = &comparison.limits else {
        return "<p>Physical limits were not measured in this run.</p>".into();
    };
    let mut html = format!(
        "<h2>Physical limits (same run)</h2><table><tr><th class=\"l\">limit</th><th>MB/s</th></tr>\
         <tr><td class=\"l\">loopback TCP (iperf3)</td><td>{}</td></tr>\
         <tr><td class=\"l\">sequential O_DIRECT write (fio)</td><td>{}</td></tr></table>",
        fmt_opt(limits.loopback_tcp_bytes_per_s.map(|b| b / 1e6), 0),
        fmt_opt(limits.disk_seq_write_bytes_per_s.map(|b| b / 1e6), 0)
    );
    for note in &limits.notes {
        let _ = write!(html, "<p>{}</p>", escape(note));
    }
    html
}

fn comparison_table(comparison: &Comparison) -> String {
    let mut html = String::from(
        "<h2>Side by side</h2><p>Median over iterations. Ratios are against the first broker \
         (the baseline of the same run); fractions compare produce bytes/s with the physical limits.</p>\
         <table><tr><th class=\"l\">workload</th><th class=\"l\">broker</th><th>n</th><th>produce msg/s</th>\
         <th>produce MB/s</th><th>consume MB/s</th><th>produce p50 ms</th><th>produce p99 ms</th>\
         <th>e2e p50 ms</th><th>e2e p99 ms</th><th>e2e p99.9 ms</th><th>broker cores</th>\
         <th>MB/s per core</th><th>peak RSS MiB</th><th>throughput ratio</th><th>e2e p99 ratio</th>\
         <th>% loopback</th><th>% disk</th><th>counts</th></tr>",
    );
    for row in &comparison.rows {
        let ms = |us: u64| format!("{:.2}", us as f64 / 1_000.0);
        let _ = write!(
            html,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td{}>{}</td></tr>",
            escape(&row.workload),
            escape(&row.broker),
            row.iterations,
            row.produce_messages_per_s,
            row.produce_mb_per_s,
            row.consume_mb_per_s,
            ms(row.produce_p50_us),
            ms(row.produce_p99_us),
            ms(row.e2e_p50_us),
            ms(row.e2e_p99_us),
            ms(row.e2e_p999_us),
            fmt_opt(row.broker_cores_used, 2),
            fmt_opt(row.produce_mb_per_s_per_broker_core, 1),
            fmt_opt(row.peak_rss_bytes.map(|b| b as f64 / 1_048_576.0), 0),
            fmt_opt(row.throughput_ratio_vs_baseline, 2),
            fmt_opt(row.e2e_p99_ratio_vs_baseline, 2),
            fmt_opt(row.fraction_of_loopback.map(|f| f * 100.0), 1),
            fmt_opt(row.fraction_of_disk.map(|f| f * 100.0), 1),
            if row.counts_match { "" } else { " class=\"bad\"" },
            if row.counts_match { "ok" } else { "MISMATCH" }
        );
    }
    html.push_str("</table>");
    html
}

fn runs_table(runs: &[&RunResult]) -> String {
    let mut html = String::from(
        "<table><tr><th class=\"l\">broker</th><th>#</th><th>sent</th><th>acked</th><th>failed</th>\
         <th>consumed per group</th><th>retries</th><th>request errors</th><th>consumer errors</th>\
         <th>e2e p99.99 ms</th><th>e2e max ms</th><th>load generator cores</th></tr>",
    );
    for run in runs {
        let _ = write!(
            html,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td></tr>",
            escape(&run.broker),
            run.iteration,
            run.produced.sent,
            run.produced.acked,
            run.produced.failed,
            run.consumed.per_group,
            run.produced.retries,
            run.produced.request_errors,
            run.consumed.errors,
            run.end_to_end_latency.p9999_us as f64 / 1_000.0,
            run.end_to_end_latency.max_us as f64 / 1_000.0,
            fmt_opt(run.bench_process.as_ref().map(|p| p.cores_used), 2)
        );
    }
    html.push_str("</table>");
    html
}

fn workload_section(name: &str, comparison: &Comparison) -> String {
    let runs: Vec<&RunResult> = comparison
        .runs
        .iter()
        .filter(|r| r.workload.name == name)
        .collect();
    let Some(first) = runs.first() else {
        return String::new();
    };
    let w = &first.workload;
    let rate = match &w.rate {
        super::workload::Rate::Max => "maximum rate".to_string(),
        super::workload::Rate::Fixed { messages_per_s } => {
            format!("fixed {messages_per_s:.0} msg/s")
        }
        super::workload::Rate::FractionOfMax { fraction, .. } => format!("{fraction} of maximum"),
    };
    let brokers = &comparison.brokers;
    format!(
        "<h2>{}</h2><p>{} &mdash; {} B messages, {} topic(s) &times; {} partitions, {} producer(s), \
         {} group(s) &times; {} consumer(s) ({:?}), keys {}, acks={}, compression {}, linger {} ms, \
         {rate}, {} s measured after {} s warm-up.</p><div class=\"charts\">{}{}{}</div>{}",
        escape(name),
        escape(&w.description),
        w.message_size_bytes,
        w.topics,
        w.partitions_per_topic,
        w.producers,
        w.consumer_groups,
        w.consumers_per_group,
        w.consumer_mode,
        w.key_count,
        escape(&w.acks),
        escape(&w.compression),
        w.linger_ms,
        w.duration_s,
        w.warmup_s,
        latency_chart("end-to-end latency", &runs, brokers, true),
        latency_chart("produce latency (send to ack)", &runs, brokers, false),
        throughput_chart("produce throughput over time", &runs, brokers),
        runs_table(&runs)
    )
}

/// The whole report page.
pub fn render(comparison: &Comparison) -> String {
    let mut workloads: Vec<&str> = Vec::new();
    for run in &comparison.runs {
        if !workloads.contains(&run.workload.name.as_str()) {
            workloads.push(&run.workload.name);
        }
    }
    let mut html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ringlet-bench report</title>\
         <style>{STYLE}</style></head><body><h1>ringlet-bench: {}</h1>\
         <p>Generated by <code>ringlet-bench report</code> from {} run(s). Latency percentiles are \
         coordinated-omission corrected for fixed-rate workloads (measured from the scheduled send time).</p>",
        escape(&comparison.brokers.join(" vs ")),
        comparison.runs.len()
    );
    html.push_str(&limits_section(comparison));
    html.push_str(&comparison_table(comparison));
    for name in workloads {
        html.push_str(&workload_section(name, comparison));
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_scale_places_percentiles_one_unit_apart() {
        assert!((nines(0.0) - 0.0).abs() < 1e-9);
        assert!((nines(0.99) - 2.0).abs() < 1e-9);
        assert!((nines(0.999) - 3.0).abs() < 1e-6);
    }

    #[test]
    fn chart_escapes_labels_and_draws_every_series() {
        let series = vec![
            Series {
                name: "a<b".into(),
                color: COLORS[0],
                dashed: false,
                points: vec![(0.0, 0.0), (1.0, 1.0)],
            },
            Series {
                name: "c".into(),
                color: COLORS[1],
                dashed: true,
                points: vec![(0.0, 1.0), (1.0, 2.0)],
            },
        ];
        let axis = Axis {
            label: "x".into(),
            ticks: vec![(0.0, "0".into())],
        };
        let svg = svg_chart("t", &series, &axis, &axis);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b"));
        assert!(!svg.contains("NaN"));
    }
}
