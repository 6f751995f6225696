//! Producer threads: each owns one librdkafka producer and sends on a schedule.
//!
//! Fixed rate (open loop): message n of a producer is *scheduled* at `n * interval`; the
//! producer sends it at that time or, when it fell behind (broker back-pressure, a full local
//! queue), as soon as it can. Produce latency runs from the scheduled time to the delivery
//! report, so a stall is charged to every message it delayed (coordinated omission corrected).
//! Maximum rate: the scheduled time is the moment of `send`, and the producer waits only when
//! librdkafka's local queue is full.
//!
//! Delivery reports are served by librdkafka's background poll thread (`ThreadedProducer`),
//! so an acknowledgement is timed when it arrives, not when the sending loop next polls.
//!
//! The scheduled time is written into the first 8 bytes of the payload so the consumer can
//! measure end-to-end latency against the same clock (producer and consumer share a process).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext};

use super::clock::RunClock;
use super::stats::{Latency, PerSecond};
use super::workload::{Workload, PAYLOAD_HEADER_BYTES};
use super::HarnessError;

/// How long the final flush may take before the remaining messages count as lost.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);

/// librdkafka's local queue per producer, unless a workload sets
/// `queue.buffering.max.kbytes` itself: 32 MiB, the Java client's `buffer.memory` default.
/// librdkafka's own default (1 GiB, capped at 100,000 messages) lets a max-rate producer
/// queue ~100 MB of 1 KiB records, so max-rate latency would mostly measure that queue and
/// the acknowledgements of the window would trail it by seconds.
const DEFAULT_QUEUE_KBYTES: &str = "32768";

/// What one producer (or all, merged) observed.
#[derive(Default)]
pub struct ProducerTally {
    /// Produce latency of messages scheduled after the warm-up.
    pub latency: Latency,
    /// Acknowledged messages and payload bytes per second of acknowledgement.
    pub acked_per_second: PerSecond,
    /// Acknowledgements that arrived after the warm-up, including those of the drain after
    /// the window (sending stops at the window's end; what is still queued is acknowledged
    /// later and belongs to the window's work).
    pub acked_after_warmup: u64,
    pub acked_bytes_after_warmup: u64,
    /// When the last acknowledgement arrived (ns on the run clock).
    pub last_ack_ns: u64,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    /// Times `send` found librdkafka's local queue full and waited (back-pressure).
    pub queue_full_waits: u64,
    /// Protocol-level retries librdkafka reported (statistics `txretries`, all brokers).
    pub retries: u64,
    /// Request errors librdkafka reported (statistics `txerrs`).
    pub request_errors: u64,
}

impl ProducerTally {
    pub fn merge(&mut self, other: &ProducerTally) {
        self.latency.merge(&other.latency);
        self.acked_per_second.merge(&other.acked_per_second);
        self.acked_after_warmup += other.acked_after_warmup;
        self.acked_bytes_after_warmup += other.acked_bytes_after_warmup;
        self.last_ack_ns = self.last_ack_ns.max(other.last_ack_ns);
        self.sent += other.sent;
        self.acked += other.acked;
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.queue_full_waits += other.queue_full_waits;
        self.retries += other.retries;
        self.request_errors += other.request_errors;
    }
}

/// Delivery reports and statistics land here, from the producer's poll thread; the sending
/// thread only takes the tally at the end, so the mutex is not contended.
struct TallyContext {
    clock: RunClock,
    warmup_ns: u64,
    tally: Mutex<ProducerTally>,
    live_acked: Arc<AtomicU64>,
}

impl ClientContext for TallyContext {
    fn stats(&self, statistics: Statistics) {
        let mut tally = self.tally.lock().expect("tally lock");
        tally.retries = statistics.brokers.values().map(|b| b.txretries).sum();
        tally.request_errors = statistics.brokers.values().map(|b| b.txerrs).sum();
    }
}

impl ProducerContext for TallyContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, scheduled_ns: usize) {
        let now_ns = self.clock.now_ns();
        let mut tally = self.tally.lock().expect("tally lock");
        match result {
            Ok(message) => {
                tally.acked += 1;
                self.live_acked.fetch_add(1, Ordering::Relaxed);
                let bytes = message.payload_len() as u64;
                tally
                    .acked_per_second
                    .add(RunClock::second_of(now_ns), 1, bytes);
                tally.last_ack_ns = tally.last_ack_ns.max(now_ns);
                if now_ns >= self.warmup_ns {
                    tally.acked_after_warmup += 1;
                    tally.acked_bytes_after_warmup += bytes;
                }
                if scheduled_ns as u64 >= self.warmup_ns {
                    let latency_us = now_ns.saturating_sub(scheduled_ns as u64) / 1_000;
                    tally.latency.record_us(latency_us);
                }
            }
            Err((err, _)) => {
                tally.failed += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(err.to_string());
                }
            }
        }
    }
}

/// librdkafka producer settings for a workload.
pub fn producer_config(bootstrap: &str, workload: &Workload) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", &workload.acks)
        .set("compression.type", &workload.compression)
        .set("enable.idempotence", workload.idempotence.to_string())
        .set("linger.ms", workload.linger_ms.to_string())
        .set("batch.size", workload.batch_size_bytes.to_string())
        .set("message.timeout.ms", "120000")
        .set("statistics.interval.ms", "1000")
        .set("queue.buffering.max.kbytes", DEFAULT_QUEUE_KBYTES);
    for (key, value) in &workload.producer_extra {
        config.set(key, value);
    }
    config
}

/// Everything a producer thread needs.
pub struct ProducerJob {
    pub index: u32,
    pub bootstrap: String,
    pub workload: Workload,
    pub topics: Vec<String>,
    pub clock: RunClock,
    /// Set when the run must stop early (Ctrl-C, a fatal error elsewhere).
    pub abort: Arc<AtomicBool>,
    /// Acknowledged messages of all producers so far, for the progress line.
    pub live_acked: Arc<AtomicU64>,
}

/// Runs one producer to the end of the run (warm-up + duration), flushes, returns its tally.
pub fn run_producer(job: ProducerJob) -> Result<ProducerTally, HarnessError> {
    let workload = &job.workload;
    let warmup_ns = workload.warmup_s * 1_000_000_000;
    let end_ns = warmup_ns + workload.duration_s * 1_000_000_000;
    let context = TallyContext {
        clock: job.clock,
        warmup_ns,
        tally: Mutex::new(ProducerTally::default()),
        live_acked: job.live_acked.clone(),
    };
    let producer: ThreadedProducer<TallyContext> = producer_config(&job.bootstrap, workload)
        .create_with_context(context)
        .map_err(|err| HarnessError::client("creating producer", err))?;
    let mut payload = filler_payload(workload.message_size_bytes, job.index);
    let interval_ns = workload.send_interval_ns();
    // Stagger producers inside one interval so a fixed rate is not sent in bursts.
    let mut next_ns = interval_ns.map_or(0, |iv| {
        iv * u64::from(job.index) / u64::from(workload.producers)
    });
    let mut sequence: u64 = 0;
    let mut queue_full_waits = 0;
    while !job.abort.load(Ordering::Relaxed) {
        let now_ns = job.clock.now_ns();
        let scheduled_ns = match interval_ns {
            None if now_ns >= end_ns => break,
            None => now_ns,
            Some(_) if next_ns >= end_ns => break,
            Some(_) if now_ns < next_ns => {
                std::thread::sleep(Duration::from_nanos(next_ns - now_ns));
                continue;
            }
            Some(interval) => {
                let scheduled = next_ns;
                next_ns += interval;
                scheduled
            }
        };
        payload[..PAYLOAD_HEADER_BYTES].copy_from_slice(&scheduled_ns.to_le_bytes());
        let topic = &job.topics[(sequence % job.topics.len() as u64) as usize];
        let key = key_for(workload, job.index, sequence);
        queue_full_waits +=
            send_until_queued(&producer, topic, key.as_deref(), &payload, scheduled_ns)?;
        sequence += 1;
    }
    let flushed = producer.flush(FLUSH_TIMEOUT);
    let mut tally = std::mem::take(&mut *producer.context().tally.lock().expect("tally lock"));
    tally.sent = sequence;
    tally.queue_full_waits = queue_full_waits;
    if let Err(err) = flushed {
        tally
            .first_error
            .get_or_insert_with(|| format!("flush: {err}"));
    }
    Ok(tally)
}

/// Key of message `sequence` of producer `index`, cycling over `key_count` keys.
fn key_for(workload: &Workload, index: u32, sequence: u64) -> Option<String> {
    if workload.key_count == 0 {
        return None;
    }
    let spread = sequence * u64::from(workload.producers) + u64::from(index);
    Some(format!("key-{}", spread % workload.key_count))
}

/// Payload bytes that do not compress to nothing (a repeated pattern would flatter the
/// compressed workloads): a cheap xorshift stream seeded by the producer index.
fn filler_payload(size: usize, seed: u32) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed);
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Printable-ish bytes: compressible about like text, as OMB's payload files are.
            b'a' + (state % 26) as u8
        })
        .collect()
}

/// Sends one record, waiting on a full local queue; returns how many times it waited.
fn send_until_queued(
    producer: &ThreadedProducer<TallyContext>,
    topic: &str,
    key: Option<&str>,
    payload: &[u8],
    scheduled_ns: u64,
) -> Result<u64, HarnessError> {
    let mut waits = 0;
    loop {
        let mut record: BaseRecord<'_, str, [u8], usize> =
            BaseRecord::with_opaque_to(topic, scheduled_ns as usize).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        match producer.send(record) {
            Ok(()) => return Ok(waits),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                waits += 1;
                // The poll thread drains delivery reports; give it a moment.
                std::thread::sleep(Duration::from_micros(200));
            }
            Err((err, _)) => return Err(HarnessError::client("producer send", err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cycle_over_the_key_space() {
        let workload = Workload {
            key_count: 3,
            producers: 2,
            ..Workload::default()
        };
        let keys: Vec<_> = (0..6).filter_map(|s| key_for(&workload, 0, s)).collect();
        assert_eq!(keys, ["key-0", "key-2", "key-1", "key-0", "key-2", "key-1"]);
        let unkeyed = Workload::default();
        assert_eq!(key_for(&unkeyed, 0, 5), None);
    }

    #[test]
    fn payload_has_the_requested_size_and_varies() {
        let payload = filler_payload(1024, 1);
        assert_eq!(payload.len(), 1024);
        assert!(
            payload
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 10
        );
    }
}
