//! Exactly-once on a 3-broker cluster, with real librdkafka clients and real broker processes:
//!
//! * a consume-transform-produce loop whose output partitions are led by several brokers, so
//!   the coordinator's markers travel between brokers; aborts mixed with commits, offsets
//!   committed through `send_offsets_to_transaction` to a replicated `__consumer_offsets`;
//! * the coordinator's broker killed (SIGKILL) inside a transaction: the leader of its
//!   `__transaction_state` partition elsewhere loads the state and the commit completes;
//! * a producer gone inside a transaction and its coordinator killed: the new coordinator
//!   aborts the orphaned transaction when it times out, so read_committed moves past it.
//!
//! Everything is checked by content: which values each isolation level returns.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cluster::{Cluster, CLUSTER_TIMEOUT};
use common::kafka::{
    base_config, create_replicated_topic, retry_coordinator_moves, send_with_retry, CLIENT_TIMEOUT,
    CONSUME_STALL_TIMEOUT,
};
use common::{unique_topic, wait_for, wire};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, ResponseHeader, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;
const TXN_TOPIC: &str = "__transaction_state";
const FIND_COORDINATOR_KEY: i16 = 10;
const DESCRIBE_TRANSACTIONS_KEY: i16 = 65;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Creates `topic` (3 partitions, RF 3) and waits until every replica is in sync and each
/// partition is led by its preferred replica (placement spreads those over the brokers; the
/// first elections need not); returns the partition leaders.
fn replicated_topic(cluster: &mut Cluster, topic: &str) -> Vec<i32> {
    create_replicated_topic(&cluster.bootstrap(), topic, PARTITIONS, 3);
    let leaders: Vec<i32> = (0..PARTITIONS)
        .map(|p| {
            let what = format!("{topic}-{p} led by its preferred replica, all in sync");
            wait_for(&what, CLUSTER_TIMEOUT, || {
                let view = cluster.wait_for_partition(topic, p, |isr| isr.len() == 3);
                (view.replicas.first() == Some(&view.leader)).then_some(view.leader)
            })
        })
        .collect();
    eprintln!("{topic}: partition leaders {leaders:?}");
    leaders
}

fn transactional_producer(
    bootstrap: &str,
    transactional_id: &str,
    timeout_ms: u32,
) -> BaseProducer {
    let producer: BaseProducer = base_config(bootstrap)
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", timeout_ms.to_string())
        // librdkafka requires socket.timeout.ms <= transaction.timeout.ms + 100.
        .set("socket.timeout.ms", timeout_ms.to_string())
        .set("linger.ms", "5")
        .create()
        .expect("create transactional producer");
    producer
        .init_transactions(CLIENT_TIMEOUT)
        .expect("init_transactions");
    producer
}

/// Sends `prefix-0..count` round-robin over the partitions.
fn send_numbered(producer: &BaseProducer, topic: &str, prefix: &str, count: usize) {
    for i in 0..count {
        let value = format!("{prefix}-{i}");
        let record = BaseRecord::to(topic).partition(i as i32 % PARTITIONS);
        send_with_retry(producer, record.payload(value.as_bytes()));
    }
}

/// A consumer of `topic` from the beginning (assigned, never committing).
fn reader(bootstrap: &str, topic: &str, group: &str, isolation: &str) -> BaseConsumer {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let from_beginning = assignment.add_partition_offset(topic, p, Offset::Beginning);
        from_beginning.expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// The offsets of partitions 0..PARTITIONS of `topic` in `list` (-1: none).
fn offsets_of(list: &TopicPartitionList, topic: &str) -> Vec<i64> {
    let offset = |p| {
        list.find_partition(topic, p)
            .and_then(|e| e.offset().to_raw())
    };
    (0..PARTITIONS).map(|p| offset(p).unwrap_or(-1)).collect()
}

/// Runs a transactional call until it succeeds, retrying what librdkafka calls retriable (a
/// coordinator that moved, a request that timed out). An error that requires an abort, or a
/// fatal one, fails the test.
fn retry_txn(producer: &BaseProducer, what: &str, mut call: impl FnMut() -> KafkaResult<()>) {
    wait_for(what, CLUSTER_TIMEOUT, || match call() {
        Ok(()) => Some(()),
        Err(KafkaError::Transaction(err)) if err.txn_requires_abort() => {
            let aborted = producer.abort_transaction(CLIENT_TIMEOUT);
            panic!("{what}: the transaction must be aborted: {err} (abort: {aborted:?})");
        }
        Err(KafkaError::Transaction(err)) if err.is_retriable() => {
            eprintln!("{what}: {err} (retriable, retrying)");
            None
        }
        Err(err) => panic!("{what}: {err}"),
    });
}

/// The group's committed offsets. librdkafka hands a coordinator move (the offsets partition's
/// leader changing) to the caller of `committed()`; like an application, the test asks again.
fn committed_offsets(consumer: &BaseConsumer) -> TopicPartitionList {
    retry_coordinator_moves("the committed offsets", || {
        consumer.committed(CLIENT_TIMEOUT)
    })
}

fn commit(producer: &BaseProducer, what: &str) {
    retry_txn(producer, what, || {
        producer.commit_transaction(CLIENT_TIMEOUT)
    });
}

/// One request over the raw wire; None when the broker is down or closes the connection.
fn raw_call<Req, Resp>(addr: SocketAddr, key: i16, version: i16, request: &Req) -> Option<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(wire::READ_TIMEOUT)).ok()?;
    wire::send(&mut stream, &wire::request_frame(request, key, version, 1));
    let wire::Reaction::Answered(body) = wire::read_reaction(&mut stream, "raw request") else {
        return None;
    };
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, Resp::header_version(version)).ok()?;
    Resp::decode(&mut body, version).ok()
}

/// The transaction coordinator node `asked` names for `transactional_id` (-1: none, or no
/// answer).
fn find_coordinator(cluster: &Cluster, asked: i32, transactional_id: &str) -> i32 {
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(transactional_id.to_string()))
        .with_key_type(KEY_TYPE_TRANSACTION);
    let response: Option<FindCoordinatorResponse> =
        raw_call(cluster.kafka_addr(asked), FIND_COORDINATOR_KEY, 3, &request);
    match response {
        Some(r) if r.error_code == 0 => r.node_id.0,
        _ => -1,
    }
}

/// Waits until every running broker names the same running node as the coordinator of
/// `transactional_id`; returns it.
fn agreed_coordinator(cluster: &mut Cluster, transactional_id: &str) -> i32 {
    let running = cluster.running_ids();
    let coordinator = wait_for(
        "the running brokers to agree on a coordinator",
        CLUSTER_TIMEOUT,
        || {
            let named: Vec<i32> = running
                .iter()
                .map(|id| find_coordinator(cluster, *id, transactional_id))
                .collect();
            (running.contains(&named[0]) && named.iter().all(|id| *id == named[0]))
                .then_some(named[0])
        },
    );
    eprintln!("brokers {running:?} name node {coordinator} coordinator of {transactional_id}");
    coordinator
}

/// Kafka's `Utils.abs(transactionalId.hashCode()) % partitions` (Java's String.hashCode).
fn txn_partition(transactional_id: &str, partitions: i32) -> i32 {
    let hash = transactional_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

/// (state, producer epoch) of `transactional_id` from node `asked`; None unless it answers
/// without error (it is not, or not yet, the loaded coordinator).
fn describe(cluster: &Cluster, asked: i32, transactional_id: &str) -> Option<(String, i16)> {
    let mut request = DescribeTransactionsRequest::default();
    request.transactional_ids = vec![TransactionalId(StrBytes::from_string(
        transactional_id.to_string(),
    ))];
    let response: DescribeTransactionsResponse = raw_call(
        cluster.kafka_addr(asked),
        DESCRIBE_TRANSACTIONS_KEY,
        0,
        &request,
    )?;
    let state = response.transaction_states.first()?;
    (state.error_code == 0).then(|| (state.transaction_state.to_string(), state.producer_epoch))
}

/// The high watermark (log end) of every partition. librdkafka's ListOffsets carries the
/// client's isolation level, so only a read_uncommitted client is told the high watermark
/// rather than the last stable offset. Retried on a new client while leaders move.
fn log_ends(bootstrap: &str, topic: &str) -> Vec<i64> {
    (0..PARTITIONS)
        .map(|p| {
            wait_for(
                &format!("the high watermark of {topic}-{p}"),
                CLUSTER_TIMEOUT,
                || {
                    let client: BaseConsumer = base_config(bootstrap)
                        .set("isolation.level", "read_uncommitted")
                        .create()
                        .expect("create client");
                    match client.fetch_watermarks(topic, p, Duration::from_secs(10)) {
                        Ok((_, high)) => Some(high),
                        Err(err) => {
                            eprintln!("watermarks of {topic}-{p}: {err} (retrying)");
                            None
                        }
                    }
                },
            )
        })
        .collect()
}

/// Every value of `topic` at `isolation`, read from the beginning until each partition's
/// position reaches its high watermark. For read_committed that needs the last stable offset
/// there: every transaction in the log must have its marker.
fn read_values(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let ends = log_ends(bootstrap, topic);
    let consumer = reader(bootstrap, topic, &format!("reader-{topic}"), isolation);
    let (mut values, mut last_progress, mut last_positions) = (Vec::new(), Instant::now(), vec![]);
    loop {
        let positions = offsets_of(&consumer.position().expect("position"), topic);
        if positions
            .iter()
            .zip(&ends)
            .all(|(at, end)| *end == 0 || at >= end)
        {
            return values;
        }
        // Positions move over control records and aborted data too, without messages.
        if positions != last_positions {
            (last_positions, last_progress) = (positions.clone(), Instant::now());
        }
        assert!(
            last_progress.elapsed() < CONSUME_STALL_TIMEOUT,
            "{isolation} reader of {topic} stalled at {positions:?} (ends {ends:?}) with {values:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let value = message
                    .payload_view::<str>()
                    .and_then(Result::ok)
                    .unwrap_or("");
                values.push(value.to_string());
            }
            // A killed broker may still be listed for a while: retriable, librdkafka moves on.
            Some(Err(err)) => eprintln!("{isolation} reader of {topic}: {err} (retrying)"),
            None => {}
        }
    }
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}

fn numbered(prefixes: &[&str], count: usize) -> Vec<String> {
    let all = prefixes
        .iter()
        .flat_map(|prefix| (0..count).map(move |i| format!("{prefix}-{i}")));
    sorted(all.collect())
}

/// Reads `source`, writes `out-N` for every `in-N` to the same partition of `sink`, one
/// transaction per batch with the input offsets; every third transaction is aborted (its
/// records flushed to the log first) and its input read again. Returns the aborted count.
fn transform_loop(bootstrap: &str, source: &str, sink: &str, group: &str, records: usize) -> usize {
    let consumer = reader(bootstrap, source, group, "read_committed");
    // After an abort, back to the group's committed offsets (the beginning: none yet).
    let rewind = |committed: Vec<i64>| {
        for (p, at) in (0..PARTITIONS).zip(committed) {
            let to = if at >= 0 {
                Offset::Offset(at)
            } else {
                Offset::Beginning
            };
            consumer
                .seek(source, p, to, CLIENT_TIMEOUT)
                .expect("seek back after abort");
        }
    };
    let producer = transactional_producer(bootstrap, &format!("{group}-txn"), 60_000);
    let (mut done, mut aborted, mut transactions) = (0, 0, 0);
    while done < records {
        let mut batch = Vec::new();
        let started = Instant::now();
        while batch.len() < 10 {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => {
                    let value = m.payload_view::<str>().and_then(Result::ok).unwrap_or("");
                    batch.push((m.partition(), value.replace("in-", "out-")));
                }
                Some(Err(err)) => eprintln!("input consumer: {err} (retrying)"),
                None if !batch.is_empty() => break,
                None => assert!(
                    started.elapsed() < CONSUME_STALL_TIMEOUT,
                    "no input after {done}"
                ),
            }
        }
        producer.begin_transaction().expect("begin");
        for (partition, value) in &batch {
            let record = BaseRecord::to(sink).partition(*partition);
            send_with_retry(&producer, record.payload(value.as_bytes()));
        }
        let positions = consumer.position().expect("input positions");
        let metadata = consumer.group_metadata().expect("group metadata");
        retry_txn(&producer, "send_offsets_to_transaction", || {
            producer.send_offsets_to_transaction(&positions, &metadata, CLIENT_TIMEOUT)
        });
        transactions += 1;
        if transactions % 3 == 0 {
            producer
                .flush(CLIENT_TIMEOUT)
                .expect("flush doomed records");
            retry_txn(&producer, "abort", || {
                producer.abort_transaction(CLIENT_TIMEOUT)
            });
            aborted += batch.len();
            let committed = committed_offsets(&consumer);
            rewind(offsets_of(&committed, source));
        } else {
            commit(&producer, "commit a transform transaction");
            done += batch.len();
        }
    }
    eprintln!("{transactions} transactions, {aborted} results aborted");
    aborted
}

#[test]
fn transactions_commit_and_abort_across_brokers() {
    const RECORDS: usize = 300;
    let mut cluster = Cluster::start_for_transactions(3);
    let bootstrap = cluster.bootstrap();
    let (source, sink) = (unique_topic("ctxn-in"), unique_topic("ctxn-out"));
    replicated_topic(&mut cluster, &source);
    let sink_leaders = replicated_topic(&mut cluster, &sink);
    let plain: BaseProducer = base_config(&bootstrap)
        .set("acks", "all")
        .create()
        .expect("producer");
    send_numbered(&plain, &source, "in", RECORDS);
    plain.flush(CLIENT_TIMEOUT).expect("input written");

    let group = unique_topic("ctxn-group");
    let aborted = transform_loop(&bootstrap, &source, &sink, &group, RECORDS);
    assert!(aborted > 0, "some transaction was aborted");

    let transactional_id = format!("{group}-txn");
    let coordinator = agreed_coordinator(&mut cluster, &transactional_id);
    let view = cluster
        .view_from(coordinator, &[TXN_TOPIC])
        .expect("metadata");
    assert!(!view.partitions.is_empty(), "metadata lists {TXN_TOPIC}");
    let partition = txn_partition(&transactional_id, view.partitions.len() as i32);
    let led_by = view
        .partitions
        .iter()
        .find(|p| p.partition == partition)
        .map(|p| p.leader);
    assert_eq!(
        led_by,
        Some(coordinator),
        "the coordinator leads {TXN_TOPIC}-{partition}"
    );
    assert!(
        sink_leaders.iter().any(|leader| *leader != coordinator),
        "some output partition is led away from coordinator {coordinator}: {sink_leaders:?}"
    );

    let committed = read_values(&bootstrap, &sink, "read_committed");
    assert_eq!(
        sorted(committed),
        numbered(&["out"], RECORDS),
        "read_committed: each once"
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
        numbered(&["out"], RECORDS).into_iter().collect(),
        "nothing else"
    );

    let group_consumer = reader(&bootstrap, &source, &group, "read_committed");
    let committed = committed_offsets(&group_consumer);
    let offsets = offsets_of(&committed, &source);
    eprintln!("group {group} committed {offsets:?}");
    assert_eq!(
        offsets,
        log_ends(&bootstrap, &source),
        "the group's offsets: the input's end"
    );
}

#[test]
fn a_transaction_survives_the_loss_of_its_coordinator() {
    const PER_TXN: usize = 50;
    let mut cluster = Cluster::start_for_transactions(3);
    let topic = unique_topic("ctxn-failover");
    replicated_topic(&mut cluster, &topic);
    let transactional_id = unique_topic("ctxn-failover-id");
    let producer = transactional_producer(&cluster.bootstrap(), &transactional_id, 60_000);
    producer.begin_transaction().expect("begin a");
    send_numbered(&producer, &topic, "a", PER_TXN);
    commit(&producer, "commit a");
    let coordinator = agreed_coordinator(&mut cluster, &transactional_id);

    producer.begin_transaction().expect("begin b");
    send_numbered(&producer, &topic, "b", PER_TXN);
    producer.flush(CLIENT_TIMEOUT).expect("b written");
    eprintln!("killing coordinator node {coordinator} inside transaction b");
    cluster.kill(coordinator);
    commit(&producer, "commit b after the coordinator's kill");
    producer.begin_transaction().expect("begin c");
    send_numbered(&producer, &topic, "c", PER_TXN);
    commit(&producer, "commit c");

    let successor = agreed_coordinator(&mut cluster, &transactional_id);
    assert_ne!(successor, coordinator, "a live node coordinates now");
    let want = numbered(&["a", "b", "c"], PER_TXN);
    let bootstrap = cluster.running_bootstrap();
    let committed = read_values(&bootstrap, &topic, "read_committed");
    assert_eq!(sorted(committed), want, "read_committed: a, b, c once each");
    let everything = read_values(&bootstrap, &topic, "read_uncommitted");
    assert_eq!(
        sorted(everything),
        want,
        "nothing aborted, nothing written twice"
    );

    eprintln!("restarting node {coordinator}");
    cluster.start_node(coordinator);
    let ids = cluster.ids();
    cluster.wait_for_brokers(&ids);
    for p in 0..PARTITIONS {
        cluster.wait_for_partition(&topic, p, |isr| isr.contains(&coordinator));
    }
    agreed_coordinator(&mut cluster, &transactional_id);
    let restarted = cluster.kafka_addr(coordinator).to_string();
    let committed = read_values(&restarted, &topic, "read_committed");
    assert_eq!(
        sorted(committed),
        want,
        "read_committed via the restarted node"
    );
}

#[test]
fn an_open_transaction_of_a_dead_producer_is_aborted_by_the_new_coordinator() {
    const PER_TXN: usize = 30;
    // Long enough that the transaction is still open when its coordinator dies.
    const TXN_TIMEOUT_MS: u32 = 15_000;
    let mut cluster = Cluster::start_for_transactions(3);
    let topic = unique_topic("ctxn-orphan");
    replicated_topic(&mut cluster, &topic);
    let transactional_id = unique_topic("ctxn-orphan-id");
    let producer = transactional_producer(&cluster.bootstrap(), &transactional_id, TXN_TIMEOUT_MS);
    producer.begin_transaction().expect("begin x");
    send_numbered(&producer, &topic, "x", PER_TXN);
    commit(&producer, "commit x");
    let coordinator = agreed_coordinator(&mut cluster, &transactional_id);

    producer.begin_transaction().expect("begin y");
    send_numbered(&producer, &topic, "y", PER_TXN);
    producer.flush(CLIENT_TIMEOUT).expect("y written");
    let (state, epoch) = wait_for("DescribeTransactions", CLUSTER_TIMEOUT, || {
        describe(&cluster, coordinator, &transactional_id)
    });
    assert_eq!(
        state, "Ongoing",
        "transaction y is open on node {coordinator}"
    );
    // rd_kafka_destroy sends no EndTxn: the broker is left with what a crashed producer
    // leaves, closed connections and an open transaction.
    drop(producer);
    eprintln!("producer gone; killing coordinator node {coordinator} (epoch {epoch})");
    cluster.kill(coordinator);
    let successor = agreed_coordinator(&mut cluster, &transactional_id);
    assert_ne!(successor, coordinator, "a live node coordinates now");

    let bootstrap = cluster.running_bootstrap();
    let committed = read_values(&bootstrap, &topic, "read_committed");
    assert_eq!(
        sorted(committed),
        numbered(&["x"], PER_TXN),
        "none of the orphaned y"
    );
    let everything = read_values(&bootstrap, &topic, "read_uncommitted");
    assert_eq!(
        sorted(everything),
        numbered(&["x", "y"], PER_TXN),
        "y is in the log, aborted"
    );
    let mut seen = String::new();
    let (state, aborted_epoch) = wait_for("the transaction to complete", CLUSTER_TIMEOUT, || {
        let answer = describe(&cluster, successor, &transactional_id);
        if format!("{answer:?}") != seen {
            seen = format!("{answer:?}");
            eprintln!("node {successor} describes {transactional_id}: {seen}");
        }
        answer.filter(|(state, _)| state.starts_with("Complete"))
    });
    assert_eq!(state, "CompleteAbort", "the new coordinator aborted it");
    assert_eq!(
        aborted_epoch,
        epoch + 1,
        "the abort bumped the epoch (fencing the producer)"
    );
}
