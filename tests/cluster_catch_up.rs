//! Issue #6: "a replica that was down catches up from the leader, also when the leader's log
//! start has moved past what it has". Three real brokers, an RF=3 topic with small segments
//! and `retention.bytes`; a follower is killed, the leader writes and deletes (by retention)
//! far more than the follower ever had, and the follower restarts. It must restart its log
//! at the leader's log start (a Raft snapshot install), rejoin the ISR, and then hold the
//! same bytes as the leader from that offset on; with the leader killed afterwards, every
//! acknowledged message the retention kept is still read back. Also: LogAppendTime topics
//! store the same stamped bytes on every replica.

mod common;
mod idempotence_support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::cluster::{Cluster, CLUSTER_TIMEOUT};
use common::kafka::{
    base_config, block_on, consume_to_high_watermarks, recording_producer, send_with_retry,
    wait_for_partitions, CLIENT_TIMEOUT,
};
use common::{unique_topic, wait_for};
use idempotence_support::{call, fetch_request};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{DescribeConfigsRequest, FetchResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{BaseRecord, Producer};

const MESSAGES: usize = 4000;
const PAYLOAD_BYTES: usize = 200;
/// Small segments and a small retention: the leader deletes most of what it is written.
const TOPIC_CONFIGS: [(&str, &str); 2] = [("segment.bytes", "16384"), ("retention.bytes", "65536")];

#[test]
fn a_follower_behind_the_leaders_log_start_restarts_there_and_rejoins() {
    let mut cluster = Cluster::start_with(3, &["--log-retention-check-interval-ms", "200"]);
    let topic = unique_topic("catch-up");
    create_topic(&cluster.bootstrap(), &topic);
    let leader = wait_for("the preferred leader", CLUSTER_TIMEOUT, || {
        let view = cluster.wait_for_partition(&topic, 0, |isr| isr.len() == 3);
        (view.leader == view.replicas[0]).then_some(view.leader)
    });
    let follower = *cluster.ids().iter().find(|id| **id != leader).unwrap();
    cluster.kill(follower);
    // Out of the ISR once it has not caught up for replica.lag.time.max (10 s), so that
    // being back in it below means caught up again.
    wait_for_isr_on(&cluster, leader, &topic, |isr| !isr.contains(&follower));

    let acked = produce(&cluster.running_bootstrap(), &topic);
    assert_eq!(acked.len(), MESSAGES, "every acks=all write with 2 of 3 up");
    let mut to_leader = common::wire::connect(cluster.kafka_addr(leader));
    wait_for("retention on the leader", CLUSTER_TIMEOUT, || {
        let start = fetch_from(&mut to_leader, &topic, 0).log_start_offset;
        (start > MESSAGES as i64 / 2).then_some(start)
    });

    // Retention stops here, so that every replica's log start stays where the leader's is
    // then (each replica applies retention to its own segments, as in Kafka). A pass may
    // still have run meanwhile: the start is read once retention is off.
    keep_everything_from_now_on(&mut cluster, &topic);
    let leader_start = fetch_from(&mut to_leader, &topic, 0).log_start_offset;
    // The follower that stayed up applied retention to its own segments on its own clock,
    // and may have deleted further than the leader (as a Kafka follower may): after the
    // leader is gone, the log starts at the later of the two.
    let stayed_up = *cluster
        .ids()
        .iter()
        .find(|id| **id != leader && **id != follower)
        .unwrap();
    let mut to_stayed_up = common::wire::connect(cluster.kafka_addr(stayed_up));
    let stayed_up_start = fetch_from(&mut to_stayed_up, &topic, 0).log_start_offset;
    let surviving_start = leader_start.max(stayed_up_start);

    cluster.start_node(follower);
    wait_for_isr_on(&cluster, leader, &topic, |isr| isr.contains(&follower));
    let restarted = cluster.broker(follower).log_tail(10_000);
    assert!(
        restarted.contains("restarting the log there"),
        "the follower caught up without a snapshot install\n{restarted}"
    );

    // The follower serves (Fetch v11+, KIP-392) the leader's bytes from the leader's start.
    let mut to_follower = common::wire::connect(cluster.kafka_addr(follower));
    let leader_now = fetch_from(&mut to_leader, &topic, leader_start);
    let from_follower = wait_for("the follower's high watermark", CLUSTER_TIMEOUT, || {
        let served = fetch_from(&mut to_follower, &topic, leader_start);
        (served.high_watermark == leader_now.high_watermark).then_some(served)
    });
    assert_eq!(from_follower.error_code, 0);
    assert_eq!(from_follower.log_start_offset, leader_start);
    let (ours, theirs) = (records(&from_follower), records(&leader_now));
    assert!(!ours.is_empty());
    let common_len = ours.len().min(theirs.len());
    assert_eq!(ours[..common_len], theirs[..common_len], "replicas differ");

    // With the leader gone, the restarted follower is half of the majority: what retention
    // kept of the acknowledged messages is all there, at its offsets.
    cluster.kill(leader);
    cluster.wait_for_partition(&topic, 0, |_| true);
    let consumed = consume_to_high_watermarks(&cluster.running_bootstrap(), &topic, 1);
    let by_offset: BTreeMap<i64, String> = consumed[&0]
        .iter()
        .map(|m| {
            let payload = m.payload().unwrap_or_default();
            (m.offset(), String::from_utf8_lossy(payload).into_owned())
        })
        .collect();
    let kept: Vec<(&i64, &usize)> = acked
        .iter()
        .filter(|(o, _)| **o >= surviving_start)
        .collect();
    assert!(!kept.is_empty());
    for (offset, index) in kept {
        let payload = by_offset.get(offset).unwrap_or_else(|| {
            panic!(
                "acknowledged message {index} at offset {offset} lost (log starts: leader \
                 {leader_start}, follower that stayed up {stayed_up_start}; read back {:?}..={:?})",
                by_offset.keys().next(),
                by_offset.keys().next_back()
            )
        });
        assert!(payload.starts_with(&format!("{index}:")), "offset {offset}");
    }
}

/// Waits until the ISR that `leader` itself reports passes `isr_ok` (another broker's view
/// of the ISR can lag).
fn wait_for_isr_on(cluster: &Cluster, leader: i32, topic: &str, isr_ok: impl Fn(&[i32]) -> bool) {
    wait_for("the leader's ISR", CLUSTER_TIMEOUT, || {
        let view = cluster.view_from(leader, &[topic])?;
        let partition = view.partitions.into_iter().find(|p| p.partition == 0)?;
        (partition.leader == leader && isr_ok(&partition.isr)).then_some(())
    });
}

/// `message.timestamp.type=LogAppendTime` on a replicated topic: the leader stamps the
/// batches before replicating them, so consumers see the broker's time and the follower
/// stores the very same bytes.
#[test]
fn log_append_time_is_stamped_once_for_every_replica() {
    let mut cluster = Cluster::start(3);
    let topic = unique_topic("append-time");
    create_topic_with(
        &cluster.bootstrap(),
        &topic,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let leader = wait_for("the preferred leader", CLUSTER_TIMEOUT, || {
        let view = cluster.wait_for_partition(&topic, 0, |isr| isr.len() == 3);
        (view.leader == view.replicas[0]).then_some(view.leader)
    });
    let before_ms = now_ms();
    let (producer, context) = recording_producer(&cluster.bootstrap(), &[]);
    for index in 0..100usize {
        // A create time far in the past, which LogAppendTime must replace.
        let record = BaseRecord::with_opaque_to(&topic, index)
            .payload("p".as_bytes())
            .timestamp(1_000);
        send_with_retry(&producer, record);
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert_eq!(context.snapshot().len(), 100);
    let after_ms = now_ms();

    let consumed = consume_to_high_watermarks(&cluster.bootstrap(), &topic, 1);
    assert_eq!(consumed[&0].len(), 100);
    for message in &consumed[&0] {
        match message.timestamp() {
            Timestamp::LogAppendTime(ms) => assert!(
                (before_ms..=after_ms).contains(&ms),
                "append time {ms} outside {before_ms}..={after_ms}"
            ),
            other => panic!("offset {}: {other:?}", message.offset()),
        }
    }
    let follower = *cluster.ids().iter().find(|id| **id != leader).unwrap();
    let mut to_leader = common::wire::connect(cluster.kafka_addr(leader));
    let mut to_follower = common::wire::connect(cluster.kafka_addr(follower));
    let from_leader = fetch_from(&mut to_leader, &topic, 0);
    let from_follower = wait_for("the follower's high watermark", CLUSTER_TIMEOUT, || {
        let served = fetch_from(&mut to_follower, &topic, 0);
        (served.high_watermark == from_leader.high_watermark).then_some(served)
    });
    assert_eq!(
        records(&from_follower),
        records(&from_leader),
        "replicas differ"
    );
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    since_epoch.as_millis() as i64
}

fn create_topic(bootstrap: &str, topic: &str) {
    create_topic_with(bootstrap, topic, &TOPIC_CONFIGS);
}

fn create_topic_with(bootstrap: &str, topic: &str, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> =
        base_config(bootstrap).create().expect("admin client");
    let mut new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(3));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let results = block_on(admin.create_topics([&new_topic], &options)).expect("CreateTopics");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    wait_for_partitions(bootstrap, topic, 1);
}

/// Turns retention off and waits until every running broker has applied the change.
fn keep_everything_from_now_on(cluster: &mut Cluster, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = base_config(&cluster.running_bootstrap())
        .create()
        .expect("admin client");
    let config = AlterConfig::new(ResourceSpecifier::Topic(topic)).set("retention.bytes", "-1");
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let results = block_on(admin.alter_configs([&config], &options)).expect("AlterConfigs");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for id in cluster.running_ids() {
        wait_for("retention off on every broker", CLUSTER_TIMEOUT, || {
            (retention_bytes_on(cluster.kafka_addr(id), topic).as_deref() == Some("-1"))
                .then_some(())
        });
    }
    // A retention pass (every 200 ms) that started before the change may still finish.
    std::thread::sleep(Duration::from_secs(1));
}

/// `retention.bytes` of `topic` as the broker at `addr` describes it.
fn retention_bytes_on(addr: std::net::SocketAddr, topic: &str) -> Option<String> {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_string(topic.to_string()))
        .with_configuration_keys(Some(vec![StrBytes::from_static_str("retention.bytes")]));
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let response = common::api_call::call(addr, 4, &request);
    let config = response.results.first()?.configs.first()?;
    config.value.as_ref().map(|value| value.to_string())
}

/// Offset -> message index of every acknowledged message.
fn produce(bootstrap: &str, topic: &str) -> BTreeMap<i64, usize> {
    // Small batches: librdkafka would otherwise put everything into one 1 MB batch, and a
    // segment holds at least one batch.
    let (producer, context) = recording_producer(bootstrap, &[("batch.size", "4096")]);
    let filler = "x".repeat(PAYLOAD_BYTES);
    for index in 0..MESSAGES {
        let payload = format!("{index}:{filler}");
        let record = BaseRecord::with_opaque_to(topic, index).payload(payload.as_bytes());
        send_with_retry(&producer, record);
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    context
        .snapshot()
        .into_iter()
        .filter_map(|d| d.outcome.ok().map(|(_, offset)| (offset, d.index)))
        .collect()
}

/// One consumer Fetch v11 of partition 0 from `offset`.
fn fetch_from(stream: &mut std::net::TcpStream, topic: &str, offset: i64) -> PartitionData {
    let request = fetch_request(topic, 0, offset, 0);
    let mut response: FetchResponse = call(stream, 1, 11, &request);
    assert_eq!(response.error_code, 0, "fetch error");
    response.responses.remove(0).partitions.remove(0)
}

fn records(partition: &PartitionData) -> Bytes {
    partition.records.clone().unwrap_or_default()
}
