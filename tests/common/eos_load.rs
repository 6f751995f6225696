//! The producer side of the exactly-once benchmarks (`eos_bench.rs` on one broker,
//! `cluster_eos_bench.rs` on three): the same client settings and the same send loop, so
//! their numbers compare. Each bench brings its own delivery-counting context.

use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::kafka::{base_config, CLIENT_TIMEOUT};
use super::unique_topic;

/// What a bench producer does beyond acks=all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guarantee {
    AcksAll,
    Idempotent,
    Transactional,
}

/// An acks=all producer (idempotent, or transactional with `init_transactions` done, as
/// `guarantee` says) that reports deliveries to `context`.
pub fn producer<C: ProducerContext>(
    bootstrap: &str,
    guarantee: Guarantee,
    context: C,
) -> BaseProducer<C> {
    let mut config = base_config(bootstrap);
    config
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "100000")
        .set(
            "enable.idempotence",
            (guarantee != Guarantee::AcksAll).to_string(),
        );
    if guarantee == Guarantee::Transactional {
        config
            .set("transactional.id", unique_topic("bench-txn"))
            .set("transaction.timeout.ms", "60000")
            // librdkafka requires socket.timeout.ms <= transaction.timeout.ms + 100.
            .set("socket.timeout.ms", "60000");
    }
    let producer: BaseProducer<C> = config
        .create_with_context(context)
        .expect("create producer");
    if guarantee == Guarantee::Transactional {
        producer
            .init_transactions(CLIENT_TIMEOUT)
            .expect("init_transactions");
    }
    producer
}

/// Sends record `index` (keyed by it, round-robin over `partitions`), waiting while
/// librdkafka's queue is full.
pub fn send<C: ProducerContext<DeliveryOpaque = ()>>(
    producer: &BaseProducer<C>,
    topic: &str,
    partitions: i32,
    index: usize,
    payload: &[u8],
) {
    let key = index.to_string();
    let mut record = BaseRecord::to(topic)
        .partition((index % partitions as usize) as i32)
        .key(&key)
        .payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                producer.poll(Duration::from_millis(1));
                record = back;
            }
        }
    }
}
