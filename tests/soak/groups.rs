//! Group rebalances: members of one consumer group on the fixed-rate topic join and leave on
//! a seeded schedule (one to three at a time, so every change is a rebalance). The group must
//! keep consuming, and at the end a fresh member must pick up the committed offsets and read
//! to the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use rdkafka::TopicPartitionList;

use crate::common::kafka::{base_config, high_watermarks, CLIENT_TIMEOUT};
use crate::common::seeded::Seeded;
use crate::run::Run;
use crate::topics::FIXED_PARTITIONS;

const MOST_MEMBERS: usize = 3;
/// The group consuming nothing for this long (while members exist) has stalled.
const GROUP_STALL: Duration = Duration::from_secs(180);
/// How long the last member may take to read to the end.
const FINAL_READ: Duration = Duration::from_secs(300);

struct Member {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

pub fn run(run: &Run) {
    let topic = crate::topics::fixed(run);
    let group = format!("soak-{}-group-{}", run.label, std::process::id());
    let mut random = Seeded::new(run.seed ^ 0x6772_6f75_7073);
    let mut members: Vec<Member> = Vec::new();
    let consumed = Arc::new(AtomicU64::new(0));
    let mut last_total = 0;
    let mut last_progress = Instant::now();
    loop {
        let grow = members.is_empty() || (members.len() < MOST_MEMBERS && random.below(2) == 0);
        if grow {
            members.push(join(run, &group, &topic, consumed.clone()));
            run.count("group joins", 1);
        } else {
            let leaving = members.swap_remove(random.below(members.len() as u64) as usize);
            leave(leaving);
            run.count("group leaves", 1);
        }
        if !run.pause(Duration::from_secs(random.between(10, 40))) {
            break;
        }
        let total = consumed.load(Ordering::Relaxed);
        if total > last_total {
            run.count("group consumed", total - last_total);
            last_total = total;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > GROUP_STALL {
            run.finding(format!("the group consumed nothing for {GROUP_STALL:?}"));
            last_progress = Instant::now();
        }
    }
    for member in members {
        leave(member);
    }
    read_to_the_end(run, &group, &topic);
}

fn join(run: &Run, group: &str, topic: &str, consumed: Arc<AtomicU64>) -> Member {
    let consumer = member_consumer(run, group, topic);
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::spawn(move || {
        while !stopping.load(Ordering::SeqCst) {
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
                consumed.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Dropping the consumer closes it: offsets committed, LeaveGroup sent.
    });
    Member { stop, thread }
}

fn leave(member: Member) {
    member.stop.store(true, Ordering::SeqCst);
    let _ = member.thread.join();
}

fn member_consumer(run: &Run, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = base_config(&run.bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create a group member");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// The group's committed offset of each partition (-1: none yet).
fn committed(consumer: &BaseConsumer, topic: &str) -> Vec<i64> {
    let mut partitions = TopicPartitionList::new();
    for partition in 0..FIXED_PARTITIONS {
        partitions.add_partition(topic, partition);
    }
    let committed = consumer.committed_offsets(partitions, CLIENT_TIMEOUT);
    (0..FIXED_PARTITIONS)
        .map(|partition| {
            committed
                .as_ref()
                .ok()
                .and_then(|list| list.find_partition(topic, partition))
                .and_then(|entry| entry.offset().to_raw())
                .unwrap_or(-1)
        })
        .collect()
}

/// A fresh member of the group reads every partition to the high watermark as it is now.
fn read_to_the_end(run: &Run, group: &str, topic: &str) {
    let targets = high_watermarks(&run.bootstrap, topic, FIXED_PARTITIONS);
    let consumer = member_consumer(run, group, topic);
    let started = Instant::now();
    let mut positions = committed(&consumer, topic);
    while started.elapsed() < FINAL_READ {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let at = &mut positions[message.partition() as usize];
            *at = (*at).max(message.offset() + 1);
        }
        let done = targets
            .iter()
            .all(|(partition, high)| positions[*partition as usize] >= *high || *high == 0);
        if done {
            run.say(format!(
                "groups: the last member read to the end in {:?}",
                started.elapsed()
            ));
            return;
        }
    }
    run.finding(format!(
        "groups: the last member did not read to {targets:?} within {FINAL_READ:?} (at {positions:?})"
    ));
}
