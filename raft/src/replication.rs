//! Log replication (thesis 3.5), the commit rule (3.6.2: only entries of the
//! leader's own term are committed by counting replicas), fast conflict
//! backtracking, flow control, heartbeats (full and id-only), and catch-up by
//! snapshot when the follower needs entries below the leader's log start.

use crate::error::RaftError;
use crate::message::{Message, MessageBody, NodeId, Snapshot};
use crate::node::{RawNode, Role};
use crate::progress::ProgressState;
use crate::storage::Storage;

impl<S: Storage> RawNode<S> {
    pub(crate) fn step_leader(&mut self, m: Message) {
        if let Some(pr) = self.progress.get_mut(&m.from) {
            pr.recent_active = true;
        } else {
            return; // not a member (any more)
        }
        match m.body {
            MessageBody::AppendResponse {
                reject,
                index,
                hint_index,
                hint_term,
                commit,
            } => {
                self.handle_append_response(m.from, reject, index, (hint_index, hint_term), commit)
            }
            MessageBody::HeartbeatResponse { commit, need_full } => {
                self.handle_heartbeat_response(m.from, commit, need_full)
            }
            MessageBody::HeartbeatLightResponse => {}
            _ => {}
        }
    }

    pub(crate) fn step_follower(&mut self, m: Message) {
        match m.body {
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                self.election_elapsed = 0;
                self.leader_id = Some(m.from);
                self.handle_append(m.from, prev_index, prev_term, &entries, commit);
            }
            MessageBody::Heartbeat { commit } => {
                self.election_elapsed = 0;
                self.leader_id = Some(m.from);
                self.commit_to(commit.min(self.log.last_index()));
                let commit = self.log.committed;
                self.send(
                    m.from,
                    self.term,
                    MessageBody::HeartbeatResponse {
                        commit,
                        need_full: false,
                    },
                );
            }
            MessageBody::HeartbeatLight => {
                if self.leader_id == Some(m.from) {
                    self.election_elapsed = 0;
                    self.send(m.from, self.term, MessageBody::HeartbeatLightResponse);
                } else {
                    let commit = self.log.committed;
                    self.send(
                        m.from,
                        self.term,
                        MessageBody::HeartbeatResponse {
                            commit,
                            need_full: true,
                        },
                    );
                }
            }
            MessageBody::InstallSnapshot { snapshot } => {
                self.election_elapsed = 0;
                self.leader_id = Some(m.from);
                self.handle_snapshot(m.from, snapshot);
            }
            MessageBody::TimeoutNow => self.handle_timeout_now(),
            _ => {}
        }
    }

    fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: u64,
        prev_term: u64,
        entries: &[crate::Entry],
        commit: u64,
    ) {
        let committed = self.log.committed;
        if prev_index < committed {
            // Everything up to our commit matches the leader by Log Matching.
            self.send_append_ok(from, committed);
            return;
        }
        if !self.log.match_term(prev_index, prev_term) {
            let (hint_index, hint_term) = self.log.find_conflict_by_term(prev_index, prev_term);
            let body = MessageBody::AppendResponse {
                reject: true,
                index: prev_index,
                hint_index,
                hint_term,
                commit: committed,
            };
            self.send(from, self.term, body);
            return;
        }
        let last_new = prev_index + entries.len() as u64;
        let conflict = self.log.find_conflict(entries);
        if conflict != 0 {
            assert!(
                conflict > committed,
                "raft invariant: conflict {conflict} at or below commit {committed}"
            );
            let start = (conflict - prev_index - 1) as usize;
            self.log.append(&entries[start..]);
        }
        self.commit_to(commit.min(last_new));
        self.send_append_ok(from, last_new);
    }

    fn send_append_ok(&mut self, to: NodeId, index: u64) {
        let commit = self.log.committed;
        let body = MessageBody::AppendResponse {
            reject: false,
            index,
            hint_index: 0,
            hint_term: 0,
            commit,
        };
        self.send(to, self.term, body);
    }

    fn handle_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        let index = snapshot.meta.index;
        if index <= self.log.committed {
            let committed = self.log.committed;
            self.send_append_ok(from, committed);
            return;
        }
        if self.log.match_term(index, snapshot.meta.term) {
            // We already have the entry the snapshot ends at: just commit to it.
            self.commit_to(index);
        } else {
            self.conf = snapshot.meta.conf.clone();
            self.log.restore(snapshot);
        }
        self.send_append_ok(from, index);
    }

    fn handle_append_response(
        &mut self,
        from: NodeId,
        reject: bool,
        index: u64,
        hint: (u64, u64),
        commit: u64,
    ) {
        let last_index = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.commit_acked = pr.commit_acked.max(commit);
        if reject {
            pr.light_ok = false;
            // Fast backtracking: skip every entry of a term the follower cannot have.
            let (hint_index, hint_term) = hint;
            let probe_from = if hint_term > 0 {
                self.log.find_conflict_by_term(hint_index, hint_term).0
            } else {
                hint_index
            };
            let pr = self.progress.get_mut(&from).expect("checked above");
            if pr.maybe_decrease_to(index, probe_from) {
                self.send_append(from, false);
            }
            return;
        }
        pr.light_ok = true;
        if !pr.maybe_update(index) {
            return;
        }
        if pr.state == ProgressState::Probe {
            pr.become_replicate();
        }
        if self.maybe_commit() {
            self.bcast_append();
        }
        while self.send_append(from, true) {}
        let caught_up = self
            .progress
            .get(&from)
            .is_some_and(|pr| pr.matched == last_index);
        if self.transferee == Some(from) && caught_up {
            self.send(from, self.term, MessageBody::TimeoutNow);
        }
    }

    fn handle_heartbeat_response(&mut self, from: NodeId, commit: u64, need_full: bool) {
        let last_index = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.commit_acked = pr.commit_acked.max(commit);
        pr.light_ok = !need_full;
        pr.paused = false;
        // A heartbeat answer proves the follower is reachable: if appends were
        // lost, free a slot so the window cannot stay full forever.
        if pr.state == ProgressState::Replicate && pr.is_paused() {
            pr.inflight.pop_front();
        }
        if pr.matched < last_index {
            // Not `skip_empty`: an empty append at `next` makes a follower
            // that lost appends reject, which sends us back to probing.
            self.send_append(from, false);
        }
    }

    /// Send `to` what it is missing. With `skip_empty`, do nothing if there is
    /// nothing new (used to drain a window). Returns whether a message was sent.
    pub(crate) fn send_append(&mut self, to: NodeId, skip_empty: bool) -> bool {
        let last_index = self.log.last_index();
        let max_bytes = self.cfg.max_append_bytes;
        let Some(pr) = self.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() || (skip_empty && pr.next > last_index) {
            return false;
        }
        let next = pr.next;
        let prev_index = next - 1;
        let (prev_term, entries) = match (
            self.log.term(prev_index),
            self.log.entries(next, last_index + 1, max_bytes),
        ) {
            (Ok(term), Ok(entries)) => (term, entries),
            // The storage is reading the payloads back from disk: send nothing and keep
            // the progress. The next heartbeat response (a follower with `matched <
            // last_index` gets full heartbeats) or `resume_appends` retries.
            (Err(RaftError::EntriesLoading { .. }), _)
            | (_, Err(RaftError::EntriesLoading { .. })) => return false,
            _ => return self.send_snapshot(to),
        };
        let commit = self.log.committed;
        let last = entries.last().map(|e| e.index);
        self.progress
            .get_mut(&to)
            .expect("checked above")
            .sent(last);
        self.send(
            to,
            self.term,
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            },
        );
        true
    }

    /// Retry appends to every follower that is behind: for the caller to call once the
    /// storage has loaded payloads it answered [`RaftError::EntriesLoading`] for, so the
    /// followers need not wait for the next heartbeat round. A no-op unless leader.
    pub fn resume_appends(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let peers = self.peer_ids();
        for id in peers {
            while self.send_append(id, true) {}
        }
    }

    /// The follower needs entries below our log start: move its log start.
    fn send_snapshot(&mut self, to: NodeId) -> bool {
        let snapshot = self.log.storage.snapshot();
        let pr = self.progress.get_mut(&to).expect("caller checked");
        pr.become_probe();
        pr.next = snapshot.meta.index + 1;
        pr.paused = true;
        self.send(to, self.term, MessageBody::InstallSnapshot { snapshot });
        true
    }

    /// Every member this leader replicates to (itself excluded).
    fn peer_ids(&self) -> Vec<NodeId> {
        self.progress
            .keys()
            .copied()
            .filter(|id| *id != self.id)
            .collect()
    }

    pub(crate) fn bcast_append(&mut self) {
        let peers = self.peer_ids();
        for id in peers {
            self.send_append(id, false);
        }
    }

    /// Idle followers that have everything get the id-only heartbeat.
    pub(crate) fn bcast_heartbeat(&mut self) {
        let last_index = self.log.last_index();
        let committed = self.log.committed;
        let mut out = Vec::new();
        for (id, pr) in self.progress.iter() {
            if *id == self.id {
                continue;
            }
            let commit = committed.min(pr.matched);
            let light = pr.light_ok && pr.matched == last_index && pr.commit_acked >= commit;
            let body = if light {
                MessageBody::HeartbeatLight
            } else {
                MessageBody::Heartbeat { commit }
            };
            out.push((*id, body));
        }
        for (id, body) in out {
            self.send(id, self.term, body);
        }
    }

    /// The commit rule: the highest index on a majority of voters, if it is
    /// from the current term. Returns whether the commit index moved.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let mut matched: Vec<u64> = self
            .progress
            .iter()
            .filter(|(id, _)| self.conf.is_voter(**id))
            .map(|(_, pr)| pr.matched)
            .collect();
        if matched.is_empty() {
            return false;
        }
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matched[self.conf.quorum() - 1];
        if candidate > self.log.committed && self.log.match_term(candidate, self.term) {
            self.commit_to(candidate)
        } else {
            false
        }
    }

    /// Move the commit index and apply configuration changes it commits.
    pub(crate) fn commit_to(&mut self, index: u64) -> bool {
        let old = self.log.committed;
        if !self.log.commit_to(index) {
            return false;
        }
        self.apply_committed_conf_changes(old + 1, index);
        true
    }
}
