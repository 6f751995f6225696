//! Numbers, not assertions (ignored by default; run with
//! `cargo test -p ringlet --test eos_bench -- --ignored --nocapture`): the throughput cost of
//! idempotence and of transactions against plain acks=all, measured in one run on one
//! broker: 1 KiB records, librdkafka, the same topic layout; transactions commit every 100
//! records. Each mode runs for a fixed wall time; records/s and the ratio to acks=all are
//! printed.

mod common;

use std::time::{Duration, Instant};

use common::eos_load::{producer, send, Guarantee as Mode};
use common::kafka::{create_topic, CLIENT_TIMEOUT};
use common::{unique_topic, Broker};
use std::sync::atomic::{AtomicUsize, Ordering};

use rdkafka::producer::{DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

/// Counts acknowledged records, so a transaction is committed once its records are in
/// (rust-rdkafka's flush waits for events in 100 ms steps: it would dominate the numbers).
#[derive(Default)]
struct Acks(AtomicUsize);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        assert!(result.is_ok(), "delivery failed: {result:?}");
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

const RECORD_BYTES: usize = 1024;
const PER_TRANSACTION: usize = 100;
const MEASURE: Duration = Duration::from_secs(8);
const PARTITIONS: i32 = 3;

/// Acknowledged (or committed) records per second over [`MEASURE`].
fn records_per_second(bootstrap: &str, mode: Mode) -> f64 {
    let topic = unique_topic("eos-bench");
    create_topic(bootstrap, &topic, PARTITIONS);
    let producer = producer(bootstrap, mode, Acks::default());
    let payload = vec![b'x'; RECORD_BYTES];
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < MEASURE {
        match mode {
            Mode::Transactional => {
                producer.begin_transaction().expect("begin");
                for _ in 0..PER_TRANSACTION {
                    send(&producer, &topic, PARTITIONS, sent, &payload);
                    sent += 1;
                }
                while producer.context().0.load(Ordering::Relaxed) < sent {
                    producer.poll(Duration::from_millis(1));
                }
                producer.commit_transaction(CLIENT_TIMEOUT).expect("commit");
            }
            _ => {
                for _ in 0..PER_TRANSACTION {
                    send(&producer, &topic, PARTITIONS, sent, &payload);
                    sent += 1;
                }
                producer.poll(Duration::ZERO);
            }
        }
    }
    producer.flush(CLIENT_TIMEOUT).expect("flush");
    sent as f64 / start.elapsed().as_secs_f64()
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn idempotence_and_transactions_against_acks_all() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    // Warm-up (topic creation paths, coordinator topics, page cache), not reported.
    records_per_second(&bootstrap, Mode::Transactional);
    let baseline = records_per_second(&bootstrap, Mode::AcksAll);
    let idempotent = records_per_second(&bootstrap, Mode::Idempotent);
    let transactional = records_per_second(&bootstrap, Mode::Transactional);
    println!("1 KiB records, {PARTITIONS} partitions, {MEASURE:?} per mode, one broker, one run");
    println!("acks=all (baseline):   {baseline:>10.0} records/s  1.00");
    println!(
        "idempotent:            {idempotent:>10.0} records/s  {:.2}",
        idempotent / baseline
    );
    println!(
        "transactional (100/tx): {transactional:>9.0} records/s  {:.2}",
        transactional / baseline
    );
}
