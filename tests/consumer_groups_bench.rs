//! Numbers, not assertions (ignored by default; run with `--ignored --nocapture`):
//! how long a 3-member group takes from subscribe to every member holding its assignment,
//! against a 1-member group in the same run; and how many synchronous offset commits per
//! second one coordinator shard answers, against synchronous acks=all produce requests (the
//! same durable append path) in the same run.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kafka::{base_config, create_topic};
use common::{unique_topic, Broker};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const MEASURE: Duration = Duration::from_secs(3);

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    base_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .expect("create consumer")
}

/// Seconds from subscribe until each of `members` consumers has a non-empty assignment.
fn rebalance_seconds(bootstrap: &str, topic: &str, group: &str, members: usize) -> f64 {
    let consumers: Vec<BaseConsumer> = (0..members).map(|_| consumer(bootstrap, group)).collect();
    let start = Instant::now();
    for c in &consumers {
        c.subscribe(&[topic]).expect("subscribe");
    }
    loop {
        for c in &consumers {
            c.poll(Duration::from_millis(10));
        }
        let assigned = consumers
            .iter()
            .filter(|c| c.assignment().map(|a| a.count() > 0).unwrap_or(false))
            .count();
        if assigned == members {
            return start.elapsed().as_secs_f64();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "group never settled"
        );
    }
}

/// Runs `worker(thread index, stop, count)` on `threads` threads; after a 1 s warm-up
/// (coordinator lookup, partition load, connections) counts completions for MEASURE.
fn completions_per_second<W>(threads: usize, worker: W) -> f64
where
    W: Fn(usize, &AtomicBool, &AtomicU64) + Send + Sync + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let worker = Arc::new(worker);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (stop, count, worker) = (stop.clone(), count.clone(), worker.clone());
            std::thread::spawn(move || worker(t, &stop, &count))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let before = count.load(Ordering::Relaxed);
    std::thread::sleep(MEASURE);
    let after = count.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("worker thread");
    }
    (after - before) as f64 / MEASURE.as_secs_f64()
}

fn commits_per_second(bootstrap: &str, topic: &str, threads: usize) -> f64 {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    completions_per_second(threads, move |t, stop, count| {
        let c = consumer(&bootstrap, &format!("bench-commit-{t}"));
        let mut offset = 0;
        while !stop.load(Ordering::Relaxed) {
            offset += 1;
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(&topic, 0, Offset::Offset(offset))
                .expect("offset");
            if c.commit(&list, CommitMode::Sync).is_ok() {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// Counts acknowledged deliveries.
struct Acks(Arc<AtomicU64>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Synchronous acks=all produce requests per second (each client sends one record and waits
/// for its acknowledgement before the next): the same durable append path as a commit.
/// Polls in 1 ms steps; `flush` would poll in 100 ms steps and measure the client instead.
fn sync_produces_per_second(bootstrap: &str, topic: &str, threads: usize) -> f64 {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    completions_per_second(threads, move |t, stop, count| {
        let acked = Arc::new(AtomicU64::new(0));
        let producer: BaseProducer<Acks> = base_config(&bootstrap)
            .set("acks", "all")
            .set("linger.ms", "0")
            .create_with_context(Acks(acked.clone()))
            .expect("producer");
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let record = BaseRecord::<[u8], [u8]>::to(&topic)
                .payload(b"x")
                .partition(t as i32 % 12);
            producer.send(record).map_err(|(e, _)| e).expect("send");
            sent += 1;
            while acked.load(Ordering::Relaxed) < sent && !stop.load(Ordering::Relaxed) {
                producer.poll(Duration::from_millis(1));
            }
            count.fetch_add(1, Ordering::Relaxed);
        }
    })
}

#[test]
#[ignore = "benchmark: prints numbers"]
fn group_rebalance_time_and_commit_rate() {
    std::env::set_var("RINGLET_GROUP_INITIAL_REBALANCE_DELAY_MS", "0");
    std::env::set_var("RINGLET_OFFSETS_TOPIC_NUM_PARTITIONS", "1");
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("bench");
    create_topic(&bootstrap, &topic, 12);
    let one = rebalance_seconds(&bootstrap, &topic, "bench-one", 1);
    let three = rebalance_seconds(&bootstrap, &topic, "bench-three", 3);
    println!(
        "rebalance: 1 member {one:.3} s, 3 members {three:.3} s (ratio {:.2})",
        three / one
    );
    let produce_1 = sync_produces_per_second(&bootstrap, &topic, 1);
    let produce_8 = sync_produces_per_second(&bootstrap, &topic, 8);
    let commit_1 = commits_per_second(&bootstrap, &topic, 1);
    let commit_8 = commits_per_second(&bootstrap, &topic, 8);
    println!(
        "one coordinator shard (offsets topic has 1 partition): sync commits/s \
         1 client {commit_1:.0}, 8 clients {commit_8:.0}; baseline sync acks=all produce/s \
         1 client {produce_1:.0}, 8 clients {produce_8:.0}; ratios {:.2} and {:.2}",
        commit_1 / produce_1,
        commit_8 / produce_8
    );
}
