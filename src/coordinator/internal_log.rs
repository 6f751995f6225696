//! The partitions of the coordinators' internal topics (`__consumer_offsets`,
//! `__transaction_state`): where they are served and how a coordinator writes them.
//!
//! On one node a coordinator appends to the partition's log and syncs. On a cluster the log
//! of a replica is written only by its Raft group, so the coordinator proposes the batch as
//! the partition's leader and goes on once a majority has it durably; it coordinates only
//! while it leads the partition (as Kafka's coordinators follow partition leadership).

use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::error::BrokerError;
use crate::partition::lookup::OwnerLookup;
use crate::partition::ops::{storage_error, PartitionLookup};
use crate::partition::replicas::{Acks, Origin};
use crate::partition::Partition;
use crate::state::ShardState;

/// How long a coordinator's write may take to reach a majority (Kafka
/// `offsets.commit.timeout.ms`).
const REPLICATED_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The Raft group of `topic`-`partition` (on a cluster, once the topic exists).
pub fn raft_group(state: &ShardState, topic: &str, partition: i32) -> Option<u64> {
    let topics = state.topics();
    let meta = topics.get(topic)?;
    let assignment = meta.assignments.get(usize::try_from(partition).ok()?)?;
    Some(assignment.group)
}

/// The leader epoch at which this node coordinates for `topic`-`partition`: -1 on a single
/// node; on a cluster, only while this node leads the partition's Raft group and has
/// committed in its term (`ReplicaManager::serving_epoch`), else NOT_COORDINATOR (clients
/// look the coordinator up again) or COORDINATOR_LOAD_IN_PROGRESS (they retry).
pub fn serving_epoch(state: &ShardState, topic: &str, partition: i32) -> Result<i32, BrokerError> {
    let Some(cluster) = state.cluster.as_ref() else {
        return Ok(-1);
    };
    let group = raft_group(state, topic, partition).ok_or(BrokerError::NotCoordinator)?;
    cluster.replicas.serving_epoch(group)
}

/// The open log of `topic`-`partition` on this (owning) shard.
pub async fn open(
    state: &ShardState,
    topic: &str,
    partition: i32,
) -> Result<Rc<Partition>, BrokerError> {
    if let Some(open) = state.partitions.get(topic, partition) {
        return Ok(open);
    }
    let settings = OwnerLookup(state)
        .settings(topic, partition)
        .ok_or(BrokerError::UnknownTopicOrPartition)?;
    state
        .partitions
        .get_or_open(topic, partition, || settings)
        .await
        .map_err(storage_error)
}

/// Appends one coordinator batch to `topic`-`partition` and waits until it is durable (on
/// a cluster: committed, on a majority).
pub async fn append(
    state: &ShardState,
    topic: &str,
    partition: i32,
    batch: BytesMut,
    now_ms: i64,
) -> Result<(), BrokerError> {
    let log = open(state, topic, partition).await?;
    if let (Some(cluster), Some(group)) = (state.cluster.as_ref(), log.replica_group()) {
        cluster
            .replicas
            .produce_as(
                group,
                batch,
                Acks::Quorum,
                REPLICATED_WRITE_TIMEOUT,
                Origin::Coordinator,
            )
            .await?;
        return Ok(());
    }
    log.append(batch, now_ms, true)
        .await
        .map_err(storage_error)?;
    Ok(())
}

/// One record batch of (key, value) records, written by a coordinator: with the producer's
/// id and epoch for transactional offsets, none otherwise. Always a single batch, as Kafka's
/// coordinators write (a replicated partition's Raft entry is exactly one batch).
pub fn encode_batch(
    entries: Vec<(Bytes, Option<Bytes>)>,
    producer: Option<(i64, i16)>,
    now_ms: i64,
) -> Result<BytesMut, BrokerError> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let batch: Vec<Record> = entries
        .into_iter()
        .enumerate()
        .map(|(index, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            // kafka-protocol starts a new batch wherever `offset - sequence` changes, so
            // the sequence runs along with the offset; the batch's base sequence comes out
            // as -1 (Kafka's NO_SEQUENCE for coordinator batches).
            sequence: index as i32 - 1,
            timestamp: now_ms,
            key: Some(key),
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &batch, &options)
        .map_err(|err| BrokerError::internal(format!("encoding a coordinator batch: {err}")))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use ringlet_protocol::record_batch::{parse_header, split_batches};

    use super::*;

    fn entries(count: usize) -> Vec<(Bytes, Option<Bytes>)> {
        (0..count)
            .map(|i| (Bytes::from(format!("k{i}")), Some(Bytes::from("v"))))
            .collect()
    }

    #[test]
    fn many_records_make_one_batch_with_no_sequence() {
        for producer in [None, Some((7, 2))] {
            let batch = encode_batch(entries(5), producer, 1_000).unwrap();
            let ranges = split_batches(&batch).unwrap();
            assert_eq!(ranges.len(), 1, "one batch for {producer:?}");
            let header = parse_header(&batch).unwrap();
            assert_eq!(header.records_count, 5);
            assert_eq!(header.last_offset_delta, 4);
            assert_eq!(header.base_sequence, -1);
            assert_eq!(header.producer_id, producer.map_or(-1, |p| p.0));
            assert_eq!(header.is_transactional(), producer.is_some());
        }
    }
}
