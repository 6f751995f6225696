//! Idempotent produce on replicated partitions: the leader checks each proposed batch with a
//! producer id against the partition's producer state before proposing it, with Kafka's
//! rules (`producer_state`): a retry of a batch already in the log is answered with its
//! original offsets (once committed, for acks=all) and not proposed again; a gap or a fenced
//! epoch gets Kafka's error.
//!
//! Every replica updates that state from the batches it writes (`persist_one`), so a new
//! leader knows the batches its predecessor replicated: a producer retrying after a failover
//! gets the original offsets instead of a second copy. The state only counts written
//! batches; the batches proposed earlier in the same round are not written yet, so
//! [`RoundProducers`] carries them from one proposal to the next (a client pipelines up to
//! five requests per partition).

use std::collections::HashMap;

use ringlet_protocol::record_batch::{parse_header, RecordBatchHeader};

use crate::error::BrokerError;
use crate::partition::producer_state::{Checked, IncomingBatch, ProducerEntry, ProducerStates};
use crate::partition::producer_state_recovery::{apply_producer_batches, ProducerBatch};
use crate::partition::Partition;

use super::Origin;

/// The offset recorded for a batch proposed this round: the log has not assigned it yet.
const NOT_WRITTEN: i64 = -1;

/// What the leader does with a proposed batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    Propose,
    /// Already in the log, starting at this offset.
    Duplicate(i64),
}

/// Producers as this round's earlier proposals left them, per Raft group.
#[derive(Default)]
pub(super) struct RoundProducers(HashMap<(u64, i64), ProducerEntry>);

impl RoundProducers {
    /// Drops what this round counted for `group` (a proposal admitted but then refused).
    pub(super) fn forget(&mut self, group: u64) {
        self.0.retain(|(of, _), _| *of != group);
    }

    /// Checks `records` (one batch) of `group` from `origin` and counts it as proposed when
    /// it passes.
    pub(super) fn admit(
        &mut self,
        group: u64,
        partition: &Partition,
        records: &[u8],
        origin: Origin,
    ) -> Result<Admission, BrokerError> {
        let header =
            parse_header(records).map_err(|err| BrokerError::CorruptMessage(err.to_string()))?;
        let Some(batch) = IncomingBatch::from_header(&header) else {
            return Ok(Admission::Propose);
        };
        let key = (group, batch.producer_id);
        let known = match self.0.get(&key) {
            Some(entry) => Some(entry.clone()),
            None => partition
                .producers()
                .borrow()
                .entry(batch.producer_id)
                .cloned(),
        };
        let mut states =
            ProducerStates::from_parts(known.into_iter().collect(), Default::default());
        let admission = match origin {
            Origin::Client => Self::check_client(&mut states, &batch)?,
            Origin::Coordinator => Self::check_coordinator(&mut states, &header, records)?,
        };
        if let Some(entry) = states.entry(batch.producer_id) {
            self.0.insert(key, entry.clone());
        }
        Ok(admission)
    }

    /// Kafka's client checks (sequence, epoch, transaction state).
    fn check_client(
        states: &mut ProducerStates,
        batch: &IncomingBatch,
    ) -> Result<Admission, BrokerError> {
        match states.check(batch)? {
            // Proposed earlier this round and not written yet: no offsets to answer with.
            // Retriable; the retry finds it written.
            Checked::Duplicate(meta) if meta.first_offset == NOT_WRITTEN => {
                Err(BrokerError::NotLeaderOrFollower)
            }
            Checked::Duplicate(meta) => Ok(Admission::Duplicate(meta.first_offset)),
            Checked::Append => {
                states.apply(batch, NOT_WRITTEN);
                Ok(Admission::Propose)
            }
        }
    }

    /// A coordinator's batch: a marker must not come from an older producer or coordinator
    /// epoch (`check_marker`); transactional offsets carry no sequence to check.
    fn check_coordinator(
        states: &mut ProducerStates,
        header: &RecordBatchHeader,
        records: &[u8],
    ) -> Result<Admission, BrokerError> {
        let Some(ProducerBatch { marker, .. }) = ProducerBatch::of(header, records, NOT_WRITTEN)
        else {
            return Err(BrokerError::CorruptMessage(
                "a control batch that is not a transaction marker".into(),
            ));
        };
        let (producer_id, epoch) = (header.producer_id, header.producer_epoch);
        match marker {
            Some((commit, coordinator_epoch)) => {
                states.check_marker(producer_id, epoch, coordinator_epoch)?;
                states.apply_marker(
                    producer_id,
                    epoch,
                    commit,
                    coordinator_epoch,
                    NOT_WRITTEN,
                    header.max_timestamp,
                );
            }
            None => {
                if let Some(incoming) = IncomingBatch::from_header(header) {
                    states.apply(&incoming, NOT_WRITTEN);
                }
            }
        }
        Ok(Admission::Propose)
    }
}

/// A replica's producer state across one write of its log: the written batches are added
/// once they are in the log; a write that cuts the log (a follower replacing a conflicting
/// suffix, a retried half-done write) or restarts it may remove batches the state counted,
/// so the state is replayed from the log instead.
pub(super) enum ProducerWrites {
    Add(Vec<ProducerBatch>),
    Replay,
}

impl ProducerWrites {
    /// Before the writes with `batches` touch the log; `replacing` when they (or a restart
    /// before them) replace batches in it.
    pub(super) fn before(
        partition: &Partition,
        replacing: bool,
        batches: Vec<ProducerBatch>,
    ) -> Result<Self, BrokerError> {
        if replacing {
            // A snapshot may describe the batches going away.
            partition.forget_producer_snapshot()?;
            return Ok(Self::Replay);
        }
        Ok(Self::Add(batches))
    }

    /// Once the writes are in the log.
    pub(super) async fn after(self, partition: &Partition) -> Result<(), BrokerError> {
        match self {
            Self::Add(batches) => {
                apply_producer_batches(&mut partition.producers().borrow_mut(), &batches);
                partition.producers_caught_up();
            }
            Self::Replay => partition
                .rebuild_producers()
                .await
                .map_err(|err| BrokerError::Storage(err.to_string()))?,
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "idempotence_tests.rs"]
mod tests;
