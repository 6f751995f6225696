//! Issue #6, KIP-392 follower fetching, against three real brokers in racks `rack-1..3`:
//! - the leader sends a consumer of Fetch v11+ that names another broker's rack to that
//!   broker (`preferred_read_replica`, no records);
//! - a follower serves a v11+ consumer fetch up to its high watermark, and refuses an older
//!   one with NOT_LEADER_OR_FOLLOWER (such a client cannot have been sent there);
//! - librdkafka with `client.rack` reads everything, and its statistics show it fetching
//!   from the follower in its rack while another broker leads.

mod common;
mod idempotence_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{Cluster, CLUSTER_TIMEOUT};
use common::kafka::{create_replicated_topic, recording_producer, send_with_retry};
use common::{unique_topic, wait_for};
use idempotence_support::{batches, call, fetch_request};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{ClientConfig, ClientContext, Offset, Statistics, TopicPartitionList};

const MESSAGES: usize = 400;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

#[test]
fn consumers_read_from_a_replica_in_their_rack() {
    let mut cluster = Cluster::start_with(3, &["--rack", "rack-{id}"]);
    let topic = unique_topic("kip392");
    create_replicated_topic(&cluster.bootstrap(), &topic, 1, 3);
    // The preferred leader (replicas[0]) takes over within seconds of the creation; wait for
    // it, so that leadership stays put for the rest of the test.
    let leader = wait_for("the preferred leader", CLUSTER_TIMEOUT, || {
        let view = cluster.wait_for_partition(&topic, 0, |isr| isr.len() == 3);
        (view.leader == view.replicas[0]).then_some(view.leader)
    });
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let follower_rack = format!("rack-{follower}");

    let (producer, context) = recording_producer(&cluster.bootstrap(), &[("acks", "all")]);
    for index in 0..MESSAGES {
        let payload = format!("message-{index}");
        let record = BaseRecord::with_opaque_to(&topic, index)
            .payload(payload.as_bytes())
            .key(payload.as_bytes());
        send_with_retry(&producer, record);
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert_eq!(context.snapshot().len(), MESSAGES);

    // The leader redirects a consumer in the follower's rack, and gives it no records.
    let mut to_leader = common::wire::connect(cluster.kafka_addr(leader));
    let redirected = fetch(&mut to_leader, &topic, 11, Some(&follower_rack));
    assert_eq!(redirected.error_code, 0);
    assert_eq!(redirected.preferred_read_replica.0, follower);
    assert!(redirected.records.as_ref().is_none_or(|r| r.is_empty()));
    // A consumer in the leader's own rack, or naming none, stays on the leader.
    let own_rack = format!("rack-{leader}");
    for rack in [Some(own_rack.as_str()), None] {
        let served = fetch(&mut to_leader, &topic, 11, rack);
        assert_eq!(served.preferred_read_replica.0, -1, "rack {rack:?}");
        assert!(!batches(served.records.as_ref().unwrap()).is_empty());
    }

    // The follower serves what it knows is committed: its high watermark follows the
    // leader's within a heartbeat.
    let leader_hw = redirected.high_watermark;
    assert!(leader_hw >= MESSAGES as i64);
    let mut to_follower = common::wire::connect(cluster.kafka_addr(follower));
    let served = wait_for("the follower's high watermark", CLUSTER_TIMEOUT, || {
        let served = fetch(&mut to_follower, &topic, 11, None);
        (served.high_watermark == leader_hw).then_some(served)
    });
    assert_eq!(served.error_code, 0);
    let served_batches = batches(served.records.as_ref().unwrap());
    assert_eq!(served_batches[0].base_offset, 0);
    assert!(served_batches.iter().all(|b| b.last_offset < leader_hw));
    let old_client = fetch(&mut to_follower, &topic, 10, None);
    assert_eq!(old_client.error_code, NOT_LEADER_OR_FOLLOWER);

    // A real client in the follower's rack: all records, fetched from the follower.
    let (payloads, fetched_from) = consume_in_rack(&cluster.bootstrap(), &topic, &follower_rack);
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("message-{i}")).collect();
    assert_eq!(payloads, expected);
    assert!(
        fetched_from.contains(&(follower, leader)),
        "librdkafka never fetched from broker {follower} (leader {leader}): {fetched_from:?}"
    );
}

/// One Fetch of partition 0 from offset 0 at `version`, as a consumer (replica id -1).
fn fetch(
    stream: &mut std::net::TcpStream,
    topic: &str,
    version: i16,
    rack: Option<&str>,
) -> PartitionData {
    let mut request = fetch_request(topic, 0, 0, 0);
    request.rack_id = StrBytes::from_string(rack.unwrap_or_default().to_string());
    let mut response: FetchResponse = call(stream, 1, version, &request);
    assert_eq!(response.error_code, 0, "fetch error");
    response.responses.remove(0).partitions.remove(0)
}

/// librdkafka's view of where it fetches partition 0 from: `(broker, leader)` pairs seen in
/// its statistics.
#[derive(Clone, Default)]
struct FetchSource {
    topic: String,
    seen: Arc<Mutex<Vec<(i32, i32)>>>,
}

impl ClientContext for FetchSource {
    fn stats(&self, statistics: Statistics) {
        let Some(partition) = statistics
            .topics
            .get(&self.topic)
            .and_then(|t| t.partitions.get(&0))
        else {
            return;
        };
        let pair = (partition.broker, partition.leader);
        let mut seen = self.seen.lock().unwrap();
        if !seen.contains(&pair) {
            seen.push(pair);
        }
    }
}

impl ConsumerContext for FetchSource {}

fn consume_in_rack(bootstrap: &str, topic: &str, rack: &str) -> (Vec<String>, Vec<(i32, i32)>) {
    let context = FetchSource {
        topic: topic.to_string(),
        seen: Arc::default(),
    };
    let consumer: BaseConsumer<FetchSource> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kip392-unused")
        .set("client.rack", rack)
        .set("enable.auto.commit", "false")
        .set("statistics.interval.ms", "100")
        .create_with_context(context.clone())
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).expect("assign");
    let mut payloads = Vec::new();
    wait_for("every record through librdkafka", CLUSTER_TIMEOUT, || {
        while let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consume");
            payloads.push(String::from_utf8_lossy(message.payload().unwrap()).into_owned());
        }
        (payloads.len() >= MESSAGES).then_some(())
    });
    // A last statistics round after the reads.
    std::thread::sleep(Duration::from_millis(300));
    consumer.poll(Duration::from_millis(100));
    let seen = context.seen.lock().unwrap().clone();
    (payloads, seen)
}
