//! The partition manager: every partition a shard owns, and the data-plane work on them.
//!
//! Each shard has one [`PartitionManager`] in its `ShardState`. It holds the
//! [`Partition`]s this shard owns (placement is `ringlet_shard::shard_for`), each
//! with its `Rc<PartitionLog>` under `data_dir/<topic>-<partition>/`. A
//! partition is opened lazily by the first operation that needs it (the log
//! recovers its directory on open), and the manager makes sure concurrent
//! first users share one open instead of racing two logs onto one directory.
//!
//! The manager also applies topic config changes to the open logs, deletes the
//! logs of deleted topics, runs retention periodically in a low-priority task
//! queue (`ringlet_io::RetentionRunner`, started with the first open log), and
//! closes every log on shutdown.
//!
//! The Kafka handlers (`src/handlers/{produce,fetch,...}.rs`) never touch a
//! partition directly: they group a request's partitions by owning shard and
//! make one bus hop per shard into [`ops`], which runs on the owner.

pub mod by_shard;
pub mod fan_out;
pub mod fetch_budget;
pub mod fetch_session;
mod local_partition;
pub mod lookup;
pub mod ops;
pub mod produce_rules;
pub mod producer_state;
mod producer_state_append;
mod producer_state_recovery;
pub mod producer_state_snapshot;
pub mod records_check;
pub mod records_count;
pub mod replica_storage;
mod replica_storage_batch;
mod replica_storage_cache;
mod replica_storage_io;
#[cfg(test)]
mod replica_storage_log_tests;
mod replica_storage_moves;
#[cfg(test)]
mod replica_storage_moves_tests;
mod replica_storage_sidecar;
#[cfg(test)]
mod replica_storage_tests;
pub mod replicas;
pub mod txn_index;
pub mod txn_markers;
pub mod txn_read;
pub mod waiters;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use ringlet_io::log::{PartitionLog, RetentionRunner};
use ringlet_io::LogError;
use ringlet_shard::ShardId;

use crate::producer_ids::ProducerIdAllocator;

pub use local_partition::{Appended, Partition, PartitionSettings, Watermarks};
use waiters::{AppendWaiters, FetchWaiter};

/// A partition's identity on one shard.
pub type PartitionKey = (String, i32);

enum Slot {
    Open(Rc<Partition>),
    /// Someone is opening the log; later arrivals wait on this and look again.
    Opening(Rc<AppendWaiters>),
}

/// How often retention runs (Kafka's `log.retention.check.interval.ms` default).
pub const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(300);

pub use crate::config::broker::DEFAULT_PRODUCER_ID_EXPIRATION_MS;
/// How often producers are expired and producer snapshots written (Kafka checks expiry
/// every `producer.id.expiration.check.interval.ms`, 10 minutes; snapshots are cheap here).
pub const PRODUCER_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// The partitions one shard owns. Shard-local: lives in `ShardState`, never crosses cores.
pub struct PartitionManager {
    data_dir: PathBuf,
    shard_id: ShardId,
    shard_count: usize,
    partitions: Rc<RefCell<HashMap<PartitionKey, Slot>>>,
    retention: Rc<RetentionRunner>,
    retention_started: Cell<bool>,
    /// Kafka `log.retention.check.interval.ms`.
    retention_check_interval: Cell<Duration>,
    /// Used on shard 0 only (`crate::producer_ids`).
    producer_ids: ProducerIdAllocator,
    /// Kafka `producer.id.expiration.ms`.
    producer_expiration_ms: Cell<i64>,
    /// Expires producers and writes producer snapshots periodically (started with the
    /// first open log; dropped on close).
    producer_maintenance: RefCell<Option<ringlet_shard::task::Task<()>>>,
}

impl PartitionManager {
    /// The manager of shard `shard_id` of `shard_count`, with logs under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, shard_id: ShardId, shard_count: usize) -> Self {
        let data_dir = data_dir.into();
        Self {
            producer_ids: ProducerIdAllocator::new(data_dir.join("meta")),
            data_dir,
            shard_id,
            shard_count,
            partitions: Rc::new(RefCell::new(HashMap::new())),
            retention: RetentionRunner::new(),
            retention_started: Cell::new(false),
            retention_check_interval: Cell::new(RETENTION_CHECK_INTERVAL),
            producer_expiration_ms: Cell::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS),
            producer_maintenance: RefCell::new(None),
        }
    }

    /// True when this shard owns the partition (the placement every shard agrees on).
    pub fn owns(&self, topic: &str, partition: i32) -> bool {
        lookup::owner_shard(topic, partition, self.shard_count) == self.shard_id
    }

    /// Where a partition's log lives: `data_dir/<topic>-<partition>` (Kafka's layout).
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        partition_dir(&self.data_dir, topic, partition)
    }

    /// Allocates producer ids from node `node_id`'s range (`producer_ids`).
    pub fn with_node_id(mut self, node_id: i32) -> Self {
        self.producer_ids = ProducerIdAllocator::for_node(self.data_dir.join("meta"), node_id);
        self
    }

    /// Sets `producer.id.expiration.ms` (from the broker config).
    pub fn with_producer_expiration_ms(self, expiration_ms: i64) -> Self {
        self.producer_expiration_ms.set(expiration_ms);
        self
    }

    /// Sets `log.retention.check.interval.ms` (from the broker config).
    pub fn with_retention_check_interval(self, interval: Duration) -> Self {
        self.retention_check_interval.set(interval);
        self
    }

    /// The producer-id allocator (allocates on shard 0 only: `producer_ids::next_producer_id`).
    pub fn producer_ids(&self) -> &ProducerIdAllocator {
        &self.producer_ids
    }

    /// The partition if it is open on this shard.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Rc<Partition>> {
        match self.partitions.borrow().get(&(topic.to_owned(), partition)) {
            Some(Slot::Open(p)) => Some(Rc::clone(p)),
            _ => None,
        }
    }

    /// The partition, opening its log first if needed with `settings`.
    ///
    /// The caller has checked that the topic and partition exist and that this
    /// shard owns them.
    pub async fn get_or_open(
        &self,
        topic: &str,
        partition: i32,
        settings: impl FnOnce() -> PartitionSettings,
    ) -> Result<Rc<Partition>, LogError> {
        let key: PartitionKey = (topic.to_owned(), partition);
        loop {
            // Decide under the borrow, act after it: no RefCell borrow across an await.
            let (gate, opener) = {
                let mut partitions = self.partitions.borrow_mut();
                match partitions.get(&key) {
                    Some(Slot::Open(p)) => return Ok(Rc::clone(p)),
                    Some(Slot::Opening(gate)) => (Rc::clone(gate), false),
                    None => {
                        let gate = Rc::new(AppendWaiters::default());
                        partitions.insert(key.clone(), Slot::Opening(Rc::clone(&gate)));
                        (gate, true)
                    }
                }
            };
            if opener {
                return self.open(key, gate, settings()).await;
            }
            let waiter = FetchWaiter::new();
            gate.register(&waiter);
            waiter.woken().await;
        }
    }

    async fn open(
        &self,
        key: PartitionKey,
        gate: Rc<AppendWaiters>,
        settings: PartitionSettings,
    ) -> Result<Rc<Partition>, LogError> {
        let dir = self.partition_dir(&key.0, key.1);
        let opened = match PartitionLog::open(&dir, settings.log_config.clone()).await {
            Ok(log) => producer_state_recovery::recover(&log)
                .await
                .map(|producers| (log, producers)),
            Err(err) => Err(err),
        };
        let replicated = settings.replicated;
        let result = opened.map(|(log, producers)| {
            // A replica's log start moves with its Raft anchor: the replica driver runs
            // retention for those (`replicas::ReplicaManager::enforce_retention`).
            if !replicated {
                self.retention.register(&log);
            }
            let partition = Rc::new(Partition::new(
                key.0.clone(),
                key.1,
                log,
                settings.log_append_time,
            ));
            *partition.producers().borrow_mut() = producers;
            tracing::debug!(
                dir = %dir.display(),
                segment_bytes = settings.log_config.segment_bytes,
                retention_bytes = settings.log_config.retention_bytes,
                "opened partition log"
            );
            partition
        });
        {
            let mut partitions = self.partitions.borrow_mut();
            match &result {
                Ok(partition) => partitions.insert(key, Slot::Open(Rc::clone(partition))),
                Err(err) => {
                    tracing::warn!(dir = %dir.display(), error = %err, "cannot open partition log");
                    partitions.remove(&key)
                }
            };
        }
        gate.wake_all();
        if result.is_ok() {
            self.start_retention();
        }
        result
    }

    /// Starts the periodic retention pass once, on the first opened log (so the
    /// task is spawned on this shard's executor).
    fn start_retention(&self) {
        if self.retention_started.replace(true) {
            return;
        }
        self.start_producer_maintenance();
        if let Err(err) = self.retention.spawn(self.retention_check_interval.get()) {
            tracing::error!(shard = self.shard_id, error = %err, "cannot start retention");
            self.retention_started.set(false);
        }
    }

    fn start_producer_maintenance(&self) {
        let partitions = Rc::clone(&self.partitions);
        let expiration_ms = self.producer_expiration_ms.get();
        // A short expiration is checked often enough to take effect close to on time.
        let half_expiration = u64::try_from(expiration_ms / 2).unwrap_or(0).max(100);
        let interval = PRODUCER_MAINTENANCE_INTERVAL.min(Duration::from_millis(half_expiration));
        let task = ringlet_shard::task::spawn_periodic(interval, move || {
            let open: Vec<Rc<Partition>> = partitions
                .borrow()
                .values()
                .filter_map(|slot| match slot {
                    Slot::Open(p) => Some(Rc::clone(p)),
                    Slot::Opening(_) => None,
                })
                .collect();
            async move {
                let now = now_ms();
                for partition in open {
                    partition.expire_producers(now, expiration_ms);
                    partition.store_producer_snapshot();
                    ringlet_shard::task::yield_if_needed().await;
                }
            }
        });
        *self.producer_maintenance.borrow_mut() = Some(task);
    }

    /// Applies a topic's new config to its open partitions on this shard.
    pub fn apply_topic_settings(&self, topic: &str, settings: &PartitionSettings) {
        for partition in self.open_partitions_of(Some(topic)) {
            partition.apply_settings(settings);
        }
    }

    /// Deletes the logs of a deleted topic's partitions that this shard owns,
    /// open or not: open ones through their log, the others (never opened since
    /// start) by removing their `<topic>-<n>` directory.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), LogError> {
        let removed: Vec<Rc<Partition>> = {
            let mut partitions = self.partitions.borrow_mut();
            let keys: Vec<PartitionKey> = partitions
                .keys()
                .filter(|(t, _)| t == topic)
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|key| match partitions.remove(&key) {
                    Some(Slot::Open(p)) => Some(p),
                    _ => None,
                })
                .collect()
        };
        for partition in &removed {
            partition.log().delete().await?;
            tracing::info!(
                topic,
                partition = partition.index(),
                "deleted partition log"
            );
        }
        for (index, dir) in self.partition_dirs_on_disk(topic) {
            if self.owns(topic, index) {
                std::fs::remove_dir_all(&dir).map_err(|source| LogError::Io {
                    op: "remove deleted topic's partition directory",
                    path: dir.clone(),
                    source,
                })?;
                tracing::info!(topic, partition = index, "deleted partition directory");
            }
        }
        Ok(())
    }

    /// `(partition, dir)` of every `data_dir/<topic>-<n>` directory.
    fn partition_dirs_on_disk(&self, topic: &str) -> Vec<(i32, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let index = parse_partition_dir(&name, topic)?;
                Some((index, entry.path()))
            })
            .collect()
    }

    /// One retention pass over every open partition now (the periodic task
    /// runs the same pass); returns the segments deleted.
    pub async fn enforce_retention(&self, now_ms: i64) -> usize {
        self.retention.run_once(now_ms).await
    }

    /// Closes every open log (flushes and syncs); called once on shutdown.
    pub async fn close_all(&self) {
        self.retention.stop();
        self.producer_maintenance.borrow_mut().take();
        let partitions: Vec<Rc<Partition>> = {
            let mut map = self.partitions.borrow_mut();
            map.drain()
                .filter_map(|(_, slot)| match slot {
                    Slot::Open(p) => Some(p),
                    Slot::Opening(_) => None,
                })
                .collect()
        };
        for partition in partitions {
            partition.store_producer_snapshot();
            if let Err(err) = partition.log().close().await {
                tracing::error!(
                    topic = partition.topic(),
                    partition = partition.index(),
                    error = %err,
                    "closing partition log failed"
                );
            }
        }
    }

    /// Open partitions, of one topic or of all.
    pub fn open_partitions_of(&self, topic: Option<&str>) -> Vec<Rc<Partition>> {
        self.partitions
            .borrow()
            .iter()
            .filter(|((t, _), _)| topic.is_none_or(|topic| t == topic))
            .filter_map(|(_, slot)| match slot {
                Slot::Open(p) => Some(Rc::clone(p)),
                Slot::Opening(_) => None,
            })
            .collect()
    }
}

/// `data_dir/<topic>-<partition>`.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// The partition index of a `<topic>-<n>` directory name, if it is one of `topic`'s.
pub fn parse_partition_dir(dir_name: &str, topic: &str) -> Option<i32> {
    let index = dir_name.strip_prefix(topic)?.strip_prefix('-')?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    index.parse().ok()
}

/// Wall-clock milliseconds since the epoch (append times, retention).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dirs_are_matched_exactly() {
        assert_eq!(parse_partition_dir("orders-3", "orders"), Some(3));
        assert_eq!(parse_partition_dir("orders-12", "orders"), Some(12));
        // Topic names may contain '-' and digits: "orders-1" is not partition 1-0 of "orders".
        assert_eq!(parse_partition_dir("orders-1-0", "orders"), None);
        assert_eq!(parse_partition_dir("orders-1-0", "orders-1"), Some(0));
        assert_eq!(parse_partition_dir("orders-", "orders"), None);
        assert_eq!(parse_partition_dir("orders-x", "orders"), None);
        assert_eq!(parse_partition_dir("meta", "meta"), None);
        assert_eq!(parse_partition_dir("orders-+1", "orders"), None);
    }

    #[test]
    fn partition_dir_follows_kafka_layout() {
        let dir = partition_dir(Path::new("/data"), "t.1", 4);
        assert_eq!(dir, PathBuf::from("/data/t.1-4"));
    }
}
