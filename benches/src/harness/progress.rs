//! The progress line while a run is going: elapsed/total seconds as a bar, the phase, and the
//! live produce and consume rates. On a terminal it redraws one line; otherwise (CI logs) it
//! prints a plain line every few seconds. Hand-rolled: a bar is twenty lines of code, not a
//! reason for another dependency in a lock file many engineers share.

use std::io::{IsTerminal, Write};

const BAR_WIDTH: usize = 30;
/// Without a terminal, print one line per this many seconds.
const PLAIN_EVERY_S: u64 = 5;

pub struct Progress {
    label: String,
    total_s: u64,
    warmup_s: u64,
    terminal: bool,
    last_printed_s: Option<u64>,
    last_counts: (u64, u64),
}

impl Progress {
    pub fn new(label: &str, warmup_s: u64, total_s: u64) -> Progress {
        Progress {
            label: label.to_string(),
            total_s,
            warmup_s,
            terminal: std::io::stderr().is_terminal(),
            last_printed_s: None,
            last_counts: (0, 0),
        }
    }

    /// Called often; draws at most once per elapsed second.
    pub fn update(&mut self, elapsed_s: u64, acked: u64, consumed: u64) {
        if self.last_printed_s == Some(elapsed_s) {
            return;
        }
        let since = self
            .last_printed_s
            .map_or(elapsed_s.max(1), |s| (elapsed_s - s).max(1));
        let rate = |now: u64, before: u64| (now.saturating_sub(before)) as f64 / since as f64;
        let (produce_rate, consume_rate) = (
            rate(acked, self.last_counts.0),
            rate(consumed, self.last_counts.1),
        );
        let plain_due = elapsed_s.is_multiple_of(PLAIN_EVERY_S);
        if !self.terminal && !plain_due {
            return;
        }
        self.last_printed_s = Some(elapsed_s);
        self.last_counts = (acked, consumed);
        let shown_s = elapsed_s.min(self.total_s);
        let filled = (shown_s as usize * BAR_WIDTH) / self.total_s.max(1) as usize;
        let phase = if elapsed_s < self.warmup_s {
            "warm-up"
        } else if elapsed_s < self.total_s {
            "measuring"
        } else {
            "draining"
        };
        let line = format!(
            "{} [{}{}] {:>4}/{}s {:<9} produce {:>10.0} msg/s  consume {:>10.0} msg/s",
            self.label,
            "#".repeat(filled),
            "-".repeat(BAR_WIDTH - filled),
            shown_s,
            self.total_s,
            phase,
            produce_rate,
            consume_rate
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    pub fn finish(&mut self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}
