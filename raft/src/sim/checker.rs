//! Safety properties asserted on every step of a simulation (thesis Figure 3.2):
//! Election Safety, Log Matching, Leader Completeness, State Machine Safety,
//! and that every node applies a prefix of one committed sequence, across
//! crashes and restarts. Violations are `Err` strings carrying the seed.

use std::collections::BTreeMap;

use crate::message::{Entry, EntryKind, GroupId, NodeId};
use crate::node::{RawNode, Ready};
use crate::storage::{MemStorage, Storage};

pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn entry_hash(e: &Entry) -> u64 {
    let kind = match e.kind {
        EntryKind::Normal => 0u8,
        EntryKind::ConfChange => 1,
    };
    fnv1a(fnv1a(FNV_OFFSET, &[kind]), &e.data)
}

#[derive(Default)]
pub struct Checker {
    pub seed: u64,
    /// Election Safety: the leader seen for each (group, term).
    leaders: BTreeMap<(GroupId, u64), NodeId>,
    /// Log Matching: every (group, index, term) ever persisted, with its
    /// content and the term of the entry before it. Equal keys must agree,
    /// which by induction makes the logs identical up to that index.
    persisted: BTreeMap<(GroupId, u64, u64), (u64, u64)>,
    /// State Machine Safety: the committed sequence of each group, as
    /// (term, content hash), first applied by anyone.
    committed: BTreeMap<GroupId, Vec<(u64, u64)>>,
    /// Term of the first leader seen with a commit index covering each index:
    /// an upper bound on the term that committed it.
    commit_term: BTreeMap<GroupId, Vec<u64>>,
    /// Last index each live node applied, per group (reset on restart).
    applied: BTreeMap<(NodeId, GroupId), u64>,
}

impl Checker {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            ..Default::default()
        }
    }

    fn fail(&self, what: String) -> Result<(), String> {
        Err(format!("seed {}: {what}", self.seed))
    }

    /// The node restarted: its state machine is empty again.
    pub fn on_restart(&mut self, node: NodeId) {
        self.applied.retain(|(n, _), _| *n != node);
    }

    /// Called with each Ready before it is persisted.
    pub fn on_ready(
        &mut self,
        id: NodeId,
        group: GroupId,
        node: &RawNode<MemStorage>,
        rd: &Ready,
    ) -> Result<(), String> {
        if let Some(snapshot) = &rd.snapshot {
            self.check_committed_at(group, snapshot.meta.index, snapshot.meta.term, None, id)?;
            self.applied.insert((id, group), snapshot.meta.index);
        }
        if let Some(first) = rd.entries.first() {
            let mut prev_term = match &rd.snapshot {
                Some(s) if s.meta.index + 1 == first.index => s.meta.term,
                _ => node
                    .storage()
                    .term(first.index - 1)
                    .map_err(|e| format!("seed {}: {e}", self.seed))?,
            };
            for e in &rd.entries {
                let value = (entry_hash(e), prev_term);
                match self.persisted.get(&(group, e.index, e.term)) {
                    Some(seen) if *seen != value => {
                        return self.fail(format!(
                            "log matching: group {group} node {id} index {} term {} differs from another log",
                            e.index, e.term
                        ))
                    }
                    Some(_) => {}
                    None => {
                        self.persisted.insert((group, e.index, e.term), value);
                    }
                }
                prev_term = e.term;
            }
        }
        for e in &rd.committed_entries {
            let last = self
                .applied
                .get(&(id, group))
                .copied()
                .unwrap_or(node.first_index() - 1);
            if e.index != last + 1 {
                return self.fail(format!(
                    "node {id} group {group} applied {} after {last}",
                    e.index
                ));
            }
            self.check_committed_at(group, e.index, e.term, Some(entry_hash(e)), id)?;
            self.applied.insert((id, group), e.index);
        }
        Ok(())
    }

    fn check_committed_at(
        &mut self,
        group: GroupId,
        index: u64,
        term: u64,
        hash: Option<u64>,
        id: NodeId,
    ) -> Result<(), String> {
        if index == 0 {
            return Ok(());
        }
        let seq = self.committed.entry(group).or_default();
        let slot = (index - 1) as usize;
        if slot < seq.len() {
            let (t, h) = seq[slot];
            if t != term || hash.is_some_and(|h2| h2 != h) {
                return self.fail(format!(
                    "state machine safety: node {id} group {group} applied index {index} term {term}, committed was term {t}"
                ));
            }
        } else if slot == seq.len() {
            match hash {
                Some(h) => seq.push((term, h)),
                None => {
                    return self.fail(format!(
                        "snapshot at {index} beyond the known committed prefix"
                    ))
                }
            }
        } else {
            let expected = seq.len() + 1;
            return self.fail(format!(
                "group {group}: index {index} applied before index {expected}"
            ));
        }
        Ok(())
    }

    /// Called once per tick for every live replica.
    pub fn on_tick(
        &mut self,
        id: NodeId,
        group: GroupId,
        node: &RawNode<MemStorage>,
    ) -> Result<(), String> {
        if !node.is_leader() {
            return Ok(());
        }
        let term = node.term();
        match self.leaders.get(&(group, term)) {
            Some(other) if *other != id => {
                return self.fail(format!(
                    "election safety: group {group} term {term} has leaders {other} and {id}"
                ))
            }
            Some(_) => {}
            None => {
                self.leaders.insert((group, term), id);
                self.check_leader_completeness(id, group, node)?;
            }
        }
        // The first leader seen covering an index committed it in its term or
        // earlier: recording its term is a safe upper bound (and O(new) per tick).
        let commit_terms = self.commit_term.entry(group).or_default();
        while (commit_terms.len() as u64) < node.commit_index() {
            commit_terms.push(term);
        }
        Ok(())
    }

    /// Leader Completeness: a new leader of term T holds every entry
    /// committed in an earlier term.
    fn check_leader_completeness(
        &self,
        id: NodeId,
        group: GroupId,
        node: &RawNode<MemStorage>,
    ) -> Result<(), String> {
        let (Some(seq), Some(commit_terms)) =
            (self.committed.get(&group), self.commit_term.get(&group))
        else {
            return Ok(());
        };
        for (slot, (entry_term, _)) in seq.iter().enumerate() {
            let index = slot as u64 + 1;
            let committed_before = commit_terms.get(slot).is_some_and(|t| *t < node.term());
            if !committed_before || index < node.first_index() {
                continue;
            }
            if node.log_term(index).ok() != Some(*entry_term) {
                return self.fail(format!(
                    "leader completeness: group {group} leader {id} of term {} lacks committed index {index}",
                    node.term()
                ));
            }
        }
        Ok(())
    }

    pub fn committed_len(&self, group: GroupId) -> usize {
        self.committed.get(&group).map(|s| s.len()).unwrap_or(0)
    }
}
