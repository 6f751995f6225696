//! Tests of [`ReplicaStorage`]: the in-memory view (pure), then the I/O against a real
//! `PartitionLog` on a one-shard runtime (glommio, through `ringlet_shard`).

use bytes::{BufMut, Bytes, BytesMut};
use ringlet_raft::{ConfChange, Entry, EntryKind, HardState, RaftError, Storage};

use super::replica_storage::{Anchor, BatchMeta, ReplicaStorage};
use super::replica_storage_io::{decode_state, encode_state};

/// A valid v2 batch of `records` small records (offsets and epoch left for the log).
pub(super) fn data_batch(records: i32, fill: u8) -> Bytes {
    producer_batch(records, fill, -1, -1)
}

/// As [`data_batch`], from producer `producer_id` (epoch 0) at `base_sequence`; -1, -1 for
/// none.
pub(super) fn producer_batch(
    records: i32,
    fill: u8,
    producer_id: i64,
    base_sequence: i32,
) -> Bytes {
    let mut body = BytesMut::new();
    for delta in 0..records {
        let mut record = BytesMut::new();
        record.put_i8(0); // attributes
        record.put_u8(0); // timestamp delta
        record.put_u8((delta * 2) as u8); // offset delta, zigzag
        record.put_u8(1); // null key
        record.put_u8(6); // value length 3, zigzag
        record.put_slice(&[fill; 3]);
        record.put_u8(0); // headers
        body.put_u8((record.len() * 2) as u8);
        body.put_slice(&record);
    }
    let mut batch = BytesMut::new();
    batch.put_i64(0);
    batch.put_i32(0);
    batch.put_i32(-1);
    batch.put_i8(2);
    batch.put_u32(0);
    batch.put_i16(0); // attributes
    batch.put_i32(records - 1);
    batch.put_i64(1_700_000_000_000);
    batch.put_i64(1_700_000_000_000);
    batch.put_i64(producer_id);
    batch.put_i16(if producer_id < 0 { -1 } else { 0 });
    batch.put_i32(base_sequence);
    batch.put_i32(records);
    batch.put_slice(&body);
    let length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch.freeze()
}

pub(super) fn data(term: u64, index: u64, records: i32) -> Entry {
    Entry::normal(term, index, data_batch(records, index as u8))
}

pub(super) fn conf(term: u64, index: u64, cc: ConfChange) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::ConfChange,
        data: cc.encode(),
    }
}

fn fresh() -> ReplicaStorage {
    ReplicaStorage::new(Anchor::default(), HardState::default(), &[1, 2, 3])
}

fn meta(term: u64, base_offset: i64, last_offset: i64) -> BatchMeta {
    BatchMeta {
        term,
        base_offset,
        last_offset,
    }
}

#[test]
fn append_lays_batches_densely_by_record_count() {
    let mut s = fresh();
    assert_eq!((s.first_index(), s.last_index(), s.term(0)), (1, 0, Ok(0)));
    let noop = Entry::normal(1, 1, Bytes::new());
    s.append(&[noop, data(1, 2, 3), data(1, 3, 2)]).unwrap();
    assert_eq!(
        s.batch_meta(1),
        Some(meta(1, 0, -1)),
        "the no-op takes no offset: the first record is at 0"
    );
    assert_eq!(s.batch_meta(2), Some(meta(1, 0, 2)));
    assert_eq!(s.batch_meta(3), Some(meta(1, 3, 4)));
    assert_eq!(s.next_offset(), 5);
    assert_eq!(s.index_of_offset(0), Some(2));
    assert_eq!(s.index_of_offset(2), Some(2));
    assert_eq!(s.index_of_offset(4), Some(3));
    assert_eq!(s.index_of_offset(5), None);
    assert_eq!(s.index_of_offset(-1), None);
    assert_eq!(s.high_watermark(0), 0, "nothing committed: the log start");
    assert_eq!(s.high_watermark(1), 0, "a committed no-op shows nothing");
    assert_eq!(s.high_watermark(2), 3);
    assert_eq!(s.high_watermark(9), 5, "clamped to the last entry");
    let all = s.entries(1, 4, u64::MAX).unwrap();
    assert_eq!(
        all[0].data,
        Bytes::new(),
        "the no-op comes back as Raft appended it"
    );
    assert_eq!(all.iter().map(|e| e.index).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(s.entries(1, 4, 0).unwrap().len(), 1, "always at least one");
}

#[test]
fn raft_entries_between_batches_keep_offsets_dense() {
    let mut s = fresh();
    let noop = |term, index| Entry::normal(term, index, Bytes::new());
    let log_start = Entry::normal(
        2,
        5,
        super::replica_storage_batch::log_start_command(1).freeze(),
    );
    let cc = conf(2, 6, ConfChange::AddLearner(4));
    s.append(&[noop(1, 1), data(1, 2, 2), noop(2, 3), data(2, 4, 1)])
        .unwrap();
    s.append(&[log_start, cc, data(2, 7, 1)]).unwrap();
    let offsets: Vec<(i64, i64)> = (1..=7).map(|i| s.batch_offsets_of(i).unwrap()).collect();
    assert_eq!(
        offsets,
        [(0, -1), (0, 1), (2, 1), (2, 2), (3, 2), (3, 2), (3, 3)],
        "only the data batches take offsets"
    );
    assert_eq!(s.index_of_offset(2), Some(4));
    assert_eq!(s.index_of_offset(3), Some(7));
    assert_eq!(
        s.high_watermark(3),
        2,
        "the new leader's no-op adds nothing"
    );
    assert_eq!(s.high_watermark(6), 3);
    // OffsetForLeaderEpoch: epoch 1 ends where epoch 2's no-op sits.
    let end = ringlet_raft::kafka_mapping::end_offset_for_epoch(&s, &s, 1, 4);
    assert_eq!(end, Some((1, 2)));
    assert_eq!(s.conf_changes(1, 8).unwrap().len(), 1);
    assert!(!s.entries(5, 6, u64::MAX).unwrap()[0].data.is_empty());
    // Replacing from the no-op drops the Raft entries after it, not only the batches.
    s.append(&[noop(3, 3)]).unwrap();
    assert_eq!((s.last_index(), s.next_offset()), (3, 2));
    assert_eq!(s.conf_changes(1, 4).unwrap(), vec![]);
    // Raft entries are never evicted: they are not in the log to read back.
    s.set_cache_bytes_max(0);
    assert!(s.entries(3, 4, u64::MAX).is_ok());
    assert_eq!(
        s.read_back_plan(1, 4),
        Some((0, 1)),
        "one batch to read for 1..4"
    );
}

#[test]
fn a_conflicting_suffix_is_replaced() {
    let mut s = fresh();
    let cc = conf(1, 3, ConfChange::AddLearner(4));
    s.append(&[data(1, 1, 1), data(1, 2, 5), cc, data(1, 4, 1)])
        .unwrap();
    s.append(&[data(2, 2, 2)]).unwrap();
    assert_eq!(s.last_index(), 2);
    assert_eq!(s.batch_meta(2), Some(meta(2, 1, 2)));
    assert_eq!(s.next_offset(), 3);
    assert_eq!(
        s.conf_changes(1, 3).unwrap(),
        vec![],
        "the change was replaced"
    );
    assert!(matches!(
        s.entries(1, 4, u64::MAX),
        Err(RaftError::Unavailable { .. })
    ));
    assert!(s.append(&[data(2, 4, 1)]).is_err(), "a gap is refused");
    assert!(s
        .append(&[Entry::normal(2, 3, Bytes::from_static(b"x"))])
        .is_err());
}

#[test]
fn evicted_payloads_are_loading_and_recorded() {
    let mut s = fresh();
    let entries: Vec<Entry> = (1..=6).map(|i| data(1, i, 2)).collect();
    s.append(&entries[..2]).unwrap();
    s.append(&[conf(1, 3, ConfChange::AddLearner(4))]).unwrap();
    s.append(&entries[3..]).unwrap();
    s.set_cache_bytes_max(0); // keeps only the newest payload
    assert_eq!(
        s.entries(1, 7, u64::MAX),
        Err(RaftError::EntriesLoading { index: 1 })
    );
    assert_eq!(s.take_missing(), Some((1, 7)));
    assert_eq!(s.take_missing(), None);
    // Membership never waits for the disk.
    let changes = s.conf_changes(1, 7).unwrap();
    assert_eq!(changes.iter().map(|e| e.index).collect::<Vec<_>>(), [3]);
    // A served prefix, then the next missing payload is recorded.
    let prefix = s.entries(3, 7, u64::MAX).unwrap();
    assert_eq!(prefix.len(), 1);
    assert_eq!(s.take_missing(), Some((4, 7)));
    assert_eq!(s.entries(6, 7, u64::MAX).unwrap().len(), 1);
    assert_eq!(
        s.read_back_plan(4, 9),
        Some((4, 3)),
        "clipped to the log; the membership change took no offset"
    );
    assert_eq!(s.read_back_plan(7, 9), None);
}

#[test]
fn loaded_batches_fill_the_cache_unless_stale() {
    let mut s = fresh();
    let entries: Vec<Entry> = (1..=3).map(|i| data(1, i, 2)).collect();
    s.append(&entries).unwrap();
    s.set_cache_bytes_max(0);
    // As the log stores them: base offset and epoch stamped.
    let stored = |entry: &Entry, base: i64, epoch: i32| {
        let mut b = BytesMut::from(&entry.data[..]);
        ringlet_protocol::record_batch::set_base_offset(&mut b, base);
        ringlet_protocol::record_batch::set_partition_leader_epoch(&mut b, epoch);
        b.freeze()
    };
    let good = stored(&entries[0], 0, 1);
    let wrong_term = stored(&entries[1], 2, 7);
    s.insert_loaded(1, vec![good.clone(), wrong_term]);
    s.insert_loaded(9, vec![good.clone()]);
    assert_eq!(s.entries(1, 2, u64::MAX).unwrap()[0].data, good);
    assert!(matches!(
        s.entries(2, 3, u64::MAX),
        Err(RaftError::EntriesLoading { index: 2 })
    ));
}

#[test]
fn snapshots_carry_the_log_start_and_the_state_file_round_trips() {
    let mut s = fresh();
    let snapshot = s.snapshot();
    assert_eq!((snapshot.meta.index, snapshot.meta.term), (0, 0));
    assert_eq!(snapshot.meta.conf.voters, vec![1, 2, 3]);
    assert_eq!(&snapshot.data[..], &0i64.to_be_bytes());
    let mut garbled = snapshot.clone();
    garbled.data = Bytes::from_static(b"\x01\x02");
    assert!(
        s.install_snapshot(garbled).is_err(),
        "data that is not an offset"
    );
    assert!(s.install_snapshot(snapshot).is_ok());

    let anchor = Anchor {
        first_index: 5,
        base_offset: 40,
        prev_term: 2,
    };
    let hs = HardState {
        term: 3,
        vote: Some(2),
        commit: 9,
    };
    // Node 0 is a node: its vote must not read back as "no vote", nor the reverse.
    for vote in [Some(0), None] {
        let hs = HardState { vote, ..hs };
        assert_eq!(decode_state(&encode_state(anchor, hs)), Ok((anchor, hs)));
    }
    let mut bytes = encode_state(anchor, hs);
    assert_eq!(decode_state(&bytes), Ok((anchor, hs)));
    bytes[6] ^= 1;
    assert!(decode_state(&bytes).is_err(), "a flipped bit is caught");
    assert!(decode_state(&bytes[..10]).is_err());
}
