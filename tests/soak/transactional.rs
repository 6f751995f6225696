//! A transactional producer committing three transactions in four and aborting the fourth,
//! each spread over every partition. At the end a read_committed reader must find every
//! committed transaction whole, no aborted one, and each transaction whose outcome the
//! producer never learned (an error mid-commit) either whole or absent: atomicity.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::common::kafka::{base_config, consume_to_high_watermarks, CLIENT_TIMEOUT};
use crate::run::Run;
use crate::topics::TRANSACTIONAL_PARTITIONS;

const MESSAGES_PER_TRANSACTION: usize = 20;
const ABORT_EVERY: u64 = 4;
/// How often a commit that failed retriably is tried again before the outcome is unknown.
const COMMIT_ATTEMPTS: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Committed,
    Aborted,
    /// The producer failed before it learned the outcome.
    Unknown,
}

pub fn run(run: &Run) {
    let topic = crate::topics::transactional(run);
    let transactional_id = format!("soak-{}-txn-{}", run.label, std::process::id());
    let mut producer = new_producer(run, &transactional_id);
    let mut outcomes: BTreeMap<u64, Outcome> = BTreeMap::new();
    let mut number = 0u64;
    while !run.stopping() {
        let abort = number % ABORT_EVERY == ABORT_EVERY - 1;
        let outcome = one_transaction(run, &producer, &topic, number, abort);
        if outcome == Outcome::Unknown || (outcome == Outcome::Aborted && !abort) {
            run.count("transactions failed by an error", 1);
            if run.replication == 1 {
                // One broker and no faults: nothing excuses a failed transaction.
                run.finding(format!(
                    "transaction {number} failed on an undisturbed broker"
                ));
            }
        }
        if outcome == Outcome::Unknown {
            producer = new_producer(run, &transactional_id);
        }
        run.count(
            match outcome {
                Outcome::Committed => "transactions committed",
                Outcome::Aborted => "transactions aborted",
                Outcome::Unknown => "transactions of unknown outcome",
            },
            1,
        );
        outcomes.insert(number, outcome);
        number += 1;
        run.pause(Duration::from_millis(100));
    }
    drop(producer);
    verify(run, &topic, &outcomes);
}

/// A transactional producer with `init_transactions` done (retried while the coordinator
/// moves: a cluster may be electing after a kill).
fn new_producer(run: &Run, transactional_id: &str) -> BaseProducer {
    loop {
        let producer: BaseProducer = base_config(&run.bootstrap)
            .set("transactional.id", transactional_id)
            .set("transaction.timeout.ms", "60000")
            .set("socket.timeout.ms", "60000")
            .set("linger.ms", "2")
            .create()
            .expect("create a transactional producer");
        match producer.init_transactions(CLIENT_TIMEOUT) {
            Ok(()) => return producer,
            Err(err) => {
                run.say(format!("init_transactions: {err}; trying again"));
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn one_transaction(
    run: &Run,
    producer: &BaseProducer,
    topic: &str,
    number: u64,
    abort: bool,
) -> Outcome {
    if let Err(err) = producer.begin_transaction() {
        run.say(format!("begin transaction {number}: {err}"));
        return Outcome::Unknown;
    }
    for index in 0..MESSAGES_PER_TRANSACTION {
        let payload = format!("{number}:{index}");
        let partition = (index % TRANSACTIONAL_PARTITIONS as usize) as i32;
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .payload(payload.as_bytes());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
                Err((err, _)) => {
                    run.say(format!("send in transaction {number}: {err}"));
                    return abort_or_unknown(run, producer, number);
                }
            }
        }
    }
    if abort {
        return abort_or_unknown(run, producer, number);
    }
    for _ in 0..COMMIT_ATTEMPTS {
        match producer.commit_transaction(CLIENT_TIMEOUT) {
            Ok(()) => return Outcome::Committed,
            Err(KafkaError::Transaction(err)) if err.is_retriable() => {
                run.say(format!("commit transaction {number}: {err} (retriable)"));
            }
            Err(KafkaError::Transaction(err)) if err.txn_requires_abort() => {
                run.say(format!("commit transaction {number}: {err} (aborting)"));
                return abort_or_unknown(run, producer, number);
            }
            Err(err) => {
                run.say(format!("commit transaction {number}: {err}"));
                return Outcome::Unknown;
            }
        }
    }
    Outcome::Unknown
}

fn abort_or_unknown(run: &Run, producer: &BaseProducer, number: u64) -> Outcome {
    // An abort waits for every message's delivery report, and a BaseProducer hands those out
    // only when polled; flushing serves them (the messages are written, then aborted).
    let _ = producer.flush(CLIENT_TIMEOUT);
    match producer.abort_transaction(CLIENT_TIMEOUT) {
        Ok(()) => Outcome::Aborted,
        Err(err) => {
            run.say(format!("abort transaction {number}: {err}"));
            Outcome::Unknown
        }
    }
}

/// Reads the topic as read_committed (librdkafka's default isolation) and checks every
/// transaction against its outcome, and that each partition holds transactions in order.
fn verify(run: &Run, topic: &str, outcomes: &BTreeMap<u64, Outcome>) {
    let stored = consume_to_high_watermarks(&run.bootstrap, topic, TRANSACTIONAL_PARTITIONS);
    let mut copies: HashMap<u64, usize> = HashMap::new();
    for (partition, messages) in &stored {
        let mut previous = 0u64;
        for message in messages {
            let text = String::from_utf8_lossy(message.payload().unwrap_or_default()).to_string();
            let number: u64 = text
                .split(':')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(u64::MAX);
            if number < previous {
                run.finding(format!(
                    "transactional: partition {partition} holds transaction {number} after {previous}"
                ));
            }
            previous = number;
            *copies.entry(number).or_default() += 1;
        }
    }
    let mut broken = Vec::new();
    for (number, outcome) in outcomes {
        let found = copies.get(number).copied().unwrap_or(0);
        let whole_or_absent = found == 0 || found == MESSAGES_PER_TRANSACTION;
        let right = match outcome {
            Outcome::Committed => found == MESSAGES_PER_TRANSACTION,
            Outcome::Aborted => found == 0,
            Outcome::Unknown => whole_or_absent,
        };
        if !right {
            broken.push(format!("{number} ({outcome:?}): {found} messages"));
        }
    }
    if !broken.is_empty() {
        run.finding(format!(
            "transactional: {} of {} transactions read back wrong as read_committed; first: {:?}",
            broken.len(),
            outcomes.len(),
            &broken[..broken.len().min(5)]
        ));
    }
    run.say(format!(
        "transactional: {} transactions checked",
        outcomes.len()
    ));
}
