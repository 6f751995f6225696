//! Reading and writing `__consumer_offsets` partitions through the partition manager: a
//! list of [`GroupRecord`]s becomes one record batch appended and synced before the caller
//! goes on; loading replays a partition from its log start.

use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::group::GroupRecord;
use super::internal_log;
use super::records;
use super::routing::OFFSETS_TOPIC;
use crate::error::BrokerError;
use crate::partition::ops::storage_error;
use crate::state::ShardState;

/// How much of the log one read during loading asks for.
const LOAD_READ_BYTES: usize = 1 << 20;

/// The leader epoch at which this node coordinates offsets partition `partition`
/// (`internal_log::serving_epoch`).
pub fn serving_epoch(state: &ShardState, partition: i32) -> Result<i32, BrokerError> {
    internal_log::serving_epoch(state, OFFSETS_TOPIC, partition)
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
    let entries = records_to_write.iter().map(records::encode).collect();
    let batch = internal_log::encode_batch(entries, None, now_ms)?;
    internal_log::append(state, OFFSETS_TOPIC, partition, batch, now_ms).await
}

/// Every record of offsets partition `partition`, in log order.
pub async fn read_all(state: &ShardState, partition: i32) -> Result<Vec<GroupRecord>, BrokerError> {
    let log = internal_log::open(state, OFFSETS_TOPIC, partition).await?;
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
