//! Per-partition producer state: idempotence and open transactions, pure (no I/O, no clock).
//!
//! The rules are Kafka's `ProducerStateManager` / `ProducerAppendInfo` for appends from
//! clients (origin CLIENT), checked in this order:
//! 1. a batch equal (epoch, first and last sequence) to one of the producer's last
//!    [`CACHED_BATCHES`] batches is a duplicate: answered with the original offsets, not
//!    appended;
//! 2. an epoch older than the producer's is INVALID_PRODUCER_EPOCH;
//! 3. a newer epoch must start at sequence 0, else OUT_OF_ORDER_SEQUENCE_NUMBER;
//! 4. the same epoch must continue the last sequence (wrapping at `i32::MAX`), else
//!    OUT_OF_ORDER_SEQUENCE_NUMBER; a producer this partition has no state for (new, or
//!    expired) is accepted at any sequence, as Kafka does since KIP-360;
//! 5. a non-transactional batch while the producer has a transaction open here is
//!    INVALID_TXN_STATE; a transactional batch with none open opens one at its first offset.
//!
//! Replayed batches (recovery) skip the checks and only update the state. Markers end a
//! transaction: an abort is recorded in the aborted-transactions index (see `txn_index`).
//! The last stable offset is the first offset of the earliest transaction that is still
//! open, or whose marker is not yet below the high watermark; else the high watermark.

use std::collections::{BTreeMap, HashMap, VecDeque};

use ringlet_protocol::record_batch::RecordBatchHeader;

use super::txn_index::{AbortedTxn, AbortedTxnIndex};
use crate::error::BrokerError;

/// Batches remembered per producer for duplicate detection (Kafka's NUM_BATCHES_TO_RETAIN).
pub const CACHED_BATCHES: usize = 5;
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;

/// Offsets and sequences of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp_ms: i64,
}

/// What a partition knows about one producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_id: i64,
    pub epoch: i16,
    /// Oldest first; at most [`CACHED_BATCHES`], all of `epoch`.
    pub batches: VecDeque<BatchMeta>,
    pub last_timestamp_ms: i64,
    pub coordinator_epoch: i32,
    /// First offset of the transaction this producer has open on the partition.
    pub txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn new(producer_id: i64) -> Self {
        Self {
            producer_id,
            epoch: NO_EPOCH,
            batches: VecDeque::new(),
            last_timestamp_ms: -1,
            coordinator_epoch: -1,
            txn_first_offset: None,
        }
    }

    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    /// A new epoch forgets the old epoch's batches (Kafka `maybeUpdateProducerEpoch`).
    fn update_epoch(&mut self, epoch: i16) {
        if self.epoch != epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
    }

    fn add_batch(&mut self, epoch: i16, batch: BatchMeta) {
        self.update_epoch(epoch);
        if self.batches.len() == CACHED_BATCHES {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
        self.last_timestamp_ms = batch.max_timestamp_ms;
    }

    fn find_duplicate(&self, batch: &IncomingBatch) -> Option<BatchMeta> {
        if batch.epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == batch.first_seq && b.last_seq == batch.last_seq())
            .copied()
    }
}

/// The producer fields of a data batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    pub last_offset_delta: i32,
    pub max_timestamp_ms: i64,
    pub transactional: bool,
}

impl IncomingBatch {
    /// `None` for batches without a producer id (plain producers: no state).
    pub fn from_header(header: &RecordBatchHeader) -> Option<Self> {
        (header.producer_id >= 0).then(|| Self {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            first_seq: header.base_sequence,
            last_offset_delta: header.last_offset_delta,
            max_timestamp_ms: header.max_timestamp,
            transactional: header.is_transactional(),
        })
    }

    /// The last sequence, wrapping past `i32::MAX` to 0 (Kafka `incrementSequence`).
    pub fn last_seq(&self) -> i32 {
        increment_sequence(self.first_seq, self.last_offset_delta)
    }
}

/// `seq + delta`, wrapping past `i32::MAX` to 0.
pub fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        // (seq + delta) - (i32::MAX + 1), computed without overflow.
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    i64::from(next_seq) == i64::from(last_seq) + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// The outcome of checking a client batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Append it.
    Append,
    /// Already appended: answer these offsets.
    Duplicate(BatchMeta),
}

/// How a transaction ended on a partition (what the marker did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub marker_offset: i64,
    pub commit: bool,
}

/// All producer state of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset -> producer id.
    open_txns: BTreeMap<i64, i64>,
    /// Ended transactions whose marker may not be visible yet: (first offset, marker offset).
    ending_txns: Vec<(i64, i64)>,
    aborted: AbortedTxnIndex,
}

impl ProducerStates {
    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn entries(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.producers.values()
    }

    pub fn aborted(&self) -> &AbortedTxnIndex {
        &self.aborted
    }

    /// Kafka's client-origin validation of a data batch (module docs, rules 1-5).
    pub fn check(&self, batch: &IncomingBatch) -> Result<Checked, BrokerError> {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Ok(Checked::Append);
        };
        if let Some(duplicate) = entry.find_duplicate(batch) {
            return Ok(Checked::Duplicate(duplicate));
        }
        let pid = batch.producer_id;
        if batch.epoch < entry.epoch {
            return Err(BrokerError::InvalidProducerEpoch(format!(
                "Epoch of producer {pid} is {}, smaller than the last seen epoch {}",
                batch.epoch, entry.epoch
            )));
        }
        if batch.epoch != entry.epoch {
            if batch.first_seq != 0 && entry.epoch != NO_EPOCH {
                return Err(BrokerError::OutOfOrderSequence(format!(
                    "Invalid sequence number for new epoch {} of producer {pid}: {} (must be 0)",
                    batch.epoch, batch.first_seq
                )));
            }
        } else if !in_sequence(entry.last_seq(), batch.first_seq) {
            return Err(BrokerError::OutOfOrderSequence(format!(
                "Out of order sequence number for producer {pid} at epoch {}: {} (incoming seq), \
                 {} (current end sequence)",
                batch.epoch,
                batch.first_seq,
                entry.last_seq()
            )));
        }
        if entry.txn_first_offset.is_some() && !batch.transactional {
            return Err(BrokerError::InvalidTxnState(format!(
                "Expected transactional write from producer {pid} at epoch {}",
                batch.epoch
            )));
        }
        Ok(Checked::Append)
    }

    /// Records an appended data batch at `first_offset`; returns the producer's previous
    /// entry so a failed append can be undone with [`ProducerStates::undo`].
    pub fn apply(&mut self, batch: &IncomingBatch, first_offset: i64) -> Option<ProducerEntry> {
        let pid = batch.producer_id;
        let previous = self.producers.get(&pid).cloned();
        let entry = self
            .producers
            .entry(pid)
            .or_insert_with(|| ProducerEntry::new(pid));
        let meta = BatchMeta {
            first_seq: batch.first_seq,
            last_seq: batch.last_seq(),
            first_offset,
            last_offset: first_offset + i64::from(batch.last_offset_delta),
            max_timestamp_ms: batch.max_timestamp_ms,
        };
        entry.add_batch(batch.epoch, meta);
        if batch.transactional && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(first_offset);
            self.open_txns.insert(first_offset, pid);
        }
        previous
    }

    /// Undoes the [`ProducerStates::apply`] of a batch the log then refused.
    /// Nothing is undone when a later batch of the producer was applied meanwhile (the log
    /// fails every queued append then, so the state is rebuilt on reopen anyway).
    pub fn undo(&mut self, producer_id: i64, previous: Option<ProducerEntry>, first_offset: i64) {
        let last_applied = self
            .producers
            .get(&producer_id)
            .and_then(|entry| entry.batches.back())
            .map(|b| b.first_offset);
        if last_applied != Some(first_offset) {
            return;
        }
        if self.open_txns.get(&first_offset) == Some(&producer_id) {
            self.open_txns.remove(&first_offset);
        }
        match previous {
            Some(entry) => self.producers.insert(producer_id, entry),
            None => self.producers.remove(&producer_id),
        };
    }

    /// Kafka's checks of a marker from the coordinator: not from an older producer epoch,
    /// not from an older coordinator epoch.
    pub fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), BrokerError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if epoch < entry.epoch {
            return Err(BrokerError::InvalidProducerEpoch(format!(
                "Marker epoch {epoch} of producer {producer_id} is older than {}",
                entry.epoch
            )));
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(BrokerError::TransactionCoordinatorFenced(format!(
                "Marker coordinator epoch {coordinator_epoch} of producer {producer_id} is \
                 older than {}",
                entry.coordinator_epoch
            )));
        }
        Ok(())
    }

    /// Records a COMMIT/ABORT marker at `marker_offset`: ends the producer's open
    /// transaction (an abort goes into the aborted index). Returns what ended, if anything.
    pub fn apply_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        marker_offset: i64,
        timestamp_ms: i64,
    ) -> Option<EndedTxn> {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(producer_id));
        entry.update_epoch(epoch);
        entry.coordinator_epoch = coordinator_epoch;
        entry.last_timestamp_ms = timestamp_ms;
        let first_offset = entry.txn_first_offset.take()?;
        self.open_txns.remove(&first_offset);
        self.ending_txns.push((first_offset, marker_offset));
        if !commit {
            self.aborted.push(AbortedTxn {
                producer_id,
                first_offset,
                last_offset: marker_offset,
            });
        }
        Some(EndedTxn {
            producer_id,
            first_offset,
            marker_offset,
            commit,
        })
    }

    /// The last stable offset for `high_watermark`; forgets ended transactions whose
    /// marker is below it.
    pub fn last_stable_offset(&mut self, high_watermark: i64) -> i64 {
        self.ending_txns
            .retain(|&(_, marker_offset)| marker_offset >= high_watermark);
        let open = self.open_txns.keys().next().copied();
        let ending = self.ending_txns.iter().map(|&(first, _)| first).min();
        [open, ending]
            .into_iter()
            .flatten()
            .fold(high_watermark, i64::min)
    }

    /// Forgets producers without an open transaction whose last write is older than
    /// `expiration_ms` (Kafka `producer.id.expiration.ms`); returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| {
            entry.txn_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp_ms) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Drops aborted-index entries wholly below the log start.
    pub fn forget_below(&mut self, log_start_offset: i64) {
        self.aborted.forget_below(log_start_offset);
    }

    /// Rebuilds from snapshot parts (see `producer_state_snapshot`).
    pub fn from_parts(producers: Vec<ProducerEntry>, aborted: AbortedTxnIndex) -> Self {
        let mut states = ProducerStates {
            aborted,
            ..ProducerStates::default()
        };
        for entry in producers {
            if let Some(first) = entry.txn_first_offset {
                states.open_txns.insert(first, entry.producer_id);
            }
            states.producers.insert(entry.producer_id, entry);
        }
        states
    }
}

#[cfg(test)]
#[path = "producer_state_tests.rs"]
mod tests;
