//! The shared shape of the leader-failover tests: librdkafka produces numbered messages while
//! partition 0's leader is killed with SIGKILL mid-stream.

use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::cluster::{Cluster, CLUSTER_TIMEOUT};
use super::kafka::{send_with_retry, Delivery, RecordingContext};
use super::wait_for;

/// Sends messages `0..per_phase`, kills partition 0's leader once a third of them are
/// acknowledged, sends `per_phase..2 * per_phase` and flushes. Returns every delivery report
/// and the killed node.
pub fn produce_across_a_leader_kill(
    cluster: &mut Cluster,
    producer: &BaseProducer<RecordingContext>,
    context: &RecordingContext,
    topic: &str,
    per_phase: usize,
) -> (Vec<Delivery>, i32) {
    send_numbered(producer, topic, 0..per_phase);
    wait_for(
        "some acknowledgements before the kill",
        CLUSTER_TIMEOUT,
        || {
            producer.poll(Duration::from_millis(10));
            (context.snapshot().len() > per_phase / 3).then_some(())
        },
    );
    let victim = cluster.wait_for_partition(topic, 0, |_| true).leader;
    cluster.kill(victim);
    send_numbered(producer, topic, per_phase..2 * per_phase);
    producer
        .flush(Duration::from_secs(300))
        .expect("every delivery report within the deadline");
    (context.snapshot(), victim)
}

/// Message `index` has its decimal index as key and payload, and as delivery opaque.
pub fn send_numbered<C: ProducerContext<DeliveryOpaque = usize>>(
    producer: &BaseProducer<C>,
    topic: &str,
    indexes: std::ops::Range<usize>,
) {
    for index in indexes {
        let payload = index.to_string();
        let record = BaseRecord::with_opaque_to(topic, index)
            .payload(payload.as_bytes())
            .key(payload.as_bytes());
        send_with_retry(producer, record);
        producer.poll(Duration::ZERO);
    }
}
