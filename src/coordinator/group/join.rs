//! JoinGroup and the join phase of a rebalance (Kafka's `GroupCoordinator.handleJoinGroup`,
//! `prepareRebalance`, `onCompleteJoin`).

use bytes::Bytes;

use super::{
    Effects, Group, GroupConfig, GroupError, GroupState, JoinInput, JoinOutcome, JoinedMember,
    Member, ReplyToken, SyncOutcome,
};

impl Group {
    /// Handles a JoinGroup; the reply for `token` comes in these or later effects.
    pub fn join(
        &mut self,
        config: &GroupConfig,
        input: JoinInput,
        token: ReplyToken,
        now_ms: i64,
    ) -> Effects {
        let mut effects = Effects::default();
        if let Err(error) = self.check_join(config, &input) {
            effects.reply_join(token, JoinOutcome::error(error, &input.member_id));
            return effects;
        }
        if input.member_id.is_empty() {
            self.join_unknown_member(input, token, now_ms, &mut effects);
        } else {
            self.join_known_member(input, token, now_ms, &mut effects);
        }
        effects
    }

    fn check_join(&self, config: &GroupConfig, input: &JoinInput) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let timeout = input.session_timeout_ms;
        if timeout < config.min_session_timeout_ms || timeout > config.max_session_timeout_ms {
            return Err(GroupError::InvalidSessionTimeout);
        }
        if !self.supports_protocols(&input.protocol_type, &input.protocols) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let is_new = input.member_id.is_empty()
            || (self.member(&input.member_id).is_none()
                && !self.pending_members.contains_key(&input.member_id));
        let is_known_static = input
            .group_instance_id
            .as_ref()
            .is_some_and(|i| self.static_members.contains_key(i));
        if is_new && !is_known_static && self.members.len() >= config.max_size {
            return Err(GroupError::GroupMaxSizeReached);
        }
        Ok(())
    }

    /// Kafka's `supportsProtocols`: an empty group takes any non-empty protocol list; a
    /// non-empty one needs the same protocol type and a protocol every member supports.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.candidate_protocols().contains(name))
    }

    /// Protocols every member supports.
    fn candidate_protocols(&self) -> Vec<String> {
        let Some(first) = self.members.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .filter(|name| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            })
            .collect()
    }

    /// Every member votes for its most preferred candidate; most votes wins (ties: the
    /// candidate listed first by the first member).
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let votes = |name: &String| {
            self.members
                .iter()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .find(|(n, _)| candidates.contains(n))
                        .is_some_and(|(n, _)| n == name)
                })
                .count()
        };
        let mut best: Option<(usize, &String)> = None;
        for candidate in &candidates {
            let count = votes(candidate);
            if best.is_none_or(|(most, _)| count > most) {
                best = Some((count, candidate));
            }
        }
        best.map(|(_, name)| name.clone())
    }

    fn join_unknown_member(
        &mut self,
        input: JoinInput,
        token: ReplyToken,
        now_ms: i64,
        effects: &mut Effects,
    ) {
        let member_id = input.fresh_member_id.clone();
        if let Some(instance) = input.group_instance_id.clone() {
            if let Some(old_member_id) = self.static_members.get(&instance).cloned() {
                self.rejoin_static_member(input, &old_member_id, token, now_ms, effects);
                return;
            }
            self.static_members.insert(instance, member_id.clone());
            self.add_member_and_rebalance(input, member_id, token, now_ms, effects);
        } else if input.require_known_member_id {
            let deadline = now_ms + i64::from(input.session_timeout_ms);
            self.pending_members.insert(member_id.clone(), deadline);
            effects.reply_join(
                token,
                JoinOutcome::error(GroupError::MemberIdRequired, &member_id),
            );
        } else {
            self.add_member_and_rebalance(input, member_id, token, now_ms, effects);
        }
    }

    fn join_known_member(
        &mut self,
        input: JoinInput,
        token: ReplyToken,
        now_ms: i64,
        effects: &mut Effects,
    ) {
        let member_id = input.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            self.add_member_and_rebalance(input, member_id, token, now_ms, effects);
            return;
        }
        if self.is_fenced(input.group_instance_id.as_deref(), &member_id) {
            effects.reply_join(
                token,
                JoinOutcome::error(GroupError::FencedInstanceId, &member_id),
            );
            return;
        }
        let Some(member) = self.member(&member_id) else {
            effects.reply_join(
                token,
                JoinOutcome::error(GroupError::UnknownMemberId, &member_id),
            );
            return;
        };
        let unchanged = member.same_protocols(&input.protocols);
        let is_leader = self.leader_id.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member(&input, token, now_ms);
                self.maybe_complete_join(now_ms, effects);
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if unchanged && !(self.state == GroupState::Stable && is_leader) =>
            {
                // The member lost our JoinGroup response: send the current generation again.
                let outcome = self.join_outcome(&member_id, false);
                self.touch(&member_id, now_ms);
                effects.reply_join(token, outcome);
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(&input, token, now_ms);
                self.prepare_rebalance(now_ms, effects);
            }
            GroupState::Empty | GroupState::Dead => {
                effects.reply_join(
                    token,
                    JoinOutcome::error(GroupError::UnknownMemberId, &member_id),
                );
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        input: JoinInput,
        member_id: String,
        token: ReplyToken,
        now_ms: i64,
        effects: &mut Effects,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(input.protocol_type.clone());
        }
        self.members.push(Member {
            member_id: member_id.clone(),
            group_instance_id: input.group_instance_id,
            client_id: input.client_id,
            client_host: input.client_host,
            session_timeout_ms: input.session_timeout_ms,
            rebalance_timeout_ms: input.rebalance_timeout_ms,
            protocol_type: input.protocol_type,
            protocols: input.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(token),
            awaiting_sync: None,
            last_heartbeat_ms: now_ms,
        });
        if let Some((_, new_member_added)) = &mut self.initial_delay {
            *new_member_added = true;
        }
        if self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(now_ms, effects);
        } else {
            self.prepare_rebalance(now_ms, effects);
        }
    }

    fn update_member(&mut self, input: &JoinInput, token: ReplyToken, now_ms: i64) {
        if let Some(member) = self.member_mut(&input.member_id) {
            member.protocols = input.protocols.clone();
            member.session_timeout_ms = input.session_timeout_ms;
            member.rebalance_timeout_ms = input.rebalance_timeout_ms;
            member.client_id = input.client_id.clone();
            member.client_host = input.client_host.clone();
            member.awaiting_join = Some(token);
            member.last_heartbeat_ms = now_ms;
        }
    }

    /// A static member came back with an unknown member id: it takes over its old
    /// identity under a new member id (the old one is fenced). If the group is stable and
    /// its protocol does not change, nobody else rebalances.
    fn rejoin_static_member(
        &mut self,
        input: JoinInput,
        old_member_id: &str,
        token: ReplyToken,
        now_ms: i64,
        effects: &mut Effects,
    ) {
        let new_member_id = input.fresh_member_id.clone();
        let Some(member) = self.member_mut(old_member_id) else {
            // static_members and members disagree: a bug, but never leave the client hanging.
            effects.reply_join(token, JoinOutcome::error(GroupError::UnknownMemberId, ""));
            return;
        };
        if let Some(old) = member.awaiting_join.take() {
            effects.reply_join(
                old,
                JoinOutcome::error(GroupError::FencedInstanceId, old_member_id),
            );
        }
        if let Some(old) = member.awaiting_sync.take() {
            effects.reply_sync(old, SyncOutcome::error(GroupError::FencedInstanceId));
        }
        member.member_id = new_member_id.clone();
        if let Some(instance) = &input.group_instance_id {
            self.static_members
                .insert(instance.clone(), new_member_id.clone());
        }
        if self.leader_id.as_deref() == Some(old_member_id) {
            self.leader_id = Some(new_member_id.clone());
        }
        if self.pending_sync.remove(old_member_id) {
            self.pending_sync.insert(new_member_id.clone());
        }
        let mut input = input;
        input.member_id = new_member_id.clone();
        match self.state {
            GroupState::Stable if self.select_protocol_with(&input) == self.protocol_name => {
                self.update_member(&input, token, now_ms);
                if let Some(member) = self.member_mut(&new_member_id) {
                    member.awaiting_join = None;
                }
                let is_leader = self.leader_id.as_deref() == Some(new_member_id.as_str());
                let outcome = self.join_outcome(&new_member_id, is_leader);
                effects.reply_join(token, outcome);
                effects.records.push(self.metadata_record());
            }
            GroupState::PreparingRebalance => {
                self.update_member(&input, token, now_ms);
                self.maybe_complete_join(now_ms, effects);
            }
            _ => {
                self.update_member(&input, token, now_ms);
                self.prepare_rebalance(now_ms, effects);
            }
        }
    }

    /// The protocol the group would select if `input`'s member had its new protocols.
    fn select_protocol_with(&self, input: &JoinInput) -> Option<String> {
        let mut next = self.clone();
        if let Some(member) = next.member_mut(&input.member_id) {
            member.protocols = input.protocols.clone();
        }
        next.select_protocol()
    }

    /// The JoinGroup response of the current generation for `member_id`.
    fn join_outcome(&self, member_id: &str, skip_assignment: bool) -> JoinOutcome {
        let is_leader = self.leader_id.as_deref() == Some(member_id);
        let protocol = self.protocol_name.clone().unwrap_or_default();
        JoinOutcome {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                self.members
                    .iter()
                    .map(|m| JoinedMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        metadata: m.metadata_for(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment,
        }
    }

    pub(super) fn touch(&mut self, member_id: &str, now_ms: i64) {
        if let Some(member) = self.member_mut(member_id) {
            member.last_heartbeat_ms = now_ms;
        }
    }

    /// Starts a rebalance: members must rejoin within the rebalance timeout. From Empty the
    /// initial rebalance delay applies instead (more members are likely to arrive).
    pub(super) fn prepare_rebalance(&mut self, now_ms: i64, effects: &mut Effects) {
        if self.state == GroupState::CompletingRebalance {
            self.fail_pending_syncs(GroupError::RebalanceInProgress, effects);
        }
        let rebalance_timeout_ms = self.max_rebalance_timeout_ms();
        if self.state == GroupState::Empty {
            // Kafka's InitialDelayedJoin: wait a little for the rest of a starting group.
            let delay_ms = self.initial_delay_ms.min(rebalance_timeout_ms).max(0);
            self.initial_delay = (delay_ms > 0).then_some((rebalance_timeout_ms - delay_ms, false));
            self.join_deadline_ms = Some(now_ms + delay_ms);
        } else {
            self.initial_delay = None;
            self.join_deadline_ms = Some(now_ms + rebalance_timeout_ms);
        }
        self.pending_sync.clear();
        self.sync_deadline_ms = None;
        self.assignment_pending = false;
        self.transition(GroupState::PreparingRebalance, now_ms);
        if self.initial_delay.is_none() {
            self.maybe_complete_join(now_ms, effects);
        }
    }

    fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Completes the join phase once every member (and no pending one) has rejoined.
    pub(super) fn maybe_complete_join(&mut self, now_ms: i64, effects: &mut Effects) {
        let all_joined =
            self.members.iter().all(Member::is_awaiting_join) && self.pending_members.is_empty();
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && all_joined
        {
            self.complete_join(now_ms, effects);
        }
    }

    /// The join deadline passed (called from `tick`).
    pub(super) fn on_join_deadline(&mut self, now_ms: i64, effects: &mut Effects) {
        if let Some((remaining_ms, new_member_added)) = self.initial_delay {
            if new_member_added && remaining_ms > 0 {
                let delay_ms = self.initial_delay_ms.min(remaining_ms);
                self.initial_delay = Some((remaining_ms - delay_ms, false));
                self.join_deadline_ms = Some(now_ms + delay_ms);
                return;
            }
            self.initial_delay = None;
        }
        self.complete_join(now_ms, effects);
    }

    /// Ends the join phase: members that did not rejoin leave, the generation advances, the
    /// leader gets everyone's metadata and all joiners get their response.
    fn complete_join(&mut self, now_ms: i64, effects: &mut Effects) {
        let (joined, gone): (Vec<Member>, Vec<Member>) = std::mem::take(&mut self.members)
            .into_iter()
            .partition(Member::is_awaiting_join);
        self.members = joined;
        for member in gone {
            if let Some(instance) = &member.group_instance_id {
                self.static_members.remove(instance);
            }
        }
        self.join_deadline_ms = None;
        self.initial_delay = None;
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.transition(GroupState::Empty, now_ms);
            effects.records.push(self.metadata_record());
            return;
        }
        self.protocol_name = self.select_protocol();
        let leader_still_here = self
            .leader_id
            .as_deref()
            .is_some_and(|leader| self.member(leader).is_some());
        if !leader_still_here {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        self.transition(GroupState::CompletingRebalance, now_ms);
        self.pending_sync = self.members.iter().map(|m| m.member_id.clone()).collect();
        self.sync_deadline_ms = Some(now_ms + self.max_rebalance_timeout_ms());
        let ids: Vec<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
        for member_id in ids {
            let outcome = self.join_outcome(&member_id, false);
            if let Some(member) = self.member_mut(&member_id) {
                member.last_heartbeat_ms = now_ms;
                if let Some(token) = member.awaiting_join.take() {
                    effects.reply_join(token, outcome);
                }
            }
        }
    }
}
