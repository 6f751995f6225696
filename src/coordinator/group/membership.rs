//! SyncGroup, Heartbeat, LeaveGroup and the timers (session, join and sync deadlines).

use bytes::Bytes;

use super::{Effects, Group, GroupError, GroupState, ReplyToken, SyncOutcome};

/// A SyncGroup request as the machine sees it.
#[derive(Debug, Clone, Default)]
pub struct SyncInput {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    /// SyncGroup v5+ (None before): must match the group's.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member id, assignment).
    pub assignments: Vec<(String, Bytes)>,
}

/// One member of a LeaveGroup request (v3+ batches several).
#[derive(Debug, Clone, Default)]
pub struct LeaveInput {
    /// Empty with a `group_instance_id`: the static member, whatever its id.
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

impl Group {
    /// Handles a SyncGroup; the reply for `token` comes in these or later effects.
    pub fn sync(&mut self, input: SyncInput, token: ReplyToken, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        match self.check_sync(&input) {
            Err(error) => effects.reply_sync(token, SyncOutcome::error(error)),
            Ok(()) => self.accept_sync(input, token, now_ms, &mut effects),
        }
        effects
    }

    fn check_sync(&self, input: &SyncInput) -> Result<(), GroupError> {
        match self.state {
            GroupState::Dead => return Err(GroupError::CoordinatorNotAvailable),
            GroupState::Empty => return Err(GroupError::UnknownMemberId),
            _ => {}
        }
        if self.is_fenced(input.group_instance_id.as_deref(), &input.member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if self.member(&input.member_id).is_none() {
            return Err(GroupError::UnknownMemberId);
        }
        if input.generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        let type_mismatch = input
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref());
        let name_mismatch = input
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != self.protocol_name.as_ref());
        if type_mismatch || name_mismatch {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        if self.state == GroupState::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    fn accept_sync(
        &mut self,
        input: SyncInput,
        token: ReplyToken,
        now_ms: i64,
        effects: &mut Effects,
    ) {
        self.pending_sync.remove(&input.member_id);
        self.touch(&input.member_id, now_ms);
        if self.state == GroupState::Stable {
            let outcome = self.sync_outcome(&input.member_id);
            effects.reply_sync(token, outcome);
            return;
        }
        // CompletingRebalance: park until the leader's assignment arrives and is durable.
        if let Some(member) = self.member_mut(&input.member_id) {
            member.awaiting_sync = Some(token);
        }
        let is_leader = self.leader_id.as_deref() == Some(input.member_id.as_str());
        if !is_leader || self.assignment_pending {
            return;
        }
        for member in &mut self.members {
            member.assignment = input
                .assignments
                .iter()
                .find(|(id, _)| *id == member.member_id)
                .map(|(_, assignment)| assignment.clone())
                .unwrap_or_default();
        }
        // Stable only once this record is written: see `metadata_written`.
        self.assignment_pending = true;
        effects.records.push(self.metadata_record());
    }

    /// The metadata record of generation `generation_id` is durable. If it carried the
    /// leader's assignment, the group turns Stable and every member waiting in SyncGroup
    /// gets its part (Kafka completes the rebalance in the append's callback).
    pub fn metadata_written(&mut self, generation_id: i32, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        let completes = self.state == GroupState::CompletingRebalance
            && self.assignment_pending
            && self.generation_id == generation_id;
        if !completes {
            return effects;
        }
        self.assignment_pending = false;
        self.transition(GroupState::Stable, now_ms);
        let ids: Vec<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
        for member_id in ids {
            let outcome = self.sync_outcome(&member_id);
            if let Some(token) = self
                .member_mut(&member_id)
                .and_then(|m| m.awaiting_sync.take())
            {
                effects.reply_sync(token, outcome);
            }
        }
        effects
    }

    fn sync_outcome(&self, member_id: &str) -> SyncOutcome {
        SyncOutcome {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .member(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// The metadata record of generation `generation_id` could not be written: the
    /// assignment is void, as in Kafka's `resetAndPropagateAssignmentError` followed by a
    /// rebalance: members waiting in SyncGroup get COORDINATOR_NOT_AVAILABLE, the others
    /// learn it from their next heartbeat (REBALANCE_IN_PROGRESS).
    pub fn metadata_write_failed(&mut self, generation_id: i32, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        let current = matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance
        );
        if current && self.generation_id == generation_id {
            // Members waiting for this assignment hear of the failure (Kafka's
            // `resetAndPropagateAssignmentError`), then everyone rejoins.
            self.fail_pending_syncs(GroupError::CoordinatorNotAvailable, &mut effects);
            self.prepare_rebalance(now_ms, &mut effects);
        }
        effects
    }

    /// The coordinator no longer owns this group (its partition is led elsewhere now):
    /// every parked JoinGroup and SyncGroup is answered NOT_COORDINATOR at once, so clients
    /// find the new coordinator instead of waiting out their rebalance timeout (Kafka's
    /// `onGroupUnloaded`). The group is Dead here; the new coordinator loads it from the log.
    pub fn unload(&mut self, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        for member in &mut self.members {
            if let Some(token) = member.awaiting_join.take() {
                let outcome =
                    super::JoinOutcome::error(GroupError::NotCoordinator, &member.member_id);
                effects.reply_join(token, outcome);
            }
            if let Some(token) = member.awaiting_sync.take() {
                effects.reply_sync(token, SyncOutcome::error(GroupError::NotCoordinator));
            }
        }
        self.assignment_pending = false;
        self.transition(GroupState::Dead, now_ms);
        effects
    }

    /// A rebalance started while members waited for the leader's assignment: they must
    /// rejoin.
    pub(super) fn fail_pending_syncs(&mut self, error: GroupError, effects: &mut Effects) {
        for member in &mut self.members {
            member.assignment = Bytes::new();
            if let Some(token) = member.awaiting_sync.take() {
                effects.reply_sync(token, SyncOutcome::error(error));
            }
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        match self.state {
            GroupState::Dead => return Err(GroupError::CoordinatorNotAvailable),
            GroupState::Empty => return Err(GroupError::UnknownMemberId),
            _ => {}
        }
        if self.is_fenced(group_instance_id, member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if self.member(member_id).is_none() {
            return Err(GroupError::UnknownMemberId);
        }
        if generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        self.touch(member_id, now_ms);
        if self.state == GroupState::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Handles one member of a LeaveGroup.
    pub fn leave(
        &mut self,
        leave: &LeaveInput,
        now_ms: i64,
        effects: &mut Effects,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let member_id = match &leave.group_instance_id {
            Some(instance) => {
                let known = self
                    .static_members
                    .get(instance)
                    .cloned()
                    .ok_or(GroupError::UnknownMemberId)?;
                if !leave.member_id.is_empty() && leave.member_id != known {
                    return Err(GroupError::FencedInstanceId);
                }
                known
            }
            None => leave.member_id.clone(),
        };
        if self.pending_members.remove(&member_id).is_some() {
            self.maybe_complete_join(now_ms, effects);
            return Ok(());
        }
        if self.member(&member_id).is_none() {
            return Err(GroupError::UnknownMemberId);
        }
        self.remove_member(&member_id, now_ms, effects);
        Ok(())
    }

    /// Removes a member (left or timed out) and rebalances the rest.
    pub(super) fn remove_member(&mut self, member_id: &str, now_ms: i64, effects: &mut Effects) {
        let Some(index) = self.members.iter().position(|m| m.member_id == member_id) else {
            return;
        };
        let member = self.members.remove(index);
        if let Some(instance) = &member.group_instance_id {
            self.static_members.remove(instance);
        }
        if let Some(token) = member.awaiting_join {
            let outcome = super::JoinOutcome::error(GroupError::UnknownMemberId, member_id);
            effects.reply_join(token, outcome);
        }
        if let Some(token) = member.awaiting_sync {
            effects.reply_sync(token, SyncOutcome::error(GroupError::UnknownMemberId));
        }
        self.pending_sync.remove(member_id);
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now_ms, effects)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms, effects),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Runs the timers due at `now_ms`: expired sessions, pending members that never came
    /// back, the end of the join phase, and members that never sent SyncGroup.
    pub fn tick(&mut self, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        let expired_pending: Vec<String> = self
            .pending_members
            .iter()
            .filter(|(_, deadline)| **deadline <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired_pending {
            self.pending_members.remove(&id);
        }
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| {
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && m.last_heartbeat_ms + i64::from(m.session_timeout_ms) <= now_ms
            })
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in expired {
            self.remove_member(&member_id, now_ms, &mut effects);
        }
        if self.state == GroupState::PreparingRebalance {
            if self
                .join_deadline_ms
                .is_some_and(|deadline| deadline <= now_ms)
            {
                self.on_join_deadline(now_ms, &mut effects);
            } else {
                self.maybe_complete_join(now_ms, &mut effects);
            }
        }
        let sync_overdue = self
            .sync_deadline_ms
            .is_some_and(|deadline| deadline <= now_ms);
        if sync_overdue
            && matches!(
                self.state,
                GroupState::CompletingRebalance | GroupState::Stable
            )
        {
            self.sync_deadline_ms = None;
            let missing: Vec<String> = self.pending_sync.iter().cloned().collect();
            self.pending_sync.clear();
            for member_id in missing {
                self.remove_member(&member_id, now_ms, &mut effects);
            }
        }
        effects
    }
}
