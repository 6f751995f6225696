//! Issue 18 item 4, against three real broker processes: a topic created through a real
//! client is led by each partition's preferred replica (the first of its replica list) in the
//! very first Metadata after CreateTopics returns, from every broker, with the whole replica
//! set in sync; and that leadership stays put (same leader, same epoch) while every replica is
//! healthy. Kafka's controller names the preferred replica leader at creation: a client that
//! gives up on retriable errors must not see LEADER_NOT_AVAILABLE, nor a leader move.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, PartitionView};
use common::kafka::{base_config, block_on, CLIENT_TIMEOUT};
use common::unique_topic;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

const PARTITIONS: i32 = 6;
const REPLICATION: i32 = 3;
/// How long leadership is watched after creation: past the brokers' preferred-leader check
/// (5 s), which used to move the leaders elections had placed elsewhere.
const WATCH: Duration = Duration::from_secs(8);

#[test]
fn a_new_topic_is_led_by_its_preferred_replicas_from_the_start_and_stays_so() {
    let mut cluster = Cluster::start(3);
    // librdkafka sends CreateTopics to the controller.
    let controller = cluster.wait_for_controller();
    let topic = unique_topic("preferred-at-creation");
    let admin: AdminClient<DefaultClientContext> = base_config(&cluster.bootstrap())
        .create()
        .expect("create admin client");
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let new_topic = NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(REPLICATION));
    let results = block_on(admin.create_topics([&new_topic], &options)).expect("CreateTopics");
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("CreateTopics {name}: {code:?}"));
    }

    // Right after CreateTopics: the broker that answered it names the preferred leaders, with
    // every replica in sync; no broker names another leader.
    let first = views(&cluster, &topic);
    let answered = &first[&controller];
    assert_eq!(answered.len(), PARTITIONS as usize);
    for p in answered {
        assert_eq!(p.error_code, 0, "broker {controller}: {p:?}");
        assert_eq!(
            Some(&p.leader),
            p.replicas.first(),
            "broker {controller}: not the preferred leader: {p:?}"
        );
        assert_full_isr(controller, p);
    }
    let led: BTreeMap<i32, (i32, i32)> = answered
        .iter()
        .map(|p| (p.partition, (p.leader, p.leader_epoch)))
        .collect();
    check_agrees(&first, &led);

    // Then nothing moves while every replica is healthy, and every broker names the leaders.
    let end = Instant::now() + WATCH;
    let mut last = first;
    while Instant::now() < end {
        last = views(&cluster, &topic);
        check_agrees(&last, &led);
        std::thread::sleep(Duration::from_millis(200));
    }
    for (broker, partitions) in &last {
        for p in partitions {
            assert!(
                p.leader >= 0,
                "broker {broker} still names no leader: {p:?}"
            );
        }
    }
}

/// Every broker that names a leader names `led`'s (same leader, same epoch), with the whole
/// replica set in sync; one that does not yet (a follower that voted but has not heard its
/// leader's first append) names none, never another.
fn check_agrees(views: &BTreeMap<i32, Vec<PartitionView>>, led: &BTreeMap<i32, (i32, i32)>) {
    for (broker, partitions) in views {
        assert_eq!(partitions.len(), led.len(), "broker {broker}");
        for p in partitions.iter().filter(|p| p.leader >= 0) {
            assert_eq!(
                led.get(&p.partition),
                Some(&(p.leader, p.leader_epoch)),
                "broker {broker}: another leader or epoch: {p:?}"
            );
            assert_full_isr(*broker, p);
        }
    }
}

/// Every broker's view of `topic`'s partitions, by broker id.
fn views(cluster: &Cluster, topic: &str) -> BTreeMap<i32, Vec<PartitionView>> {
    cluster
        .ids()
        .into_iter()
        .map(|broker| {
            let view = cluster
                .view_from(broker, &[topic])
                .unwrap_or_else(|| panic!("broker {broker} did not answer Metadata"));
            (broker, view.partitions)
        })
        .collect()
}

/// Healthy, caught-up followers are in the ISR (never the leader alone).
fn assert_full_isr(broker: i32, p: &PartitionView) {
    let mut isr = p.isr.clone();
    isr.sort_unstable();
    let mut replicas = p.replicas.clone();
    replicas.sort_unstable();
    assert_eq!(isr, replicas, "broker {broker}: ISR of {p:?}");
}
