//! rdkafka (librdkafka) helpers shared by the integration tests: topic creation through the
//! admin API, a producer that records every delivery report, and an assigned consumer (no
//! consumer group: the broker does not serve groups yet) that reads partitions to a target.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Headers, Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

/// Deadline for one client operation (admin call, metadata, flush). Hang detector only.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// A consumer that makes no progress for this long fails the test.
pub const CONSUME_STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Client settings common to every rdkafka client in the tests.
pub fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "120000")
        .set("log_level", "6");
    config
}

/// Minimal executor for rdkafka's admin futures (rdkafka's admin client polls on its own thread;
/// the future only waits on a oneshot channel), so the tests need no async runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct ThreadWaker(Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Creates `topic` with `partitions` partitions (replication 1) and waits until metadata shows
/// every partition with a leader.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    create_replicated_topic(bootstrap, topic, partitions, 1);
}

/// Creates `topic` with `partitions` partitions of `replication_factor` replicas and waits until
/// metadata shows every partition with a leader.
pub fn create_replicated_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
) {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap)
        .create()
        .expect("create admin client");
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let replication = TopicReplication::Fixed(replication_factor);
    let new_topic = NewTopic::new(topic, partitions, replication);
    let results = block_on(admin.create_topics([&new_topic], &options))
        .unwrap_or_else(|err| panic!("CreateTopics {topic} failed: {err}"));
    for result in results {
        if let Err((name, code)) = result {
            panic!("CreateTopics: topic {name} failed with {code:?}");
        }
    }
    wait_for_partitions(bootstrap, topic, partitions);
}

/// Polls metadata until `topic` has `partitions` partitions, each with a leader and no error.
pub fn wait_for_partitions(bootstrap: &str, topic: &str, partitions: i32) {
    let producer: BaseProducer = base_config(bootstrap).create().expect("create client");
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut last: String;
    loop {
        match producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
        {
            Ok(metadata) => {
                let ready = metadata.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions()
                            .iter()
                            .all(|p| p.leader() >= 0 && p.error().is_none())
                });
                if ready {
                    return;
                }
                last = format!(
                    "{:?}",
                    metadata
                        .topics()
                        .iter()
                        .map(|t| (t.name().to_string(), t.error(), t.partitions().len()))
                        .collect::<Vec<_>>()
                );
            }
            Err(err) => last = err.to_string(),
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} never showed {partitions} led partitions; last metadata: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One delivery report: where the broker put message `index`, or the error it reported.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub index: usize,
    pub outcome: Result<(i32, i64), String>,
}

/// Producer context that records every delivery report (the message index is the opaque).
#[derive(Clone, Default)]
pub struct RecordingContext {
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl ClientContext for RecordingContext {}

impl ProducerContext for RecordingContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((err, _)) => Err(err.to_string()),
        };
        self.deliveries
            .lock()
            .expect("deliveries lock")
            .push(Delivery { index, outcome });
    }
}

impl RecordingContext {
    pub fn snapshot(&self) -> Vec<Delivery> {
        self.deliveries.lock().expect("deliveries lock").clone()
    }
}

/// A producer with acks=all that records delivery reports. `extra` overrides settings
/// (compression, linger...).
pub fn recording_producer(
    bootstrap: &str,
    extra: &[(&str, &str)],
) -> (BaseProducer<RecordingContext>, RecordingContext) {
    let context = RecordingContext::default();
    let mut config = base_config(bootstrap);
    config
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "300000")
        .set("request.timeout.ms", "120000")
        .set("linger.ms", "5");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    let producer = config
        .create_with_context(context.clone())
        .expect("create producer");
    (producer, context)
}

/// Sends with back-pressure: when librdkafka's local queue is full, serves delivery reports and
/// retries.
pub fn send_with_retry<C: ProducerContext>(
    producer: &BaseProducer<C>,
    mut record: rdkafka::producer::BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                r,
            )) => {
                record = r;
                producer.poll(Duration::from_millis(100));
            }
            Err((err, _)) => panic!("producer.send failed: {err}"),
        }
    }
}

/// Flushes and asserts that `count` delivery reports arrived and all succeeded.
pub fn flush_and_check_all_acked(
    producer: &BaseProducer<RecordingContext>,
    context: &RecordingContext,
    count: usize,
) -> Vec<Delivery> {
    producer
        .flush(Duration::from_secs(600))
        .expect("producer flush (all delivery reports within the deadline)");
    let deliveries = context.snapshot();
    let failures: Vec<&Delivery> = deliveries.iter().filter(|d| d.outcome.is_err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} messages failed delivery; first: {:?}",
        failures.len(),
        deliveries.len(),
        failures.first()
    );
    assert_eq!(deliveries.len(), count, "one delivery report per message");
    deliveries
}

/// Consumer without a consumer group (assign only, never commits).
pub fn assigned_consumer(bootstrap: &str) -> BaseConsumer {
    base_config(bootstrap)
        // librdkafka 2.12 refuses assign() without a group.id ("Local: Unknown group"); with
        // auto-commit off and no subscribe(), the group is never joined or committed to.
        .set("group.id", "ringlet-tests-assigned")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "200")
        .create()
        .expect("create consumer")
}

/// Reads `topic` partitions 0..partitions from the beginning until `expected_total` messages
/// arrived; returns them grouped by partition in the order consumed.
pub fn consume_from_beginning(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected_total: usize,
) -> HashMap<i32, Vec<OwnedMessage>> {
    let consumer = assigned_consumer(bootstrap);
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("add partition to assignment");
    }
    consumer.assign(&assignment).expect("assign partitions");
    let mut by_partition: HashMap<i32, Vec<OwnedMessage>> = HashMap::new();
    let mut total = 0;
    let mut last_progress = Instant::now();
    while total < expected_total {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                by_partition
                    .entry(message.partition())
                    .or_default()
                    .push(message.detach());
                total += 1;
                last_progress = Instant::now();
            }
            Some(Err(err)) => panic!("consumer error after {total} messages: {err}"),
            None => assert!(
                last_progress.elapsed() < CONSUME_STALL_TIMEOUT,
                "consumer stalled: {total} of {expected_total} messages from {topic}"
            ),
        }
    }
    by_partition
}

/// Header values of a message as (key, value) pairs, in order.
pub fn header_pairs(message: &OwnedMessage) -> Vec<(String, Option<Vec<u8>>)> {
    match message.headers() {
        None => Vec::new(),
        Some(headers) => headers
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect(),
    }
}

/// Produces `count` records whose key and payload are their index ("0", "1", ...), acks=all,
/// and checks every one was acknowledged.
pub fn produce_numbered(bootstrap: &str, topic: &str, count: usize) {
    let (producer, context) = recording_producer(bootstrap, &[]);
    for index in 0..count {
        let payload = index.to_string();
        let record = rdkafka::producer::BaseRecord::with_opaque_to(topic, index)
            .payload(payload.as_bytes())
            .key(payload.as_bytes());
        send_with_retry(&producer, record);
    }
    flush_and_check_all_acked(&producer, &context, count);
}

/// The payloads [`produce_numbered`] wrote.
pub fn numbered_payloads(count: usize) -> BTreeSet<String> {
    (0..count).map(|i| i.to_string()).collect()
}

/// Partition -> high watermark, for partitions `0..partitions` of `topic`. On a cluster a
/// leader may move between librdkafka's metadata and its ListOffsets (a preferred leader
/// coming back): NOT_LEADER_OR_FOLLOWER and the like are retried, as a client would.
///
/// A retry uses a new client: librdkafka's watermark query files a partition it once saw
/// without a reachable leader as unknown, and that client does not refresh the topic's
/// metadata again for minutes (`topic.metadata.refresh.interval.ms`).
pub fn high_watermarks(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let mut consumer: BaseConsumer = base_config(bootstrap).create().expect("create client");
    (0..partitions)
        .map(|p| {
            let mut last_error = String::new();
            let high = super::wait_for("a high watermark", CLIENT_TIMEOUT, || {
                match consumer.fetch_watermarks(topic, p, CLIENT_TIMEOUT) {
                    Ok((_, high)) => Some(high),
                    Err(err) if is_leader_moving(&err) => {
                        if err.to_string() != last_error {
                            last_error = err.to_string();
                            eprintln!("watermarks of {topic}-{p}: {err} (retrying)");
                        }
                        std::thread::sleep(Duration::from_millis(200));
                        consumer = base_config(bootstrap).create().expect("create client");
                        None
                    }
                    Err(err) => panic!("watermarks of {topic}-{p}: {err}"),
                }
            });
            (p, high)
        })
        .collect()
}

/// Errors of a request that raced a leader change, or met a broker whose metadata lags
/// (Kafka marks them all retriable).
fn is_leader_moving(err: &KafkaError) -> bool {
    let code = match err {
        KafkaError::MetadataFetch(code) | KafkaError::MessageConsumption(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::UnknownPartition
            | RDKafkaErrorCode::UnknownTopicOrPartition
    )
}

/// Reads partitions `0..partitions` of `topic` from the beginning up to their high watermarks
/// at the time of the call (control batches, which take offsets but are never delivered, count
/// through the consumer's position); returns the records by partition in the order consumed.
pub fn consume_to_high_watermarks(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> HashMap<i32, Vec<OwnedMessage>> {
    let targets = high_watermarks(bootstrap, topic, partitions);
    let consumer = assigned_consumer(bootstrap);
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("add partition to assignment");
    }
    consumer.assign(&assignment).expect("assign partitions");
    let mut by_partition: HashMap<i32, Vec<OwnedMessage>> = HashMap::new();
    let mut last_progress = Instant::now();
    loop {
        let positions = consumer.position().expect("consumer positions");
        let done = targets.iter().all(|(partition, high)| {
            let at = positions
                .find_partition(topic, *partition)
                .and_then(|tp| tp.offset().to_raw())
                .unwrap_or(-1);
            *high == 0 || at >= *high
        });
        if done {
            return by_partition;
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                by_partition
                    .entry(message.partition())
                    .or_default()
                    .push(message.detach());
                last_progress = Instant::now();
            }
            // A broker that was just killed may still be listed (until its session times
            // out): connecting to it fails, retriably, and librdkafka moves on.
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure))) => {
            }
            Some(Err(err)) => panic!("consumer error reading {topic}: {err}"),
            None => assert!(
                last_progress.elapsed() < CONSUME_STALL_TIMEOUT,
                "consumer stalled reading {topic} to {targets:?}; at {positions:?}"
            ),
        }
    }
}

/// Runs a group call until it succeeds, asking again while the coordinator moves (the
/// offsets partition's leader changing right after its creation is normal); any other error
/// fails the test.
pub fn retry_coordinator_moves<T>(
    what: &str,
    mut call: impl FnMut() -> rdkafka::error::KafkaResult<T>,
) -> T {
    super::wait_for(what, super::cluster::CLUSTER_TIMEOUT, || match call() {
        Ok(value) => Some(value),
        Err(err) => match err.rdkafka_error_code() {
            Some(
                rdkafka::types::RDKafkaErrorCode::NotCoordinator
                | rdkafka::types::RDKafkaErrorCode::CoordinatorLoadInProgress
                | rdkafka::types::RDKafkaErrorCode::CoordinatorNotAvailable,
            ) => {
                eprintln!("{what}: {err} (the coordinator moved, asking again)");
                std::thread::sleep(Duration::from_millis(200));
                None
            }
            _ => panic!("{what}: {err}"),
        },
    })
}
