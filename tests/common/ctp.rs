//! A consume-transform-produce worker pool for the exactly-once stress (issue #18, item 2):
//! each worker is a consumer-group member of the input topic with its own transactional
//! producer, and writes `out-N` for every `in-N` to the same partition of the output topic,
//! one transaction per polled batch with the input positions sent to the transaction
//! (KIP-447: the group generation fences a member that lost its partitions).
//!
//! A transaction that fails for a reason the application can recover from (a rebalance
//! fenced it, a coordinator or leader moved under it) is aborted and the member rewinds to
//! its group's committed offsets, as Kafka's own EOS examples do. A fatal error, and an
//! OUT_OF_ORDER_SEQUENCE_NUMBER in particular, fails the run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::kafka::{base_config, CLIENT_TIMEOUT};

/// Records one transaction carries at most.
const BATCH_MAX: usize = 500;

/// What all workers of a run share.
#[derive(Clone)]
pub struct Shared {
    pub bootstrap: String,
    pub source: String,
    pub sink: String,
    pub group: String,
    /// Transactions committed, by all workers.
    pub committed: Arc<AtomicUsize>,
    /// Transactions aborted after a recoverable error, by all workers.
    pub aborted: Arc<AtomicUsize>,
    /// The recoverable errors seen (for the failure message and the note).
    pub recovered: Arc<Mutex<Vec<String>>>,
    /// The longest a commit took.
    pub slowest_commit: Arc<Mutex<Duration>>,
}

/// Flags a rebalance, so a batch polled across it is dropped rather than committed with
/// positions of partitions this member may no longer own.
#[derive(Default, Clone)]
struct RebalanceFlag(Arc<AtomicBool>);

impl ClientContext for RebalanceFlag {}

impl ConsumerContext for RebalanceFlag {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A running worker; `stop` ends it after its current transaction (the member then leaves the
/// group), and its thread's panic, if any, is propagated.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn start(shared: &Shared, name: &str) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, name, flag) = (shared.clone(), name.to_string(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || run(&shared, &name, &flag))
            .expect("spawn worker");
        Worker {
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.finish();
        }
    }
}

fn consumer(shared: &Shared, flag: RebalanceFlag) -> BaseConsumer<RebalanceFlag> {
    let consumer: BaseConsumer<RebalanceFlag> = base_config(&shared.bootstrap)
        .set("group.id", &shared.group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500")
        .create_with_context(flag)
        .expect("create worker consumer");
    consumer
        .subscribe(&[&shared.source])
        .expect("subscribe to the input");
    consumer
}

fn producer(shared: &Shared, name: &str) -> BaseProducer {
    let producer: BaseProducer = base_config(&shared.bootstrap)
        .set("transactional.id", format!("{}-{name}", shared.group))
        .set("transaction.timeout.ms", "60000")
        // librdkafka requires socket.timeout.ms <= transaction.timeout.ms + 100.
        .set("socket.timeout.ms", "60000")
        .set("linger.ms", "5")
        .set("max.in.flight.requests.per.connection", "5")
        .create()
        .expect("create worker producer");
    retry_recoverable("init_transactions", || {
        producer.init_transactions(CLIENT_TIMEOUT)
    });
    producer
}

/// Retries a call whose errors are retriable (a coordinator not yet elected or moving).
fn retry_recoverable(what: &str, mut call: impl FnMut() -> KafkaResult<()>) {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        match call() {
            Ok(()) => return,
            Err(KafkaError::Transaction(err))
                if err.is_retriable() && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(err) => panic!("{what}: {err}"),
        }
    }
}

fn run(shared: &Shared, name: &str, stop: &AtomicBool) {
    let flag = RebalanceFlag::default();
    let consumer = consumer(shared, flag.clone());
    let producer = producer(shared, name);
    while !stop.load(Ordering::SeqCst) {
        flag.0.store(false, Ordering::SeqCst);
        let batch = poll_batch(&consumer);
        if batch.is_empty() {
            continue;
        }
        if flag.0.load(Ordering::SeqCst) {
            // Polled across a rebalance: the new assignment starts from committed offsets.
            rewind_to_committed(&consumer);
            continue;
        }
        match transact(shared, &consumer, &producer, &batch) {
            Ok(()) => {
                shared.committed.fetch_add(1, Ordering::SeqCst);
            }
            Err(err) => recover(shared, name, &consumer, &producer, err),
        }
    }
    consumer.unsubscribe();
}

/// Up to [`BATCH_MAX`] records of the input: `(partition, value)`.
fn poll_batch(consumer: &BaseConsumer<RebalanceFlag>) -> Vec<(i32, String)> {
    let mut batch = Vec::new();
    while batch.len() < BATCH_MAX {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let value = m.payload_view::<str>().and_then(Result::ok).unwrap_or("");
                batch.push((m.partition(), value.to_string()));
            }
            // A broker killed by the test, or a partition moving: librdkafka recovers.
            Some(Err(err)) => eprintln!("worker consumer: {err}"),
            None => break,
        }
    }
    batch
}

fn transact(
    shared: &Shared,
    consumer: &BaseConsumer<RebalanceFlag>,
    producer: &BaseProducer,
    batch: &[(i32, String)],
) -> KafkaResult<()> {
    producer.begin_transaction()?;
    for (partition, value) in batch {
        let out = value.replace("in-", "out-");
        let mut record = BaseRecord::<(), str>::to(&shared.sink)
            .partition(*partition)
            .payload(&out);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
                Err((err, _)) => return Err(err),
            }
        }
    }
    let positions = consumer.position()?;
    let metadata = consumer.group_metadata().ok_or(KafkaError::Canceled)?;
    producer.send_offsets_to_transaction(&positions, &metadata, CLIENT_TIMEOUT)?;
    let started = Instant::now();
    producer.commit_transaction(CLIENT_TIMEOUT)?;
    let took = started.elapsed();
    let mut slowest = shared.slowest_commit.lock().expect("slowest lock");
    *slowest = (*slowest).max(took);
    Ok(())
}

/// Aborts after a recoverable error and rewinds; panics on a fatal one.
fn recover(
    shared: &Shared,
    name: &str,
    consumer: &BaseConsumer<RebalanceFlag>,
    producer: &BaseProducer,
    err: KafkaError,
) {
    let text = err.to_string();
    assert!(
        !text.contains("OUT_OF_ORDER_SEQUENCE") && !text.contains("out of order"),
        "{name}: {text}"
    );
    if let KafkaError::Transaction(txn) = &err {
        assert!(!txn.is_fatal(), "{name}: fatal transaction error: {text}");
    }
    shared
        .recovered
        .lock()
        .expect("recovered lock")
        .push(format!("{name}: {text}"));
    retry_recoverable("abort_transaction", || {
        producer.abort_transaction(CLIENT_TIMEOUT)
    });
    shared.aborted.fetch_add(1, Ordering::SeqCst);
    rewind_to_committed(consumer);
}

/// Seeks every assigned partition back to the group's committed offset (the beginning when
/// none), so an aborted batch is read again. Retries while the coordinator moves: a member
/// that skipped this would lose the aborted batch's input.
fn rewind_to_committed(consumer: &BaseConsumer<RebalanceFlag>) {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        match try_rewind(consumer) {
            Ok(()) => return,
            Err(err) => {
                assert!(Instant::now() < deadline, "rewind to committed: {err}");
                eprintln!("rewind to committed: {err} (retrying)");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn try_rewind(consumer: &BaseConsumer<RebalanceFlag>) -> KafkaResult<()> {
    let assignment = consumer.assignment()?;
    if assignment.count() == 0 {
        return Ok(());
    }
    let committed = consumer.committed_offsets(assignment, CLIENT_TIMEOUT)?;
    let mut seek = TopicPartitionList::new();
    for element in committed.elements() {
        let offset = match element.offset() {
            Offset::Offset(at) => Offset::Offset(at),
            _ => Offset::Beginning,
        };
        seek.add_partition_offset(element.topic(), element.partition(), offset)?;
    }
    for element in consumer.seek_partitions(seek, CLIENT_TIMEOUT)?.elements() {
        element.error()?;
    }
    Ok(())
}

/// The group's committed offsets of `partitions` partitions of the input, asked without
/// joining the group (-1: none yet). A coordinator move is asked again.
pub fn group_offsets(shared: &Shared, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = base_config(&shared.bootstrap)
        .set("group.id", &shared.group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create offsets reader");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(&shared.source, partition);
    }
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        match consumer.committed_offsets(list.clone(), CLIENT_TIMEOUT) {
            Ok(committed) => {
                return (0..partitions)
                    .map(|p| {
                        committed
                            .find_partition(&shared.source, p)
                            .and_then(|e| e.offset().to_raw())
                            .unwrap_or(-1)
                    })
                    .collect()
            }
            Err(err) => {
                assert!(Instant::now() < deadline, "group offsets: {err}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Every value of `topic` at read_committed, from the beginning to each partition's last
/// stable offset (all transactions ended).
pub fn read_committed_values(bootstrap: &str, topic: &str, partitions: i32) -> Vec<String> {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create reader");
    // Leaders may still be moving back to their preferred replicas: retried as clients do.
    let ends: Vec<i64> = super::kafka::high_watermarks(bootstrap, topic, partitions)
        .into_values()
        .collect();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let mut values = Vec::new();
    let mut last_progress = Instant::now();
    loop {
        let positions = consumer.position().expect("position");
        let done = (0..partitions).all(|p| {
            let at = positions
                .find_partition(topic, p)
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(-1);
            ends[p as usize] == 0 || at >= ends[p as usize]
        });
        if done {
            return values;
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                values.push(
                    m.payload_view::<str>()
                        .and_then(Result::ok)
                        .unwrap_or("")
                        .to_string(),
                );
                last_progress = Instant::now();
            }
            Some(Err(err)) => eprintln!("reader: {err}"),
            None => assert!(
                last_progress.elapsed() < super::kafka::CONSUME_STALL_TIMEOUT,
                "reader of {topic} stalled at {positions:?}, ends {ends:?}"
            ),
        }
    }
}
