//! Data-plane operations that run on the shard owning the partitions.
//!
//! Each function here is the body of one bus hop: a handler groups a request's
//! partitions by owning shard and sends each shard its items in one
//! `bus.invoke_on(owner, ...)`. Items and results are owned `Send` values
//! (`Bytes`, plain structs) tagged with their position in the request so the
//! handler can reassemble the response in order. Per-partition failures are
//! results, never a failed hop.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringlet_io::LogError;
use ringlet_protocol::record_batch::BatchError;

use super::fan_out::HopDispatched;
use super::txn_index::AbortedTxn;
use super::waiters::{join_all, join_all_started, race, CrossShardSignal, FetchWaiter};
use super::{now_ms, Appended, Partition, PartitionManager, PartitionSettings, Watermarks};
use crate::error::BrokerError;

/// What a log failure means to a Kafka client.
///
/// Input problems the log catches (a batch that does not validate, an offset
/// outside the log) keep their Kafka meaning; anything else is the disk's
/// fault: KAFKA_STORAGE_ERROR, which clients retry.
pub fn storage_error(err: LogError) -> BrokerError {
    match err {
        LogError::InvalidBatch {
            source: BatchError::BadMagic(_),
            ..
        }
        | LogError::EmptyAppend => BrokerError::InvalidRecord(err.to_string()),
        LogError::InvalidBatch { .. } => BrokerError::CorruptMessage(err.to_string()),
        LogError::BatchTooLarge { .. } => BrokerError::MessageTooLarge(err.to_string()),
        LogError::OffsetOutOfRange { .. } | LogError::NotBatchBoundary { .. } => {
            BrokerError::OffsetOutOfRange
        }
        other => {
            tracing::warn!(error = %other, "partition log failure");
            BrokerError::Storage(other.to_string())
        }
    }
}

/// KIP-392's replica selector: where a consumer in `rack` should read a partition this
/// broker leads; `None` keeps it on the leader.
pub trait ReadReplicaSelector {
    fn preferred_read_replica(&self, partition: &Partition, rack: &str) -> Option<i32>;
}

/// Finds the settings of a topic on this shard's topic table; `None` when the
/// topic or partition does not exist (any more).
pub trait PartitionLookup {
    fn settings(&self, topic: &str, partition: i32) -> Option<PartitionSettings>;
}

/// The partition on its owning shard, opened if needed; UNKNOWN_TOPIC_OR_PARTITION when its
/// topic is gone.
pub(crate) async fn partition(
    manager: &PartitionManager,
    lookup: &dyn PartitionLookup,
    topic: &str,
    index: i32,
) -> Result<Rc<Partition>, BrokerError> {
    partition_as(manager, lookup, topic, index, false).await
}

/// As [`partition`]; with `follower_may_serve` (KIP-392: a consumer's fetch at version 11 or
/// later) a follower replica serves too. It serves what it knows to be committed: its high
/// watermark is the commit index the leader told it.
async fn partition_as(
    manager: &PartitionManager,
    lookup: &dyn PartitionLookup,
    topic: &str,
    index: i32,
    follower_may_serve: bool,
) -> Result<Rc<Partition>, BrokerError> {
    if let Some(partition) = manager.get(topic, index) {
        if lookup.settings(topic, index).is_none() {
            return Err(BrokerError::UnknownTopicOrPartition);
        }
        if !partition.is_leading() && !follower_may_serve {
            // A follower replica: clients go to the leader (Metadata names it).
            return Err(BrokerError::NotLeaderOrFollower);
        }
        return Ok(partition);
    }
    let settings = lookup
        .settings(topic, index)
        .ok_or(BrokerError::UnknownTopicOrPartition)?;
    if settings.replicated {
        // Not a replica here, or its replica is still starting.
        return Err(BrokerError::NotLeaderOrFollower);
    }
    manager
        .get_or_open(topic, index, || settings)
        .await
        .map_err(storage_error)
}

/// KIP-320 fencing: a client's `current_leader_epoch` (-1 = not given) against ours.
fn check_leader_epoch(partition: &Partition, current_leader_epoch: i32) -> Result<(), BrokerError> {
    let ours = partition.leader_epoch();
    match current_leader_epoch {
        -1 => Ok(()),
        theirs if theirs < ours => Err(BrokerError::FencedLeaderEpoch),
        theirs if theirs > ours => Err(BrokerError::UnknownLeaderEpoch),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------- produce

/// One partition of a produce request, already validated by the handler.
#[derive(Debug)]
pub struct ProduceItem {
    pub topic: String,
    pub partition: i32,
    pub records: BytesMut,
}

/// Appends each item to its partition's log; with `wait_durable` (acks=all)
/// replies only once every appended batch is on stable storage. `dispatched` is fired as
/// soon as every batch has its offsets (before the durable waits), so the connection's next
/// produce request may start (`server::produce_order`).
pub async fn produce(
    manager: &PartitionManager,
    lookup: &dyn PartitionLookup,
    items: Vec<(usize, ProduceItem)>,
    wait_durable: bool,
    replicas: Option<(&super::replicas::ReplicaManager, std::time::Duration)>,
    dispatched: HopDispatched,
) -> Vec<(usize, Result<Appended, BrokerError>)> {
    if let Some((replicas, timeout)) = replicas {
        let proposed = propose_all(manager, lookup, items, wait_durable, replicas, timeout).await;
        dispatched.fire();
        return proposed.await;
    }
    let now = now_ms();
    let mut resolved = Vec::with_capacity(items.len());
    // Resolving may open a partition (an await); appending may not wait for that.
    for (position, item) in items {
        let p = partition(manager, lookup, &item.topic, item.partition).await;
        resolved.push((position, p, item.records));
    }
    let appends = resolved
        .into_iter()
        .map(|(position, p, records)| {
            Box::pin(async move {
                let p = match p {
                    Ok(p) => p,
                    Err(err) => return (position, Err(err)),
                };
                let result = match p.append_produced(records, now).await {
                    Ok(a) if wait_durable => p
                        .log()
                        .wait_durable(a.last_offset)
                        .await
                        .map(|()| a)
                        .map_err(storage_error),
                    other => other,
                };
                (position, result)
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>
        })
        .collect();
    // `append_produced` checks the producer state and takes its offsets from the log before
    // its first await, so polling every append once assigns offsets in item order; the writes
    // and durable waits then overlap.
    join_all_started(appends, || dispatched.fire()).await
}

/// Produce in a cluster, first stage: each batch is proposed to its partition's Raft group, in
/// item order, before anything is awaited (so one replication round carries them all and the
/// groups assign offsets in the order the connection sent the batches). The returned future
/// is the second stage: the replication outcomes, in item order.
async fn propose_all<'a>(
    manager: &PartitionManager,
    lookup: &dyn PartitionLookup,
    items: Vec<(usize, ProduceItem)>,
    wait_durable: bool,
    replicas: &'a super::replicas::ReplicaManager,
    timeout: std::time::Duration,
) -> impl std::future::Future<Output = Vec<(usize, Result<Appended, BrokerError>)>> + 'a {
    let acks = if wait_durable {
        super::replicas::Acks::Quorum
    } else {
        super::replicas::Acks::Leader
    };
    let mut waits = Vec::with_capacity(items.len());
    let mut positions = Vec::with_capacity(items.len());
    for (position, item) in items {
        positions.push(position);
        let proposed = match partition(manager, lookup, &item.topic, item.partition).await {
            Ok(p) => propose_one(&p, item.records, acks, replicas),
            Err(err) => Err(err),
        };
        waits.push(Box::pin(async move {
            let (p, receiver, log_append_time_ms) = proposed?;
            let (base_offset, last_offset) = replicas.replicated(receiver, timeout).await?;
            Ok(Appended {
                base_offset,
                last_offset,
                log_append_time_ms,
                log_start_offset: p.log().log_start_offset(),
            })
        })
            as std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<Appended, BrokerError>> + 'a>,
            >);
    }
    async move { positions.into_iter().zip(join_all(waits).await).collect() }
}

/// A proposed batch: its partition, the receiver of its replication outcome and its
/// LogAppendTime (-1 unless the topic stamps one).
type Proposed = (Rc<Partition>, super::replicas::ProposalReceiver, i64);

/// Proposes one batch to `p`'s Raft group, now.
fn propose_one(
    p: &Rc<Partition>,
    mut records: BytesMut,
    acks: super::replicas::Acks,
    replicas: &super::replicas::ReplicaManager,
) -> Result<Proposed, BrokerError> {
    let Some(group) = p.replica_group() else {
        // An unreplicated topic on a cluster member (never created so: refuse).
        return Err(BrokerError::NotLeaderOrFollower);
    };
    // Stamped before proposing, so that every replica stores the same bytes.
    let append_time = p.uses_log_append_time().then(now_ms);
    if let Some(now) = append_time {
        stamp_log_append_time(&mut records, now)?;
    }
    let receiver = replicas.propose_produced(group, records, acks)?;
    Ok((Rc::clone(p), receiver, append_time.unwrap_or(-1)))
}

/// `message.timestamp.type=LogAppendTime`: every batch of `records` gets `now_ms` as its
/// timestamp (as the log does for a local append).
fn stamp_log_append_time(records: &mut BytesMut, now_ms: i64) -> Result<(), BrokerError> {
    use ringlet_protocol::record_batch as rb;
    let invalid = |err: BatchError| BrokerError::CorruptMessage(err.to_string());
    for range in rb::split_batches(records).map_err(invalid)? {
        let batch = &mut records[range];
        rb::validate_batch(batch).map_err(invalid)?;
        rb::set_log_append_time(batch, now_ms);
    }
    Ok(())
}

// ---------------------------------------------------------------- fetch

/// One partition of a fetch request.
#[derive(Debug, Clone)]
pub struct FetchItem {
    pub topic: String,
    pub partition: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub current_leader_epoch: i32,
    /// Isolation level 1: only below the last stable offset, with aborted transactions.
    pub read_committed: bool,
    /// A consumer's fetch at version 11 or later: a follower replica may serve it (KIP-392).
    pub follower_may_serve: bool,
    /// The consumer's `client.rack` (KIP-392), when it sent one; only ever set together with
    /// `follower_may_serve` (older clients cannot be sent elsewhere).
    pub client_rack: Option<Arc<str>>,
}

/// One partition's fetch answer.
#[derive(Debug)]
pub struct Fetched {
    pub error: Option<BrokerError>,
    /// `None` when the partition could not be found.
    pub watermarks: Option<Watermarks>,
    pub records: Bytes,
    /// read_committed: the aborted transactions overlapping `records`.
    pub aborted: Vec<AbortedTxn>,
    /// KIP-392: the replica the consumer should fetch from next (-1: keep this broker).
    pub preferred_read_replica: i32,
}

impl Fetched {
    /// A partition that could not be read at all.
    pub fn failed(err: BrokerError) -> Self {
        Fetched {
            error: Some(err),
            watermarks: None,
            records: Bytes::new(),
            aborted: Vec::new(),
            preferred_read_replica: -1,
        }
    }

    /// No records: the consumer should read from `replica` (KIP-392).
    pub fn elsewhere(replica: i32, watermarks: Watermarks) -> Self {
        Fetched {
            error: None,
            watermarks: Some(watermarks),
            records: Bytes::new(),
            aborted: Vec::new(),
            preferred_read_replica: replica,
        }
    }
}

/// Reads each item's partition, in item order, with at most `shard_limit_bytes`
/// in total (plus the one whole batch the first read may exceed by, KIP-74). A consumer
/// in another rack than this leader may instead be sent to a replica in its own
/// (`selector`, KIP-392).
pub async fn fetch(
    manager: &PartitionManager,
    lookup: &dyn PartitionLookup,
    items: &[(usize, FetchItem)],
    shard_limit_bytes: usize,
    selector: Option<&dyn ReadReplicaSelector>,
) -> Vec<(usize, Fetched)> {
    let mut used = 0usize;
    let mut results = Vec::with_capacity(items.len());
    for (position, item) in items {
        let resolved = partition_as(
            manager,
            lookup,
            &item.topic,
            item.partition,
            item.follower_may_serve,
        );
        let fetched = match resolved.await {
            Ok(p) => match preferred_elsewhere(&p, item, selector) {
                // Kafka's leader answers such a fetch with no records, only the replica to use.
                Some(replica) => Fetched::elsewhere(replica, p.watermarks()),
                None => {
                    let remaining = shard_limit_bytes.saturating_sub(used);
                    let fetched = fetch_one(&p, item, remaining, used == 0).await;
                    used += fetched.records.len();
                    fetched
                }
            },
            Err(err) => Fetched::failed(err),
        };
        results.push((*position, fetched));
    }
    results
}

/// KIP-392 on the leader: the replica a consumer that named its rack should read from,
/// when that is not this broker.
fn preferred_elsewhere(
    p: &Partition,
    item: &FetchItem,
    selector: Option<&dyn ReadReplicaSelector>,
) -> Option<i32> {
    let rack = item.client_rack.as_deref()?;
    if !p.is_leading() {
        return None;
    }
    selector?.preferred_read_replica(p, rack)
}

async fn fetch_one(p: &Partition, item: &FetchItem, remaining: usize, first: bool) -> Fetched {
    let watermarks = p.watermarks();
    let mut fetched = Fetched {
        error: None,
        watermarks: Some(watermarks),
        records: Bytes::new(),
        aborted: Vec::new(),
        preferred_read_replica: -1,
    };
    if let Err(err) = check_leader_epoch(p, item.current_leader_epoch) {
        fetched.error = Some(err);
        return fetched;
    }
    // Kafka's rule: out of range is below the log start or past the log END. A new leader's
    // high watermark can trail what its predecessor already exposed (it moves once the new
    // term commits); a consumer fetching between the two simply gets nothing yet.
    if item.fetch_offset < watermarks.log_start_offset
        || item.fetch_offset > p.log().log_end_offset().max(watermarks.high_watermark)
    {
        fetched.error = Some(BrokerError::OffsetOutOfRange);
        return fetched;
    }
    let partition_limit = usize::try_from(item.partition_max_bytes).unwrap_or(0);
    let limit = partition_limit.min(remaining);
    // The log returns at least one batch; only the shard's first read may use
    // that to exceed its limit, the others stop when the budget is gone.
    if limit == 0 && !first {
        return fetched;
    }
    if item.read_committed && item.fetch_offset >= watermarks.last_stable_offset {
        return fetched;
    }
    let records = match p.read(item.fetch_offset, limit).await {
        Ok(records) if first || records.len() <= limit => records,
        Ok(records) => {
            let keep = super::fetch_budget::whole_batches_prefix_len(&records, limit);
            records.slice(..keep)
        }
        Err(err) => {
            fetched.error = Some(storage_error(err));
            return fetched;
        }
    };
    if item.read_committed {
        // The LSO as of now: the read may have raced a marker, never past it.
        let lso = p.watermarks().last_stable_offset;
        (fetched.records, fetched.aborted) = p.committed_view(records, item.fetch_offset, lso);
    } else {
        fetched.records = records;
    }
    fetched
}

/// Parks until any item's partition has data beyond its fetch offset, the
/// timeout passes, or `cancel` fires (the handler already has its answer).
/// Returns at once when data is already there. Never polls: appends wake it.
pub async fn wait_for_data(
    manager: &PartitionManager,
    items: &[(usize, FetchItem)],
    timeout: Duration,
    cancel: Arc<CrossShardSignal>,
) {
    let waiter = FetchWaiter::new();
    for (_, item) in items {
        let Some(p) = manager.get(&item.topic, item.partition) else {
            continue;
        };
        let has_data = if item.read_committed {
            p.watermarks().last_stable_offset > item.fetch_offset
        } else {
            p.has_data_after(item.fetch_offset)
        };
        if has_data {
            return;
        }
        p.register_waiter(&waiter);
    }
    race(
        race(waiter.woken(), cancel.fired()),
        ringlet_shard::task::sleep(timeout),
    )
    .await;
}

// ---------------------------------------------------------------- list offsets

/// Kafka's special ListOffsets timestamps.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;
pub const EARLIEST_PENDING_UPLOAD_TIMESTAMP: i64 = -6;

#[derive(Debug, Clone)]
pub struct ListOffsetsItem {
    pub topic: String,
    pub partition: i32,
    pub timestamp: i64,
    pub current_leader_epoch: i32,
    /// Isolation level 1: "latest" is the last stable offset.
    pub read_committed: bool,
}

/// Kafka's answer when no offset matches: offset -1, timestamp -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetFound {
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: i32,
}

impl OffsetFound {
    const NONE: OffsetFound = OffsetFound {
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
    };
}

pub async fn list_offsets(
    manager: &PartitionManager,
    lookup: &dyn PartitionLookup,
    items: Vec<(usize, ListOffsetsItem)>,
) -> Vec<(usize, Result<OffsetFound, BrokerError>)> {
    let mut results = Vec::with_capacity(items.len());
    for (position, item) in items {
        let result = match partition(manager, lookup, &item.topic, item.partition).await {
            Ok(p) => list_offset(&p, &item).await,
            Err(err) => Err(err),
        };
        results.push((position, result));
    }
    results
}

async fn list_offset(p: &Partition, item: &ListOffsetsItem) -> Result<OffsetFound, BrokerError> {
    check_leader_epoch(p, item.current_leader_epoch)?;
    let epoch = p.leader_epoch();
    let at = |offset: i64| OffsetFound {
        timestamp: -1,
        offset,
        leader_epoch: epoch,
    };
    let watermarks = p.watermarks();
    Ok(match item.timestamp {
        LATEST_TIMESTAMP if item.read_committed => at(watermarks.last_stable_offset),
        LATEST_TIMESTAMP => at(watermarks.high_watermark),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => at(watermarks.log_start_offset),
        LATEST_TIERED_TIMESTAMP | EARLIEST_PENDING_UPLOAD_TIMESTAMP => OffsetFound::NONE,
        MAX_TIMESTAMP => match p.log().max_timestamp() {
            Some((timestamp, batch_last_offset)) => {
                match record_of_max_timestamp(p, timestamp, batch_last_offset).await? {
                    Some(found) => found,
                    // The batch is not readable now (above the high watermark, or too big to
                    // decompress): the batch-level answer, as Kafka before KAFKA-16310.
                    None => OffsetFound {
                        timestamp,
                        offset: batch_last_offset,
                        leader_epoch: epoch,
                    },
                }
            }
            None => OffsetFound::NONE,
        },
        timestamp => match p
            .log()
            .offset_for_timestamp(timestamp)
            .await
            .map_err(storage_error)?
        {
            // The log answers (offset, timestamp of the record found).
            Some((offset, timestamp)) => OffsetFound {
                timestamp,
                offset,
                leader_epoch: epoch,
            },
            None => OffsetFound::NONE,
        },
    })
}

/// ListOffsets MAX_TIMESTAMP (KAFKA-16310): the first record carrying the largest timestamp,
/// inside the batch the log names (the one ending at `batch_last_offset`), with that batch's
/// leader epoch, as Kafka's `UnifiedLog.fetchOffsetByTimestamp`. `None` when that batch is not
/// the one read back (not yet visible, or the log moved meanwhile).
async fn record_of_max_timestamp(
    p: &Partition,
    timestamp: i64,
    batch_last_offset: i64,
) -> Result<Option<OffsetFound>, BrokerError> {
    use ringlet_protocol::record_batch::{parse_header, split_batches};
    let data = p.read(batch_last_offset, 1).await.map_err(storage_error)?;
    let Some(range) = split_batches(&data).ok().and_then(|r| r.into_iter().next()) else {
        return Ok(None);
    };
    let batch = &data[range];
    let Ok(header) = parse_header(batch) else {
        return Ok(None);
    };
    if header.max_timestamp != timestamp || header.last_offset() != batch_last_offset {
        return Ok(None);
    }
    let max_bytes = super::produce_rules::DECOMPRESSED_BATCH_BYTES_MAX;
    let Ok(Some((offset, timestamp))) =
        ringlet_protocol::records::offset_of_max_timestamp(batch, max_bytes)
    else {
        return Ok(None);
    };
    let leader_epoch = if header.partition_leader_epoch >= 0 {
        header.partition_leader_epoch
    } else {
        p.leader_epoch()
    };
    Ok(Some(OffsetFound {
        timestamp,
        offset,
        leader_epoch,
    }))
}

// ---------------------------------------------------------------- delete records

#[derive(Debug, Clone)]
pub struct DeleteRecordsItem {
    pub topic: String,
    pub partition: i32,
    /// -1 means "up to the high watermark".
    pub offset: i64,
}

/// Advances each partition's log start (persisted by the log); returns the new low watermark.
/// On a cluster (`replicas`, with the request's timeout) through each partition's Raft group
/// (`replicas::log_start`).
pub async fn delete_records(
    manager: &PartitionManager,
    lookup: &dyn PartitionLookup,
    items: Vec<(usize, DeleteRecordsItem)>,
    replicas: Option<(&super::replicas::ReplicaManager, std::time::Duration)>,
) -> Vec<(usize, Result<i64, BrokerError>)> {
    let mut results = Vec::with_capacity(items.len());
    for (position, item) in items {
        let result = match partition(manager, lookup, &item.topic, item.partition).await {
            Ok(p) => delete_records_one(&p, item.offset, replicas).await,
            Err(err) => Err(err),
        };
        results.push((position, result));
    }
    results
}

async fn delete_records_one(
    p: &Partition,
    offset: i64,
    replicas: Option<(&super::replicas::ReplicaManager, std::time::Duration)>,
) -> Result<i64, BrokerError> {
    let watermarks = p.watermarks();
    let target = if offset == -1 {
        watermarks.high_watermark
    } else {
        offset
    };
    if target < 0 || target > watermarks.high_watermark {
        return Err(BrokerError::OffsetOutOfRange);
    }
    if let (Some(group), Some((replicas, timeout))) = (p.replica_group(), replicas) {
        // Every replica moves its log start, once the command is committed.
        return replicas.delete_records(group, target, timeout).await;
    }
    if p.is_replicated() {
        return Err(BrokerError::NotLeaderOrFollower);
    }
    if target > watermarks.log_start_offset {
        p.log()
            .advance_log_start(target)
            .await
            .map_err(storage_error)?;
    }
    Ok(p.log().log_start_offset())
}

// ---------------------------------------------------------------- offset for leader epoch

#[derive(Debug, Clone)]
pub struct EpochItem {
    pub topic: String,
    pub partition: i32,
    pub current_leader_epoch: i32,
    pub leader_epoch: i32,
}

/// `(leader_epoch, end_offset)`; `(-1, -1)` when the epoch is unknown (UNDEFINED).
pub async fn end_offsets_for_epochs(
    manager: &PartitionManager,
    lookup: &dyn PartitionLookup,
    items: Vec<(usize, EpochItem)>,
) -> Vec<(usize, Result<(i32, i64), BrokerError>)> {
    let mut results = Vec::with_capacity(items.len());
    for (position, item) in items {
        let result = match partition(manager, lookup, &item.topic, item.partition).await {
            Ok(p) => check_leader_epoch(&p, item.current_leader_epoch)
                .map(|()| end_offset_for_epoch(&p, item.leader_epoch)),
            Err(err) => Err(err),
        };
        results.push((position, result));
    }
    results
}

fn end_offset_for_epoch(p: &Partition, requested_epoch: i32) -> (i32, i64) {
    // The current epoch ends at the log end (Kafka: the leader's LEO).
    if requested_epoch == p.leader_epoch() {
        return (requested_epoch, p.log().log_end_offset());
    }
    if requested_epoch > p.leader_epoch() {
        return (-1, -1);
    }
    p.log()
        .end_offset_for_epoch(requested_epoch)
        .unwrap_or((-1, -1))
}
