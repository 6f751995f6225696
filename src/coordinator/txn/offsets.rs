//! Transactional offset commits (TxnOffsetCommit) on the GROUP coordinator side.
//!
//! As in Kafka, the offsets of a transaction are appended to the group's
//! `__consumer_offsets` partition as a transactional batch (the producer's id and epoch)
//! and held as *pending* per producer; they become committed offsets only when the
//! transaction's COMMIT marker lands on that partition, and are dropped on ABORT. The log
//! is the truth: loading a partition replays transactional batches into a [`Replay`], which
//! applies a producer's offsets at its COMMIT control record, drops them at ABORT, and leaves
//! those without a marker yet pending (the transaction coordinator writes the marker after
//! a restart). The transaction coordinator calls [`on_marker`] on this shard after it wrote
//! a marker here.
//!
//! The pending map lives in the shard's [`super::TxnCoordinator`], keyed by offsets
//! partition. A producer's highest epoch seen (commits and markers) fences offsets from a
//! zombie with an older epoch.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Buf;
use kafka_protocol::records::Record;

use super::machine::TxnError;
use crate::coordinator::group::{CommitInput, CommittedOffset, GroupError, GroupRecord};
use crate::coordinator::records as group_records;
use crate::coordinator::routing::OFFSETS_TOPIC;
use crate::coordinator::service::GroupCoordinator;
use crate::error::BrokerError;
use crate::partition::now_ms;
use crate::state::ShardState;

/// The pending transactional offsets of one offsets partition.
#[derive(Debug, Default)]
pub struct PendingOffsets {
    by_producer: HashMap<i64, Vec<GroupRecord>>,
    /// Highest epoch seen per producer id.
    epochs: HashMap<i64, i16>,
}

impl PendingOffsets {
    fn see_epoch(&mut self, producer_id: i64, epoch: i16) -> bool {
        let seen = self.epochs.entry(producer_id).or_insert(epoch);
        if epoch < *seen {
            return false;
        }
        *seen = epoch;
        true
    }

    /// True when some producer has an uncommitted offset for this group partition.
    pub fn is_pending(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.by_producer.values().flatten().any(|record| {
            matches!(record, GroupRecord::Offset { group_id: g, topic: t, partition: p, .. }
                if g == group_id && t == topic && *p == partition)
        })
    }
}

/// Replays the transactional part of an offsets partition during its load.
#[derive(Debug, Default)]
pub struct Replay {
    pending: PendingOffsets,
}

impl Replay {
    /// Takes a transactional data record or a control record; returns the offsets a COMMIT
    /// marker makes visible (to apply now, in log order).
    pub fn take(&mut self, record: Record) -> Vec<GroupRecord> {
        let producer_id = record.producer_id;
        self.pending.see_epoch(producer_id, record.producer_epoch);
        if record.control {
            let commit = record.key.as_ref().and_then(marker_is_commit);
            let records = self.pending.by_producer.remove(&producer_id);
            return match (commit, records) {
                (Some(true), Some(records)) => records,
                _ => Vec::new(),
            };
        }
        let Some(key) = record.key else {
            return Vec::new();
        };
        match group_records::decode(key, record.value) {
            Ok(decoded) => self
                .pending
                .by_producer
                .entry(producer_id)
                .or_default()
                .push(decoded),
            Err(err) => tracing::warn!(offset = record.offset, error = %err, "skipping record"),
        }
        Vec::new()
    }

    /// The offsets still without a marker become this partition's pending offsets.
    pub fn finish(self, state: &ShardState, partition: i32) {
        let open = self.pending.by_producer.len();
        if open > 0 {
            tracing::info!(partition, producers = open, "pending transactional offsets");
        }
        state
            .txn
            .pending_offsets
            .borrow_mut()
            .insert(partition, self.pending);
    }
}

/// A control record key: `i16 version, i16 type` (0 = ABORT, 1 = COMMIT).
fn marker_is_commit(key: &bytes::Bytes) -> Option<bool> {
    let mut key = key.clone();
    if key.remaining() < 4 {
        return None;
    }
    let _version = key.get_i16();
    match key.get_i16() {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// Kafka's group checks of a TxnOffsetCommit: a group member (when named) of the current
/// generation (when given).
fn check_group(
    group_id: &str,
    input: &CommitInput,
    set: &crate::coordinator::group::GroupSet,
) -> Result<(), GroupError> {
    if group_id.is_empty() {
        return Err(GroupError::InvalidGroupId);
    }
    let Some(group) = set.get(group_id) else {
        return Ok(());
    };
    if group.state() == crate::coordinator::group::GroupState::Dead {
        return Err(GroupError::CoordinatorNotAvailable);
    }
    if !input.member_id.is_empty()
        && !group
            .members()
            .iter()
            .any(|m| m.member_id == input.member_id)
    {
        return Err(GroupError::UnknownMemberId);
    }
    if input.generation_id >= 0 && input.generation_id != group.generation_id() {
        return Err(GroupError::IllegalGeneration);
    }
    Ok(())
}

/// TxnOffsetCommit on the group's coordinator shard: per item 0 or the error code. The
/// offsets are durable (transactional batch) before they are pending.
pub async fn commit(
    owner: Rc<ShardState>,
    partition: i32,
    group_id: String,
    producer: (i64, i16),
    input: CommitInput,
) -> Result<Vec<i16>, BrokerError> {
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let count = input.items.len();
    if let Err(error) = check_group(&group_id, &input, &set.borrow()) {
        return Ok(vec![error.code(); count]);
    }
    let (producer_id, producer_epoch) = producer;
    let fenced = {
        let mut pending = owner.txn.pending_offsets.borrow_mut();
        !pending
            .entry(partition)
            .or_default()
            .see_epoch(producer_id, producer_epoch)
    };
    if fenced {
        return Ok(vec![TxnError::ProducerFenced.kafka().code(); count]);
    }
    let now = now_ms();
    let max_metadata = set.borrow().config().offset_metadata_max_bytes;
    let checked: Vec<Result<GroupRecord, GroupError>> = input
        .items
        .iter()
        .map(|item| {
            if item.metadata.len() > max_metadata {
                return Err(GroupError::OffsetMetadataTooLarge);
            }
            Ok(GroupRecord::Offset {
                group_id: group_id.clone(),
                topic: item.topic.clone(),
                partition: item.partition,
                value: Some(CommittedOffset {
                    offset: item.offset,
                    leader_epoch: item.leader_epoch,
                    metadata: item.metadata.clone(),
                    commit_timestamp_ms: now,
                }),
            })
        })
        .collect();
    let records: Vec<GroupRecord> = checked.iter().filter_map(|r| r.clone().ok()).collect();
    let written = append(&owner, partition, &records, producer, now).await;
    if let Err(err) = &written {
        tracing::warn!(group = %group_id, error = %err, "transactional offsets not persisted");
    } else {
        let mut pending = owner.txn.pending_offsets.borrow_mut();
        let entry = pending.entry(partition).or_default();
        entry
            .by_producer
            .entry(producer_id)
            .or_default()
            .extend(records);
    }
    Ok(checked
        .into_iter()
        .map(|result| match (result, &written) {
            (Err(error), _) => error.code(),
            (Ok(_), Err(err)) => err.code_i16(),
            (Ok(_), Ok(())) => 0,
        })
        .collect())
}

async fn append(
    owner: &ShardState,
    partition: i32,
    records: &[GroupRecord],
    producer: (i64, i16),
    now: i64,
) -> Result<(), BrokerError> {
    if records.is_empty() {
        return Ok(());
    }
    let entries = records.iter().map(group_records::encode).collect();
    let batch = crate::coordinator::internal_log::encode_batch(entries, Some(producer), now)?;
    crate::coordinator::internal_log::append(owner, OFFSETS_TOPIC, partition, batch, now).await
}

/// A COMMIT or ABORT marker of `producer_id` is durable on offsets partition `partition`
/// (called on its owner): its pending offsets become committed, or are dropped.
pub async fn on_marker(
    owner: Rc<ShardState>,
    partition: i32,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
) -> Result<(), BrokerError> {
    // Loading replays the log, marker included, so a partition loaded just now is current.
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let records = {
        let mut pending = owner.txn.pending_offsets.borrow_mut();
        let entry = pending.entry(partition).or_default();
        entry.see_epoch(producer_id, producer_epoch);
        entry.by_producer.remove(&producer_id).unwrap_or_default()
    };
    if commit {
        let now = now_ms();
        let mut groups = set.borrow_mut();
        for record in records {
            groups.apply(record, now);
        }
    }
    Ok(())
}

/// Whether `group_id` has transactional offsets for `topic`-`partition` awaiting their
/// marker on this shard (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT).
pub fn is_pending(
    owner: &ShardState,
    offsets_partition: i32,
    group_id: &str,
    topic: &str,
    partition: i32,
) -> bool {
    owner
        .txn
        .pending_offsets
        .borrow()
        .get(&offsets_partition)
        .is_some_and(|p| p.is_pending(group_id, topic, partition))
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::records::TimestampType;

    use super::*;

    fn offset_record(producer_id: i64, epoch: i16, partition: i32, offset: i64) -> Record {
        let (key, value) = group_records::encode(&GroupRecord::Offset {
            group_id: "g".into(),
            topic: "t".into(),
            partition,
            value: Some(CommittedOffset {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 1,
            }),
        });
        record(producer_id, epoch, false, Some(key), value)
    }

    fn marker(producer_id: i64, epoch: i16, commit: bool) -> Record {
        let mut key = BytesMut::new();
        key.put_i16(0);
        key.put_i16(i16::from(commit));
        record(producer_id, epoch, true, Some(key.freeze()), None)
    }

    fn record(
        producer_id: i64,
        producer_epoch: i16,
        control: bool,
        key: Option<Bytes>,
        value: Option<Bytes>,
    ) -> Record {
        Record {
            transactional: true,
            control,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 0,
            key,
            value,
            headers: Default::default(),
        }
    }

    #[test]
    fn replay_applies_at_commit_drops_at_abort_and_keeps_the_rest_pending() {
        let mut replay = Replay::default();
        assert!(replay.take(offset_record(1, 0, 0, 10)).is_empty());
        assert!(replay.take(offset_record(2, 0, 1, 20)).is_empty());
        assert!(replay.take(offset_record(3, 0, 2, 30)).is_empty());
        assert!(
            replay.take(marker(2, 0, false)).is_empty(),
            "abort: dropped"
        );
        let committed = replay.take(marker(1, 0, true));
        assert_eq!(committed.len(), 1, "commit: producer 1's offsets now");
        assert!(matches!(
            &committed[0],
            GroupRecord::Offset { partition: 0, .. }
        ));
        assert!(
            replay.pending.is_pending("g", "t", 2),
            "no marker yet: pending"
        );
        assert!(!replay.pending.is_pending("g", "t", 1));
        assert!(!replay.pending.is_pending("g", "t", 0));
        // A later epoch was seen for producer 3: an older one is fenced.
        replay.take(marker(3, 4, false));
        assert!(!replay.pending.see_epoch(3, 2));
        assert!(replay.pending.see_epoch(3, 4));
    }
}
