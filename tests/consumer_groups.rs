//! Consumer groups against the real broker binary with real librdkafka consumers: partitions
//! split across members, every message consumed and committed, no partition owned twice,
//! committed offsets surviving a restart, independent groups, and static membership.
//!
//! Ownership is observed through librdkafka's rebalance callbacks: a partition is owned from
//! its assign callback until its revoke callback; two members owning one partition at once
//! is a coordinator bug and fails the test.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::kafka::{
    base_config, create_topic, high_watermarks, numbered_payloads, produce_numbered, CLIENT_TIMEOUT,
};
use common::{unique_topic, wait_for, Broker};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const PARTITIONS: i32 = 12;
const MESSAGES: usize = 1200;
/// Generous: a hang detector on a loaded 2-core machine, not a performance bound.
const GROUP_TIMEOUT: Duration = Duration::from_secs(180);

/// Broker settings for these tests (inherited by the broker process): a small offsets topic
/// and no initial rebalance delay, so tests do not wait 3 s per fresh group.
fn coordinator_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("RINGLET_OFFSETS_TOPIC_NUM_PARTITIONS", "8");
        std::env::set_var("RINGLET_GROUP_INITIAL_REBALANCE_DELAY_MS", "0");
    });
}

/// Who owns which partition right now, plus every violation seen.
#[derive(Default)]
struct Ownership {
    owners: Mutex<HashMap<i32, usize>>,
    violations: Mutex<Vec<String>>,
    rebalances: Mutex<HashMap<usize, usize>>,
}

struct TrackingContext {
    member: usize,
    ownership: Arc<Ownership>,
}

impl ClientContext for TrackingContext {}

impl ConsumerContext for TrackingContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        *self
            .ownership
            .rebalances
            .lock()
            .unwrap()
            .entry(self.member)
            .or_default() += 1;
        let mut owners = self.ownership.owners.lock().unwrap();
        match rebalance {
            Rebalance::Assign(list) => {
                for element in list.elements() {
                    let partition = element.partition();
                    if let Some(other) = owners.insert(partition, self.member) {
                        if other != self.member {
                            self.ownership.violations.lock().unwrap().push(format!(
                                "partition {partition} assigned to member {} while member {other} owns it",
                                self.member
                            ));
                        }
                    }
                }
            }
            Rebalance::Revoke(list) => {
                for element in list.elements() {
                    if owners.get(&element.partition()) == Some(&self.member) {
                        owners.remove(&element.partition());
                    }
                }
            }
            Rebalance::Error(_) => {}
        }
    }
}

fn group_consumer(
    bootstrap: &str,
    group: &str,
    member: usize,
    ownership: Arc<Ownership>,
    extra: &[(&str, &str)],
) -> BaseConsumer<TrackingContext> {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.wait.max.ms", "200");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config
        .create_with_context(TrackingContext { member, ownership })
        .expect("create group consumer")
}

/// Everything consumed by a group: (partition, offset) -> payload, and the first offset each
/// member saw per partition.
#[derive(Default)]
struct Consumed {
    records: Mutex<BTreeMap<(i32, i64), String>>,
    deliveries: AtomicUsize,
}

/// Runs one member until `stop`: polls, records and synchronously commits each message.
fn run_member(
    consumer: BaseConsumer<TrackingContext>,
    consumed: Arc<Consumed>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<BaseConsumer<TrackingContext>> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    let payload =
                        String::from_utf8_lossy(message.payload().unwrap_or_default()).to_string();
                    consumed
                        .records
                        .lock()
                        .unwrap()
                        .insert((message.partition(), message.offset()), payload);
                    consumed.deliveries.fetch_add(1, Ordering::Relaxed);
                    if let Err(err) = consumer.commit_message(&message, CommitMode::Sync) {
                        // A commit racing a rebalance may be refused; the message is then
                        // consumed again by the next owner, which is allowed.
                        eprintln!("commit refused: {err}");
                    }
                }
                Some(Err(err)) => eprintln!("consumer error: {err}"),
                None => {}
            }
        }
        consumer
    })
}

fn committed(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", group)
        .create()
        .expect("create offsets reader");
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition(topic, partition);
    }
    let offsets = consumer
        .committed_offsets(list, CLIENT_TIMEOUT)
        .expect("OffsetFetch");
    offsets
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some((e.partition(), offset)),
            _ => None,
        })
        .collect()
}

fn all_payloads(consumed: &Consumed) -> BTreeSet<String> {
    consumed.records.lock().unwrap().values().cloned().collect()
}

#[test]
fn three_members_split_partitions_consume_everything_and_commit() {
    coordinator_env();
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("groups");
    create_topic(&bootstrap, &topic, PARTITIONS);
    produce_numbered(&bootstrap, &topic, MESSAGES);

    let ownership = Arc::new(Ownership::default());
    let consumed = Arc::new(Consumed::default());
    let stop = Arc::new(AtomicBool::new(false));
    let members: Vec<_> = (0..3)
        .map(|member| {
            let consumer = group_consumer(&bootstrap, "g-three", member, ownership.clone(), &[]);
            consumer.subscribe(&[&topic]).expect("subscribe");
            run_member(consumer, consumed.clone(), stop.clone())
        })
        .collect();
    wait_for("every message consumed", GROUP_TIMEOUT, || {
        (all_payloads(&consumed) == numbered_payloads(MESSAGES)).then_some(())
    });
    let ends = high_watermarks(&bootstrap, &topic, PARTITIONS);
    wait_for(
        "every partition committed at its end",
        GROUP_TIMEOUT,
        || (committed(&bootstrap, "g-three", &topic) == ends).then_some(()),
    );
    // Every partition has exactly one owner and all three members own some.
    let owners = ownership.owners.lock().unwrap().clone();
    assert_eq!(owners.len(), PARTITIONS as usize, "owners: {owners:?}");
    let distinct: BTreeSet<usize> = owners.values().copied().collect();
    assert_eq!(
        distinct.len(),
        3,
        "every member owns partitions: {owners:?}"
    );
    stop.store(true, Ordering::Relaxed);
    for member in members {
        let consumer = member.join().expect("member thread");
        drop(consumer);
    }
    let violations = ownership.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{violations:?}");
}

#[test]
fn committed_offsets_and_group_survive_restart_and_groups_are_independent() {
    coordinator_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let mut broker = Broker::start_in(&data_dir, &dir.path().join("logs"));
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("restart");
    create_topic(&bootstrap, &topic, PARTITIONS);
    produce_numbered(&bootstrap, &topic, MESSAGES);

    // Group "first" consumes everything; group "second" independently consumes it all too.
    for group in ["first", "second"] {
        let ownership = Arc::new(Ownership::default());
        let consumed = Arc::new(Consumed::default());
        let stop = Arc::new(AtomicBool::new(false));
        let consumer = group_consumer(&bootstrap, group, 0, ownership, &[]);
        consumer.subscribe(&[&topic]).expect("subscribe");
        let handle = run_member(consumer, consumed.clone(), stop.clone());
        wait_for("group consumed everything", GROUP_TIMEOUT, || {
            (all_payloads(&consumed) == numbered_payloads(MESSAGES)).then_some(())
        });
        stop.store(true, Ordering::Relaxed);
        let consumer = handle.join().expect("member thread");
        consumer.close_queue().ok();
        drop(consumer);
    }
    let ends = high_watermarks(&bootstrap, &topic, PARTITIONS);
    assert_eq!(committed(&bootstrap, "first", &topic), ends);
    assert_eq!(committed(&bootstrap, "second", &topic), ends);

    // More messages, then a restart.
    produce_numbered(&bootstrap, &topic, 120);
    broker.stop_graceful();
    drop(broker);
    let broker = Broker::start_in(&data_dir, &dir.path().join("logs"));
    let bootstrap = broker.bootstrap();
    // Listed before any request touches the groups: the broker loads them at start-up.
    let groups_client: BaseConsumer = base_config(&bootstrap).create().expect("client");
    let list = groups_client
        .fetch_group_list(None, CLIENT_TIMEOUT)
        .expect("ListGroups/DescribeGroups");
    let names: BTreeSet<String> = list.groups().iter().map(|g| g.name().to_string()).collect();
    assert!(
        names.contains("first") && names.contains("second"),
        "{names:?}"
    );
    assert_eq!(
        committed(&bootstrap, "first", &topic),
        ends,
        "committed offsets survive the restart"
    );

    // A consumer of "first" resumes exactly at the committed offsets: only the new 120.
    let consumed = Arc::new(Consumed::default());
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = group_consumer(&bootstrap, "first", 0, Arc::new(Ownership::default()), &[]);
    consumer.subscribe(&[&topic]).expect("subscribe");
    let handle = run_member(consumer, consumed.clone(), stop.clone());
    wait_for("the new messages", GROUP_TIMEOUT, || {
        (consumed.deliveries.load(Ordering::Relaxed) >= 120).then_some(())
    });
    // Give a re-delivery of old messages a chance to show up before checking.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    drop(handle.join().expect("member thread"));
    let records = consumed.records.lock().unwrap().clone();
    for (partition, offset) in records.keys() {
        assert!(
            *offset >= ends[partition],
            "partition {partition} re-delivered offset {offset} below the committed {}",
            ends[partition]
        );
    }
    let payloads: BTreeSet<String> = records.values().cloned().collect();
    let expected: BTreeSet<String> = (0..120).map(|i| i.to_string()).collect();
    assert_eq!(payloads, expected);
}

#[test]
fn static_member_restart_gets_its_partitions_back_without_rebalancing_others() {
    coordinator_env();
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("static");
    create_topic(&bootstrap, &topic, PARTITIONS);
    let ownership = Arc::new(Ownership::default());
    let start = |member: usize, instance: &str| {
        let consumer = group_consumer(
            &bootstrap,
            "g-static",
            member,
            ownership.clone(),
            &[
                ("group.instance.id", instance),
                ("session.timeout.ms", "30000"),
            ],
        );
        consumer.subscribe(&[&topic]).expect("subscribe");
        consumer
    };
    let a = start(0, "inst-a");
    let b = start(1, "inst-b");
    let owned_by = |member: usize| -> BTreeSet<i32> {
        ownership
            .owners
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, m)| **m == member)
            .map(|(p, _)| *p)
            .collect()
    };
    wait_for(
        "both static members own 6 partitions",
        GROUP_TIMEOUT,
        || {
            a.poll(Duration::from_millis(50));
            b.poll(Duration::from_millis(50));
            (owned_by(0).len() == 6 && owned_by(1).len() == 6).then_some(())
        },
    );
    // Let the group settle (heartbeats) before counting rebalances.
    for _ in 0..20 {
        a.poll(Duration::from_millis(50));
        b.poll(Duration::from_millis(50));
    }
    let b_partitions = owned_by(1);
    let a_rebalances = ownership.rebalances.lock().unwrap()[&0];
    // b goes away without LeaveGroup (static members do not send it) and comes back as a
    // new process would: a new client, the same group.instance.id.
    drop(b);
    ownership.owners.lock().unwrap().retain(|_, m| *m != 1);
    let b2 = start(2, "inst-b");
    wait_for(
        "the restarted member owns its old partitions",
        GROUP_TIMEOUT,
        || {
            a.poll(Duration::from_millis(50));
            b2.poll(Duration::from_millis(50));
            (owned_by(2) == b_partitions).then_some(())
        },
    );
    for _ in 0..20 {
        a.poll(Duration::from_millis(50));
        b2.poll(Duration::from_millis(50));
    }
    assert_eq!(
        ownership.rebalances.lock().unwrap()[&0],
        a_rebalances,
        "the other member was not rebalanced"
    );
    assert_eq!(owned_by(0).len(), 6);
    let violations = ownership.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{violations:?}");
}
