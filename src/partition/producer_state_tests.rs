use super::*;

fn batch(pid: i64, epoch: i16, first_seq: i32, records: i32) -> IncomingBatch {
    IncomingBatch {
        producer_id: pid,
        epoch,
        first_seq,
        last_offset_delta: records - 1,
        max_timestamp_ms: 1_000,
        transactional: false,
    }
}

fn txn_batch(pid: i64, epoch: i16, first_seq: i32, records: i32) -> IncomingBatch {
    IncomingBatch {
        transactional: true,
        ..batch(pid, epoch, first_seq, records)
    }
}

/// Checks and applies like the append path; returns the offsets the producer is told.
fn append(states: &mut ProducerStates, b: &IncomingBatch, log_end: &mut i64) -> (i64, bool) {
    match states.check(b).expect("accepted") {
        Checked::Append => {
            let first = *log_end;
            states.apply(b, first);
            *log_end += i64::from(b.last_offset_delta) + 1;
            (first, false)
        }
        Checked::Duplicate(meta) => (meta.first_offset, true),
    }
}

#[test]
fn in_order_batches_append_and_a_retry_of_any_of_the_last_five_gets_its_offset() {
    let mut states = ProducerStates::default();
    let mut end = 0;
    let offsets: Vec<i64> = (0..6)
        .map(|i| append(&mut states, &batch(7, 0, i * 3, 3), &mut end).0)
        .collect();
    assert_eq!(offsets, vec![0, 3, 6, 9, 12, 15]);
    for i in 1..6 {
        assert_eq!(
            append(&mut states, &batch(7, 0, i * 3, 3), &mut end),
            (i64::from(i) * 3, true)
        );
    }
    // The sixth-last batch is no longer cached: a retry of it is out of order.
    assert!(matches!(
        states.check(&batch(7, 0, 0, 3)),
        Err(BrokerError::OutOfOrderSequence(_))
    ));
    assert_eq!(end, 18);
}

#[test]
fn a_gap_is_out_of_order_and_an_older_epoch_is_fenced() {
    let mut states = ProducerStates::default();
    let mut end = 0;
    append(&mut states, &batch(1, 2, 0, 1), &mut end);
    assert!(matches!(
        states.check(&batch(1, 2, 2, 1)),
        Err(BrokerError::OutOfOrderSequence(_))
    ));
    assert!(matches!(
        states.check(&batch(1, 1, 1, 1)),
        Err(BrokerError::InvalidProducerEpoch(_))
    ));
}

#[test]
fn a_new_epoch_must_start_at_zero_and_an_unknown_producer_may_start_anywhere() {
    let mut states = ProducerStates::default();
    let mut end = 0;
    assert_eq!(
        append(&mut states, &batch(4, 0, 42, 2), &mut end),
        (0, false)
    );
    assert!(matches!(
        states.check(&batch(4, 1, 5, 1)),
        Err(BrokerError::OutOfOrderSequence(_))
    ));
    assert_eq!(
        append(&mut states, &batch(4, 1, 0, 1), &mut end),
        (2, false)
    );
    assert_eq!(states.entry(4).map(|e| e.epoch), Some(1));
}

#[test]
fn sequences_wrap_at_i32_max() {
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    let mut states = ProducerStates::default();
    let mut end = 0;
    let b = batch(9, 0, i32::MAX - 1, 2);
    assert_eq!(b.last_seq(), i32::MAX);
    append(&mut states, &b, &mut end);
    assert_eq!(
        append(&mut states, &batch(9, 0, 0, 1), &mut end),
        (2, false)
    );
}

#[test]
fn transactions_hold_the_lso_until_the_marker_is_below_the_high_watermark() {
    let mut states = ProducerStates::default();
    let mut end = 0;
    append(&mut states, &batch(1, 0, 0, 2), &mut end); // offsets 0-1, plain
    append(&mut states, &txn_batch(2, 0, 0, 3), &mut end); // offsets 2-4, txn
    append(&mut states, &txn_batch(3, 0, 0, 1), &mut end); // offset 5, txn
    assert_eq!(states.last_stable_offset(end), 2);
    assert!(matches!(
        states.check(&batch(2, 0, 3, 1)),
        Err(BrokerError::InvalidTxnState(_))
    ));
    let ended = states.apply_marker(2, 0, false, 0, 6, 2_000);
    assert_eq!(
        ended,
        Some(EndedTxn {
            producer_id: 2,
            first_offset: 2,
            marker_offset: 6,
            commit: false
        })
    );
    // The marker at 6 is not visible yet (high watermark 6): still stable only up to 2.
    assert_eq!(states.last_stable_offset(6), 2);
    assert_eq!(states.last_stable_offset(7), 5);
    states.apply_marker(3, 0, true, 0, 7, 2_000);
    assert_eq!(states.last_stable_offset(8), 8);
    let aborted = states.aborted().overlapping(0, 8);
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].producer_id, aborted[0].first_offset), (2, 2));
}

#[test]
fn markers_from_old_epochs_are_refused_and_a_bumped_epoch_restarts_sequences() {
    let mut states = ProducerStates::default();
    let mut end = 0;
    append(&mut states, &txn_batch(5, 3, 0, 1), &mut end);
    assert!(matches!(
        states.check_marker(5, 2, 0),
        Err(BrokerError::InvalidProducerEpoch(_))
    ));
    states.apply_marker(5, 4, false, 1, 1, 0);
    assert!(matches!(
        states.check_marker(5, 4, 0),
        Err(BrokerError::TransactionCoordinatorFenced(_))
    ));
    assert!(matches!(
        states.check(&txn_batch(5, 4, 1, 1)),
        Err(BrokerError::OutOfOrderSequence(_))
    ));
    assert!(states.check(&txn_batch(5, 4, 0, 1)).is_ok());
}

#[test]
fn undo_restores_the_previous_entry_and_expiry_keeps_open_transactions() {
    let mut states = ProducerStates::default();
    let mut end = 0;
    append(&mut states, &batch(1, 0, 0, 1), &mut end);
    let before = states.clone();
    let b = txn_batch(1, 0, 1, 1);
    let previous = states.apply(&b, 1);
    states.undo(1, previous, 1);
    assert_eq!(states, before);
    append(&mut states, &txn_batch(2, 0, 0, 1), &mut end);
    assert_eq!(states.expire(1_000 + 10, 5), 1);
    assert!(states.entry(1).is_none());
    assert!(states.entry(2).is_some());
}
