//! One partition on its owning shard: its log, its leader epoch and its parked fetches.
//!
//! A `Partition` never leaves the shard that owns it (`Rc`, `Cell`). All Kafka
//! data-plane operations on a partition go through here so the rules that tie
//! them together live in one place: an append stamps the leader epoch (and the
//! append time for `LogAppendTime` topics) and wakes the parked fetches; a
//! fetch reads up to the log end (the high watermark of a single-node broker).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use ringlet_io::log::{LogConfig, PartitionLog};
use ringlet_io::LogError;

use super::producer_state::ProducerStates;
use super::waiters::{AppendWaiters, FetchWaiter};

/// What a successful append tells the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's append time for `LogAppendTime` topics, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

/// The offsets a fetch or list-offsets answer reports besides the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// Log start offset (the low watermark).
    pub log_start_offset: i64,
    /// High watermark: the log end on a single node.
    pub high_watermark: i64,
    /// Last stable offset: the first offset of the earliest unfinished transaction, else
    /// the high watermark.
    pub last_stable_offset: i64,
}

/// A partition's settings that come from its topic's config.
#[derive(Debug, Clone)]
pub struct PartitionSettings {
    pub log_config: LogConfig,
    /// `message.timestamp.type=LogAppendTime`: the broker stamps each batch's time.
    pub log_append_time: bool,
    /// `min.insync.replicas`: fewest in-sync replicas for an acks=all write.
    pub min_insync_replicas: i32,
    /// The topic is replicated (cluster mode): its partitions are opened only as Raft
    /// replicas, never lazily by a client request.
    pub replicated: bool,
}

/// Where a partition's producer state ends (see `Partition::producers_end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProducersEnd {
    LogEnd,
    At(i64),
    ReplayPending,
}

pub struct Partition {
    topic: String,
    index: i32,
    log: Rc<PartitionLog>,
    /// The leader epoch stamped on appended batches. Always 0 on a single node;
    /// replication will bump it (the Raft term) when leadership changes.
    leader_epoch: Cell<i32>,
    log_append_time: Cell<bool>,
    waiters: AppendWaiters,
    /// Idempotence and transaction state (`producer_state`); recovered on open.
    producers: RefCell<ProducerStates>,
    /// The offset of the last producer snapshot written (-1: none), to skip unchanged ones.
    snapshot_offset: Cell<i64>,
    /// Where the producer state ends on a replica, which updates it after a write lands
    /// (the log end runs ahead meanwhile); `LogEnd` on a local partition, which updates it
    /// before appending.
    producers_end: Cell<ProducersEnd>,
    /// Set when the partition is a Raft replica (`replicas`): only committed batches, below
    /// this high watermark, are visible; `None` on a single node (the log end is the HW).
    replicated_hw: Cell<Option<i64>>,
    /// A replicated partition serves clients only while this replica leads.
    leading: Cell<bool>,
    /// The Raft group of a replicated partition.
    replica_group: Cell<Option<u64>>,
}

impl Partition {
    pub fn new(topic: String, index: i32, log: Rc<PartitionLog>, log_append_time: bool) -> Self {
        Self {
            topic,
            index,
            log,
            leader_epoch: Cell::new(0),
            log_append_time: Cell::new(log_append_time),
            waiters: AppendWaiters::default(),
            producers: RefCell::new(ProducerStates::default()),
            snapshot_offset: Cell::new(-1),
            producers_end: Cell::new(ProducersEnd::LogEnd),
            replicated_hw: Cell::new(None),
            leading: Cell::new(true),
            replica_group: Cell::new(None),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn index(&self) -> i32 {
        self.index
    }

    pub fn log(&self) -> &Rc<PartitionLog> {
        &self.log
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.get()
    }

    /// For replication: a new leader term. Epochs only grow.
    pub fn set_leader_epoch(&self, epoch: i32) {
        assert!(
            epoch >= self.leader_epoch.get(),
            "leader epoch of {}-{} went back from {} to {epoch}",
            self.topic,
            self.index,
            self.leader_epoch.get()
        );
        self.leader_epoch.set(epoch);
    }

    /// Makes this a replica of Raft group `group`: nothing is visible until the first
    /// commit is applied, and it serves clients only once it leads.
    pub fn set_replicated(&self, group: u64) {
        self.replicated_hw.set(Some(self.log.log_start_offset()));
        self.leading.set(false);
        self.replica_group.set(Some(group));
        // Recovered on open up to the log end; from now on the replica's writes move it.
        self.producers_caught_up();
    }

    pub fn is_replicated(&self) -> bool {
        self.replicated_hw.get().is_some()
    }

    /// The Raft group of a replicated partition.
    pub fn replica_group(&self) -> Option<u64> {
        self.replica_group.get()
    }

    /// True on a single node, and on the leader replica of a replicated partition.
    pub fn is_leading(&self) -> bool {
        self.leading.get()
    }

    pub fn set_leading(&self, leading: bool) {
        self.leading.set(leading);
    }

    /// `message.timestamp.type=LogAppendTime` for this partition.
    pub fn uses_log_append_time(&self) -> bool {
        self.log_append_time.get()
    }

    /// A replica's new high watermark (its commit index); wakes parked fetches when it moves.
    pub fn set_high_watermark(&self, high_watermark: i64) {
        if let Some(current) = self.replicated_hw.get() {
            if high_watermark != current {
                self.replicated_hw.set(Some(high_watermark));
                self.waiters.wake_all();
            }
        }
    }

    /// The high watermark: the commit point of a replica, the log end on a single node.
    pub fn high_watermark(&self) -> i64 {
        self.replicated_hw
            .get()
            .unwrap_or_else(|| self.log.log_end_offset())
    }

    pub fn apply_settings(&self, settings: &PartitionSettings) {
        self.log.set_config(settings.log_config.clone());
        self.log_append_time.set(settings.log_append_time);
    }

    pub fn watermarks(&self) -> Watermarks {
        let high_watermark = self.high_watermark();
        Watermarks {
            log_start_offset: self.log.log_start_offset(),
            high_watermark,
            last_stable_offset: self
                .producers
                .borrow_mut()
                .last_stable_offset(high_watermark),
        }
    }

    /// Appends one validated batch, wakes parked fetches, and for acks=all waits
    /// until the batch is on stable storage (the log group-commits: concurrent
    /// appends share one fdatasync).
    pub async fn append(
        &self,
        records: BytesMut,
        now_ms: i64,
        wait_durable: bool,
    ) -> Result<Appended, LogError> {
        let append_time_ms = self.log_append_time.get().then_some(now_ms);
        let info = self
            .log
            .append(records, self.leader_epoch.get(), append_time_ms)
            .await?;
        self.waiters.wake_all();
        if wait_durable {
            self.log.wait_durable(info.last_offset).await?;
        }
        Ok(Appended {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            log_append_time_ms: append_time_ms.unwrap_or(-1),
            log_start_offset: self.log.log_start_offset(),
        })
    }

    /// Whole batches from `offset`, at least one when any exists there, else empty
    /// at the log end. Offsets outside `[log start, log end]` are `OffsetOutOfRange`.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, LogError> {
        let high_watermark = self.high_watermark();
        if offset >= high_watermark {
            return Ok(Bytes::new());
        }
        let batches = self.log.read(offset, max_bytes).await?;
        if self.is_replicated() {
            let keep = super::fetch_budget::batches_below_offset_len(&batches.data, high_watermark);
            return Ok(batches.data.slice(..keep));
        }
        Ok(batches.data)
    }

    /// True when a fetch from `offset` would return data now.
    pub fn has_data_after(&self, offset: i64) -> bool {
        self.high_watermark() > offset
    }

    /// The producer state; never borrow it across an await.
    pub fn producers(&self) -> &RefCell<ProducerStates> {
        &self.producers
    }

    /// The offset of the last producer snapshot written by this process (-1: none).
    pub fn snapshot_offset(&self) -> &Cell<i64> {
        &self.snapshot_offset
    }

    /// The offset the producer state covers the log up to (a snapshot is taken there);
    /// `None` while a replica's state awaits a replay.
    pub fn producers_end(&self) -> Option<i64> {
        match self.producers_end.get() {
            ProducersEnd::LogEnd => Some(self.log.next_offset()),
            ProducersEnd::At(offset) => Some(offset),
            ProducersEnd::ReplayPending => None,
        }
    }

    /// A replica's producer state now covers its log up to its end.
    pub fn producers_caught_up(&self) {
        self.producers_end
            .set(ProducersEnd::At(self.log.next_offset()));
    }

    /// A replica's producer state is about to be replayed from its log.
    pub fn producers_replay_pending(&self) {
        self.producers_end.set(ProducersEnd::ReplayPending);
    }

    /// Parks `waiter` until the next append to this partition.
    pub fn register_waiter(&self, waiter: &Rc<FetchWaiter>) {
        self.waiters.register(waiter);
    }
}
