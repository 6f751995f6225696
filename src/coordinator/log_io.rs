//! Reading and writing `__consumer_offsets` partitions through the partition manager: a
//! list of [`GroupRecord`]s becomes one record batch appended and synced before the caller
//! goes on; loading replays a partition from its log start.

use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::group::GroupRecord;
use super::records;
use super::routing::OFFSETS_TOPIC;
use crate::error::BrokerError;
use crate::partition::lookup::OwnerLookup;
use crate::partition::ops::{storage_error, PartitionLookup};
use crate::partition::Partition;
use crate::state::ShardState;

/// How much of the log one read during loading asks for.
const LOAD_READ_BYTES: usize = 1 << 20;
/// How long a write to a replicated offsets partition may take to reach a majority (Kafka
/// `offsets.commit.timeout.ms`).
const REPLICATED_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The leader epoch at which this node coordinates offsets partition `partition`: -1 on a
/// single node; on a cluster, only while this node leads the partition's Raft group and
/// has committed in its term (`ReplicaManager::serving_epoch`), else
/// COORDINATOR_NOT_AVAILABLE (clients then look the coordinator up again).
pub fn serving_epoch(state: &ShardState, partition: i32) -> Result<i32, BrokerError> {
    let Some(cluster) = state.cluster.as_ref() else {
        return Ok(-1);
    };
    offsets_group(state, partition)
        .and_then(|group| cluster.replicas.serving_epoch(group))
        .ok_or(BrokerError::CoordinatorNotAvailable)
}

/// The Raft group of offsets partition `partition` (on a cluster, once the topic exists).
pub fn offsets_group(state: &ShardState, partition: i32) -> Option<u64> {
    let topics = state.topics();
    let meta = topics.get(OFFSETS_TOPIC)?;
    let assignment = meta.assignments.get(usize::try_from(partition).ok()?)?;
    Some(assignment.group)
}

async fn offsets_partition_log(
    state: &ShardState,
    partition: i32,
) -> Result<Rc<Partition>, BrokerError> {
    if let Some(open) = state.partitions.get(OFFSETS_TOPIC, partition) {
        return Ok(open);
    }
    let settings = OwnerLookup(state)
        .settings(OFFSETS_TOPIC, partition)
        .ok_or(BrokerError::UnknownTopicOrPartition)?;
    state
        .partitions
        .get_or_open(OFFSETS_TOPIC, partition, || settings)
        .await
        .map_err(storage_error)
}

/// One record batch holding `records`.
pub fn encode_batch(
    records_to_write: &[GroupRecord],
    now_ms: i64,
) -> Result<BytesMut, BrokerError> {
    let batch: Vec<Record> = records_to_write
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let (key, value) = records::encode(record);
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: index as i64,
                sequence: -1,
                timestamp: now_ms,
                key: Some(key),
                value,
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &batch, &options)
        .map_err(|err| BrokerError::internal(format!("encoding offsets batch: {err}")))?;
    Ok(buf)
}

/// Appends `records` to offsets partition `partition` and waits until they are durable.
pub async fn write(
    state: &ShardState,
    partition: i32,
    records_to_write: &[GroupRecord],
    now_ms: i64,
) -> Result<(), BrokerError> {
    if records_to_write.is_empty() {
        return Ok(());
    }
    let batch = encode_batch(records_to_write, now_ms)?;
    let log = offsets_partition_log(state, partition).await?;
    if let (Some(cluster), Some(group)) = (state.cluster.as_ref(), log.replica_group()) {
        // A replica's log is written only by its Raft group: durable on a majority.
        let acks = crate::partition::replicas::Acks::Quorum;
        cluster
            .replicas
            .produce(group, batch, acks, REPLICATED_WRITE_TIMEOUT)
            .await?;
        return Ok(());
    }
    log.append(batch, now_ms, true)
        .await
        .map_err(storage_error)?;
    Ok(())
}

/// Every record of offsets partition `partition`, in log order.
pub async fn read_all(state: &ShardState, partition: i32) -> Result<Vec<GroupRecord>, BrokerError> {
    let log = offsets_partition_log(state, partition).await?;
    // Committed records only (the whole log on a single node).
    let end = log.high_watermark();
    let mut offset = log.log().log_start_offset();
    let mut out = Vec::new();
    let mut txn_replay = super::txn::offsets::Replay::default();
    while offset < end {
        let read = log
            .log()
            .read(offset, LOAD_READ_BYTES)
            .await
            .map_err(storage_error)?;
        if read.next_offset <= offset {
            break;
        }
        let committed = crate::partition::fetch_budget::batches_below_offset_len(&read.data, end);
        decode_batches(
            read.data.slice(..committed),
            offset,
            &mut out,
            &mut txn_replay,
        );
        offset = read.next_offset;
    }
    txn_replay.finish(state, partition);
    Ok(out)
}

/// Decodes whole batches, skipping records below `from_offset` (a read may start inside a
/// batch) and records that do not parse (logged: never a reason to refuse to start).
/// Transactional offsets (TxnOffsetCommit) and markers go to `txn_replay`, which hands back
/// a transaction's offsets at its COMMIT marker.
fn decode_batches(
    mut data: Bytes,
    from_offset: i64,
    out: &mut Vec<GroupRecord>,
    txn_replay: &mut super::txn::offsets::Replay,
) {
    let sets = match RecordBatchDecoder::decode_all(&mut data) {
        Ok(sets) => sets,
        Err(err) => {
            tracing::error!(error = %err, "unreadable batch in {OFFSETS_TOPIC}; skipped");
            return;
        }
    };
    for record in sets.into_iter().flat_map(|set| set.records) {
        if record.offset < from_offset {
            continue;
        }
        if record.control || record.transactional {
            out.extend(txn_replay.take(record));
            continue;
        }
        let Some(key) = record.key else { continue };
        match records::decode(key, record.value) {
            Ok(decoded) => out.push(decoded),
            Err(err) => tracing::warn!(offset = record.offset, error = %err, "skipping record"),
        }
    }
}

/// The `StrBytes` of a string (response building helper).
pub fn str_bytes(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}
