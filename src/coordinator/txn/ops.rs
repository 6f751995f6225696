//! The transaction coordinator operations, each run on the id's coordinator shard (the body
//! of the one bus hop a handler makes). Inputs and outputs are owned `Send` values; errors
//! a client should see are `Err(code)` inside `Ok`.

use std::rc::Rc;

use super::machine::{EndStep, InitStep, TxnError, TxnMetadata, TxnPartition, TxnState};
use super::service::{complete, persist, spawn_completion, TxnCoordinator};
use crate::partition::now_ms;
use crate::state::ShardState;

/// InitProducerId's inputs.
#[derive(Debug, Clone, Copy)]
pub struct InitInput {
    pub timeout_ms: i32,
    /// KIP-360: the (producer id, epoch) the producer had, when it recovers.
    pub expected: Option<(i64, i16)>,
}

/// (producer id, epoch) or the error code.
pub async fn init_producer_id(
    owner: Rc<ShardState>,
    partition: i32,
    transactional_id: String,
    input: InitInput,
) -> Result<(i64, i16), i16> {
    if let Some((producer_id, epoch)) = input.expected {
        if (producer_id < 0) != (epoch < 0) {
            return Err(TxnError::InvalidRequest.kafka().code());
        }
    }
    let set = TxnCoordinator::txns(&owner, partition)
        .await
        .map_err(|err| super::unavailable_code(&err))?;
    let mut fresh = None;
    loop {
        let step = set.borrow_mut().init_producer_id(
            &transactional_id,
            input.timeout_ms,
            input.expected,
            fresh,
            now_ms(),
        );
        match step.map_err(|e| e.kafka().code())? {
            InitStep::NeedProducerId => {
                let id = crate::producer_ids::next_producer_id(&owner)
                    .await
                    .map_err(|err| super::unavailable_code(&err))?;
                fresh = Some(id);
            }
            InitStep::Persist(target) => {
                let answer = (target.producer_id, target.producer_epoch);
                persist(&owner, partition, &set, target)
                    .await
                    .map_err(|err| super::unavailable_code(&err))?;
                return Ok(answer);
            }
            InitStep::AbortFirst(target) => {
                persist(&owner, partition, &set, target)
                    .await
                    .map_err(|err| super::unavailable_code(&err))?;
                spawn_completion(&owner, partition, &set, transactional_id);
                return Err(TxnError::ConcurrentTransactions.kafka().code());
            }
        }
    }
}

/// AddPartitionsToTxn / AddOffsetsToTxn: 0 or the error code for all the partitions.
pub async fn add_partitions(
    owner: Rc<ShardState>,
    partition: i32,
    transactional_id: String,
    producer: (i64, i16),
    partitions: Vec<TxnPartition>,
) -> Result<(), i16> {
    let set = TxnCoordinator::txns(&owner, partition)
        .await
        .map_err(|err| super::unavailable_code(&err))?;
    let target = set.borrow_mut().add_partitions(
        &transactional_id,
        producer.0,
        producer.1,
        &partitions,
        now_ms(),
    );
    if let Some(target) = target.map_err(|e| e.kafka().code())? {
        // A failed write leaves the id as it was; the client retries the add.
        persist(&owner, partition, &set, target)
            .await
            .map_err(|err| super::unavailable_code(&err))?;
    }
    Ok(())
}

/// EndTxn: the decision is durable before the answer; the markers are written before it
/// too unless one fails (then a background completion retries them and the answer is still
/// success: the outcome is decided).
pub async fn end_txn(
    owner: Rc<ShardState>,
    partition: i32,
    transactional_id: String,
    producer: (i64, i16),
    commit: bool,
) -> Result<(), i16> {
    let set = TxnCoordinator::txns(&owner, partition)
        .await
        .map_err(|err| super::unavailable_code(&err))?;
    let step =
        set.borrow_mut()
            .end_txn(&transactional_id, producer.0, producer.1, commit, now_ms());
    let target = match step {
        Ok(EndStep::AlreadyDone) => return Ok(()),
        Ok(EndStep::Persist(target)) => target,
        Err(error) => return Err(error.kafka().code()),
    };
    persist(&owner, partition, &set, target)
        .await
        .map_err(|err| super::unavailable_code(&err))?;
    if let Err(err) = complete(&owner, partition, &set, &transactional_id).await {
        tracing::warn!(%transactional_id, error = %err, "markers pending; retrying in the background");
        spawn_completion(&owner, partition, &set, transactional_id);
    }
    Ok(())
}

/// DescribeTransactions for one id (None: unknown here).
pub async fn describe(
    owner: Rc<ShardState>,
    partition: i32,
    transactional_id: String,
) -> Option<TxnMetadata> {
    let set = TxnCoordinator::txns(&owner, partition).await.ok()?;
    let meta = set.borrow().get(&transactional_id).cloned();
    meta
}

/// (transactional id, producer id, state) of this shard's loaded ids passing the filters
/// (empty filter = all; `min_duration_ms` >= 0 keeps transactions running at least that
/// long).
pub fn list(
    owner: &ShardState,
    states: &[TxnState],
    producer_ids: &[i64],
    min_duration_ms: i64,
) -> Vec<(String, i64, TxnState)> {
    let now = now_ms();
    owner
        .txn
        .loaded(owner)
        .into_iter()
        .flat_map(|(_, set)| {
            set.borrow()
                .all()
                .filter(|m| states.is_empty() || states.contains(&m.state))
                .filter(|m| producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
                .filter(|m| {
                    min_duration_ms < 0
                        || (m.state == TxnState::Ongoing
                            && now - m.start_timestamp_ms >= min_duration_ms)
                })
                .map(|m| (m.transactional_id.clone(), m.producer_id, m.state))
                .collect::<Vec<_>>()
        })
        .collect()
}
