//! Workload files (TOML), OpenMessaging-Benchmark style: one file describes topics, clients and
//! the offered load; the same file runs unchanged against every broker under test.
//!
//! Every field has a default so a file states only what it varies; `validate` rejects files
//! that cannot describe a meaningful run before any client connects.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::HarnessError;

/// How consumers get their partitions.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerMode {
    /// Explicit `assign`: each "group" is an independent set of consumers that split the
    /// partitions round-robin among themselves; no group coordinator involved.
    Assign,
    /// Kafka consumer groups (`subscribe`, coordinator-driven rebalancing).
    Group,
}

/// Offered load: a fixed target rate (open loop) or as fast as the client can send.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Rate {
    /// Send as fast as librdkafka accepts messages (closed loop on its queue).
    Max,
    /// Open loop: messages are scheduled at fixed intervals; latency is measured from the
    /// scheduled send time, so a stalled broker is charged for the messages it delayed
    /// (coordinated omission corrected).
    Fixed { messages_per_s: f64 },
    /// A fraction of the maximum *sustained* rate of the same workload shape (the latency
    /// workload). The maximum comes from `--max-rate-msgs` (bench-vs.sh passes the slowest
    /// broker's, so every broker gets the same offered load) or, without it, from a max-rate
    /// probe of `probe_s` seconds against the same broker just before the run. The sustained
    /// maximum is the lower of the produce rate and the per-group consume rate: at half of a
    /// produce-only maximum the consumers may still fall behind, and then end-to-end latency
    /// measures a growing backlog, not the broker. `resolve_rate` turns this into `Fixed`
    /// before any client starts.
    FractionOfMax {
        fraction: f64,
        #[serde(default = "default_probe_s")]
        probe_s: u64,
    },
}

fn default_probe_s() -> u64 {
    15
}

/// One workload file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    pub name: String,
    pub description: String,
    pub message_size_bytes: usize,
    pub topics: u32,
    pub partitions_per_topic: i32,
    pub producers: u32,
    /// Consumers in each consumer group (or assigned consumer set).
    pub consumers_per_group: u32,
    /// Number of consumer groups; every group reads every message (fan-out). 0 = no consumers.
    pub consumer_groups: u32,
    pub consumer_mode: ConsumerMode,
    /// Keyed records cycle through this many distinct keys; 0 = unkeyed (sticky partitioner).
    pub key_count: u64,
    /// `acks` as librdkafka takes it: "0", "1" or "all".
    pub acks: String,
    /// `compression.type`: none, gzip, snappy, lz4, zstd.
    pub compression: String,
    pub idempotence: bool,
    pub linger_ms: u32,
    pub batch_size_bytes: u32,
    pub duration_s: u64,
    /// Messages sent during the warm-up count towards produced/consumed totals but not
    /// towards latency or throughput figures.
    pub warmup_s: u64,
    pub rate: Rate,
    /// Extra librdkafka producer settings (escape hatch, recorded in the result).
    pub producer_extra: Vec<(String, String)>,
    /// Extra librdkafka consumer settings.
    pub consumer_extra: Vec<(String, String)>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: "unnamed".into(),
            description: String::new(),
            message_size_bytes: 1024,
            topics: 1,
            partitions_per_topic: 8,
            producers: 1,
            consumers_per_group: 1,
            consumer_groups: 1,
            consumer_mode: ConsumerMode::Assign,
            key_count: 0,
            acks: "all".into(),
            compression: "none".into(),
            idempotence: false,
            linger_ms: 1,
            batch_size_bytes: 131_072,
            duration_s: 30,
            warmup_s: 5,
            rate: Rate::Max,
            producer_extra: Vec::new(),
            consumer_extra: Vec::new(),
        }
    }
}

/// Bytes at the start of every payload: the scheduled send time (ns since the run's epoch),
/// which the consumer subtracts from its receipt time for the end-to-end latency.
pub const PAYLOAD_HEADER_BYTES: usize = 8;

impl Workload {
    pub fn load(path: &Path) -> Result<Workload, HarnessError> {
        let text = std::fs::read_to_string(path).map_err(|source| HarnessError::Io {
            context: format!("reading workload {}", path.display()),
            source,
        })?;
        Workload::parse(&text).map_err(|reason| HarnessError::Workload {
            path: path.display().to_string(),
            reason,
        })
    }

    pub fn parse(text: &str) -> Result<Workload, String> {
        let workload: Workload = toml::from_str(text).map_err(|err| err.to_string())?;
        workload.validate()?;
        Ok(workload)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.message_size_bytes < PAYLOAD_HEADER_BYTES {
            return Err(format!(
                "message_size_bytes must be at least {PAYLOAD_HEADER_BYTES} (the send timestamp)"
            ));
        }
        if self.topics == 0 || self.partitions_per_topic <= 0 || self.producers == 0 {
            return Err("topics, partitions_per_topic and producers must be positive".into());
        }
        if self.consumer_groups > 0 && self.consumers_per_group == 0 {
            return Err("consumers_per_group must be positive when there are groups".into());
        }
        if !matches!(self.acks.as_str(), "0" | "1" | "all" | "-1") {
            return Err(format!("acks must be 0, 1 or all, not {:?}", self.acks));
        }
        if !matches!(
            self.compression.as_str(),
            "none" | "gzip" | "snappy" | "lz4" | "zstd"
        ) {
            return Err(format!("unknown compression {:?}", self.compression));
        }
        if self.duration_s == 0 {
            return Err("duration_s must be positive".into());
        }
        match self.rate {
            Rate::Fixed { messages_per_s }
                if !(messages_per_s.is_finite() && messages_per_s > 0.0) =>
            {
                Err("rate.messages_per_s must be a positive number".into())
            }
            Rate::FractionOfMax { fraction, .. } if !(fraction > 0.0 && fraction <= 1.0) => {
                Err("rate.fraction must be in (0, 1]".into())
            }
            Rate::FractionOfMax { probe_s: 0, .. } => Err("rate.probe_s must be positive".into()),
            _ => Ok(()),
        }
    }

    /// Turns `FractionOfMax` into a fixed rate given the measured maximum (messages/s).
    pub fn resolve_rate(&mut self, max_rate_msgs: Option<f64>) -> Result<(), HarnessError> {
        if let Rate::FractionOfMax { fraction, .. } = self.rate {
            let max = max_rate_msgs
                .filter(|m| m.is_finite() && *m > 0.0)
                .ok_or_else(|| HarnessError::Workload {
                    path: self.name.clone(),
                    reason: "rate is a fraction of the maximum, but no maximum was measured".into(),
                })?;
            self.rate = Rate::Fixed {
                messages_per_s: (max * fraction).max(1.0),
            };
        }
        Ok(())
    }

    /// The max-rate probe that measures the maximum a `FractionOfMax` rate is taken from: the
    /// same shape at `Rate::Max` for `probe_s` seconds after a short warm-up. None for other
    /// rates.
    pub fn rate_probe(&self) -> Option<Workload> {
        let Rate::FractionOfMax { probe_s, .. } = self.rate else {
            return None;
        };
        Some(Workload {
            name: format!("{}-probe", self.name),
            rate: Rate::Max,
            duration_s: probe_s,
            warmup_s: self.warmup_s.min(3),
            ..self.clone()
        })
    }

    /// Total partitions over all topics.
    pub fn total_partitions(&self) -> u64 {
        u64::from(self.topics) * self.partitions_per_topic as u64
    }

    /// The per-producer interval between scheduled sends, for a fixed rate.
    pub fn send_interval_ns(&self) -> Option<u64> {
        match self.rate {
            Rate::Max | Rate::FractionOfMax { .. } => None,
            Rate::Fixed { messages_per_s } => {
                let per_producer = messages_per_s / f64::from(self.producers);
                Some((1e9 / per_producer).max(1.0) as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_unstated_fields_and_rate_parses() {
        let workload = Workload::parse(
            "name = \"x\"\nproducers = 4\n[rate]\nkind = \"fixed\"\nmessages_per_s = 1000.0\n",
        )
        .expect("valid workload");
        assert_eq!(workload.producers, 4);
        assert_eq!(workload.message_size_bytes, 1024);
        assert_eq!(workload.send_interval_ns(), Some(4_000_000));
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        assert!(Workload::parse("nmae = \"typo\"").is_err());
        assert!(Workload::parse("acks = \"2\"").is_err());
        assert!(Workload::parse("message_size_bytes = 4").is_err());
        assert!(Workload::parse("[rate]\nkind = \"fixed\"\nmessages_per_s = -1.0").is_err());
        assert!(Workload::parse("[rate]\nkind = \"fraction_of_max\"\nfraction = 1.5").is_err());
    }

    #[test]
    fn fraction_of_max_probes_the_same_shape_then_resolves_to_a_fixed_rate() {
        let mut workload = Workload::parse(
            "name = \"lat\"\nproducers = 2\nwarmup_s = 10\n[rate]\nkind = \"fraction_of_max\"\nfraction = 0.5\n",
        )
        .expect("valid workload");
        let probe = workload
            .rate_probe()
            .expect("a fraction of max needs a probe");
        assert_eq!(probe.rate, Rate::Max);
        assert_eq!(probe.duration_s, 15);
        assert_eq!(probe.warmup_s, 3);
        assert_eq!(probe.producers, 2);
        assert!(workload.resolve_rate(None).is_err());
        workload.resolve_rate(Some(10_000.0)).expect("resolves");
        assert_eq!(
            workload.rate,
            Rate::Fixed {
                messages_per_s: 5_000.0
            }
        );
        assert!(workload.rate_probe().is_none());
    }

    #[test]
    fn shipped_workloads_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
        let entries = std::fs::read_dir(&dir).expect("benches/workloads exists");
        let mut count = 0;
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                Workload::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                count += 1;
            }
        }
        assert!(
            count >= 7,
            "expected the seven shipped workloads, found {count}"
        );
    }
}
