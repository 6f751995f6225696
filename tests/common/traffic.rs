//! Background real-client traffic for the bad-input tests: one thread produces rounds of keyed
//! messages with acks=all (every round fully acknowledged), another reads them concurrently with
//! an assigned consumer and checks each message (order per partition, no duplicates, contents).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

use super::kafka::{
    assigned_consumer, create_topic, flush_and_check_all_acked, recording_producer,
    send_with_retry, CONSUME_STALL_TIMEOUT,
};
use super::unique_topic;

const PARTITIONS: i32 = 2;
const ROUND_MESSAGES: usize = 300;
/// A round (300 acknowledged messages) that takes longer than this means the client is stuck.
const ROUND_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Traffic {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    final_total: Arc<AtomicUsize>,
    producer: Option<JoinHandle<usize>>,
    consumer: Option<JoinHandle<usize>>,
}

fn value_of(index: usize) -> String {
    format!("traffic-{index}-{}", "t".repeat(index % 37))
}

impl Traffic {
    pub fn start(bootstrap: &str) -> Traffic {
        let topic = unique_topic("traffic");
        create_topic(bootstrap, &topic, PARTITIONS);
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let final_total = Arc::new(AtomicUsize::new(usize::MAX));
        let producer = {
            let (bootstrap, topic) = (bootstrap.to_string(), topic.clone());
            let (stop, rounds) = (stop.clone(), rounds.clone());
            std::thread::spawn(move || produce_rounds(&bootstrap, &topic, &stop, &rounds))
        };
        let consumer = {
            let (bootstrap, final_total) = (bootstrap.to_string(), final_total.clone());
            let rounds = rounds.clone();
            std::thread::spawn(move || consume_all(&bootstrap, &topic, &final_total, &rounds))
        };
        Traffic {
            stop,
            rounds,
            final_total,
            producer: Some(producer),
            consumer: Some(consumer),
        }
    }

    /// Waits until one more full round has been produced and acknowledged.
    pub fn wait_for_round(&self) {
        let target = self.rounds.load(Ordering::SeqCst) + 1;
        let deadline = Instant::now() + ROUND_TIMEOUT;
        while self.rounds.load(Ordering::SeqCst) < target {
            for handle in [&self.producer, &self.consumer].into_iter().flatten() {
                assert!(
                    !handle.is_finished(),
                    "a traffic thread ended early (see its panic above)"
                );
            }
            assert!(
                Instant::now() < deadline,
                "the concurrent client completed no round within {ROUND_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops producing, waits until everything acknowledged was consumed; returns a summary.
    pub fn finish(mut self) -> String {
        self.stop.store(true, Ordering::SeqCst);
        let produced = join(self.producer.take());
        self.final_total.store(produced, Ordering::SeqCst);
        let consumed = join(self.consumer.take());
        assert_eq!(
            consumed, produced,
            "the consumer read every acknowledged message"
        );
        format!("{produced} messages acknowledged and read back in order")
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.final_total.store(0, Ordering::SeqCst); // lets the consumer thread end
    }
}

/// Joins a traffic thread, re-raising its panic (the assertion that failed in it).
fn join(handle: Option<JoinHandle<usize>>) -> usize {
    match handle.expect("joined once").join() {
        Ok(count) => count,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn produce_rounds(bootstrap: &str, topic: &str, stop: &AtomicBool, rounds: &AtomicUsize) -> usize {
    let (producer, context) = recording_producer(bootstrap, &[("linger.ms", "2")]);
    let mut produced = 0;
    while !stop.load(Ordering::SeqCst) {
        for index in produced..produced + ROUND_MESSAGES {
            let key = format!("k{}", index % 10);
            let value = value_of(index);
            let record = BaseRecord::with_opaque_to(topic, index)
                .key(key.as_bytes())
                .payload(value.as_bytes());
            send_with_retry(&producer, record);
        }
        produced += ROUND_MESSAGES;
        flush_and_check_all_acked(&producer, &context, produced);
        rounds.fetch_add(1, Ordering::SeqCst);
    }
    produced
}

fn consume_all(
    bootstrap: &str,
    topic: &str,
    final_total: &AtomicUsize,
    rounds: &AtomicUsize,
) -> usize {
    let consumer = assigned_consumer(bootstrap);
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&assignment).expect("assign");
    let mut next_offset = vec![0i64; PARTITIONS as usize];
    let mut seen = HashSet::new();
    let mut last_progress = Instant::now();
    while seen.len() < final_total.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let partition = message.partition() as usize;
                assert_eq!(
                    message.offset(),
                    next_offset[partition],
                    "traffic: partition {partition} order"
                );
                next_offset[partition] += 1;
                let payload = std::str::from_utf8(message.payload().unwrap_or_default())
                    .expect("traffic payload is UTF-8");
                let index: usize = payload
                    .strip_prefix("traffic-")
                    .and_then(|rest| rest.split('-').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("traffic: corrupt payload {payload:?}"));
                assert_eq!(
                    payload,
                    value_of(index),
                    "traffic: message {index} contents"
                );
                assert!(seen.insert(index), "traffic: message {index} read twice");
                last_progress = Instant::now();
            }
            Some(Err(err)) => panic!("traffic consumer error: {err}"),
            None => {
                let acknowledged = rounds.load(Ordering::SeqCst) * ROUND_MESSAGES;
                if seen.len() >= acknowledged {
                    last_progress = Instant::now(); // caught up: waiting is not stalling
                }
                assert!(
                    last_progress.elapsed() < CONSUME_STALL_TIMEOUT,
                    "traffic consumer stalled at {} of {acknowledged} acknowledged messages",
                    seen.len()
                );
            }
        }
    }
    seen.len()
}
