//! Exactly-once (#8) against the real broker binary with real librdkafka clients:
//!
//! * a consume-transform-produce loop over 3 input and 3 output partitions with
//!   `send_offsets_to_transaction`, aborts mixed with commits: read_committed sees every
//!   result exactly once, read_uncommitted sees the aborted copies too;
//! * a transactional producer killed (kill -9, a real child process) inside a transaction: the
//!   next instance with its transactional.id fences it, the open transaction is aborted and
//!   nothing of it is visible to read_committed; a live zombie's commit is refused;
//! * a broker restart in the middle of a transaction, then commit: exactly-once holds;
//! * a transaction left open past its timeout is aborted by the coordinator with a bumped
//!   epoch (DescribeTransactions / ListTransactions show it over the raw wire);
//! * the confluent-kafka (Python) transactional loop (tests/python/confluent_txn_check.py).
//!
//! Everything is checked by content (which values each isolation level returns).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kafka::{base_config, create_topic, CLIENT_TIMEOUT, CONSUME_STALL_TIMEOUT};
use common::scripts::{python, repo_root, run_python_check};
use common::{free_port, unique_topic, wait_for, wire, Broker};
use kafka_protocol::messages::{
    ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse, ListTransactionsRequest,
    ListTransactionsResponse, ResponseHeader, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;

fn transactional_producer(bootstrap: &str, transactional_id: &str) -> BaseProducer {
    let producer: BaseProducer = base_config(bootstrap)
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", "60000")
        // librdkafka requires socket.timeout.ms <= transaction.timeout.ms + 100.
        .set("socket.timeout.ms", "60000")
        .set("linger.ms", "5")
        .create()
        .expect("create transactional producer");
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    producer
}

fn send(producer: &BaseProducer, topic: &str, partition: i32, value: &str) {
    let mut record = BaseRecord::<(), str>::to(topic)
        .partition(partition)
        .payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((err, back)) => {
                assert!(
                    format!("{err}").contains("Queue full"),
                    "send {value}: {err}"
                );
                producer.poll(Duration::from_millis(50));
                record = back;
            }
        }
    }
}

/// Every value of `topic` at `isolation` ("read_committed" / "read_uncommitted"), read from
/// the beginning up to the high watermark of each partition.
fn read_values(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", format!("reader-{isolation}-{topic}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create reader");
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for partition in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
            .expect("watermarks");
        ends.insert(partition, high);
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let mut values = Vec::new();
    let mut last_progress = Instant::now();
    loop {
        let positions = consumer.position().expect("position");
        let done = (0..PARTITIONS).all(|p| {
            let end = ends[&p];
            end == 0
                || matches!(positions.find_partition(topic, p).map(|e| e.offset()),
                    Some(Offset::Offset(at)) if at >= end)
        });
        if done {
            return values;
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let value = message
                    .payload_view::<str>()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                values.push(value.to_string());
                last_progress = Instant::now();
            }
            Some(Err(err)) => panic!("reader error: {err}"),
            None => {}
        }
        // Positions move over control records and aborted data too, without messages.
        if positions.count() > 0 && last_progress.elapsed() > CONSUME_STALL_TIMEOUT {
            panic!("reader of {topic} stalled at {positions:?} (ends {ends:?}) with {values:?}");
        }
    }
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    sorted((0..count).map(|i| format!("{prefix}-{i}")).collect())
}

/// Up to `limit` records; returns early on a quiet poll once something arrived.
fn poll_batch(consumer: &BaseConsumer, limit: usize) -> Vec<(i32, String)> {
    let mut batch = Vec::new();
    let started = Instant::now();
    while batch.len() < limit {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let value = m.payload_view::<str>().and_then(Result::ok).unwrap_or("");
                batch.push((m.partition(), value.to_string()));
            }
            Some(Err(err)) => panic!("input consumer error: {err}"),
            None if !batch.is_empty() => break,
            None => assert!(
                started.elapsed() < CONSUME_STALL_TIMEOUT,
                "no input arrived"
            ),
        }
    }
    batch
}

fn rewind_to_committed(consumer: &BaseConsumer, topic: &str) {
    let committed = consumer
        .committed(CLIENT_TIMEOUT)
        .expect("committed offsets");
    for partition in 0..PARTITIONS {
        let offset = match committed
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(at)) => Offset::Offset(at),
            _ => Offset::Beginning,
        };
        consumer
            .seek(topic, partition, offset, CLIENT_TIMEOUT)
            .expect("seek back after abort");
    }
}

/// Reads `source`, writes `out-N` for every `in-N` to the same partition of `sink`, one
/// transaction per batch with the input offsets; every third transaction is aborted (its
/// records flushed to the log first) and its input read again. Returns the aborted count.
fn transform_loop(bootstrap: &str, source: &str, sink: &str, group: &str, records: usize) -> usize {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create input consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(source, partition, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign input");
    let producer = transactional_producer(bootstrap, &format!("{group}-txn"));
    let (mut done, mut aborted, mut transactions) = (0, 0, 0);
    while done < records {
        let batch = poll_batch(&consumer, 10);
        producer.begin_transaction().expect("begin");
        for (partition, value) in &batch {
            send(&producer, sink, *partition, &value.replace("in-", "out-"));
        }
        let positions = consumer.position().expect("input positions");
        let metadata = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&positions, &metadata, CLIENT_TIMEOUT)
            .expect("send_offsets_to_transaction");
        transactions += 1;
        if transactions % 3 == 0 {
            producer
                .flush(CLIENT_TIMEOUT)
                .expect("flush doomed records");
            producer.abort_transaction(CLIENT_TIMEOUT).expect("abort");
            aborted += batch.len();
            rewind_to_committed(&consumer, source);
        } else {
            producer.commit_transaction(CLIENT_TIMEOUT).expect("commit");
            done += batch.len();
        }
    }
    assert!(aborted > 0, "some transaction was aborted");
    let committed = consumer.committed(CLIENT_TIMEOUT).expect("committed");
    let offsets: BTreeMap<i32, Offset> = (0..PARTITIONS)
        .map(|p| {
            (
                p,
                committed
                    .find_partition(source, p)
                    .map(|e| e.offset())
                    .unwrap_or(Offset::Invalid),
            )
        })
        .collect();
    let per_partition = (records / PARTITIONS as usize) as i64;
    assert!(
        offsets
            .values()
            .all(|o| *o == Offset::Offset(per_partition)),
        "group offsets are the input's end: {offsets:?}"
    );
    aborted
}

#[test]
fn consume_transform_produce_is_exactly_once_for_read_committed() {
    const RECORDS: usize = 60;
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let source = unique_topic("txn-in");
    let sink = unique_topic("txn-out");
    create_topic(&bootstrap, &source, PARTITIONS);
    create_topic(&bootstrap, &sink, PARTITIONS);
    let plain: BaseProducer = base_config(&bootstrap)
        .set("acks", "all")
        .create()
        .expect("producer");
    for i in 0..RECORDS {
        send(&plain, &source, i as i32 % PARTITIONS, &format!("in-{i}"));
    }
    plain.flush(CLIENT_TIMEOUT).expect("input written");

    let aborted = transform_loop(&bootstrap, &source, &sink, &unique_topic("ctp"), RECORDS);

    let committed = read_values(&bootstrap, &sink, "read_committed");
    assert_eq!(
        sorted(committed),
        numbered("out", RECORDS),
        "read_committed: each result once"
    );
    let everything = read_values(&bootstrap, &sink, "read_uncommitted");
    assert_eq!(
        everything.len(),
        RECORDS + aborted,
        "read_uncommitted sees the aborted copies"
    );
    let distinct: BTreeSet<String> = everything.into_iter().collect();
    assert_eq!(
        distinct,
        numbered("out", RECORDS).into_iter().collect(),
        "nothing else"
    );
}

/// Starts tests/python/txn_zombie.py and waits until its transaction holds `records`
/// acknowledged records.
fn start_zombie(bootstrap: &str, transactional_id: &str, topic: &str) -> std::process::Child {
    let mut child = Command::new(python())
        .arg(repo_root().join("tests/python/txn_zombie.py"))
        .args([
            "--bootstrap",
            bootstrap,
            "--transactional-id",
            transactional_id,
        ])
        .args(["--topic", topic, "--records", "30"])
        .current_dir(repo_root())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the zombie producer");
    let stdout = child.stdout.take().expect("zombie stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.trim() == "READY" => return child,
            Some(Ok(_)) => continue,
            other => {
                let status = child.wait();
                panic!("zombie producer ended before READY: {other:?}, {status:?}");
            }
        }
    }
}

#[test]
fn a_killed_transactional_producer_is_fenced_and_its_transaction_aborted() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("txn-zombie");
    create_topic(&bootstrap, &topic, PARTITIONS);
    let transactional_id = unique_topic("zombie-id");
    let mut zombie = start_zombie(&bootstrap, &transactional_id, &topic);
    zombie.kill().expect("kill -9 the zombie");
    zombie.wait().expect("reap the zombie");

    // The new instance: init_transactions fences the old epoch and aborts its transaction.
    let producer = transactional_producer(&bootstrap, &transactional_id);
    producer.begin_transaction().expect("begin");
    for i in 0..30 {
        send(&producer, &topic, i % PARTITIONS, &format!("fresh-{i}"));
    }
    producer.commit_transaction(CLIENT_TIMEOUT).expect("commit");

    let committed = read_values(&bootstrap, &topic, "read_committed");
    assert_eq!(
        sorted(committed),
        numbered("fresh", 30),
        "nothing of the zombie is visible"
    );
    let everything = sorted(read_values(&bootstrap, &topic, "read_uncommitted"));
    let mut want = numbered("fresh", 30);
    want.extend(numbered("zombie", 30));
    assert_eq!(
        everything,
        sorted(want),
        "the zombie's records are in the log, aborted"
    );
}

#[test]
fn a_live_zombie_cannot_commit_after_a_new_instance_started() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("txn-live-zombie");
    create_topic(&bootstrap, &topic, PARTITIONS);
    let transactional_id = unique_topic("live-zombie-id");
    let old = transactional_producer(&bootstrap, &transactional_id);
    old.begin_transaction().expect("begin");
    send(&old, &topic, 0, "old-0");
    old.flush(CLIENT_TIMEOUT).expect("old record written");

    let new = transactional_producer(&bootstrap, &transactional_id);
    let refused = old.commit_transaction(CLIENT_TIMEOUT);
    let err = refused.expect_err("the fenced producer's commit must fail");
    assert!(
        matches!(&err, KafkaError::Transaction(e) if e.is_fatal()),
        "fencing is fatal for the old instance: {err}"
    );
    new.begin_transaction().expect("begin");
    send(&new, &topic, 1, "new-0");
    new.commit_transaction(CLIENT_TIMEOUT).expect("commit");
    assert_eq!(
        read_values(&bootstrap, &topic, "read_committed"),
        vec!["new-0".to_string()]
    );
}

/// A TCP forwarder on a port of its own to the broker's current port: clients keep one
/// address (the broker advertises the forwarder's) while the broker restarts on a new port.
/// Connections are forwarded byte for byte; when either side closes, both are closed.
struct Forwarder {
    port: u16,
    target: Arc<AtomicU16>,
}

impl Forwarder {
    fn start() -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the forwarder");
        let port = listener.local_addr().expect("forwarder address").port();
        let target = Arc::new(AtomicU16::new(0));
        let current = target.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let port = current.load(Ordering::SeqCst);
                if let Ok(server) = TcpStream::connect(("127.0.0.1", port)) {
                    pipe(&client, &server);
                    pipe(&server, &client);
                }
            }
        });
        Forwarder { port, target }
    }

    fn forward_to(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }
}

fn pipe(from: &TcpStream, to: &TcpStream) {
    let (mut from, mut to) = (
        from.try_clone().expect("clone stream"),
        to.try_clone().expect("clone stream"),
    );
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

#[test]
fn a_transaction_spanning_a_broker_restart_commits_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let logs = dir.path().join("logs");
    let forwarder = Forwarder::start();
    let first_port = free_port();
    forwarder.forward_to(first_port);
    let mut broker = Broker::start_advertising(&data, &logs, first_port, forwarder.port);
    let bootstrap = format!("127.0.0.1:{}", forwarder.port);
    let topic = unique_topic("txn-restart");
    create_topic(&bootstrap, &topic, PARTITIONS);
    let producer = transactional_producer(&bootstrap, &unique_topic("restart-id"));

    producer.begin_transaction().expect("begin aborted");
    for i in 0..10 {
        send(&producer, &topic, i % PARTITIONS, &format!("aborted-{i}"));
    }
    let group = unique_topic("restart-group");
    send_offsets(&producer, &bootstrap, &group, &topic, [111, 111, 111]);
    producer.flush(CLIENT_TIMEOUT).expect("flush");
    producer.abort_transaction(CLIENT_TIMEOUT).expect("abort");

    producer.begin_transaction().expect("begin");
    for i in 0..30 {
        send(&producer, &topic, i % PARTITIONS, &format!("before-{i}"));
    }
    // Pending transactional offsets on __consumer_offsets across the restart too.
    send_offsets(&producer, &bootstrap, &group, &topic, [5, 6, 7]);
    producer
        .flush(CLIENT_TIMEOUT)
        .expect("flush before the restart");
    broker.stop_graceful();
    let second_port = free_port();
    forwarder.forward_to(second_port);
    let mut broker = Broker::start_advertising(&data, &logs, second_port, forwarder.port);
    for i in 0..30 {
        send(&producer, &topic, i % PARTITIONS, &format!("after-{i}"));
    }
    assert_eq!(
        committed_offsets(&bootstrap, &group, &topic),
        vec![-1, -1, -1],
        "aborted offsets dropped, the open transaction's offsets not visible yet"
    );
    producer
        .commit_transaction(CLIENT_TIMEOUT)
        .expect("commit after the restart");

    let mut want = numbered("before", 30);
    want.extend(numbered("after", 30));
    let committed = read_values(&bootstrap, &topic, "read_committed");
    assert_eq!(
        sorted(committed),
        sorted(want.clone()),
        "exactly once across the restart"
    );
    let everything = read_values(&bootstrap, &topic, "read_uncommitted");
    want.extend(numbered("aborted", 10));
    assert_eq!(sorted(everything), sorted(want));
    assert_eq!(committed_offsets(&bootstrap, &group, &topic), vec![5, 6, 7]);
    // Replayed from the log (the COMMIT marker decides) after one more restart.
    broker.stop_graceful();
    let third_port = free_port();
    forwarder.forward_to(third_port);
    let mut broker = Broker::start_advertising(&data, &logs, third_port, forwarder.port);
    assert_eq!(committed_offsets(&bootstrap, &group, &topic), vec![5, 6, 7]);
    broker.assert_alive("after the restart test");
}

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    base_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create group consumer")
}

/// TxnOffsetCommit of `offsets` (per partition of `topic`) for `group` in the open transaction.
fn send_offsets(
    producer: &BaseProducer,
    bootstrap: &str,
    group: &str,
    topic: &str,
    offsets: [i64; 3],
) {
    let consumer = group_consumer(bootstrap, group);
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets.into_iter().enumerate() {
        list.add_partition_offset(topic, partition as i32, Offset::Offset(offset))
            .expect("offset list");
    }
    let metadata = consumer.group_metadata().expect("group metadata");
    producer
        .send_offsets_to_transaction(&list, &metadata, CLIENT_TIMEOUT)
        .expect("send_offsets_to_transaction");
}

/// The group's committed offsets of `topic` partitions 0..3 (-1: none).
/// The group's committed offsets as a read_uncommitted consumer sees them: a read_committed
/// one (librdkafka's default) asks with require_stable (KIP-447) and waits while a transaction
/// holds pending offsets, as it must, which this check of the open transaction cannot do.
fn committed_offsets(bootstrap: &str, group: &str, topic: &str) -> Vec<i64> {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_uncommitted")
        .create()
        .expect("create group consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, CLIENT_TIMEOUT)
        .expect("committed offsets");
    (0..PARTITIONS)
        .map(
            |p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(at)) => at,
                _ => -1,
            },
        )
        .collect()
}

#[test]
fn confluent_kafka_transactional_loop() {
    let mut broker = Broker::start();
    let output = run_python_check("confluent_txn_check.py", &broker.bootstrap(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ALL CHECKS PASSED"), "{stdout}");
    broker.assert_alive("after the confluent-kafka transactions");
}

/// One request/response over the raw wire (for the admin APIs rdkafka does not expose).
fn call<Req, Resp>(stream: &mut TcpStream, api_key: ApiKey, version: i16, request: &Req) -> Resp
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    wire::send(
        stream,
        &wire::request_frame(request, api_key as i16, version, 7),
    );
    let wire::Reaction::Answered(frame) = wire::read_reaction(stream, "admin request") else {
        panic!("the broker closed the connection on {api_key:?}");
    };
    let mut body = bytes::Bytes::from(frame);
    ResponseHeader::decode(&mut body, Resp::header_version(version)).expect("response header");
    Resp::decode(&mut body, version).expect("response body")
}

fn describe(stream: &mut TcpStream, transactional_id: &str) -> (String, i16, usize, i16) {
    let mut request = DescribeTransactionsRequest::default();
    request.transactional_ids = vec![TransactionalId(StrBytes::from_string(
        transactional_id.to_string(),
    ))];
    let response: DescribeTransactionsResponse =
        call(stream, ApiKey::DescribeTransactions, 0, &request);
    let state = &response.transaction_states[0];
    let partitions = state.topics.iter().map(|t| t.partitions.len()).sum();
    (
        state.transaction_state.to_string(),
        state.producer_epoch,
        partitions,
        state.error_code,
    )
}

fn listed(stream: &mut TcpStream, state: &str) -> Vec<String> {
    let mut request = ListTransactionsRequest::default();
    request.state_filters = vec![StrBytes::from_string(state.to_string())];
    let response: ListTransactionsResponse = call(stream, ApiKey::ListTransactions, 1, &request);
    assert_eq!(response.error_code, 0);
    response
        .transaction_states
        .iter()
        .map(|t| t.transactional_id.to_string())
        .collect()
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_by_the_coordinator() {
    // A short abort check so the test waits about the transaction timeout, not Kafka's 10 s.
    std::env::set_var("RINGLET_TRANSACTION_ABORT_CHECK_INTERVAL_MS", "200");
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("txn-timeout");
    create_topic(&bootstrap, &topic, PARTITIONS);
    let transactional_id = unique_topic("timeout-id");
    let producer: BaseProducer = base_config(&bootstrap)
        .set("transactional.id", &transactional_id)
        .set("transaction.timeout.ms", "3000")
        .set("socket.timeout.ms", "3000")
        .create()
        .expect("create producer");
    producer.init_transactions(CLIENT_TIMEOUT).expect("init");
    producer.begin_transaction().expect("begin");
    for i in 0..5 {
        send(&producer, &topic, i % PARTITIONS, &format!("expired-{i}"));
    }
    producer.flush(CLIENT_TIMEOUT).expect("records written");

    let mut stream = wire::connect(broker.addr());
    let (state, epoch, partitions, code) = describe(&mut stream, &transactional_id);
    assert_eq!((state.as_str(), partitions, code), ("Ongoing", 3, 0));
    assert!(listed(&mut stream, "Ongoing").contains(&transactional_id));
    assert_eq!(
        describe(&mut stream, "no-such-id").3,
        105,
        "TRANSACTIONAL_ID_NOT_FOUND"
    );

    let aborted_epoch = wait_for("the coordinator to abort", CONSUME_STALL_TIMEOUT, || {
        let (state, epoch, _, _) = describe(&mut stream, &transactional_id);
        (state == "CompleteAbort").then_some(epoch)
    });
    assert_eq!(
        aborted_epoch,
        epoch + 1,
        "the abort bumped the epoch: the producer is fenced"
    );
    assert!(listed(&mut stream, "CompleteAbort").contains(&transactional_id));
    assert!(read_values(&bootstrap, &topic, "read_committed").is_empty());
    assert_eq!(
        sorted(read_values(&bootstrap, &topic, "read_uncommitted")),
        numbered("expired", 5)
    );
    assert!(
        producer.commit_transaction(CLIENT_TIMEOUT).is_err(),
        "the timed-out producer cannot commit"
    );
}

/// The committed offset of `topic`-0 for `group` as a consumer with `isolation` sees it, asked
/// with `timeout`: Ok(None) when nothing is committed.
fn committed_with_isolation(
    bootstrap: &str,
    group: &str,
    topic: &str,
    isolation: &str,
    timeout: Duration,
) -> Result<Option<i64>, KafkaError> {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("create consumer");
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, 0);
    let committed = consumer.committed_offsets(list, timeout)?;
    Ok(
        match committed.find_partition(topic, 0).map(|e| e.offset()) {
            Some(Offset::Offset(at)) => Some(at),
            _ => None,
        },
    )
}

/// KIP-447: librdkafka's read_committed consumers send OffsetFetch with require_stable; while a
/// transaction's offset for the group awaits its marker the broker answers
/// UNSTABLE_OFFSET_COMMIT and the client keeps retrying (so its call cannot succeed), while a
/// read_uncommitted consumer is answered at once with the last stable offset. After the commit
/// both see the transaction's offset.
#[test]
fn read_committed_offset_fetch_waits_for_a_pending_transactional_offset() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("stable-offsets");
    create_topic(&bootstrap, &topic, 1);
    let group = unique_topic("stable-group");
    let producer = transactional_producer(&bootstrap, &format!("{group}-txn"));
    producer.begin_transaction().expect("begin");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, 0, Offset::Offset(7))
        .expect("offsets");
    let metadata = group_consumer(&bootstrap, &group)
        .group_metadata()
        .expect("group metadata");
    producer
        .send_offsets_to_transaction(&offsets, &metadata, CLIENT_TIMEOUT)
        .expect("send_offsets_to_transaction");

    let uncommitted = committed_with_isolation(
        &bootstrap,
        &group,
        &topic,
        "read_uncommitted",
        CLIENT_TIMEOUT,
    );
    assert_eq!(uncommitted.expect("read_uncommitted answer"), None);
    // Not a timing assertion: while the transaction is open the answer is never stable, so
    // the call fails however long it waits; without require_stable it returned None at once.
    let pending = committed_with_isolation(
        &bootstrap,
        &group,
        &topic,
        "read_committed",
        Duration::from_secs(3),
    );
    assert!(
        pending.is_err(),
        "read_committed got {pending:?} while the offset was pending"
    );

    producer.commit_transaction(CLIENT_TIMEOUT).expect("commit");
    for isolation in ["read_committed", "read_uncommitted"] {
        let stable =
            committed_with_isolation(&bootstrap, &group, &topic, isolation, CLIENT_TIMEOUT);
        assert_eq!(stable.expect("answer after commit"), Some(7), "{isolation}");
    }
}
