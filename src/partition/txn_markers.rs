//! Transaction markers: the COMMIT/ABORT control batches that end a transaction on a partition.
//!
//! [`write_markers`] is what the transaction coordinator (and the WriteTxnMarkers API) calls
//! for the partitions of this node: it routes each partition to its owning shard (one hop
//! per shard), appends one control batch there through the producer state
//! (`Partition::append_marker`; a replicated partition's leader proposes it to its Raft
//! group instead, and every replica updates its producer state as it writes it), and
//! answers once the marker is durable (committed). The batch layout is Kafka's: attributes control + transactional, the
//! producer's id and epoch, no sequence, one control record whose key is
//! `version:i16 = 0, type:i16` (0 = ABORT, 1 = COMMIT) and whose value is Kafka's
//! `EndTransactionMarker`, `version:i16 = 0, coordinator_epoch:i32`.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::{BufMut, BytesMut};
use ringlet_protocol::record_batch::{RecordBatchHeader, HEADER_SIZE};

use super::fan_out::on_owners;
use super::replicas::{Acks, Origin};
use super::waiters::join_all;
use super::{lookup, now_ms, ops};
use crate::coordinator::routing::OFFSETS_TOPIC;
use crate::error::BrokerError;
use crate::state::ShardState;

/// How long a marker may take to commit on a replicated partition.
const MARKER_COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Batch attribute bits (Kafka `DefaultRecordBatch`).
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
/// Control record types (Kafka `ControlRecordType`).
const ABORT_TYPE: i16 = 0;
const COMMIT_TYPE: i16 = 1;

/// One transaction end, as the coordinator sends it to every partition of the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Appends `marker` to each of `partitions` on its owning shard of this node; each result
/// is the marker's offset once durable, or why that partition failed
/// (UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER on a replica this node does not
/// lead, INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED, storage errors). Results
/// are in the order of `partitions`.
pub async fn write_markers(
    state: &Rc<ShardState>,
    partitions: Vec<(String, i32)>,
    marker: TxnMarker,
) -> Vec<((String, i32), Result<i64, BrokerError>)> {
    let items = partitions
        .iter()
        .map(|(topic, partition)| {
            let owner = lookup::topic(state, topic)?.owner_of(*partition)?;
            Some((owner, (topic.clone(), *partition)))
        })
        .collect();
    let results = on_owners(
        state,
        items,
        move |owner: Rc<ShardState>, items: Vec<(usize, (String, i32))>| async move {
            append_markers_here(&owner, items, marker).await
        },
        "write_markers",
    )
    .await;
    partitions.into_iter().zip(results).collect()
}

/// On the owning shard: writes the marker to each partition, all at once, and answers
/// each once its marker is durable (one fdatasync per log, overlapping). A replicated
/// partition takes it through its Raft group, as its leader; a `__consumer_offsets`
/// partition then resolves the producer's pending transactional offsets.
async fn append_markers_here(
    owner: &Rc<ShardState>,
    items: Vec<(usize, (String, i32))>,
    marker: TxnMarker,
) -> Vec<(usize, Result<i64, BrokerError>)> {
    let writes: Vec<Pin<Box<dyn Future<Output = _>>>> = items
        .into_iter()
        .map(|(position, (topic, index))| {
            Box::pin(async move {
                let written = write_marker(owner, &topic, index, marker).await;
                let result = match written {
                    Ok(offset) if topic == OFFSETS_TOPIC => {
                        resolve_pending_offsets(owner, index, marker)
                            .await
                            .map(|()| offset)
                    }
                    other => other,
                };
                (position, result)
            }) as Pin<Box<dyn Future<Output = _>>>
        })
        .collect();
    join_all(writes).await
}

/// Writes `marker` to `topic`-`index` on its owner; its offset once durable.
async fn write_marker(
    owner: &Rc<ShardState>,
    topic: &str,
    index: i32,
    marker: TxnMarker,
) -> Result<i64, BrokerError> {
    let lookup = lookup::OwnerLookup(owner);
    let p = ops::partition(&owner.partitions, &lookup, topic, index).await?;
    if let (Some(cluster), Some(group)) = (owner.cluster.as_ref(), p.replica_group()) {
        let batch = control_batch(&marker, now_ms());
        let (offset, _) = cluster
            .replicas
            .produce_as(
                group,
                batch,
                Acks::Quorum,
                MARKER_COMMIT_TIMEOUT,
                Origin::Coordinator,
            )
            .await?;
        return Ok(offset);
    }
    let offset = p.append_marker(marker, now_ms()).await?;
    p.log()
        .wait_durable(offset)
        .await
        .map_err(ops::storage_error)?;
    Ok(offset)
}

/// The group coordinator's side of a marker on its offsets partition (this shard owns it).
async fn resolve_pending_offsets(
    owner: &Rc<ShardState>,
    partition: i32,
    marker: TxnMarker,
) -> Result<(), BrokerError> {
    crate::coordinator::txn::offsets::on_marker(
        owner.clone(),
        partition,
        marker.producer_id,
        marker.producer_epoch,
        marker.commit,
    )
    .await
}

/// The control batch for `marker` (base offset 0: the log assigns the real one).
pub fn control_batch(marker: &TxnMarker, now_ms: i64) -> BytesMut {
    let marker_type = if marker.commit {
        COMMIT_TYPE
    } else {
        ABORT_TYPE
    };
    let mut record = BytesMut::new();
    record.put_i8(0); // attributes
    record.put_u8(0); // timestamp delta, zigzag varint 0
    record.put_u8(0); // offset delta
    record.put_u8(8); // key length 4, zigzag
    record.put_i16(0); // key version
    record.put_i16(marker_type);
    record.put_u8(12); // value length 6, zigzag
    record.put_i16(0); // EndTransactionMarker version
    record.put_i32(marker.coordinator_epoch);
    record.put_u8(0); // no headers
    let record_len = u8::try_from(record.len() * 2).expect("a control record is tiny");

    let mut batch = BytesMut::with_capacity(HEADER_SIZE + 1 + record.len());
    batch.put_i64(0); // base offset
    batch.put_i32(0); // batch length, set below
    batch.put_i32(-1); // partition leader epoch, stamped by the log
    batch.put_i8(2); // magic
    batch.put_u32(0); // crc, set below
    batch.put_i16(CONTROL_BIT | TRANSACTIONAL_BIT);
    batch.put_i32(0); // last offset delta
    batch.put_i64(now_ms); // base timestamp
    batch.put_i64(now_ms); // max timestamp
    batch.put_i64(marker.producer_id);
    batch.put_i16(marker.producer_epoch);
    batch.put_i32(-1); // base sequence
    batch.put_i32(1); // records
    batch.put_u8(record_len);
    batch.put_slice(&record);
    let batch_length = i32::try_from(batch.len() - 12).expect("a control batch is tiny");
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// The marker a stored control batch carries: `(commit, coordinator_epoch)`, or `None` when
/// it is not a transaction marker this broker understands.
pub fn parse_marker(header: &RecordBatchHeader, batch: &[u8]) -> Option<(bool, i32)> {
    if !header.is_control() {
        return None;
    }
    let record = batch.get(HEADER_SIZE..)?;
    // length, attributes, timestamp delta, offset delta: one byte each for our markers;
    // read generally as zigzag varints to accept other writers' encodings.
    let mut at = 0usize;
    let _length = read_varint(record, &mut at)?;
    at += 1; // attributes
    let _timestamp_delta = read_varint(record, &mut at)?;
    let _offset_delta = read_varint(record, &mut at)?;
    let key_len = read_varint(record, &mut at)?;
    if key_len < 4 {
        return None;
    }
    let key = record.get(at..at + 4)?;
    at += usize::try_from(key_len).ok()?;
    let marker_type = i16::from_be_bytes([key[2], key[3]]);
    let value_len = read_varint(record, &mut at)?;
    let coordinator_epoch = match value_len {
        6.. => {
            let value = record.get(at + 2..at + 6)?;
            i32::from_be_bytes([value[0], value[1], value[2], value[3]])
        }
        _ => -1,
    };
    match marker_type {
        COMMIT_TYPE => Some((true, coordinator_epoch)),
        ABORT_TYPE => Some((false, coordinator_epoch)),
        _ => None,
    }
}

/// A zigzag varint (Kafka record fields).
fn read_varint(buf: &[u8], at: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let signed = (value >> 1) as i64 ^ -((value & 1) as i64);
            return Some(signed);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringlet_protocol::record_batch::validate_batch;

    #[test]
    fn control_batches_validate_and_parse_back() {
        for commit in [true, false] {
            let marker = TxnMarker {
                producer_id: 42,
                producer_epoch: 3,
                commit,
                coordinator_epoch: 7,
            };
            let batch = control_batch(&marker, 1_700_000_000_000);
            let header = validate_batch(&batch).expect("a valid v2 batch");
            assert!(header.is_control() && header.is_transactional());
            assert_eq!(header.producer_id, 42);
            assert_eq!(header.producer_epoch, 3);
            assert_eq!(header.records_count, 1);
            assert_eq!(parse_marker(&header, &batch), Some((commit, 7)));
        }
    }
}
