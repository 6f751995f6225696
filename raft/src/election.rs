//! Leader election (thesis chapter 3.4), pre-vote (9.6), check-quorum and the
//! leader lease against disruptive servers (4.2.3, 9.6), leadership transfer
//! (3.10), and the term rules every incoming message passes through first.

use crate::error::Result;
use crate::message::{EntryKind, Message, MessageBody, NodeId};
use crate::node::{RawNode, Role};
use crate::progress::Progress;
use crate::storage::Storage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Campaign {
    PreVote,
    Election,
    Transfer,
}

impl<S: Storage> RawNode<S> {
    /// Feed one message from a peer.
    pub fn step(&mut self, m: Message) -> Result<()> {
        if m.to != self.id || m.from == self.id {
            return Ok(());
        }
        if m.term > self.term {
            if !self.accept_higher_term(&m) {
                return Ok(());
            }
        } else if m.term < self.term {
            self.answer_stale_term(&m);
            return Ok(());
        }
        if let MessageBody::Vote { .. } = m.body {
            self.handle_vote_request(&m);
            return Ok(());
        }
        match self.role {
            Role::Leader => self.step_leader(m),
            Role::Candidate | Role::PreCandidate => self.step_candidate(m),
            Role::Follower => self.step_follower(m),
        }
        Ok(())
    }

    /// Returns false if the message must be dropped.
    fn accept_higher_term(&mut self, m: &Message) -> bool {
        match m.body {
            MessageBody::Vote {
                pre_vote, transfer, ..
            } => {
                // Leader lease (thesis 4.2.3): while we hear from a leader, a
                // server that was removed or partitioned cannot disrupt us.
                let in_lease = self.cfg.check_quorum
                    && self.leader_id.is_some()
                    && self.election_elapsed < self.cfg.election_ticks;
                if in_lease && !transfer {
                    return false;
                }
                if !pre_vote {
                    self.become_follower(m.term, None);
                }
                true
            }
            MessageBody::VoteResponse {
                pre_vote: true,
                reject: false,
            } => true,
            ref body => {
                let leader = body.is_from_leader().then_some(m.from);
                self.become_follower(m.term, leader);
                true
            }
        }
    }

    fn answer_stale_term(&mut self, m: &Message) {
        match m.body {
            // A stale leader (e.g. just back from a partition) learns our term
            // and steps down; without this, pre-vote could keep it leader forever.
            MessageBody::Append { .. } | MessageBody::Heartbeat { .. } => {
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
            MessageBody::Vote { pre_vote: true, .. } => {
                self.send(
                    m.from,
                    self.term,
                    MessageBody::VoteResponse {
                        pre_vote: true,
                        reject: true,
                    },
                );
            }
            _ => {}
        }
    }

    fn handle_vote_request(&mut self, m: &Message) {
        let MessageBody::Vote {
            pre_vote,
            last_index,
            last_term,
            ..
        } = m.body
        else {
            return;
        };
        let can_vote = self.vote == Some(m.from)
            || (self.vote.is_none() && self.leader_id.is_none())
            || (pre_vote && m.term > self.term);
        if can_vote && self.log.is_up_to_date(last_index, last_term) {
            // A granted pre-vote answers in the term the candidate will use.
            self.send(
                m.from,
                m.term,
                MessageBody::VoteResponse {
                    pre_vote,
                    reject: false,
                },
            );
            if !pre_vote {
                self.vote = Some(m.from);
                self.election_elapsed = 0;
            }
        } else {
            self.send(
                m.from,
                self.term,
                MessageBody::VoteResponse {
                    pre_vote,
                    reject: true,
                },
            );
        }
    }

    fn step_candidate(&mut self, m: Message) {
        match m.body {
            MessageBody::VoteResponse { pre_vote, reject } => {
                let expected_pre = self.role == Role::PreCandidate;
                if pre_vote == expected_pre {
                    self.poll(m.from, !reject);
                }
            }
            ref body if body.is_from_leader() => {
                self.become_follower(m.term, Some(m.from));
                self.step_follower(m);
            }
            _ => {}
        }
    }

    fn poll(&mut self, from: NodeId, granted: bool) {
        if !self.conf.is_voter(from) {
            return;
        }
        self.votes.insert(from, granted);
        let quorum = self.conf.quorum();
        let yes = self.votes.values().filter(|v| **v).count();
        let no = self.votes.len() - yes;
        if yes >= quorum {
            if self.role == Role::PreCandidate {
                self.campaign(Campaign::Election);
            } else {
                self.become_leader();
            }
        } else if no >= quorum {
            self.become_follower(self.term, None);
        }
    }

    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.leader_id.is_some() {
            self.eager_ticks = 0;
        }
        if self.eager_ticks > 0 {
            self.eager_ticks -= 1;
            // A candidate's own election is under way: let it finish.
            if self.role != Role::Candidate {
                self.hup();
                return;
            }
        }
        if self.election_elapsed >= self.randomized_election_ticks {
            self.election_elapsed = 0;
            self.hup();
        }
    }

    pub(crate) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_ticks {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_recently_active() {
                self.become_follower(self.term, None);
                return;
            }
            // A transfer that did not finish within an election timeout is abandoned.
            self.transferee = None;
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat();
        }
    }

    /// Check-quorum (thesis 6.2): a leader that has not heard from a majority
    /// within an election timeout steps down. Resets the activity marks.
    fn quorum_recently_active(&mut self) -> bool {
        let mut active = 0;
        for (id, pr) in self.progress.iter_mut() {
            if *id == self.id || (pr.recent_active && self.conf.is_voter(*id)) {
                active += usize::from(self.conf.is_voter(*id));
            }
            pr.recent_active = false;
        }
        active >= self.conf.quorum()
    }

    /// Campaign at once rather than after an election timeout, and again on every tick for
    /// one election timeout while no leader is known (peers that do not host the group yet
    /// drop the first requests). For a new group's preferred replica: it becomes the first
    /// leader, as Kafka's controller names it at creation, instead of whichever replica's
    /// timer fires first. Pre-vote keeps it harmless where a leader exists after all.
    pub fn campaign_now(&mut self) {
        if self.role == Role::Leader || self.leader_id.is_some() {
            return;
        }
        self.eager_ticks = self.cfg.election_ticks;
        self.hup();
    }

    /// Pushes this follower's next election timeout `ticks` further out (until its timers
    /// are reset, by a newer term or a leader heard). For a new group's other replicas: the
    /// preferred replica gets the first election to itself.
    pub fn delay_election(&mut self, ticks: u64) {
        if self.role == Role::Follower {
            self.randomized_election_ticks += ticks;
        }
    }

    /// Election timeout elapsed: start a (pre-)campaign.
    pub fn hup(&mut self) {
        if self.role == Role::Leader || !self.conf.is_voter(self.id) {
            return;
        }
        self.campaign(if self.cfg.pre_vote {
            Campaign::PreVote
        } else {
            Campaign::Election
        });
    }

    fn campaign(&mut self, kind: Campaign) {
        let msg_term = if kind == Campaign::PreVote {
            self.become_pre_candidate();
            self.term + 1
        } else {
            self.become_candidate();
            self.term
        };
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        self.poll(self.id, true);
        if self.role == Role::Leader || (kind == Campaign::PreVote && self.role == Role::Candidate)
        {
            return; // a single-voter group wins at once
        }
        let pre_vote = kind == Campaign::PreVote;
        let transfer = kind == Campaign::Transfer;
        let me = self.id;
        let voters: Vec<NodeId> = self
            .conf
            .members()
            .into_iter()
            .filter(|id| self.conf.is_voter(*id) && *id != me)
            .collect();
        for id in voters {
            self.send(
                id,
                msg_term,
                MessageBody::Vote {
                    pre_vote,
                    transfer,
                    last_index,
                    last_term,
                },
            );
        }
    }

    pub(crate) fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        if term != self.term {
            assert!(
                term > self.term,
                "raft invariant: term went back from {} to {term}",
                self.term
            );
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.leader_id = leader;
        if leader.is_some() {
            self.eager_ticks = 0;
        }
        self.transferee = None;
        self.votes.clear();
        self.reset_timers();
    }

    fn become_pre_candidate(&mut self) {
        assert!(
            self.role != Role::Leader,
            "raft invariant: leader cannot pre-campaign"
        );
        self.role = Role::PreCandidate;
        self.leader_id = None;
        self.votes.clear();
        self.reset_timers();
    }

    fn become_candidate(&mut self) {
        assert!(
            self.role != Role::Leader,
            "raft invariant: leader cannot campaign"
        );
        self.term += 1;
        self.vote = Some(self.id);
        self.role = Role::Candidate;
        self.leader_id = None;
        self.votes.clear();
        self.reset_timers();
    }

    fn become_leader(&mut self) {
        assert!(
            self.role == Role::Candidate,
            "raft invariant: only a candidate becomes leader"
        );
        self.role = Role::Leader;
        self.leader_id = Some(self.id);
        self.transferee = None;
        self.eager_ticks = 0;
        self.reset_timers();
        let next = self.log.last_index() + 1;
        self.progress.clear();
        for id in self.conf.members() {
            let mut pr = Progress::new(next, self.cfg.max_inflight_appends);
            if id == self.id {
                pr.matched = self.log.persisted;
                pr.become_replicate();
                pr.next = next;
            }
            self.progress.insert(id, pr);
        }
        // Any configuration entry in the log may be uncommitted: be conservative.
        self.pending_conf_index = self.log.last_index();
        // The no-op lets the leader commit entries of earlier terms (thesis 3.6.2).
        self.log.append(&[crate::message::Entry {
            term: self.term,
            index: next,
            kind: EntryKind::Normal,
            data: Default::default(),
        }]);
        self.bcast_append();
    }

    /// Leadership transfer (thesis 3.10): bring `to` up to date, then tell it
    /// to campaign at once. Proposals pause until it ends or times out.
    pub fn transfer_leadership(&mut self, to: NodeId) {
        if self.role != Role::Leader || to == self.id || !self.conf.is_voter(to) {
            return;
        }
        self.transferee = Some(to);
        self.election_elapsed = 0;
        let up_to_date = self
            .progress
            .get(&to)
            .is_some_and(|pr| pr.matched == self.log.last_index());
        if up_to_date {
            self.send(to, self.term, MessageBody::TimeoutNow);
        } else {
            self.send_append(to, false);
        }
    }

    pub(crate) fn handle_timeout_now(&mut self) {
        if self.conf.is_voter(self.id) {
            self.campaign(Campaign::Transfer);
        }
    }
}
