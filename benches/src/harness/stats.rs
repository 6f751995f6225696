//! Latency histograms and per-second counters, and their summaries for the result file.
//!
//! Latencies are recorded in microseconds in an HdrHistogram (3 significant digits, up to one
//! hour), one histogram per client thread, merged at the end so recording never contends.
//! Throughput over time is kept as counts per whole second since the run's epoch.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram can hold; larger values are clamped (and still counted).
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds.
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    pub fn new() -> Latency {
        let histogram = Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
            .expect("static histogram bounds are valid");
        Latency { histogram }
    }

    pub fn record_us(&mut self, value_us: u64) {
        self.histogram
            .saturating_record(value_us.clamp(1, LATENCY_MAX_US));
    }

    pub fn merge(&mut self, other: &Latency) {
        // Both histograms share the same static bounds, so adding cannot fail.
        self.histogram
            .add(&other.histogram)
            .expect("histograms with equal bounds merge");
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    pub fn summary(&self) -> LatencySummary {
        let h = &self.histogram;
        let at = |q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        LatencySummary {
            count: h.len(),
            mean_us: if h.is_empty() { 0.0 } else { h.mean() },
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            p999_us: at(0.999),
            p9999_us: at(0.9999),
            max_us: if h.is_empty() { 0 } else { h.max() },
            curve: percentile_curve(h),
        }
    }
}

/// Percentiles of one latency distribution, plus the curve the report plots.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub p9999_us: u64,
    pub max_us: u64,
    /// (quantile, latency_us) points, quantiles spaced evenly in log(1 / (1 - q)) from 0 to
    /// 0.999999: the HdrHistogram percentile plot.
    pub curve: Vec<(f64, u64)>,
}

/// Ten points per decade of 1 / (1 - q), up to six nines, then the maximum.
fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut curve: Vec<(f64, u64)> = (0..=60)
        .map(|step| {
            let q = 1.0 - 10f64.powf(-f64::from(step) / 10.0);
            (q, h.value_at_quantile(q))
        })
        .collect();
    curve.push((1.0, h.max()));
    curve
}

/// Counts per whole second since the run's epoch (messages and bytes).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct PerSecond {
    pub messages: Vec<u64>,
    pub bytes: Vec<u64>,
}

impl PerSecond {
    pub fn add(&mut self, second: usize, messages: u64, bytes: u64) {
        if self.messages.len() <= second {
            self.messages.resize(second + 1, 0);
            self.bytes.resize(second + 1, 0);
        }
        self.messages[second] += messages;
        self.bytes[second] += bytes;
    }

    pub fn merge(&mut self, other: &PerSecond) {
        for second in 0..other.messages.len() {
            self.add(second, other.messages[second], other.bytes[second]);
        }
    }

    /// Messages and bytes in the whole seconds [from_s, to_s).
    pub fn window_totals(&self, from_s: usize, to_s: usize) -> (u64, u64) {
        let end = to_s.min(self.messages.len());
        let start = from_s.min(end);
        (
            self.messages[start..end].iter().sum(),
            self.bytes[start..end].iter().sum(),
        )
    }
}

/// Throughput over the measured window.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Throughput {
    pub messages_per_s: f64,
    pub mb_per_s: f64,
}

impl Throughput {
    pub fn over(per_second: &PerSecond, from_s: usize, to_s: usize) -> Throughput {
        let seconds = to_s.saturating_sub(from_s).max(1) as f64;
        let (messages, bytes) = per_second.window_totals(from_s, to_s);
        Throughput {
            messages_per_s: messages as f64 / seconds,
            mb_per_s: bytes as f64 / seconds / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut latency = Latency::new();
        for value in 1..=10_000u64 {
            latency.record_us(value);
        }
        let summary = latency.summary();
        assert_eq!(summary.count, 10_000);
        // HdrHistogram with 3 significant digits: within 0.1 %.
        assert!(
            (4995..=5005).contains(&summary.p50_us),
            "{}",
            summary.p50_us
        );
        assert!(
            (9895..=9905).contains(&summary.p99_us),
            "{}",
            summary.p99_us
        );
        assert!(
            (9995..=10_010).contains(&summary.max_us),
            "{}",
            summary.max_us
        );
        assert!(summary.curve.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn merged_histograms_count_both() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        a.record_us(10);
        b.record_us(1_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert!(a.summary().max_us >= 1_000);
    }

    #[test]
    fn per_second_windows_exclude_warmup() {
        let mut counts = PerSecond::default();
        counts.add(0, 100, 1_000);
        counts.add(2, 50, 500);
        counts.add(3, 50, 500);
        assert_eq!(counts.window_totals(1, 4), (100, 1_000));
        let throughput = Throughput::over(&counts, 2, 4);
        assert_eq!(throughput.messages_per_s, 50.0);
    }
}
