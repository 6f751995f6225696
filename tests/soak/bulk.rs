//! Max-rate load: bursts of 1 KiB messages with acks=1 as fast as librdkafka can send them,
//! each burst from a new producer with the next compression codec, into a topic that keeps
//! only a few MiB per partition (retention runs all the time), read by a group consumer that
//! falls behind retention and resets. Deliveries must all succeed and the consumer must keep
//! making progress.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer};

use crate::common::kafka::{base_config, recording_producer, send_with_retry};
use crate::run::Run;

const BURST: Duration = Duration::from_secs(15);
const BETWEEN_BURSTS: Duration = Duration::from_secs(45);
const MESSAGE_BYTES: usize = 1024;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
/// A consumer that reads nothing for this long while bursts arrive has stalled.
const CONSUMER_STALL: Duration = Duration::from_secs(300);

pub fn producer(run: &Run) {
    let topic = crate::topics::bulk(run);
    let payload = vec![b'x'; MESSAGE_BYTES];
    let mut burst = 0usize;
    while run.pause(BETWEEN_BURSTS) {
        let codec = CODECS[burst % CODECS.len()];
        let settings = [
            ("acks", "1"),
            ("linger.ms", "5"),
            ("batch.size", "131072"),
            ("compression.type", codec),
        ];
        let (producer, context) = recording_producer(&run.bootstrap, &settings);
        let started = Instant::now();
        let mut sent = 0usize;
        while started.elapsed() < BURST && !run.stopping() {
            send_with_retry(
                &producer,
                BaseRecord::with_opaque_to(&topic, sent).payload(&payload[..]),
            );
            sent += 1;
            producer.poll(Duration::ZERO);
        }
        if let Err(err) = producer.flush(Duration::from_secs(600)) {
            run.finding(format!("bulk burst {burst} ({codec}): flush failed: {err}"));
        }
        let deliveries = context.snapshot();
        let failed: Vec<&String> = deliveries
            .iter()
            .filter_map(|d| d.outcome.as_ref().err())
            .collect();
        if !failed.is_empty() {
            run.finding(format!(
                "bulk burst {burst} ({codec}): {} of {sent} deliveries failed; first: {}",
                failed.len(),
                failed[0]
            ));
        }
        run.count("bulk acked", (deliveries.len() - failed.len()) as u64);
        burst += 1;
    }
}

pub fn consumer(run: &Run) {
    let topic = crate::topics::bulk(run);
    let consumer: BaseConsumer = base_config(&run.bootstrap)
        .set("group.id", format!("soak-{}-bulk", run.label))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create the bulk consumer");
    consumer
        .subscribe(&[&topic])
        .expect("subscribe to the bulk topic");
    let mut last_read = Instant::now();
    let mut stall_reported = false;
    while !run.stopping() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => {
                run.count("bulk consumed", 1);
                last_read = Instant::now();
                stall_reported = false;
            }
            Some(Err(err)) => {
                run.count("bulk consumer errors", 1);
                if err.to_string().contains("Offset out of range") {
                    run.count("bulk consumer resets", 1);
                }
            }
            None => {}
        }
        if last_read.elapsed() > CONSUMER_STALL && !stall_reported {
            run.finding(format!("bulk consumer read nothing for {CONSUMER_STALL:?}"));
            stall_reported = true;
        }
    }
}
