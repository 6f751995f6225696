//! [`super::ControllerLog`] against real files in a temporary directory.

use bytes::Bytes;
use ringlet_raft::EntryKind;

use super::*;

fn ent(term: u64, index: u64) -> Entry {
    Entry::normal(
        term,
        index,
        Bytes::from(format!("command {index} of term {term}")),
    )
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join(LOG_FILE)
}

#[test]
fn a_fresh_log_starts_from_the_given_voters() {
    let dir = tempfile::tempdir().unwrap();
    let log = ControllerLog::open(dir.path(), &[1, 2, 3]).unwrap();
    assert_eq!(log.first_index(), 1);
    assert_eq!(log.last_index(), 0);
    assert_eq!(log.term(0).unwrap(), 0);
    assert_eq!(log.snapshot().meta.conf, ConfState::with_voters(&[1, 2, 3]));
    assert_eq!(log.hard_state(), HardState::default());
    drop(log);
    let reopened = ControllerLog::open(dir.path(), &[7]).unwrap();
    assert_eq!(
        reopened.snapshot().meta.conf.voters,
        vec![1, 2, 3],
        "the initial membership is fixed when the directory is created"
    );
}

#[test]
fn entries_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ControllerLog::open(dir.path(), &[1]).unwrap();
    let conf_change = Entry {
        term: 2,
        index: 3,
        kind: EntryKind::ConfChange,
        data: ringlet_raft::ConfChange::AddLearner(2).encode(),
    };
    let noop = Entry::normal(2, 4, Bytes::new());
    log.append(&[ent(1, 1), ent(1, 2)]).unwrap();
    log.append(&[conf_change.clone(), noop.clone()]).unwrap();
    let written = log.entries(1, 5, u64::MAX).unwrap();
    drop(log);
    let log = ControllerLog::open(dir.path(), &[1]).unwrap();
    assert_eq!(log.last_index(), 4);
    assert_eq!(log.entries(1, 5, u64::MAX).unwrap(), written);
    assert_eq!(written[2], conf_change);
    assert_eq!(written[3], noop);
    assert_eq!(log.term(3).unwrap(), 2);
    assert!(matches!(log.term(5), Err(RaftError::Unavailable { .. })));
    assert!(matches!(
        log.entries(0, 2, u64::MAX),
        Err(RaftError::Compacted { .. })
    ));
    assert_eq!(log.entries(1, 5, 0).unwrap().len(), 1, "at least one entry");
}

#[test]
fn a_rewritten_suffix_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ControllerLog::open(dir.path(), &[1]).unwrap();
    log.append(&[ent(1, 1), ent(1, 2), ent(1, 3)]).unwrap();
    log.append(&[ent(2, 2)]).unwrap();
    assert_eq!(log.last_index(), 2);
    log.append(&[ent(2, 3), ent(2, 4)]).unwrap();
    assert!(log.append(&[ent(2, 9)]).is_err(), "a gap is refused");
    assert!(
        log.append(&[ent(2, 5), ent(2, 7)]).is_err(),
        "non-contiguous entries"
    );
    let expected = log.entries(1, 5, u64::MAX).unwrap();
    drop(log);
    let log = ControllerLog::open(dir.path(), &[1]).unwrap();
    assert_eq!(log.entries(1, 5, u64::MAX).unwrap(), expected);
    assert_eq!(log.term(2).unwrap(), 2);
    assert_eq!(log.term(1).unwrap(), 1);
}

#[test]
fn a_torn_tail_is_cut_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ControllerLog::open(dir.path(), &[1]).unwrap();
    log.append(&[ent(1, 1), ent(1, 2), ent(1, 3)]).unwrap();
    let cut_from = log.positions[2];
    drop(log);
    let file = OpenOptions::new()
        .write(true)
        .open(log_path(dir.path()))
        .unwrap();
    file.set_len(cut_from + 5).unwrap();
    drop(file);

    let mut log = ControllerLog::open(dir.path(), &[1]).unwrap();
    assert_eq!(log.last_index(), 2, "the valid prefix is kept");
    assert_eq!(fs::metadata(log_path(dir.path())).unwrap().len(), cut_from);
    log.append(&[ent(2, 3)]).unwrap();
    drop(log);
    let log = ControllerLog::open(dir.path(), &[1]).unwrap();
    assert_eq!(log.last_index(), 3);
    assert_eq!(
        log.term(3).unwrap(),
        2,
        "appends after the cut are readable"
    );
}

#[test]
fn a_corrupt_record_is_cut_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ControllerLog::open(dir.path(), &[1]).unwrap();
    log.append(&[ent(1, 1), ent(1, 2), ent(1, 3)]).unwrap();
    let second = log.positions[1] as usize;
    drop(log);
    let mut bytes = fs::read(log_path(dir.path())).unwrap();
    bytes[second + 20] ^= 0x40;
    fs::write(log_path(dir.path()), &bytes).unwrap();

    let log = ControllerLog::open(dir.path(), &[1]).unwrap();
    assert_eq!(log.last_index(), 1);
    assert_eq!(log.entries(1, 2, u64::MAX).unwrap(), vec![ent(1, 1)]);
}

#[test]
fn hard_state_and_commit_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ControllerLog::open(dir.path(), &[1, 2]).unwrap();
    log.append(&[ent(3, 1), ent(3, 2)]).unwrap();
    let voted = HardState {
        term: 3,
        vote: Some(2),
        commit: 1,
    };
    log.set_hard_state(voted).unwrap();
    log.set_hard_state(HardState { commit: 2, ..voted })
        .unwrap();
    assert_eq!(log.hard_state().commit, 2);
    drop(log);
    let mut log = ControllerLog::open(dir.path(), &[1, 2]).unwrap();
    assert_eq!(
        log.hard_state(),
        HardState { commit: 2, ..voted },
        "a restarted broker rebuilds its tables up to the commit it knew"
    );

    log.set_hard_state(HardState {
        term: 4,
        vote: Some(1),
        commit: 2,
    })
    .unwrap();
    drop(log);
    let log = ControllerLog::open(dir.path(), &[1, 2]).unwrap();
    assert_eq!(log.hard_state().term, 4);
    assert_eq!(log.hard_state().commit, 2);
}

#[test]
fn a_commit_beyond_a_cut_tail_is_lowered_and_corrupt_state_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ControllerLog::open(dir.path(), &[1]).unwrap();
    log.append(&[ent(1, 1), ent(1, 2)]).unwrap();
    let cut = log.positions[1];
    log.set_hard_state(HardState {
        term: 1,
        vote: Some(1),
        commit: 2,
    })
    .unwrap();
    drop(log);
    let file = OpenOptions::new()
        .write(true)
        .open(log_path(dir.path()))
        .unwrap();
    file.set_len(cut).unwrap();
    drop(file);
    let log = ControllerLog::open(dir.path(), &[1]).unwrap();
    assert_eq!(log.hard_state().commit, 1);
    drop(log);

    let hard_state = dir.path().join(HARD_STATE_FILE);
    let mut bytes = fs::read(&hard_state).unwrap();
    bytes[3] ^= 1;
    fs::write(&hard_state, bytes).unwrap();
    let reopened = ControllerLog::open(dir.path(), &[1]);
    assert!(matches!(reopened, Err(BrokerError::Storage(_))));
}

#[test]
fn snapshots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = ControllerLog::open(dir.path(), &[1]).unwrap();
    let err = log.install_snapshot(Snapshot::default()).unwrap_err();
    assert!(err.to_string().contains("not implemented"), "{err}");
}
