//! Membership change one server at a time (thesis 4.1), with new servers
//! joining as learners that catch up before they are promoted to voters
//! (thesis 4.2.1, "catching up new servers").
//!
//! A change takes effect when its entry commits (as in raft-rs), which is
//! safe for single-server changes because (a) a leader proposes one only after
//! committing an entry of its own term (the fix for the bug Ongaro reported on
//! raft-dev in 2015) and (b) at most one change is uncommitted at a time, so
//! the majorities of any two configurations in use overlap.

use crate::error::{RaftError, Result};
use crate::message::{ConfChange, ConfState, EntryKind, NodeId};
use crate::node::{RawNode, Role};
use crate::progress::Progress;
use crate::storage::Storage;

/// Apply `cc` to a membership; idempotent.
pub fn apply_to_conf(conf: &mut ConfState, cc: ConfChange) {
    match cc {
        ConfChange::AddLearner(id) => {
            if !conf.contains(id) {
                conf.learners.push(id);
            }
        }
        ConfChange::PromoteLearner(id) => {
            if conf.is_learner(id) {
                conf.learners.retain(|l| *l != id);
                conf.voters.push(id);
            }
        }
        ConfChange::RemoveNode(id) => {
            conf.learners.retain(|l| *l != id);
            conf.voters.retain(|v| *v != id);
        }
    }
}

fn reject(reason: String) -> RaftError {
    RaftError::ConfChangeRejected { reason }
}

impl<S: Storage> RawNode<S> {
    /// Propose a membership change; returns the index of its entry.
    pub fn propose_conf_change(&mut self, cc: ConfChange) -> Result<u64> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                id: self.id,
                leader: self.leader(),
            });
        }
        let committed = self.log.committed;
        if self.pending_conf_index > committed {
            return Err(reject(format!(
                "change at {} is not committed yet",
                self.pending_conf_index
            )));
        }
        if !self.log.match_term(committed, self.term) {
            return Err(reject(
                "leader has not committed an entry of its term yet".into(),
            ));
        }
        self.validate_conf_change(cc, committed)?;
        let index = self.propose_entry(EntryKind::ConfChange, cc.encode())?;
        self.pending_conf_index = index;
        Ok(index)
    }

    fn validate_conf_change(&self, cc: ConfChange, committed: u64) -> Result<()> {
        match cc {
            ConfChange::AddLearner(id) if self.conf.contains(id) => {
                Err(reject(format!("{id} is already a member")))
            }
            ConfChange::PromoteLearner(id) => {
                if !self.conf.is_learner(id) {
                    return Err(reject(format!("{id} is not a learner")));
                }
                let matched = self.progress.get(&id).map(|pr| pr.matched).unwrap_or(0);
                if matched < committed {
                    return Err(reject(format!(
                        "learner {id} has {matched}, not caught up to {committed}"
                    )));
                }
                Ok(())
            }
            ConfChange::RemoveNode(id) => {
                if !self.conf.contains(id) {
                    return Err(reject(format!("{id} is not a member")));
                }
                if self.conf.voters == [id] {
                    return Err(reject("cannot remove the last voter".into()));
                }
                Ok(())
            }
            ConfChange::AddLearner(_) => Ok(()),
        }
    }

    /// Called as the commit index moves over `[lo, hi]`.
    pub(crate) fn apply_committed_conf_changes(&mut self, lo: u64, hi: u64) {
        if self.pending_conf_index < lo && self.role == Role::Leader {
            return; // fast path: no configuration entry can be in range
        }
        // Not `entries`: a payload being loaded from disk must not make us skip a change.
        let entries = match self.log.conf_change_entries(lo, hi + 1) {
            Ok(entries) => entries,
            Err(_) => return,
        };
        let mut changed = false;
        for entry in &entries {
            if let Some(cc) = ConfChange::decode(&entry.data) {
                self.apply_conf_change(cc);
                changed = true;
            }
        }
        if changed && self.role == Role::Leader && self.maybe_commit() {
            self.bcast_append();
        }
    }

    fn apply_conf_change(&mut self, cc: ConfChange) {
        apply_to_conf(&mut self.conf, cc);
        if self.role != Role::Leader {
            return;
        }
        match cc {
            ConfChange::AddLearner(id) => {
                let next = self.log.last_index() + 1;
                self.progress
                    .entry(id)
                    .or_insert_with(|| Progress::new(next, self.cfg.max_inflight_appends));
                self.send_append(id, false);
            }
            ConfChange::PromoteLearner(_) => {}
            ConfChange::RemoveNode(id) => self.remove_progress(id),
        }
    }

    fn remove_progress(&mut self, id: NodeId) {
        self.progress.remove(&id);
        if self.transferee == Some(id) {
            self.transferee = None;
        }
        if id == self.id {
            // Removed leaders step down once the change commits (thesis 4.2.2).
            self.become_follower(self.term, None);
        }
    }
}
