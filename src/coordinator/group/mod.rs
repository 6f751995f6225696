//! The classic consumer-group protocol as a pure state machine (no I/O, no clock reads).
//!
//! Inputs are the group APIs (join, sync, heartbeat, leave, commit, ...) and timer ticks, each
//! with the caller's `now_ms`. Outputs are [`Effects`]: replies to deliver and records to
//! persist. A JoinGroup or SyncGroup reply may be held back until the rebalance completes: the
//! caller passes a [`ReplyToken`] with the request and the reply for that token shows up in
//! the `Effects` of whichever later call completes it (another member's join, a tick, ...).
//!
//! States follow Kafka's `GroupMetadata`: Empty -> PreparingRebalance (members (re)join) ->
//! CompletingRebalance (waiting for the leader's assignment) -> Stable, and Dead once deleted.
//! A rebalance bumps the generation; requests from another generation are fenced.
//!
//! Offsets live here too ([`offsets`]); committing is two-phase so that nothing is visible to
//! OffsetFetch before it is durable: `validate_commit` says what may be written, the caller
//! persists it and then calls `apply_offsets`.
//!
//! KIP-848 (the consumer protocol) would be a sibling machine next to this one; nothing in
//! here assumes it is the only kind of group.

mod join;
pub mod membership;
pub mod offsets;
mod set;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::ResponseError;

pub use offsets::{CommitInput, CommittedOffset, OffsetCommitItem};
pub use set::GroupSet;

/// Identifies a parked JoinGroup/SyncGroup request; chosen by the caller.
pub type ReplyToken = u64;

/// Kafka's group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka uses on the wire (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Parses a ListGroups state filter (Kafka compares case-insensitively).
    pub fn parse(name: &str) -> Option<GroupState> {
        [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
            GroupState::Dead,
        ]
        .into_iter()
        .find(|state| state.name().eq_ignore_ascii_case(name))
    }
}

/// Broker settings the protocol depends on (Kafka's `group.*` / `offset.*` configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: i32::MAX as usize,
            offset_metadata_max_bytes: 4096,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// Why a group request failed; [`GroupError::kafka`] is the one mapping to Kafka's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupError {
    CoordinatorNotAvailable,
    /// The coordinator gave up the group's partition (another broker leads it now).
    NotCoordinator,
    UnknownMemberId,
    IllegalGeneration,
    RebalanceInProgress,
    InconsistentGroupProtocol,
    InvalidSessionTimeout,
    MemberIdRequired,
    FencedInstanceId,
    GroupMaxSizeReached,
    NonEmptyGroup,
    GroupIdNotFound,
    InvalidGroupId,
    OffsetMetadataTooLarge,
    GroupSubscribedToTopic,
}

impl GroupError {
    pub fn kafka(self) -> ResponseError {
        use GroupError as G;
        use ResponseError as K;
        match self {
            G::CoordinatorNotAvailable => K::CoordinatorNotAvailable,
            G::NotCoordinator => K::NotCoordinator,
            G::UnknownMemberId => K::UnknownMemberId,
            G::IllegalGeneration => K::IllegalGeneration,
            G::RebalanceInProgress => K::RebalanceInProgress,
            G::InconsistentGroupProtocol => K::InconsistentGroupProtocol,
            G::InvalidSessionTimeout => K::InvalidSessionTimeout,
            G::MemberIdRequired => K::MemberIdRequired,
            G::FencedInstanceId => K::FencedInstanceId,
            G::GroupMaxSizeReached => K::GroupMaxSizeReached,
            G::NonEmptyGroup => K::NonEmptyGroup,
            G::GroupIdNotFound => K::GroupIdNotFound,
            G::InvalidGroupId => K::InvalidGroupId,
            G::OffsetMetadataTooLarge => K::OffsetMetadataTooLarge,
            G::GroupSubscribedToTopic => K::GroupSubscribedToTopic,
        }
    }

    pub fn code(self) -> i16 {
        self.kafka().code()
    }
}

/// The wire code of a result: 0 for success.
pub fn code_of(result: Result<(), GroupError>) -> i16 {
    result.err().map_or(0, GroupError::code)
}

/// A JoinGroup request as the machine sees it.
#[derive(Debug, Clone)]
pub struct JoinInput {
    /// Empty for a new member.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id.
    pub require_known_member_id: bool,
    /// The id to give this member if it is new (the caller makes it unique).
    pub fresh_member_id: String,
}

/// One member in the leader's JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinOutcome {
    pub error: Option<GroupError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only.
    pub members: Vec<JoinedMember>,
    /// KIP-814: a static leader rejoining a stable group must not reassign.
    pub skip_assignment: bool,
}

impl JoinOutcome {
    pub fn error(error: GroupError, member_id: &str) -> Self {
        JoinOutcome {
            error: Some(error),
            generation_id: -1,
            member_id: member_id.to_string(),
            ..JoinOutcome::default()
        }
    }
}

/// A SyncGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncOutcome {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub fn error(error: GroupError) -> Self {
        SyncOutcome {
            error: Some(error),
            ..SyncOutcome::default()
        }
    }
}

/// A reply for a parked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Join(JoinOutcome),
    Sync(SyncOutcome),
}

/// A member as persisted in the group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSnapshot {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// The persisted group metadata (Kafka's GroupMetadataValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberSnapshot>,
}

/// A record for `__consumer_offsets`; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    Offset {
        group_id: String,
        topic: String,
        partition: i32,
        value: Option<CommittedOffset>,
    },
    Metadata {
        group_id: String,
        value: Option<GroupSnapshot>,
    },
}

/// What a call asks the caller to do.
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Effects {
    pub replies: Vec<(ReplyToken, Reply)>,
    pub records: Vec<GroupRecord>,
}

impl Effects {
    fn reply_join(&mut self, token: ReplyToken, outcome: JoinOutcome) {
        self.replies.push((token, Reply::Join(outcome)));
    }

    fn reply_sync(&mut self, token: ReplyToken, outcome: SyncOutcome) {
        self.replies.push((token, Reply::Sync(outcome)));
    }

    pub fn extend(&mut self, other: Effects) {
        self.replies.extend(other.replies);
        self.records.extend(other.records);
    }
}

/// One member of a group.
#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    awaiting_join: Option<ReplyToken>,
    awaiting_sync: Option<ReplyToken>,
    last_heartbeat_ms: i64,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Same protocols in the same order with the same metadata.
    fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }
}

/// One consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    group_id: String,
    state: GroupState,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader_id: Option<String>,
    /// In join order (the first member becomes leader when there is none).
    members: Vec<Member>,
    /// Dynamic members told MEMBER_ID_REQUIRED, with the deadline to come back by.
    pending_members: BTreeMap<String, i64>,
    /// group.instance.id -> member id.
    static_members: BTreeMap<String, String>,
    /// PreparingRebalance: when the join phase ends regardless of who rejoined.
    join_deadline_ms: Option<i64>,
    /// The initial rebalance delay is running: (the rest of the rebalance timeout, a new
    /// member arrived during this delay).
    initial_delay: Option<(i64, bool)>,
    /// Members of the new generation that have not sent SyncGroup yet, and the deadline.
    pending_sync: BTreeSet<String>,
    sync_deadline_ms: Option<i64>,
    /// CompletingRebalance: the leader's assignment is being written. The group turns Stable
    /// and every SyncGroup is answered only once it is durable (Kafka's callback of
    /// `storeGroup`), so no member acts on an assignment a failed write would void.
    assignment_pending: bool,
    /// When the group entered its current state (offset expiry of empty groups).
    state_timestamp_ms: i64,
    /// `group.initial.rebalance.delay.ms`, set by the [`GroupSet`] that owns the group.
    initial_delay_ms: i64,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
}

impl Group {
    pub fn new(group_id: &str, now_ms: i64) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: Vec::new(),
            pending_members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            join_deadline_ms: None,
            initial_delay: None,
            pending_sync: BTreeSet::new(),
            sync_deadline_ms: None,
            assignment_pending: false,
            state_timestamp_ms: now_ms,
            initial_delay_ms: 0,
            offsets: BTreeMap::new(),
        }
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    /// Kafka's `isStaticMemberFenced`: the instance id is known under another member id.
    fn is_fenced(&self, group_instance_id: Option<&str>, member_id: &str) -> bool {
        group_instance_id
            .and_then(|instance| self.static_members.get(instance))
            .is_some_and(|known| known != member_id)
    }

    /// The group metadata record for the current state.
    pub fn snapshot(&self) -> GroupSnapshot {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupSnapshot {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone(),
            state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .iter()
                .map(|m| MemberSnapshot {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    fn metadata_record(&self) -> GroupRecord {
        GroupRecord::Metadata {
            group_id: self.group_id.clone(),
            value: Some(self.snapshot()),
        }
    }

    /// Rebuilds a group from its persisted metadata (broker start). Members get a fresh
    /// session starting `now_ms`, as in Kafka.
    pub fn restore(group_id: &str, snapshot: GroupSnapshot, now_ms: i64) -> Group {
        let mut group = Group::new(group_id, snapshot.state_timestamp_ms);
        group.generation_id = snapshot.generation_id;
        group.protocol_type =
            (!snapshot.protocol_type.is_empty()).then_some(snapshot.protocol_type);
        group.protocol_name = snapshot.protocol_name.clone();
        group.leader_id = snapshot.leader_id;
        let protocol = snapshot.protocol_name.unwrap_or_default();
        for m in snapshot.members {
            if let Some(instance) = &m.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            group.members.push(Member {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                last_heartbeat_ms: now_ms,
            });
        }
        group.state = if group.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        group
    }
}
