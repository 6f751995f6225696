//! Consumer groups when members leave and fail, and with other assignors and clients (issue 4,
//! scenarios 2 and 5), against the real broker binary:
//!
//! - one member closes cleanly and another, a separate process, is killed with SIGKILL (its
//!   session times out): partitions move to the survivor, nothing is lost, and every
//!   partition's new owner starts exactly at the last committed offset;
//! - `cooperative-sticky` with librdkafka: a joining member takes partitions without the
//!   others giving up the ones they keep;
//! - group consumption with confluent-kafka and kafka-python member processes.
//!
//! Every member commits each message synchronously; the events of all members (in-process
//! rdkafka consumers and `tests/python/group_member.py` processes) go into one timeline that
//! `common::group_events::check_handovers` checks.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use common::group_events::{check_handovers, now_us, reap, Kind, Timeline};
use common::kafka::{
    base_config, create_topic, high_watermarks, numbered_payloads, produce_numbered,
};
use common::scripts::{python, repo_root};
use common::{unique_topic, wait_for, Broker};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::ClientContext;

const PARTITIONS: i32 = 12;
/// Hang detector on a loaded 2-core machine, not a performance bound.
const GROUP_TIMEOUT: Duration = Duration::from_secs(180);

/// Broker settings for these tests, inherited by the broker process.
fn coordinator_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("RINGLET_OFFSETS_TOPIC_NUM_PARTITIONS", "4");
        std::env::set_var("RINGLET_GROUP_INITIAL_REBALANCE_DELAY_MS", "0");
    });
}

/// Records an in-process member's rebalances in the timeline.
struct TimelineContext {
    member: String,
    timeline: Timeline,
}

impl ClientContext for TimelineContext {}

impl ConsumerContext for TimelineContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |list: &rdkafka::TopicPartitionList| -> Vec<i32> {
            list.elements().iter().map(|e| e.partition()).collect()
        };
        let kind = match rebalance {
            Rebalance::Assign(list) => Kind::Assigned(partitions(list)),
            Rebalance::Revoke(list) => Kind::Revoked(partitions(list)),
            Rebalance::Error(_) => return,
        };
        self.timeline.record(&self.member, -1, kind);
    }
}

/// An rdkafka member that records each delivery, waits `delay`, and commits it synchronously,
/// until `stop`; then returns its consumer (dropping it closes cleanly: LeaveGroup).
struct RustMember {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<BaseConsumer<TimelineContext>>,
}

impl RustMember {
    fn start(
        bootstrap: &str,
        topic: &str,
        group: &str,
        member: &str,
        timeline: &Timeline,
        strategy: &str,
        delay: Duration,
    ) -> RustMember {
        let consumer: BaseConsumer<TimelineContext> = base_config(bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .set("fetch.wait.max.ms", "200")
            .set("partition.assignment.strategy", strategy)
            .create_with_context(TimelineContext {
                member: member.to_string(),
                timeline: timeline.clone(),
            })
            .expect("create group consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let timeline = timeline.clone();
            let member = member.to_string();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    poll_once(&consumer, &member, &timeline, delay);
                }
                consumer
            })
        };
        RustMember { stop, thread }
    }

    /// Stops polling and closes the consumer (LeaveGroup).
    fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        let consumer = self.thread.join().expect("member thread");
        drop(consumer);
    }
}

fn poll_once(
    consumer: &BaseConsumer<TimelineContext>,
    member: &str,
    timeline: &Timeline,
    delay: Duration,
) {
    match consumer.poll(Duration::from_millis(100)) {
        Some(Ok(message)) => {
            let value = String::from_utf8_lossy(message.payload().unwrap_or_default()).to_string();
            let (partition, offset) = (message.partition(), message.offset());
            timeline.record(member, partition, Kind::Delivered { offset, value });
            std::thread::sleep(delay);
            match consumer.commit_message(&message, CommitMode::Sync) {
                Ok(()) => {
                    timeline.record(member, partition, Kind::Committed { offset: offset + 1 })
                }
                // Refused during a rebalance: the next owner starts at the previous commit.
                Err(err) => eprintln!("{member}: commit refused: {err}"),
            }
        }
        Some(Err(err)) => eprintln!("{member}: consumer error: {err}"),
        None => {}
    }
}

/// A tests/python/group_member.py process; its events stream into `timeline`.
fn spawn_python_member(
    bootstrap: &str,
    topic: &str,
    group: &str,
    member: &str,
    timeline: &Timeline,
    extra: &[&str],
) -> (Child, JoinHandle<()>) {
    let script = repo_root().join("tests/python/group_member.py");
    let mut child = Command::new(python())
        .arg(script)
        .args(["--bootstrap", bootstrap, "--topic", topic, "--group", group])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run python3 ({err}); run scripts/test.sh"));
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = timeline.follow_process(member, stdout);
    (child, reader)
}

fn assert_no_violations(timeline: &Timeline, ends: &BTreeMap<i32, i64>, killed: &[&str]) {
    let violations = check_handovers(&timeline.events(), ends, killed);
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn clean_close_and_killed_member_lose_nothing_and_redeliver_from_the_last_commit() {
    coordinator_env();
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("failover");
    let messages = 600;
    create_topic(&bootstrap, &topic, PARTITIONS);
    produce_numbered(&bootstrap, &topic, messages);
    let timeline = Timeline::default();
    let delay = Duration::from_millis(20);
    let group = "g-failover";
    let start_rust = |member: &str| {
        RustMember::start(&bootstrap, &topic, group, member, &timeline, "range", delay)
    };
    let survivor = start_rust("survivor");
    let leaver = start_rust("leaver");
    let (mut victim, victim_reader) = spawn_python_member(
        &bootstrap,
        &topic,
        group,
        "victim",
        &timeline,
        &["--delay-ms", "20", "--idle-exit-s", "600"],
    );
    wait_for("every member consuming", GROUP_TIMEOUT, || {
        (timeline.delivered_by("victim") >= 15 && timeline.delivered_by("leaver") >= 15)
            .then_some(())
    });

    let leaver_partitions = timeline.partitions_delivered_by("leaver", 0);
    leaver.close();
    let victim_partitions = timeline.partitions_delivered_by("victim", 0);
    victim.kill().expect("SIGKILL the member process");
    let killed_at = now_us();
    reap(victim, victim_reader);

    wait_for("every message consumed", GROUP_TIMEOUT, || {
        (timeline.payloads() == numbered_payloads(messages)).then_some(())
    });
    survivor.close();

    let moved = timeline.partitions_delivered_by("survivor", killed_at);
    assert!(
        !victim_partitions.is_disjoint(&moved) || !leaver_partitions.is_disjoint(&moved),
        "the survivor took over partitions: victim had {victim_partitions:?}, leaver \
         {leaver_partitions:?}, survivor consumed {moved:?} after the kill"
    );
    assert_no_violations(
        &timeline,
        &high_watermarks(&bootstrap, &topic, PARTITIONS),
        &["victim"],
    );
}

#[test]
fn cooperative_sticky_members_keep_their_partitions_when_one_joins() {
    coordinator_env();
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("cooperative");
    let messages = 600;
    create_topic(&bootstrap, &topic, PARTITIONS);
    produce_numbered(&bootstrap, &topic, messages);
    let timeline = Timeline::default();
    let delay = Duration::from_millis(10);
    let start = |member: &str| {
        let strategy = "cooperative-sticky";
        RustMember::start(
            &bootstrap, &topic, "g-coop", member, &timeline, strategy, delay,
        )
    };
    let first = start("first");
    let second = start("second");
    wait_for("two members consuming", GROUP_TIMEOUT, || {
        (timeline.delivered_by("first") >= 10 && timeline.delivered_by("second") >= 10)
            .then_some(())
    });
    let joined_at = now_us();
    let third = start("third");
    wait_for("the third member consuming", GROUP_TIMEOUT, || {
        (timeline.delivered_by("third") >= 5).then_some(())
    });
    wait_for("every message consumed", GROUP_TIMEOUT, || {
        (timeline.payloads() == numbered_payloads(messages)).then_some(())
    });
    let closing_at = now_us();
    for member in [first, second, third] {
        member.close();
    }

    // Incremental: after the third joined (and before the members closed, which revokes
    // everything), the others only gave up what the third took.
    let events = timeline.events();
    let revoked_after_join: Vec<i32> = events
        .iter()
        .filter(|e| e.time_us > joined_at && e.time_us < closing_at && e.member != "third")
        .filter_map(|e| match &e.kind {
            Kind::Revoked(partitions) => Some(partitions.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let third_got: BTreeSet<i32> = events
        .iter()
        .filter(|e| e.member == "third" && e.time_us < closing_at)
        .filter_map(|e| match &e.kind {
            Kind::Assigned(partitions) => Some(partitions.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    println!(
        "revoked from the others after the join: {revoked_after_join:?}; third got {third_got:?}"
    );
    assert!(!third_got.is_empty(), "the third member got partitions");
    assert!(
        revoked_after_join.iter().all(|p| third_got.contains(p)),
        "only partitions that moved to the third member were revoked: revoked \
         {revoked_after_join:?}, third got {third_got:?}"
    );
    assert!(
        !revoked_after_join.is_empty(),
        "the third member's partitions were taken from the others"
    );
    assert!(
        revoked_after_join.len() < PARTITIONS as usize,
        "not everything was revoked (that would be eager): {revoked_after_join:?}"
    );
    assert_no_violations(
        &timeline,
        &high_watermarks(&bootstrap, &topic, PARTITIONS),
        &[],
    );
}

/// Two member processes of one Python client share the topic, consume everything, and
/// hand partitions over at the committed offsets.
fn python_group_consumes_everything(client: &str) {
    coordinator_env();
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic(&format!("group-{client}"));
    let messages = 300;
    create_topic(&bootstrap, &topic, PARTITIONS);
    produce_numbered(&bootstrap, &topic, messages);
    let timeline = Timeline::default();
    let group = format!("g-{client}");
    let args = ["--client", client, "--delay-ms", "10", "--idle-exit-s", "4"];
    let members: Vec<_> = ["one", "two"]
        .iter()
        .map(|member| spawn_python_member(&bootstrap, &topic, &group, member, &timeline, &args))
        .collect();
    for (child, reader) in members {
        let status = reap(child, reader);
        assert!(status.success(), "{client} member exited with {status}");
    }
    assert_eq!(timeline.payloads(), numbered_payloads(messages));
    let rebalances: Vec<_> = timeline
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, Kind::Assigned(_) | Kind::Revoked(_)))
        .map(|e| (e.time_us, e.member, e.kind))
        .collect();
    for member in ["one", "two"] {
        assert!(
            timeline
                .assignments_of(member)
                .iter()
                .any(|a| !a.is_empty()),
            "{client} member {member} was assigned partitions; rebalances: {rebalances:#?}"
        );
    }
    assert_no_violations(
        &timeline,
        &high_watermarks(&bootstrap, &topic, PARTITIONS),
        &[],
    );
}

#[test]
fn confluent_kafka_members_share_a_group() {
    python_group_consumes_everything("confluent");
}

#[test]
fn kafka_python_members_share_a_group() {
    python_group_consumes_everything("kafka-python");
}

/// The checker itself: it must catch a new owner starting before or after the last commit.
#[test]
fn handover_checker_catches_redelivery_before_the_commit_and_gaps() {
    use common::group_events::Event;
    let event = |time_us, member: &str, kind| Event {
        time_us,
        member: member.to_string(),
        partition: 0,
        kind,
    };
    let delivered = |offset| Kind::Delivered {
        offset,
        value: offset.to_string(),
    };
    let ends = BTreeMap::from([(0, 4)]);
    let history = |takeover: i64| {
        let mut events = vec![
            event(1, "a", delivered(0)),
            event(2, "a", Kind::Committed { offset: 1 }),
            event(3, "a", delivered(1)),
            event(4, "a", Kind::Committed { offset: 2 }),
        ];
        for (step, offset) in (takeover..4).enumerate() {
            events.push(event(10 + step as u64, "b", delivered(offset)));
        }
        events
    };
    assert!(check_handovers(&history(2), &ends, &[]).is_empty());
    assert!(
        !check_handovers(&history(1), &ends, &[]).is_empty(),
        "re-delivery before the commit"
    );
    assert!(
        !check_handovers(&history(3), &ends, &[]).is_empty(),
        "a skipped offset"
    );
    // A killed owner's unreported final commit may let the next owner start one further on.
    assert!(check_handovers(&history(2), &ends, &["a"]).is_empty());
}
