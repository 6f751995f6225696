//! `producer.id.expiration.ms`: a partition forgets an idempotent producer that stopped
//! writing (its own binary: the setting goes to the broker through the environment).

mod common;
mod idempotence_support;

use std::time::Duration;

use common::kafka::create_topic;
use common::{unique_topic, wait_for, wire, Broker};
use idempotence_support::{batch, describe_producers, init_producer_id, produce};

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;

#[test]
fn an_idle_producer_expires_and_is_then_accepted_at_any_sequence() {
    // Inherited by the broker process (RINGLET_* variables are its settings).
    std::env::set_var("RINGLET_PRODUCER_ID_EXPIRATION_MS", "1000");
    let broker = Broker::start();
    let topic = unique_topic("idem-expiry");
    create_topic(&broker.bootstrap(), &topic, 1);
    let mut stream = wire::connect(broker.addr());
    let producer = init_producer_id(&mut stream);
    // The batch timestamp is the producer's last write time: make it "now".
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let records = idempotence_support::with_timestamp(batch(producer, 0, false, &["a"]), now_ms);
    assert_eq!(produce(&mut stream, &topic, 0, records).error_code, 0);
    let gap = idempotence_support::with_timestamp(batch(producer, 5, false, &["b"]), now_ms);
    assert_eq!(
        produce(&mut stream, &topic, 0, gap.clone()).error_code,
        OUT_OF_ORDER_SEQUENCE_NUMBER,
        "while remembered, a gap is refused"
    );
    wait_for("the producer to expire", Duration::from_secs(60), || {
        describe_producers(&mut stream, &topic, 0)
            .is_empty()
            .then_some(())
    });
    let answer = produce(&mut stream, &topic, 0, gap);
    assert_eq!((answer.error_code, answer.base_offset), (0, 1));
}
