//! Reading and writing `__transaction_state` partitions: one transition is one record
//! appended and synced before the caller goes on; loading replays a partition from its log
//! start (the last record of an id wins, a tombstone removes it).

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::machine::{TxnMetadata, TxnState};
use super::records;
use crate::error::BrokerError;
use crate::partition::lookup::OwnerLookup;
use crate::partition::ops::{storage_error, PartitionLookup};
use crate::partition::Partition;
use crate::state::ShardState;

/// The internal topic holding transaction state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// How much of the log one read during loading asks for.
const LOAD_READ_BYTES: usize = 1 << 20;

/// The open log of `topic`-`partition` on this (owning) shard.
pub async fn open_partition(
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

/// One record batch of (key, value) records with the given producer fields.
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
            sequence: -1,
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
        .map_err(|err| BrokerError::internal(format!("encoding coordinator batch: {err}")))?;
    Ok(buf)
}

/// Appends the transition `target` (a tombstone when Dead) and waits until it is durable.
pub async fn write(
    state: &ShardState,
    partition: i32,
    target: &TxnMetadata,
    now_ms: i64,
) -> Result<(), BrokerError> {
    let key = records::encode_key(&target.transactional_id);
    let value = (target.state != TxnState::Dead).then(|| records::encode_value(target));
    let batch = encode_batch(vec![(key, value)], None, now_ms)?;
    let log = open_partition(state, TXN_TOPIC, partition).await?;
    log.append(batch, now_ms, true)
        .await
        .map_err(storage_error)?;
    Ok(())
}

/// Every (transactional id, value) of partition `partition`, in log order.
pub async fn read_all(
    state: &ShardState,
    partition: i32,
) -> Result<Vec<(String, Option<TxnMetadata>)>, BrokerError> {
    let log = open_partition(state, TXN_TOPIC, partition).await?;
    let end = log.log().log_end_offset();
    let mut offset = log.log().log_start_offset();
    let mut out = Vec::new();
    while offset < end {
        let read = log
            .log()
            .read(offset, LOAD_READ_BYTES)
            .await
            .map_err(storage_error)?;
        if read.next_offset <= offset {
            break;
        }
        decode_batches(read.data, offset, &mut out);
        offset = read.next_offset;
    }
    Ok(out)
}

/// Decodes whole batches, skipping records below `from_offset` and records that do not
/// parse (logged: never a reason to refuse to start).
fn decode_batches(mut data: Bytes, from_offset: i64, out: &mut Vec<(String, Option<TxnMetadata>)>) {
    let sets = match RecordBatchDecoder::decode_all(&mut data) {
        Ok(sets) => sets,
        Err(err) => {
            tracing::error!(error = %err, "unreadable batch in {TXN_TOPIC}; skipped");
            return;
        }
    };
    for record in sets.into_iter().flat_map(|set| set.records) {
        if record.control || record.offset < from_offset {
            continue;
        }
        let Some(key) = record.key else { continue };
        let decoded = records::decode_key(key).and_then(|id| {
            let value = record
                .value
                .map(|v| records::decode_value(&id, v))
                .transpose()?;
            Ok((id, value))
        });
        match decoded {
            Ok(entry) => out.push(entry),
            Err(err) => tracing::warn!(offset = record.offset, error = %err, "skipping record"),
        }
    }
}
