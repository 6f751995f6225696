//! Reading and writing `__transaction_state` partitions: one transition is one record
//! appended and made durable (on a cluster: committed) before the caller goes on; loading
//! replays a partition's committed records from its log start (the last record of an id
//! wins, a tombstone removes it).

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::machine::{TxnMetadata, TxnState};
use super::records;
use crate::coordinator::internal_log;
use crate::error::BrokerError;
use crate::partition::ops::storage_error;
use crate::state::ShardState;

/// The internal topic holding transaction state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// How much of the log one read during loading asks for.
const LOAD_READ_BYTES: usize = 1 << 20;

/// Appends the transition `target` (a tombstone when Dead) and waits until it is durable.
pub async fn write(
    state: &ShardState,
    partition: i32,
    target: &TxnMetadata,
    now_ms: i64,
) -> Result<(), BrokerError> {
    let key = records::encode_key(&target.transactional_id);
    let value = (target.state != TxnState::Dead).then(|| records::encode_value(target));
    let batch = internal_log::encode_batch(vec![(key, value)], None, now_ms)?;
    internal_log::append(state, TXN_TOPIC, partition, batch, now_ms).await
}

/// Every (transactional id, value) of partition `partition`, in log order.
pub async fn read_all(
    state: &ShardState,
    partition: i32,
) -> Result<Vec<(String, Option<TxnMetadata>)>, BrokerError> {
    let log = internal_log::open(state, TXN_TOPIC, partition).await?;
    // Committed records only (the whole log on a single node).
    let end = log.high_watermark();
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
