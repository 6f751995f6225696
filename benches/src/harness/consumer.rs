//! Consumer threads: each owns one librdkafka consumer, reads until its group has seen every
//! acknowledged message, and records end-to-end latency (scheduled send time in the payload to
//! receipt here).
//!
//! Two ways to get partitions (`consumer_mode`): `assign` splits the partitions of all topics
//! round-robin over the members of a "group" (each group is an independent set of assigned
//! consumers that reads everything from the beginning); `group` subscribes with a real Kafka
//! consumer group, so the broker's group coordinator does the split.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use super::clock::RunClock;
use super::stats::{Latency, PerSecond};
use super::workload::{ConsumerMode, Workload, PAYLOAD_HEADER_BYTES};
use super::HarnessError;

/// After the producers finished, a group that makes no progress for this long stops; the
/// missing messages show up as produced != consumed in the result.
const DRAIN_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared by the members of one group: how much they consumed together, and (group mode)
/// what the coordinator assigned them.
#[derive(Default)]
pub struct GroupProgress {
    pub consumed: AtomicU64,
    /// Partitions currently assigned to the members (group mode; eager protocol: an
    /// assignment adds, a revocation subtracts). The run starts producing only once this
    /// covers every partition, so the group reads from a stable assignment.
    pub assigned_partitions: AtomicI64,
    /// Assignments the members received (group mode). One per member is the initial join;
    /// more mean rebalances, which can re-deliver messages (offsets are not committed).
    pub assignments: AtomicU64,
    /// Members that received at least one assignment (possibly empty).
    pub members_assigned: AtomicU64,
}

impl GroupProgress {
    /// Group mode: every member joined and the assignment covers all `partitions`.
    pub fn is_stable(&self, members: u32, partitions: u64) -> bool {
        self.members_assigned.load(Ordering::Acquire) >= u64::from(members)
            && self.assigned_partitions.load(Ordering::Acquire) == partitions as i64
    }
}

/// Consumer context that tells the group's progress about rebalances.
struct GroupContext {
    group: Arc<GroupProgress>,
    assigned_once: AtomicBool,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                self.group
                    .assigned_partitions
                    .fetch_add(list.count() as i64, Ordering::AcqRel);
                self.group.assignments.fetch_add(1, Ordering::AcqRel);
                if !self.assigned_once.swap(true, Ordering::AcqRel) {
                    self.group.members_assigned.fetch_add(1, Ordering::AcqRel);
                }
            }
            Rebalance::Revoke(list) => {
                self.group
                    .assigned_partitions
                    .fetch_sub(list.count() as i64, Ordering::AcqRel);
            }
            Rebalance::Error(_) => {}
        }
    }
}

/// Shared by everyone: set once the producers have flushed, with the acknowledged total.
#[derive(Default)]
pub struct ProduceDone {
    pub done: AtomicBool,
    pub acked: AtomicU64,
}

/// What one consumer (or all, merged) observed.
#[derive(Default)]
pub struct ConsumerTally {
    /// End-to-end latency of messages scheduled after the warm-up.
    pub latency: Latency,
    pub received_per_second: PerSecond,
    pub consumed: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Payloads too short to carry the timestamp (not ours, or corrupted).
    pub malformed: u64,
    /// Messages received after the warm-up, including the drain after the window.
    pub received_after_warmup: u64,
    pub received_bytes_after_warmup: u64,
    /// When the last message arrived (ns on the run clock).
    pub last_receipt_ns: u64,
}

impl ConsumerTally {
    pub fn merge(&mut self, other: &ConsumerTally) {
        self.latency.merge(&other.latency);
        self.received_per_second.merge(&other.received_per_second);
        self.consumed += other.consumed;
        self.received_after_warmup += other.received_after_warmup;
        self.received_bytes_after_warmup += other.received_bytes_after_warmup;
        self.last_receipt_ns = self.last_receipt_ns.max(other.last_receipt_ns);
        self.errors += other.errors;
        self.malformed += other.malformed;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }
}

pub struct ConsumerJob {
    pub group_index: u32,
    pub member: u32,
    pub group_id: String,
    pub bootstrap: String,
    pub workload: Workload,
    pub topics: Vec<String>,
    /// Set when the producers start (after the groups are stable): consumers attach first,
    /// and no message can arrive before it is set.
    pub clock: Arc<OnceLock<RunClock>>,
    pub group: Arc<GroupProgress>,
    pub produce: Arc<ProduceDone>,
    pub abort: Arc<AtomicBool>,
}

fn consumer_config(job: &ConsumerJob) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &job.bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", &job.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "0");
    for (key, value) in &job.workload.consumer_extra {
        config.set(key, value);
    }
    config
}

/// The partitions member `member` of an assigned set reads: every `consumers_per_group`-th
/// partition over all topics, from the beginning.
pub fn assignment_for(workload: &Workload, topics: &[String], member: u32) -> Vec<(String, i32)> {
    let stride = workload.consumers_per_group.max(1) as usize;
    topics
        .iter()
        .flat_map(|topic| (0..workload.partitions_per_topic).map(move |p| (topic.clone(), p)))
        .enumerate()
        .filter(|(index, _)| index % stride == member as usize)
        .map(|(_, tp)| tp)
        .collect()
}

fn attach(consumer: &BaseConsumer<GroupContext>, job: &ConsumerJob) -> Result<(), HarnessError> {
    match job.workload.consumer_mode {
        ConsumerMode::Assign => {
            let mut list = TopicPartitionList::new();
            for (topic, partition) in assignment_for(&job.workload, &job.topics, job.member) {
                list.add_partition_offset(&topic, partition, Offset::Beginning)
                    .map_err(|err| HarnessError::client("building assignment", err))?;
            }
            consumer
                .assign(&list)
                .map_err(|err| HarnessError::client("assign", err))
        }
        ConsumerMode::Group => {
            let names: Vec<&str> = job.topics.iter().map(String::as_str).collect();
            consumer
                .subscribe(&names)
                .map_err(|err| HarnessError::client("subscribe", err))
        }
    }
}

/// Reads until the group consumed every acknowledged message (or stalls, or the run aborts).
pub fn run_consumer(job: ConsumerJob) -> Result<ConsumerTally, HarnessError> {
    let context = GroupContext {
        group: job.group.clone(),
        assigned_once: AtomicBool::new(false),
    };
    let consumer: BaseConsumer<GroupContext> =
        consumer_config(&job)
            .create_with_context(context)
            .map_err(|err| HarnessError::client("creating consumer", err))?;
    attach(&consumer, &job)?;
    let warmup_ns = job.workload.warmup_s * 1_000_000_000;
    let mut tally = ConsumerTally::default();
    let mut last_progress = Instant::now();
    while !job.abort.load(Ordering::Relaxed) {
        if job.produce.done.load(Ordering::Acquire) {
            let target = job.produce.acked.load(Ordering::Acquire);
            if job.group.consumed.load(Ordering::Acquire) >= target
                || last_progress.elapsed() > DRAIN_STALL_TIMEOUT
            {
                break;
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(err)) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| err.to_string());
            }
            Some(Ok(message)) => {
                let now_ns = job.clock.get().map_or(0, RunClock::now_ns);
                last_progress = Instant::now();
                let payload = message.payload().unwrap_or(&[]);
                tally.consumed += 1;
                job.group.consumed.fetch_add(1, Ordering::AcqRel);
                tally
                    .received_per_second
                    .add(RunClock::second_of(now_ns), 1, payload.len() as u64);
                tally.last_receipt_ns = tally.last_receipt_ns.max(now_ns);
                if now_ns >= warmup_ns {
                    tally.received_after_warmup += 1;
                    tally.received_bytes_after_warmup += payload.len() as u64;
                }
                match scheduled_ns_of(payload) {
                    Some(scheduled_ns) if scheduled_ns >= warmup_ns => {
                        tally
                            .latency
                            .record_us(now_ns.saturating_sub(scheduled_ns) / 1_000);
                    }
                    Some(_) => {}
                    None => tally.malformed += 1,
                }
            }
        }
    }
    Ok(tally)
}

/// The scheduled send time the producer wrote into the payload's first 8 bytes.
pub fn scheduled_ns_of(payload: &[u8]) -> Option<u64> {
    let header: [u8; PAYLOAD_HEADER_BYTES] =
        payload.get(..PAYLOAD_HEADER_BYTES)?.try_into().ok()?;
    Some(u64::from_le_bytes(header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigned_members_cover_every_partition_once() {
        let workload = Workload {
            partitions_per_topic: 5,
            consumers_per_group: 3,
            ..Workload::default()
        };
        let topics = vec!["a".to_string(), "b".to_string()];
        let mut all: Vec<(String, i32)> = (0..3)
            .flat_map(|m| assignment_for(&workload, &topics, m))
            .collect();
        all.sort();
        let mut expected: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|t| (0..5).map(move |p| (t.clone(), p)))
            .collect();
        expected.sort();
        assert_eq!(all, expected);
    }

    #[test]
    fn timestamp_round_trips_and_short_payloads_are_rejected() {
        let mut payload = vec![0u8; 16];
        payload[..8].copy_from_slice(&123_456u64.to_le_bytes());
        assert_eq!(scheduled_ns_of(&payload), Some(123_456));
        assert_eq!(scheduled_ns_of(&[1, 2, 3]), None);
    }
}
