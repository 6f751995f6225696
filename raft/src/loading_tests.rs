//! A storage whose payloads may be "on disk" ([`RaftError::EntriesLoading`]): the leader
//! must send nothing (no snapshot), keep the follower's progress, and retry by itself on
//! the next heartbeat response or when the caller calls `resume_appends`. Membership must
//! not depend on payloads being loaded.

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;

use crate::error::{RaftError, Result};
use crate::message::{ConfChange, Entry, HardState, MessageBody, Snapshot};
use crate::node::{Config, RawNode};
use crate::rng::SplitMix64;
use crate::storage::{MemStorage, Storage};

/// `MemStorage` whose `entries` answer `EntriesLoading` while `loading` is set.
struct Loading {
    inner: MemStorage,
    loading: Rc<Cell<bool>>,
}

impl Storage for Loading {
    fn hard_state(&self) -> HardState {
        self.inner.hard_state()
    }
    fn snapshot(&self) -> Snapshot {
        self.inner.snapshot()
    }
    fn first_index(&self) -> u64 {
        self.inner.first_index()
    }
    fn last_index(&self) -> u64 {
        self.inner.last_index()
    }
    fn term(&self, index: u64) -> Result<u64> {
        self.inner.term(index)
    }
    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>> {
        if self.loading.get() && lo < hi {
            return Err(RaftError::EntriesLoading { index: lo });
        }
        self.inner.entries(lo, hi, max_bytes)
    }
    fn conf_changes(&self, lo: u64, hi: u64) -> Result<Vec<Entry>> {
        let mut all = self.inner.entries(lo, hi, u64::MAX)?;
        all.retain(|e| e.kind == crate::message::EntryKind::ConfChange);
        Ok(all)
    }
    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.inner.append(entries)
    }
    fn set_hard_state(&mut self, hard_state: HardState) -> Result<()> {
        self.inner.set_hard_state(hard_state)
    }
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        self.inner.install_snapshot(snapshot)
    }
}

/// Persists a Ready into the node's own storage and returns its messages.
fn persist(node: &mut RawNode<Loading>) -> Vec<crate::Message> {
    let ready = node.ready();
    let storage = node.storage_mut();
    storage.append(&ready.entries).unwrap();
    if let Some(hs) = ready.hard_state {
        storage.set_hard_state(hs).unwrap();
    }
    node.advance(&ready);
    ready.messages
}

/// A leader (node 1) of {1, 2} with entries 1..=3 committed on both, then a fourth entry
/// proposed while node 2 is cut off, so node 2 lags by one.
fn lagging_pair() -> (RawNode<Loading>, RawNode<Loading>, Rc<Cell<bool>>) {
    let loading = Rc::new(Cell::new(false));
    let make = |id| {
        let storage = Loading {
            inner: MemStorage::new_with_voters(&[1, 2]),
            loading: Rc::clone(&loading),
        };
        RawNode::new(Config::new(id), storage, SplitMix64::new(id)).unwrap()
    };
    let (mut n1, mut n2) = (make(1), make(2));
    n1.hup();
    exchange(&mut n1, &mut n2);
    assert!(n1.is_leader());
    for data in [&b"a"[..], b"b"] {
        n1.propose(Bytes::copy_from_slice(data)).unwrap();
        exchange(&mut n1, &mut n2);
    }
    n1.propose(Bytes::from_static(b"c")).unwrap();
    persist(&mut n1); // the append to node 2 is lost
    (n1, n2, loading)
}

/// Delivers messages both ways until quiet.
fn exchange(n1: &mut RawNode<Loading>, n2: &mut RawNode<Loading>) {
    loop {
        let (to2, to1) = (persist(n1), persist(n2));
        if to2.is_empty() && to1.is_empty() {
            return;
        }
        to2.into_iter().for_each(|m| n2.step(m).unwrap());
        to1.into_iter().for_each(|m| n1.step(m).unwrap());
    }
}

fn appends_and_snapshots(msgs: &[crate::Message]) -> (usize, usize) {
    let appends = msgs
        .iter()
        .filter(|m| matches!(m.body, MessageBody::Append { .. }))
        .count();
    let snapshots = msgs
        .iter()
        .filter(|m| matches!(m.body, MessageBody::InstallSnapshot { .. }))
        .count();
    (appends, snapshots)
}

/// With payloads "on disk", node 2's rejection of an empty append (it lacks entry 4)
/// makes node 1 probe from 4, which needs the payload: returns node 1's messages then.
fn probe_while_loading(
    n1: &mut RawNode<Loading>,
    n2: &mut RawNode<Loading>,
    loading: &Cell<bool>,
) -> Vec<crate::Message> {
    loading.set(true);
    n1.bcast_append();
    persist(n1).into_iter().for_each(|m| n2.step(m).unwrap());
    persist(n2).into_iter().for_each(|m| n1.step(m).unwrap());
    persist(n1)
}

#[test]
fn loading_entries_send_nothing_and_heartbeats_retry() {
    let (mut n1, mut n2, loading) = lagging_pair();
    let last = n1.last_index();
    let msgs = probe_while_loading(&mut n1, &mut n2, &loading);
    assert_eq!(
        appends_and_snapshots(&msgs),
        (0, 0),
        "nothing, and no snapshot"
    );
    let pr = n1.progress(2).unwrap();
    assert_eq!((pr.next, pr.matched, pr.paused), (last, last - 1, false));

    // Loaded: the next heartbeat round sends the append by itself.
    loading.set(false);
    for _ in 0..n1.cfg.heartbeat_ticks {
        n1.tick();
    }
    exchange(&mut n1, &mut n2);
    assert_eq!(n1.progress(2).unwrap().matched, last);
    assert_eq!(n2.last_index(), last);
}

#[test]
fn resume_appends_retries_at_once() {
    let (mut n1, mut n2, loading) = lagging_pair();
    probe_while_loading(&mut n1, &mut n2, &loading);
    n1.resume_appends();
    assert_eq!(appends_and_snapshots(&persist(&mut n1)), (0, 0));
    loading.set(false);
    n1.resume_appends();
    assert_eq!(appends_and_snapshots(&persist(&mut n1)), (1, 0));
}

#[test]
fn membership_does_not_depend_on_loaded_payloads() {
    let (mut n1, mut n2, loading) = lagging_pair();
    for _ in 0..n1.cfg.heartbeat_ticks {
        n1.tick();
    }
    exchange(&mut n1, &mut n2);
    assert_eq!(n2.last_index(), n1.last_index());
    n1.propose_conf_change(ConfChange::AddLearner(3)).unwrap();
    // Every stored payload is "on disk" from here on: committing the change on the
    // follower and replaying it on restart must not need them.
    loading.set(true);
    exchange(&mut n1, &mut n2);
    assert_eq!(n2.commit_index(), n1.last_index());
    assert!(n2.conf_state().is_learner(3));
    let storage = n2.into_storage();
    let restarted = RawNode::new(Config::new(2), storage, SplitMix64::new(9)).unwrap();
    assert!(restarted.conf_state().is_learner(3));
}
