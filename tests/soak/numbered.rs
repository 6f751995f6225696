//! Producers of numbered messages whose every acknowledgement is checked at the end: a plain
//! acks=all producer at a fixed rate (several requests in flight), and an idempotent one that
//! sends each partition an increasing sequence and must find it stored in order, each message
//! once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::common::acked_load::{compare, split_deliveries, Acked};
use crate::common::kafka::{
    consume_to_high_watermarks, recording_producer, send_with_retry, RecordingContext,
};
use crate::run::Run;
use crate::topics::{FIXED_PARTITIONS, IDEMPOTENT_PARTITIONS};

const FIXED_RATE_PER_SECOND: u64 = 400;
const IDEMPOTENT_RATE_PER_SECOND: u64 = 800;
/// Sends happen in slices of this length, so a rate is a steady trickle, not bursts.
const SLICE: Duration = Duration::from_millis(10);

/// Plain acks=all (idempotence off, librdkafka's default five requests in flight): every
/// acknowledged message must be read back at the offset its acknowledgement named.
pub fn fixed_rate(run: &Run) {
    let topic = crate::topics::fixed(run);
    let (producer, context) = recording_producer(&run.bootstrap, &[("linger.ms", "2")]);
    let sent = send_paced(
        run,
        "fixed-rate sent",
        &producer,
        FIXED_RATE_PER_SECOND,
        |index| BaseRecord::with_opaque_to(&topic, index),
    );
    let acked = settle(run, "fixed-rate", &producer, &context, sent);
    run.count("fixed-rate acked", acked.len() as u64);
    let report = compare(&run.bootstrap, &topic, FIXED_PARTITIONS, &acked);
    if !report.lost.is_empty() {
        run.finding(format!(
            "fixed-rate: {} of {} acknowledged messages are not where their acknowledgement \
             said; first: {:?}",
            report.lost.len(),
            report.acknowledged,
            &report.lost[..report.lost.len().min(5)]
        ));
    }
    run.say(format!(
        "fixed-rate: {} acknowledged, all read back ({} stored twice by retries)",
        report.acknowledged, report.duplicated
    ));
}

/// Idempotent producer, five requests in flight: message `i` goes to partition `i % P`, so
/// each partition must hold its messages in increasing order with none twice, and every
/// acknowledged one at its acknowledged offset.
pub fn idempotent(run: &Run) {
    let topic = crate::topics::idempotent(run);
    let settings = [
        ("enable.idempotence", "true"),
        ("max.in.flight.requests.per.connection", "5"),
        ("linger.ms", "2"),
    ];
    let (producer, context) = recording_producer(&run.bootstrap, &settings);
    let partitions = IDEMPOTENT_PARTITIONS as usize;
    let sent = send_paced(
        run,
        "idempotent sent",
        &producer,
        IDEMPOTENT_RATE_PER_SECOND,
        |index| BaseRecord::with_opaque_to(&topic, index).partition((index % partitions) as i32),
    );
    let acked = settle(run, "idempotent", &producer, &context, sent);
    run.count("idempotent acked", acked.len() as u64);
    let stored = consume_to_high_watermarks(&run.bootstrap, &topic, IDEMPOTENT_PARTITIONS);
    let mut at: HashMap<(i32, i64), usize> = HashMap::new();
    for (partition, messages) in &stored {
        let mut previous: Option<usize> = None;
        for message in messages {
            let index = payload_index(message.payload());
            if let Some(before) = previous.filter(|before| index <= *before) {
                run.finding(format!(
                    "idempotent: partition {partition} holds message {index} at offset {} \
                     after message {before} (out of order or duplicated)",
                    message.offset()
                ));
                break;
            }
            previous = Some(index);
            at.insert((*partition, message.offset()), index);
        }
    }
    let lost = acked
        .iter()
        .filter(|(place, index)| at.get(place) != Some(index))
        .count();
    if lost > 0 {
        run.finding(format!(
            "idempotent: {lost} of {} acknowledged messages lost",
            acked.len()
        ));
    }
    run.say(format!(
        "idempotent: {} acknowledged, stored in order once each",
        acked.len()
    ));
}

/// Sends `rate` messages a second (payload: the message's index) until the run stops;
/// returns how many were sent.
fn send_paced<'a>(
    run: &Run,
    counter: &'static str,
    producer: &BaseProducer<RecordingContext>,
    rate: u64,
    record: impl Fn(usize) -> BaseRecord<'a, [u8], [u8], usize>,
) -> usize {
    let started = Instant::now();
    let mut sent = 0usize;
    while !run.stopping() {
        let due = (started.elapsed().as_millis() as u64 * rate / 1000) as usize;
        let before = sent;
        while sent < due {
            let payload = sent.to_string();
            send_with_retry(producer, record(sent).payload(payload.as_bytes()));
            sent += 1;
        }
        run.count(counter, (sent - before) as u64);
        producer.poll(SLICE);
    }
    sent
}

/// Waits for every delivery report; failed deliveries are findings (the brokers stayed
/// reachable, and librdkafka retries for five minutes). Returns the acknowledged messages.
fn settle(
    run: &Run,
    what: &str,
    producer: &BaseProducer<RecordingContext>,
    context: &RecordingContext,
    sent: usize,
) -> Acked {
    if let Err(err) = producer.flush(Duration::from_secs(600)) {
        run.finding(format!("{what}: flush failed: {err}"));
    }
    let (acked, failures) = split_deliveries(context);
    if !failures.is_empty() {
        run.finding(format!(
            "{what}: {} of {sent} deliveries failed; first: {}",
            failures.len(),
            failures[0]
        ));
    }
    acked
}

pub fn payload_index(payload: Option<&[u8]>) -> usize {
    std::str::from_utf8(payload.unwrap_or_default())
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(usize::MAX)
}
