//! Load for the fault tests: a thread produces numbered messages with acks=all (one request
//! in flight per connection, so retries cannot reorder) and records where each acknowledged one
//! went; afterwards [`compare`] reads the topic back and reports acknowledged messages that are
//! missing (lost) and payloads stored more than once (duplicates of a retried write).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};

use super::kafka::{
    consume_to_high_watermarks, recording_producer, send_with_retry, RecordingContext,
};

/// Where each acknowledged message went: (partition, offset) -> message index.
pub type Acked = HashMap<(i32, i64), usize>;

pub struct AckedLoad {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Acked, Vec<String>)>,
}

impl AckedLoad {
    pub fn start(bootstrap: String, topic: String) -> AckedLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || produce_until(&bootstrap, &topic, &stopping));
        AckedLoad { stop, thread }
    }

    /// Stops sending, waits for every delivery report; returns the acknowledged messages.
    pub fn finish(self) -> Acked {
        let (acked, _) = self.finish_with_errors();
        acked
    }

    /// As [`AckedLoad::finish`], also returning the failed deliveries' errors.
    pub fn finish_with_errors(self) -> (Acked, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the load thread panicked")
    }
}

fn produce_until(bootstrap: &str, topic: &str, stop: &AtomicBool) -> (Acked, Vec<String>) {
    let settings = [
        ("max.in.flight.requests.per.connection", "1"),
        ("message.timeout.ms", "120000"),
        ("linger.ms", "5"),
    ];
    let (producer, context) = recording_producer(bootstrap, &settings);
    let mut index = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let payload = index.to_string();
        let record = BaseRecord::with_opaque_to(topic, index).payload(payload.as_bytes());
        send_with_retry(&producer, record);
        index += 1;
        // A steady trickle rather than a flood: the faults, not the queue, are the test.
        producer.poll(Duration::from_millis(2));
    }
    producer
        .flush(Duration::from_secs(300))
        .expect("every delivery report within the deadline");
    split_deliveries(&context)
}

/// The delivery reports `context` holds: the acknowledged messages by position, and the
/// failed deliveries' errors.
pub fn split_deliveries(context: &RecordingContext) -> (Acked, Vec<String>) {
    let mut acked = Acked::new();
    let mut errors = Vec::new();
    for delivery in context.snapshot() {
        match delivery.outcome {
            Ok(at) => {
                acked.insert(at, delivery.index);
            }
            Err(err) => errors.push(err),
        }
    }
    (acked, errors)
}

pub struct Report {
    pub acknowledged: usize,
    /// (partition, offset, message index) of acknowledged messages not found there.
    pub lost: Vec<(i32, i64, usize)>,
    /// Payloads stored more than once.
    pub duplicated: usize,
}

/// Reads `topic` to its high watermarks and compares with `acked`.
pub fn compare(bootstrap: &str, topic: &str, partitions: i32, acked: &Acked) -> Report {
    let consumed = consume_to_high_watermarks(bootstrap, topic, partitions);
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    let mut at: HashMap<(i32, i64), String> = HashMap::new();
    for message in consumed.values().flatten() {
        let payload = String::from_utf8_lossy(message.payload().unwrap_or_default()).to_string();
        *copies.entry(payload.clone()).or_default() += 1;
        at.insert((message.partition(), message.offset()), payload);
    }
    let mut lost: Vec<(i32, i64, usize)> = acked
        .iter()
        .filter(|(position, index)| at.get(position) != Some(&index.to_string()))
        .map(|((partition, offset), index)| (*partition, *offset, *index))
        .collect();
    lost.sort_unstable();
    Report {
        acknowledged: acked.len(),
        lost,
        duplicated: copies.values().filter(|count| **count > 1).count(),
    }
}
