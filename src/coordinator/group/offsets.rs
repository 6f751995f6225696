//! Committed offsets of a group: validation of a commit (Kafka's `handleCommitOffsets`),
//! the committed map, expiry (`offsets.retention.minutes`) and OffsetDelete.

use std::collections::BTreeSet;

use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use super::{Group, GroupConfig, GroupError, GroupRecord, GroupState};

/// A committed offset (Kafka's OffsetCommitValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// One partition of an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitItem {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    /// Null metadata is stored as empty, as Kafka does.
    pub metadata: String,
}

/// An OffsetCommit request as the machine sees it.
#[derive(Debug, Clone, Default)]
pub struct CommitInput {
    /// Empty and generation -1 for a group that only stores offsets ("simple" consumers).
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub items: Vec<OffsetCommitItem>,
}

impl Group {
    /// Group-level checks of an OffsetCommit for an existing group.
    pub(super) fn check_commit(&self, input: &CommitInput) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if input.generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
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
        Ok(())
    }

    /// Per partition: what may be written, or the partition's error.
    pub(super) fn check_commit_items(
        config: &GroupConfig,
        input: &CommitInput,
    ) -> Vec<Result<(), GroupError>> {
        input
            .items
            .iter()
            .map(|item| {
                if item.metadata.len() > config.offset_metadata_max_bytes {
                    Err(GroupError::OffsetMetadataTooLarge)
                } else {
                    Ok(())
                }
            })
            .collect()
    }

    /// Installs a durable commit (or a tombstone) in the committed map.
    pub fn apply_offset(&mut self, topic: &str, partition: i32, value: Option<CommittedOffset>) {
        let key = (topic.to_string(), partition);
        match value {
            Some(value) => {
                self.offsets.insert(key, value);
            }
            None => {
                self.offsets.remove(&key);
            }
        }
    }

    /// The committed offset of one partition.
    pub fn committed(&self, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.offsets.get(&(topic.to_string(), partition))
    }

    /// Every committed offset, in (topic, partition) order.
    pub fn all_committed(&self) -> impl Iterator<Item = (&(String, i32), &CommittedOffset)> {
        self.offsets.iter()
    }

    pub fn has_offsets(&self) -> bool {
        !self.offsets.is_empty()
    }

    /// Tombstones for offsets that expired at `now_ms`. Kafka's rule: only while the group
    /// is Empty; the clock starts when the group became empty (or, for groups that never
    /// used group management, at the commit).
    pub(super) fn expired_offsets(&self, retention_ms: i64, now_ms: i64) -> Vec<GroupRecord> {
        if self.state != GroupState::Empty {
            return Vec::new();
        }
        let uses_management = self.protocol_type.is_some();
        self.offsets
            .iter()
            .filter(|(_, committed)| {
                let base_ms = if uses_management {
                    self.state_timestamp_ms.max(committed.commit_timestamp_ms)
                } else {
                    committed.commit_timestamp_ms
                };
                base_ms.saturating_add(retention_ms) <= now_ms
            })
            .map(|((topic, partition), _)| GroupRecord::Offset {
                group_id: self.group_id.clone(),
                topic: topic.clone(),
                partition: *partition,
                value: None,
            })
            .collect()
    }

    /// Topics the members subscribe to (consumer protocol); `None` when some member's
    /// subscription cannot be read, in which case every topic counts as subscribed.
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let mut topics = BTreeSet::new();
        for member in &self.members {
            let metadata = member.metadata_for(&protocol);
            let version = read_version(&metadata)?;
            let mut body = metadata.slice(2..);
            let subscription = ConsumerProtocolSubscription::decode(&mut body, version).ok()?;
            topics.extend(subscription.topics.iter().map(|t| t.to_string()));
        }
        Some(topics)
    }
}

/// The version prefix of a consumer-protocol blob.
fn read_version(metadata: &bytes::Bytes) -> Option<i16> {
    let bytes: [u8; 2] = metadata.get(..2)?.try_into().ok()?;
    Some(i16::from_be_bytes(bytes).clamp(0, 3))
}
