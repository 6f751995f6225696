//! `ringlet-bench`: an OpenMessaging-Benchmark-style load generator for any Kafka-compatible
//! broker, driving it through librdkafka (the `rdkafka` crate) so the figures are what users
//! get.
//!
//! The model: a workload file ([`workload`]) fixes topics, clients and the offered load; a
//! run ([`run`]) creates fresh topics, starts producer threads ([`producer`]) and consumer
//! threads ([`consumer`]), samples the broker process from `/proc` ([`proc_stats`]), and
//! turns per-thread histograms and per-second counters ([`stats`]) into one `RunResult`
//! ([`json`]). `report` merges many runs (several brokers, alternating iterations) and the
//! machine's physical limits into a comparison and a self-contained HTML page
//! ([`report_html`]).

pub mod admin;
pub mod clock;
pub mod consumer;
pub mod json;
pub mod limits;
pub mod proc_stats;
pub mod producer;
pub mod progress;
pub mod report_html;
pub mod run;
pub mod stats;
pub mod summary;
pub mod workload;

/// Everything that can stop a benchmark run, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Json {
        context: String,
        source: serde_json::Error,
    },
    #[error("workload {path}: {reason}")]
    Workload { path: String, reason: String },
    #[error("kafka client, {context}: {reason}")]
    Client { context: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl HarnessError {
    pub fn client(context: &str, err: impl std::fmt::Display) -> HarnessError {
        HarnessError::Client {
            context: context.to_string(),
            reason: err.to_string(),
        }
    }
}
