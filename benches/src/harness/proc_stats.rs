//! CPU time and memory of a process from `/proc`, so throughput can be read per broker core.
//!
//! CPU time is `utime + stime` of `/proc/PID/stat` (all threads), in clock ticks converted to
//! seconds. Peak RSS is the largest `VmRSS` seen by the sampler during the run; `VmHWM` (the
//! kernel's high-water mark since the process started) is recorded too.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
}

/// Resource use of a process over the measured window.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ProcUsage {
    pub pid: u32,
    /// CPU seconds (user + system) spent during the measured window.
    pub cpu_s: f64,
    /// `cpu_s` / window length: how many cores the process kept busy on average.
    pub cores_used: f64,
    pub peak_rss_bytes: u64,
    pub hwm_bytes: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; None once the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let stat = std::fs::read_to_string(base.join("stat")).ok()?;
    let status = std::fs::read_to_string(base.join("status")).ok()?;
    let ticks = parse_cpu_ticks(&stat)?;
    Some(ProcSample {
        cpu_s: ticks as f64 / USER_HZ,
        rss_bytes: parse_status_kb(&status, "VmRSS:").unwrap_or(0) * 1024,
        hwm_bytes: parse_status_kb(&status, "VmHWM:").unwrap_or(0) * 1024,
    })
}

/// Clock ticks per second in `/proc/PID/stat`: the kernel always reports USER_HZ there,
/// which is 100 on every Linux architecture we run on (independent of CONFIG_HZ). Asking
/// `sysconf` would need an `unsafe` FFI call, which the team keeps out of this crate.
const USER_HZ: f64 = 100.0;

/// utime + stime (fields 14 and 15) of `/proc/PID/stat`. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its closing parenthesis.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state): utime is field 14 -> index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Tracks one process over a run: CPU at the window start, peak RSS over all samples.
pub struct ProcTracker {
    pid: u32,
    window_start: Option<ProcSample>,
    peak_rss_bytes: u64,
    last: Option<ProcSample>,
}

impl ProcTracker {
    pub fn new(pid: u32) -> ProcTracker {
        ProcTracker {
            pid,
            window_start: None,
            peak_rss_bytes: 0,
            last: None,
        }
    }

    /// Takes a sample; the first call after `start_window` anchors CPU time.
    pub fn tick(&mut self) {
        if let Some(reading) = sample(self.pid) {
            self.peak_rss_bytes = self.peak_rss_bytes.max(reading.rss_bytes);
            self.last = Some(reading);
        }
    }

    pub fn start_window(&mut self) {
        self.tick();
        self.window_start = self.last;
    }

    pub fn finish(&mut self, window_s: f64) -> Option<ProcUsage> {
        self.tick();
        let (start, end) = (self.window_start?, self.last?);
        let cpu_s = (end.cpu_s - start.cpu_s).max(0.0);
        Some(ProcUsage {
            pid: self.pid,
            cpu_s,
            cores_used: cpu_s / window_s.max(1e-9),
            peak_rss_bytes: self.peak_rss_bytes,
            hwm_bytes: end.hwm_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
    }

    #[test]
    fn samples_this_process() {
        let me = sample(std::process::id()).expect("own /proc entry");
        assert!(me.rss_bytes > 0);
        assert!(me.hwm_bytes >= me.rss_bytes);
    }
}
