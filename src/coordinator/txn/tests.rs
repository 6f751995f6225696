//! The transaction state machine, step by step (no I/O: transitions are finished by hand,
//! as the service does once a record is durable).

use super::machine::*;

const NOW: i64 = 1_000;

fn set() -> TxnSet {
    TxnSet::new(TxnLimits {
        max_timeout_ms: 60_000,
        id_expiration_ms: 10_000,
    })
}

fn tp(topic: &str, partition: i32) -> TxnPartition {
    (topic.to_string(), partition)
}

/// InitProducerId through to a durable answer.
fn init(set: &mut TxnSet, id: &str, expected: Option<(i64, i16)>, fresh: i64) -> (i64, i16) {
    let mut step = set
        .init_producer_id(id, 30_000, expected, None, NOW)
        .unwrap();
    if step == InitStep::NeedProducerId {
        step = set
            .init_producer_id(id, 30_000, expected, Some(fresh), NOW)
            .unwrap();
    }
    let InitStep::Persist(target) = step else {
        panic!("expected a persist step, got {step:?}");
    };
    let answer = (target.producer_id, target.producer_epoch);
    set.finish_transition(target);
    answer
}

fn add(set: &mut TxnSet, id: &str, producer: (i64, i16), parts: &[TxnPartition], now: i64) {
    if let Some(target) = set
        .add_partitions(id, producer.0, producer.1, parts, now)
        .unwrap()
    {
        set.finish_transition(target);
    }
}

fn end(set: &mut TxnSet, id: &str, producer: (i64, i16), commit: bool) -> TxnMetadata {
    let EndStep::Persist(target) = set
        .end_txn(id, producer.0, producer.1, commit, NOW)
        .unwrap()
    else {
        panic!("expected a prepare");
    };
    set.finish_transition(target.clone());
    target
}

fn finish_markers(set: &mut TxnSet, id: &str) -> TxnMetadata {
    let target = set.complete(id, NOW).expect("prepared");
    set.finish_transition(target.clone());
    target
}

#[test]
fn a_commit_goes_through_every_state() {
    let mut s = set();
    let producer = init(&mut s, "tx", None, 42);
    assert_eq!(producer, (42, 0));
    assert_eq!(s.get("tx").unwrap().state, TxnState::Empty);
    add(&mut s, "tx", producer, &[tp("a", 0)], NOW);
    add(&mut s, "tx", producer, &[tp("a", 1), tp("a", 0)], NOW + 5);
    let meta = s.get("tx").unwrap();
    assert_eq!(meta.state, TxnState::Ongoing);
    assert_eq!(meta.partitions.len(), 2);
    assert_eq!(meta.start_timestamp_ms, NOW);
    let prepared = end(&mut s, "tx", producer, true);
    assert_eq!(prepared.state, TxnState::PrepareCommit);
    assert_eq!(
        prepared.partitions.len(),
        2,
        "markers go to every partition"
    );
    // A retried EndTxn while the markers are pending: try again later.
    assert_eq!(
        s.end_txn("tx", 42, 0, true, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(
        s.add_partitions("tx", 42, 0, &[tp("b", 0)], NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    let done = finish_markers(&mut s, "tx");
    assert_eq!(done.state, TxnState::CompleteCommit);
    assert!(done.partitions.is_empty());
    assert_eq!(s.end_txn("tx", 42, 0, true, NOW), Ok(EndStep::AlreadyDone));
    assert_eq!(
        s.end_txn("tx", 42, 0, false, NOW),
        Err(TxnError::InvalidTxnState)
    );
    // The next transaction starts from a clean partition set.
    add(&mut s, "tx", producer, &[tp("b", 0)], NOW + 10);
    let meta = s.get("tx").unwrap();
    assert_eq!(meta.partitions.len(), 1);
    assert_eq!(meta.start_timestamp_ms, NOW + 10);
}

#[test]
fn a_transition_in_flight_blocks_other_requests_until_finished_or_cancelled() {
    let mut s = set();
    let producer = init(&mut s, "tx", None, 1);
    let target = s
        .add_partitions("tx", 1, 0, &[tp("a", 0)], NOW)
        .unwrap()
        .unwrap();
    assert_eq!(
        s.end_txn("tx", 1, 0, true, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(
        s.init_producer_id("tx", 1000, None, None, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    s.cancel_transition(&target.transactional_id);
    assert_eq!(
        s.get("tx").unwrap().state,
        TxnState::Empty,
        "write failed: unchanged"
    );
    add(&mut s, "tx", producer, &[tp("a", 0)], NOW);
    assert_eq!(s.get("tx").unwrap().state, TxnState::Ongoing);
}

#[test]
fn reinit_bumps_the_epoch_and_fences_the_old_producer() {
    let mut s = set();
    let old = init(&mut s, "tx", None, 7);
    let new = init(&mut s, "tx", None, 99);
    assert_eq!(
        new,
        (7, 1),
        "same producer id, next epoch, no new id needed"
    );
    assert_eq!(
        s.add_partitions("tx", old.0, old.1, &[tp("a", 0)], NOW),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        s.end_txn("tx", 8, 1, true, NOW),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        s.add_partitions("nobody", 7, 1, &[tp("a", 0)], NOW),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn reinit_during_an_ongoing_transaction_aborts_it_with_a_bumped_epoch_first() {
    let mut s = set();
    let old = init(&mut s, "tx", None, 7);
    add(&mut s, "tx", old, &[tp("a", 0), tp("b", 3)], NOW);
    let step = s.init_producer_id("tx", 30_000, None, None, NOW).unwrap();
    let InitStep::AbortFirst(abort) = step else {
        panic!("expected the ongoing transaction to be aborted first, got {step:?}");
    };
    assert_eq!(abort.state, TxnState::PrepareAbort);
    assert_eq!(
        abort.producer_epoch,
        old.1 + 1,
        "markers carry the fencing epoch"
    );
    assert_eq!(abort.partitions.len(), 2);
    s.finish_transition(abort);
    // The zombie cannot commit any more.
    assert_eq!(
        s.end_txn("tx", old.0, old.1, true, NOW),
        Err(TxnError::ProducerFenced)
    );
    // The new instance retries while the markers are pending.
    assert_eq!(
        s.init_producer_id("tx", 30_000, None, None, NOW),
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(finish_markers(&mut s, "tx").state, TxnState::CompleteAbort);
    assert_eq!(init(&mut s, "tx", None, 0), (7, old.1 + 2));
}

#[test]
fn kip360_recovery_with_the_current_epoch_bumps_and_a_stale_one_is_fenced() {
    let mut s = set();
    let first = init(&mut s, "tx", None, 5);
    let bumped = init(&mut s, "tx", Some(first), 0);
    assert_eq!(bumped, (5, first.1 + 1));
    // A retry of that bump whose answer was lost gets the same epoch again.
    assert_eq!(init(&mut s, "tx", Some(first), 0), bumped);
    // Another producer id entirely: fenced.
    assert_eq!(
        s.init_producer_id("tx", 30_000, Some((6, 0)), None, NOW),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn an_exhausted_epoch_rotates_to_a_new_producer_id() {
    let mut s = set();
    init(&mut s, "tx", None, 5);
    let mut meta = s.get("tx").unwrap().clone();
    meta.producer_epoch = i16::MAX - 1;
    s.load("tx", Some(meta));
    assert_eq!(
        s.init_producer_id("tx", 30_000, None, None, NOW),
        Ok(InitStep::NeedProducerId)
    );
    let exhausted = (5, i16::MAX - 1);
    assert_eq!(init(&mut s, "tx", Some(exhausted), 77), (77, 0));
    assert_eq!(s.get("tx").unwrap().last_producer_id, 5);
    // KIP-360: a retry with the old id and its exhausted epoch gets the same answer.
    assert_eq!(init(&mut s, "tx", Some(exhausted), 78), (77, 0));
}

#[test]
fn timeouts_abort_with_a_bumped_epoch_and_idle_ids_expire() {
    let mut s = set();
    let producer = init(&mut s, "tx", None, 1);
    init(&mut s, "idle", None, 2);
    add(&mut s, "tx", producer, &[tp("a", 0)], NOW);
    assert!(s.time_out(NOW + 29_999).is_empty());
    let aborted = s.time_out(NOW + 30_000);
    assert_eq!(aborted.len(), 1);
    assert_eq!(aborted[0].state, TxnState::PrepareAbort);
    assert_eq!(aborted[0].producer_epoch, producer.1 + 1);
    s.finish_transition(aborted[0].clone());
    assert_eq!(s.prepared().len(), 1, "markers still to write");
    assert_eq!(
        s.end_txn("tx", producer.0, producer.1, true, NOW),
        Err(TxnError::ProducerFenced)
    );
    let done = s.complete("tx", NOW + 30_000).expect("prepared");
    s.finish_transition(done);
    assert!(s.prepared().is_empty());
    // `idle` was last touched at NOW, `tx` 30 s later: only `idle` expires at NOW + 10 s.
    let expired = s.expire(NOW + 10_000);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].transactional_id, "idle");
    assert_eq!(expired[0].state, TxnState::Dead);
    s.finish_transition(expired[0].clone());
    assert!(s.get("idle").is_none());
    assert!(s.get("tx").is_some());
}

#[test]
fn bad_inputs_get_kafkas_errors() {
    let mut s = set();
    assert_eq!(
        s.init_producer_id("tx", 60_001, None, None, NOW),
        Err(TxnError::InvalidTransactionTimeout)
    );
    assert_eq!(
        s.init_producer_id("tx", 0, None, None, NOW),
        Err(TxnError::InvalidTransactionTimeout)
    );
    assert_eq!(
        s.init_producer_id("", 1000, None, None, NOW),
        Err(TxnError::InvalidRequest)
    );
    let producer = init(&mut s, "tx", None, 3);
    assert_eq!(
        s.end_txn("tx", producer.0, producer.1, true, NOW),
        Err(TxnError::InvalidTxnState),
        "EndTxn without a transaction"
    );
    assert_eq!(TxnError::ProducerFenced.code_for(1, 2), 47);
    assert_eq!(TxnError::ProducerFenced.code_for(2, 2), 90);
}

#[test]
fn state_ids_and_names_round_trip() {
    for state in TxnState::ALL {
        assert_eq!(TxnState::from_id(state.id()), Some(state));
        assert_eq!(TxnState::parse(state.name()), Some(state));
    }
    assert_eq!(TxnState::from_id(8), None);
}
