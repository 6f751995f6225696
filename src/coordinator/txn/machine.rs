//! The transaction coordinator as a pure state machine (no I/O, no clock reads): Kafka's
//! `TransactionMetadata` and the decisions of its `TransactionCoordinator`.
//!
//! Every change goes through a *transition*: a step computes the target metadata and marks
//! the transactional id as having that transition in flight (`pending`); the caller makes the
//! target durable on `__transaction_state` and then calls [`TxnSet::finish_transition`] (or
//! [`TxnSet::cancel_transition`] when the write failed). While a transition is in flight any
//! other request for that id gets CONCURRENT_TRANSACTIONS, exactly as Kafka's
//! `pendingState`, so an `.await` between step and completion can never interleave two
//! changes of one transaction.
//!
//! States: Empty -> Ongoing (AddPartitions/AddOffsets) -> PrepareCommit | PrepareAbort (EndTxn,
//! timeout, fencing) -> CompleteCommit | CompleteAbort (after the markers are written) ->
//! Ongoing again with the next transaction. Dead is a removed (expired) id;
//! PrepareEpochFence exists for completeness of the state ids: fencing here goes straight to
//! PrepareAbort with the bumped epoch (what Kafka's epoch fence ends in).

use std::collections::{BTreeSet, HashMap};

use kafka_protocol::ResponseError;

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// No producer epoch (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// A topic partition taking part in a transaction.
pub type TxnPartition = (String, i32);

/// Kafka's transaction states, with their ids in `TransactionLogValue.TransactionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// The byte stored in the log.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|state| state.id() == id)
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// ListTransactions' state filter (Kafka matches the exact name).
    pub fn parse(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|state| state.name() == name)
    }

    /// No transaction open: a new one may start, InitProducerId may bump the epoch.
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }

    /// Decided, markers not yet (all) written.
    pub fn is_prepared(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// One transactional id's state (Kafka's `TransactionMetadata`); also the value persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last rotation (epoch exhaustion), for KIP-360 retries.
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump (in memory only, as in Kafka).
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TxnPartition>,
    /// When the current transaction started (-1 when none).
    pub start_timestamp_ms: i64,
    pub last_update_timestamp_ms: i64,
}

impl TxnMetadata {
    /// Kafka's `isEpochExhausted`: the next bump would overflow (one bump is kept in reserve
    /// for fencing).
    pub fn is_epoch_exhausted(epoch: i16) -> bool {
        epoch >= i16::MAX - 1
    }

    fn to(&self, state: TxnState, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            state,
            last_update_timestamp_ms: now_ms,
            ..self.clone()
        }
    }
}

/// Why a transaction request failed; [`TxnError::kafka`] is the one mapping to Kafka codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnError {
    /// A newer epoch exists (old clients get INVALID_PRODUCER_EPOCH, see [`fenced_code`]).
    ProducerFenced,
    InvalidTxnState,
    ConcurrentTransactions,
    InvalidProducerIdMapping,
    TransactionalIdNotFound,
    InvalidTransactionTimeout,
    InvalidRequest,
}

impl TxnError {
    pub fn kafka(self) -> ResponseError {
        match self {
            TxnError::ProducerFenced => ResponseError::ProducerFenced,
            TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
            TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
            TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
            TxnError::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
            TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
            TxnError::InvalidRequest => ResponseError::InvalidRequest,
        }
    }

    /// The code for a request of an API whose versions below `first_fenced_version` predate
    /// PRODUCER_FENCED (KIP-588): those clients get INVALID_PRODUCER_EPOCH instead.
    pub fn code_for(self, api_version: i16, first_fenced_version: i16) -> i16 {
        if self == TxnError::ProducerFenced && api_version < first_fenced_version {
            ResponseError::InvalidProducerEpoch.code()
        } else {
            self.kafka().code()
        }
    }
}

/// Broker limits the machine enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLimits {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
}

impl Default for TxnLimits {
    fn default() -> Self {
        TxnLimits {
            max_timeout_ms: 900_000,
            id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// What InitProducerId has to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Allocate a fresh producer id and call again with it.
    NeedProducerId,
    /// Persist this (Empty, new epoch) and answer with its id and epoch.
    Persist(TxnMetadata),
    /// An ongoing transaction must be aborted first: persist this PrepareAbort (bumped
    /// epoch: the old producer is fenced), write its markers, answer CONCURRENT_TRANSACTIONS.
    AbortFirst(TxnMetadata),
}

/// What EndTxn has to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// A retry of an EndTxn that already completed: answer success.
    AlreadyDone,
    /// Persist this PrepareCommit/PrepareAbort, then write the markers.
    Persist(TxnMetadata),
}

struct Entry {
    current: TxnMetadata,
    pending: Option<TxnState>,
}

/// The transactional ids of one `__transaction_state` partition.
pub struct TxnSet {
    limits: TxnLimits,
    entries: HashMap<String, Entry>,
}

impl TxnSet {
    pub fn new(limits: TxnLimits) -> TxnSet {
        TxnSet {
            limits,
            entries: HashMap::new(),
        }
    }

    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.entries.get(transactional_id).map(|e| &e.current)
    }

    pub fn all(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.entries.values().map(|e| &e.current)
    }

    pub fn has_pending(&self, transactional_id: &str) -> bool {
        self.entries
            .get(transactional_id)
            .is_some_and(|e| e.pending.is_some())
    }

    /// Replays one record of the log (None = tombstone).
    pub fn load(&mut self, transactional_id: &str, value: Option<TxnMetadata>) {
        match value {
            Some(current) => {
                self.entries.insert(
                    transactional_id.to_string(),
                    Entry {
                        current,
                        pending: None,
                    },
                );
            }
            None => {
                self.entries.remove(transactional_id);
            }
        }
    }

    fn begin(&mut self, target: TxnMetadata) -> TxnMetadata {
        let entry = self
            .entries
            .get_mut(&target.transactional_id)
            .expect("a transition starts on a known transactional id");
        assert!(entry.pending.is_none(), "one transition at a time");
        entry.pending = Some(target.state);
        target
    }

    /// The target of a transition is durable: it becomes the current state.
    pub fn finish_transition(&mut self, target: TxnMetadata) {
        let Some(entry) = self.entries.get_mut(&target.transactional_id) else {
            return;
        };
        assert_eq!(
            entry.pending,
            Some(target.state),
            "finishing the started transition"
        );
        entry.pending = None;
        if target.state == TxnState::Dead {
            self.entries.remove(&target.transactional_id);
            return;
        }
        entry.current = target;
    }

    /// The write of a transition failed: the id stays as it was.
    pub fn cancel_transition(&mut self, transactional_id: &str) {
        if let Some(entry) = self.entries.get_mut(transactional_id) {
            entry.pending = None;
        }
    }

    /// InitProducerId for a transactional id (Kafka's `handleInitProducerId` with
    /// `prepareInitProducerIdTransit`). `expected` is the KIP-360 (producer id, epoch) of a
    /// producer recovering; `fresh_producer_id` answers an earlier [`InitStep::NeedProducerId`].
    pub fn init_producer_id(
        &mut self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        fresh_producer_id: Option<i64>,
        now_ms: i64,
    ) -> Result<InitStep, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.limits.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        if !self.entries.contains_key(transactional_id) {
            let Some(producer_id) = fresh_producer_id else {
                return Ok(InitStep::NeedProducerId);
            };
            let fresh = TxnMetadata {
                transactional_id: transactional_id.to_string(),
                producer_id,
                last_producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_timestamp_ms: -1,
                last_update_timestamp_ms: now_ms,
            };
            self.load(transactional_id, Some(fresh));
        }
        let entry = &self.entries[transactional_id];
        let meta = &entry.current;
        if entry.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if let Some((producer_id, epoch)) = expected {
            let valid = meta.producer_epoch == NO_PRODUCER_EPOCH
                || producer_id == meta.producer_id
                || (producer_id == meta.last_producer_id && TxnMetadata::is_epoch_exhausted(epoch));
            if !valid {
                return Err(TxnError::ProducerFenced);
            }
        }
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Ongoing => {
                let target = fenced_abort(meta, now_ms);
                Ok(InitStep::AbortFirst(self.begin(target)))
            }
            TxnState::Dead | TxnState::PrepareEpochFence => Err(TxnError::InvalidTxnState),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let exhausted = TxnMetadata::is_epoch_exhausted(meta.producer_epoch)
                    && expected.is_none_or(|(_, epoch)| epoch == meta.producer_epoch);
                let target = if exhausted {
                    let Some(producer_id) = fresh_producer_id else {
                        return Ok(InitStep::NeedProducerId);
                    };
                    rotate_producer_id(meta, producer_id, timeout_ms, expected.is_some(), now_ms)
                } else {
                    bump_epoch(meta, timeout_ms, expected.map(|(_, e)| e), now_ms)?
                };
                Ok(InitStep::Persist(self.begin(target)))
            }
        }
    }

    /// Kafka's checks shared by AddPartitions, AddOffsets and EndTxn.
    fn check_producer(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<&TxnMetadata, TxnError> {
        let entry = self
            .entries
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if entry.current.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if entry.current.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if entry.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(&entry.current)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: `Ok(None)` when every partition is already in
    /// the ongoing transaction (nothing to write).
    pub fn add_partitions(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TxnPartition],
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        let meta = self.check_producer(transactional_id, producer_id, producer_epoch)?;
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Dead | TxnState::PrepareEpochFence => return Err(TxnError::InvalidTxnState),
            TxnState::Ongoing if partitions.iter().all(|p| meta.partitions.contains(p)) => {
                return Ok(None)
            }
            _ => {}
        }
        let mut target = meta.to(TxnState::Ongoing, now_ms);
        if meta.state.is_idle() {
            target.partitions.clear();
            target.start_timestamp_ms = now_ms;
        }
        target.partitions.extend(partitions.iter().cloned());
        Ok(Some(self.begin(target)))
    }

    /// EndTxn (Kafka's `endTransaction` from a client).
    pub fn end_txn(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<EndStep, TxnError> {
        let meta = self.check_producer(transactional_id, producer_id, producer_epoch)?;
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => {
                let state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                let target = meta.to(state, now_ms);
                Ok(EndStep::Persist(self.begin(target)))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok(EndStep::AlreadyDone)
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(TxnError::ConcurrentTransactions)
            }
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// Markers of a prepared transaction are all written: its CompleteCommit/CompleteAbort.
    /// None when the id is not prepared or another transition is in flight.
    pub fn complete(&mut self, transactional_id: &str, now_ms: i64) -> Option<TxnMetadata> {
        let entry = self.entries.get(transactional_id)?;
        if entry.pending.is_some() {
            return None;
        }
        let state = match entry.current.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        let mut target = entry.current.to(state, now_ms);
        target.partitions.clear();
        Some(self.begin(target))
    }

    /// Prepared transactions without a transition in flight: their markers still need
    /// writing (after a load, or after a failed marker write).
    pub fn prepared(&self) -> Vec<TxnMetadata> {
        self.entries
            .values()
            .filter(|e| e.pending.is_none() && e.current.state.is_prepared())
            .map(|e| e.current.clone())
            .collect()
    }

    /// Ongoing transactions older than their timeout become PrepareAbort with a bumped
    /// epoch, so the producer that let them time out is fenced (Kafka's
    /// `abortTimedOutTransactions`).
    pub fn time_out(&mut self, now_ms: i64) -> Vec<TxnMetadata> {
        let expired: Vec<TxnMetadata> = self
            .entries
            .values()
            .filter(|e| {
                e.pending.is_none()
                    && e.current.state == TxnState::Ongoing
                    && e.current
                        .start_timestamp_ms
                        .saturating_add(i64::from(e.current.timeout_ms))
                        <= now_ms
            })
            .map(|e| fenced_abort(&e.current, now_ms))
            .collect();
        expired.into_iter().map(|t| self.begin(t)).collect()
    }

    /// Idle ids not used for `transactional.id.expiration.ms` become Dead: the caller writes
    /// their tombstones and finishes the transitions (which drops them).
    pub fn expire(&mut self, now_ms: i64) -> Vec<TxnMetadata> {
        let expiration_ms = self.limits.id_expiration_ms;
        let expired: Vec<TxnMetadata> = self
            .entries
            .values()
            .filter(|e| {
                e.pending.is_none()
                    && e.current.state.is_idle()
                    && e.current
                        .last_update_timestamp_ms
                        .saturating_add(expiration_ms)
                        <= now_ms
            })
            .map(|e| e.current.to(TxnState::Dead, now_ms))
            .collect();
        expired.into_iter().map(|t| self.begin(t)).collect()
    }
}

/// PrepareAbort with the epoch bumped (unless it cannot grow any more).
fn fenced_abort(meta: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    let mut target = meta.to(TxnState::PrepareAbort, now_ms);
    if meta.producer_epoch < i16::MAX {
        target.producer_epoch = meta.producer_epoch + 1;
    }
    target
}

/// Kafka's `prepareIncrementProducerEpoch`.
fn bump_epoch(
    meta: &TxnMetadata,
    timeout_ms: i32,
    expected_epoch: Option<i16>,
    now_ms: i64,
) -> Result<TxnMetadata, TxnError> {
    let bumped = meta.producer_epoch + 1;
    let (epoch, last_epoch) = match expected_epoch {
        None => (bumped, NO_PRODUCER_EPOCH),
        Some(expected)
            if meta.producer_epoch == NO_PRODUCER_EPOCH || expected == meta.producer_epoch =>
        {
            (bumped, meta.producer_epoch)
        }
        // A retry of a bump whose answer got lost: the current epoch again.
        Some(expected) if expected == meta.last_producer_epoch => {
            (meta.producer_epoch, meta.last_producer_epoch)
        }
        Some(_) => return Err(TxnError::ProducerFenced),
    };
    Ok(TxnMetadata {
        producer_epoch: epoch,
        last_producer_epoch: last_epoch,
        timeout_ms,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        start_timestamp_ms: -1,
        last_update_timestamp_ms: now_ms,
        ..meta.clone()
    })
}

/// Kafka's `prepareProducerIdRotation`: a new producer id at epoch 0.
fn rotate_producer_id(
    meta: &TxnMetadata,
    producer_id: i64,
    timeout_ms: i32,
    record_last_epoch: bool,
    now_ms: i64,
) -> TxnMetadata {
    TxnMetadata {
        producer_id,
        last_producer_id: meta.producer_id,
        producer_epoch: 0,
        last_producer_epoch: if record_last_epoch {
            meta.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        },
        timeout_ms,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        start_timestamp_ms: -1,
        last_update_timestamp_ms: now_ms,
        ..meta.clone()
    }
}
