//! Idempotent producers and read_committed, against the real broker over raw Kafka requests
//! (batches with producer ids and sequences as a client library would send them):
//! duplicates get their original offsets, gaps and old epochs get Kafka's errors, the state
//! survives kill -9, and read_committed fetches stop at the last stable offset and report the
//! aborted transactions (markers written through WriteTxnMarkers).

mod common;
mod idempotence_support;

use common::kafka::create_topic;
use common::{unique_topic, wire, Broker};
use idempotence_support::{
    batch, batches, describe_producers, fetch, init_producer_id, latest_offset, produce,
    write_marker, Producer,
};

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;

#[test]
fn duplicates_get_their_offsets_and_gaps_and_old_epochs_get_kafka_errors() {
    let broker = Broker::start();
    let topic = unique_topic("idem-wire");
    create_topic(&broker.bootstrap(), &topic, 1);
    let mut stream = wire::connect(broker.addr());
    let producer = init_producer_id(&mut stream);
    let other = init_producer_id(&mut stream);
    assert_ne!(
        producer.id, other.id,
        "every InitProducerId gets a fresh id"
    );
    assert_eq!(producer.epoch, 0);

    let first = batch(producer, 0, false, &["a0", "a1", "a2"]);
    let answer = produce(&mut stream, &topic, 0, first.clone());
    assert_eq!((answer.error_code, answer.base_offset), (0, 0));
    let answer = produce(&mut stream, &topic, 0, batch(producer, 3, false, &["a3"]));
    assert_eq!((answer.error_code, answer.base_offset), (0, 3));
    // A retry of an already written batch: its original offset, nothing appended.
    let answer = produce(&mut stream, &topic, 0, first);
    assert_eq!((answer.error_code, answer.base_offset), (0, 0));
    // A gap in the sequence.
    let answer = produce(&mut stream, &topic, 0, batch(producer, 9, false, &["gap"]));
    assert_eq!(answer.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER);
    // A new epoch must start at sequence 0; then the old epoch is fenced.
    let bumped = Producer {
        epoch: 1,
        ..producer
    };
    let answer = produce(&mut stream, &topic, 0, batch(bumped, 4, false, &["x"]));
    assert_eq!(answer.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER);
    let answer = produce(&mut stream, &topic, 0, batch(bumped, 0, false, &["b0"]));
    assert_eq!((answer.error_code, answer.base_offset), (0, 4));
    let answer = produce(&mut stream, &topic, 0, batch(producer, 4, false, &["old"]));
    assert_eq!(answer.error_code, INVALID_PRODUCER_EPOCH);
    // Plain producers are not checked at all; an unknown producer starts anywhere.
    let answer = produce(
        &mut stream,
        &topic,
        0,
        batch(Producer::NONE, 0, false, &["p"]),
    );
    assert_eq!((answer.error_code, answer.base_offset), (0, 5));
    let answer = produce(&mut stream, &topic, 0, batch(other, 77, false, &["o"]));
    assert_eq!((answer.error_code, answer.base_offset), (0, 6));

    // Exactly the accepted batches are in the log, once each.
    let data = fetch(&mut stream, &topic, 0, 0, READ_UNCOMMITTED, 0);
    assert_eq!(data.high_watermark, 7);
    let stored = batches(data.records.as_ref().expect("records"));
    let offsets: Vec<(i64, i64)> = stored
        .iter()
        .map(|b| (b.base_offset, b.last_offset))
        .collect();
    assert_eq!(offsets, vec![(0, 2), (3, 3), (4, 4), (5, 5), (6, 6)]);
    // DescribeProducers: the epoch-1 producer at sequence 0, the other at 77, no transactions.
    let described = describe_producers(&mut stream, &topic, 0);
    assert_eq!(
        described,
        vec![(producer.id, 1, 0, -1), (other.id, 0, 77, -1)]
    );
}

#[test]
fn producer_state_survives_kill_9_and_a_retry_after_restart_is_still_a_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let logs = dir.path().join("logs");
    let topic = unique_topic("idem-kill");
    let mut broker = Broker::start_in(&data_dir, &logs);
    create_topic(&broker.bootstrap(), &topic, 2);
    let mut stream = wire::connect(broker.addr());
    let producer = init_producer_id(&mut stream);
    let sent: Vec<_> = (0..8)
        .map(|i| {
            batch(
                producer,
                i * 2,
                false,
                &[&format!("v{}", 2 * i), &format!("v{}", 2 * i + 1)],
            )
        })
        .collect();
    for (i, records) in sent.iter().enumerate() {
        let answer = produce(&mut stream, &topic, 1, records.clone());
        assert_eq!((answer.error_code, answer.base_offset), (0, 2 * i as i64));
    }
    broker.kill_hard();

    let broker = Broker::start_in(&data_dir, &logs);
    let mut stream = wire::connect(broker.addr());
    // The last five batches are remembered across the crash (rebuilt from the log).
    for (i, records) in sent.iter().enumerate().skip(3) {
        let answer = produce(&mut stream, &topic, 1, records.clone());
        assert_eq!(
            (answer.error_code, answer.base_offset),
            (0, 2 * i as i64),
            "retry of batch {i} after kill -9"
        );
    }
    let answer = produce(&mut stream, &topic, 1, batch(producer, 17, false, &["gap"]));
    assert_eq!(answer.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER);
    let answer = produce(
        &mut stream,
        &topic,
        1,
        batch(producer, 16, false, &["next"]),
    );
    assert_eq!((answer.error_code, answer.base_offset), (0, 16));
    // A new id after restart is never one handed out before.
    let fresh = init_producer_id(&mut stream);
    assert!(fresh.id > producer.id, "{} reused after restart", fresh.id);
}

#[test]
fn read_committed_stops_at_the_lso_and_reports_aborted_transactions_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let logs = dir.path().join("logs");
    let topic = unique_topic("read-committed");
    let mut broker = Broker::start_in(&data_dir, &logs);
    create_topic(&broker.bootstrap(), &topic, 1);
    let mut stream = wire::connect(broker.addr());
    let aborting = init_producer_id(&mut stream);
    let committing = init_producer_id(&mut stream);
    let produced = |stream: &mut _, records| {
        let answer = produce(stream, &topic, 0, records);
        assert_eq!(answer.error_code, 0);
        answer.base_offset
    };
    assert_eq!(
        produced(&mut stream, batch(Producer::NONE, 0, false, &["p0", "p1"])),
        0
    );
    assert_eq!(
        produced(&mut stream, batch(aborting, 0, true, &["a0", "a1"])),
        2
    );
    assert_eq!(
        produced(&mut stream, batch(committing, 0, true, &["c0"])),
        4
    );
    assert_eq!(
        produced(&mut stream, batch(Producer::NONE, 0, false, &["p2"])),
        5
    );
    // A non-transactional write while the producer's transaction is open.
    let answer = produce(&mut stream, &topic, 0, batch(aborting, 2, false, &["x"]));
    assert_eq!(answer.error_code, INVALID_TXN_STATE);

    let data = fetch(&mut stream, &topic, 0, 0, READ_COMMITTED, 0);
    assert_eq!((data.high_watermark, data.last_stable_offset), (6, 2));
    let offsets: Vec<i64> = batches(data.records.as_ref().expect("records"))
        .iter()
        .map(|b| b.base_offset)
        .collect();
    assert_eq!(offsets, vec![0], "only the batch below the LSO");
    assert_eq!(latest_offset(&mut stream, &topic, 0, READ_COMMITTED), 2);
    assert_eq!(latest_offset(&mut stream, &topic, 0, READ_UNCOMMITTED), 6);

    // A long-polling read_committed fetch at the LSO wakes when the LSO moves.
    let addr = broker.addr();
    let topic_for_poll = topic.clone();
    let poll = std::thread::spawn(move || {
        let mut stream = wire::connect(addr);
        fetch(&mut stream, &topic_for_poll, 0, 2, READ_COMMITTED, 60_000)
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(write_marker(&mut stream, aborting, false, &topic, 0), 0);
    let woken = poll.join().expect("poll thread");
    assert!(
        !batches(woken.records.as_ref().expect("records")).is_empty(),
        "the parked read_committed fetch got the now-stable records"
    );
    assert_eq!(write_marker(&mut stream, committing, true, &topic, 0), 0);
    // A marker from an older epoch is fenced.
    let stale = Producer {
        epoch: -1 + aborting.epoch,
        ..aborting
    };
    assert_eq!(
        write_marker(&mut stream, stale, false, &topic, 0),
        INVALID_PRODUCER_EPOCH
    );

    let check_all_stable = |stream: &mut _| {
        let data = fetch(stream, &topic, 0, 0, READ_COMMITTED, 0);
        assert_eq!((data.high_watermark, data.last_stable_offset), (8, 8));
        let stored = batches(data.records.as_ref().expect("records"));
        let controls: Vec<i64> = stored
            .iter()
            .filter(|b| b.control)
            .map(|b| b.base_offset)
            .collect();
        assert_eq!(controls, vec![6, 7], "ABORT then COMMIT markers");
        let aborted: Vec<(i64, i64)> = data
            .aborted_transactions
            .as_ref()
            .expect("read_committed lists aborted transactions")
            .iter()
            .map(|t| (t.producer_id.0, t.first_offset))
            .collect();
        assert_eq!(aborted, vec![(aborting.id, 2)]);
        let uncommitted = fetch(stream, &topic, 0, 0, READ_UNCOMMITTED, 0);
        assert!(uncommitted.aborted_transactions.is_none());
    };
    check_all_stable(&mut stream);
    // Graceful restart (snapshot) keeps the aborted index; so does kill -9 (replay).
    broker.stop_graceful();
    let mut broker = Broker::start_in(&data_dir, &logs);
    check_all_stable(&mut wire::connect(broker.addr()));
    broker.kill_hard();
    // As if the crash came before any snapshot was written: the markers are replayed.
    let snapshot = data_dir
        .join(format!("{topic}-0"))
        .join("producer_state.snapshot");
    std::fs::remove_file(&snapshot).expect("the graceful stop wrote a producer snapshot");
    let broker = Broker::start_in(&data_dir, &logs);
    check_all_stable(&mut wire::connect(broker.addr()));
}
