//! All groups of one coordinator (one shard): the entry points by group id, including the
//! cases where the group does not exist yet, and loading from `__consumer_offsets`.

use std::collections::BTreeMap;

use super::membership::{LeaveInput, SyncInput};
use super::{
    CommitInput, CommittedOffset, Effects, Group, GroupConfig, GroupError, GroupRecord,
    GroupSnapshot, GroupState, JoinInput, JoinOutcome, ReplyToken, SyncOutcome,
};

/// The groups one coordinator owns.
#[derive(Debug, Default)]
pub struct GroupSet {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
}

impl GroupSet {
    pub fn new(config: GroupConfig) -> GroupSet {
        GroupSet {
            config,
            groups: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    pub fn get(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    fn get_or_create(&mut self, group_id: &str, now_ms: i64) -> &mut Group {
        let delay_ms = i64::from(self.config.initial_rebalance_delay_ms);
        self.groups.entry(group_id.to_string()).or_insert_with(|| {
            let mut group = Group::new(group_id, now_ms);
            group.initial_delay_ms = delay_ms;
            group
        })
    }

    /// JoinGroup: creates the group on first join.
    pub fn join(
        &mut self,
        group_id: &str,
        input: JoinInput,
        token: ReplyToken,
        now_ms: i64,
    ) -> Effects {
        if group_id.is_empty() {
            let mut effects = Effects::default();
            effects.reply_join(
                token,
                JoinOutcome::error(GroupError::InvalidGroupId, &input.member_id),
            );
            return effects;
        }
        let config = self.config.clone();
        let group = self.get_or_create(group_id, now_ms);
        group.join(&config, input, token, now_ms)
    }

    /// SyncGroup: an unknown group is UNKNOWN_MEMBER_ID, as in Kafka.
    pub fn sync(
        &mut self,
        group_id: &str,
        input: SyncInput,
        token: ReplyToken,
        now_ms: i64,
    ) -> Effects {
        match self.groups.get_mut(group_id) {
            Some(group) => group.sync(input, token, now_ms),
            None => {
                let mut effects = Effects::default();
                effects.reply_sync(token, SyncOutcome::error(GroupError::UnknownMemberId));
                effects
            }
        }
    }

    /// See [`Group::metadata_write_failed`]; a group that is gone needs nothing.
    pub fn metadata_write_failed(
        &mut self,
        group_id: &str,
        generation_id: i32,
        now_ms: i64,
    ) -> Effects {
        match self.groups.get_mut(group_id) {
            Some(group) => group.metadata_write_failed(generation_id, now_ms),
            None => Effects::default(),
        }
    }

    /// See [`Group::metadata_written`]; a group that is gone needs nothing.
    pub fn metadata_written(&mut self, group_id: &str, generation_id: i32, now_ms: i64) -> Effects {
        match self.groups.get_mut(group_id) {
            Some(group) => group.metadata_written(generation_id, now_ms),
            None => Effects::default(),
        }
    }

    /// Every group's parked requests answered NOT_COORDINATOR ([`Group::unload`]): the
    /// coordinator lost this partition and drops the set.
    pub fn unload(&mut self, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        for group in self.groups.values_mut() {
            effects.extend(group.unload(now_ms));
        }
        effects
    }

    pub fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        group.heartbeat(member_id, group_instance_id, generation_id, now_ms)
    }

    /// LeaveGroup: one result per member.
    pub fn leave(
        &mut self,
        group_id: &str,
        members: &[LeaveInput],
        now_ms: i64,
    ) -> (Vec<Result<(), GroupError>>, Effects) {
        let mut effects = Effects::default();
        let Some(group) = self.groups.get_mut(group_id) else {
            return (
                vec![Err(GroupError::UnknownMemberId); members.len()],
                effects,
            );
        };
        let results = members
            .iter()
            .map(|member| group.leave(member, now_ms, &mut effects))
            .collect();
        (results, effects)
    }

    /// Checks an OffsetCommit. Returns a top-level error, or per partition the record to
    /// write or the partition's error. Nothing changes until [`GroupSet::apply`].
    pub fn validate_commit(
        &mut self,
        group_id: &str,
        input: &CommitInput,
        now_ms: i64,
    ) -> Vec<Result<GroupRecord, GroupError>> {
        let group_check = match self.groups.get(group_id) {
            _ if group_id.is_empty() => Err(GroupError::InvalidGroupId),
            Some(group) => group.check_commit(input),
            None if input.generation_id < 0 => Ok(()),
            None => Err(GroupError::IllegalGeneration),
        };
        if let Err(error) = group_check {
            return vec![Err(error); input.items.len()];
        }
        if !self.groups.contains_key(group_id) {
            // A group that only stores offsets: it exists from its first commit.
            self.get_or_create(group_id, now_ms);
        }
        let item_checks = Group::check_commit_items(&self.config, input);
        input
            .items
            .iter()
            .zip(item_checks)
            .map(|(item, check)| {
                check.map(|()| GroupRecord::Offset {
                    group_id: group_id.to_string(),
                    topic: item.topic.clone(),
                    partition: item.partition,
                    value: Some(CommittedOffset {
                        offset: item.offset,
                        leader_epoch: item.leader_epoch,
                        metadata: item.metadata.clone(),
                        commit_timestamp_ms: now_ms,
                    }),
                })
            })
            .collect()
    }

    /// Installs durable records (after a commit, or while loading the log).
    pub fn apply(&mut self, record: GroupRecord, now_ms: i64) {
        match record {
            GroupRecord::Offset {
                group_id,
                topic,
                partition,
                value,
            } => {
                if value.is_none() && !self.groups.contains_key(&group_id) {
                    return;
                }
                self.get_or_create(&group_id, now_ms)
                    .apply_offset(&topic, partition, value);
            }
            GroupRecord::Metadata { group_id, value } => {
                self.apply_metadata(group_id, value, now_ms)
            }
        }
    }

    fn apply_metadata(&mut self, group_id: String, value: Option<GroupSnapshot>, now_ms: i64) {
        match value {
            None => {
                // Deleted: offsets written after the tombstone may still follow in the log.
                if let Some(group) = self.groups.get_mut(&group_id) {
                    if group.offsets.is_empty() {
                        self.groups.remove(&group_id);
                    } else {
                        let offsets = std::mem::take(&mut group.offsets);
                        let mut fresh = Group::new(&group_id, now_ms);
                        fresh.initial_delay_ms = i64::from(self.config.initial_rebalance_delay_ms);
                        fresh.offsets = offsets;
                        *group = fresh;
                    }
                }
            }
            Some(snapshot) => {
                let mut restored = Group::restore(&group_id, snapshot, now_ms);
                restored.initial_delay_ms = i64::from(self.config.initial_rebalance_delay_ms);
                if let Some(old) = self.groups.remove(&group_id) {
                    restored.offsets = old.offsets;
                }
                self.groups.insert(group_id, restored);
            }
        }
    }

    /// DeleteGroups: only empty groups; returns the tombstones to write.
    pub fn delete(&mut self, group_id: &str) -> Result<Vec<GroupRecord>, GroupError> {
        let group = self
            .groups
            .get(group_id)
            .ok_or(GroupError::GroupIdNotFound)?;
        match group.state {
            GroupState::Dead => return Err(GroupError::GroupIdNotFound),
            GroupState::Empty => {}
            _ => return Err(GroupError::NonEmptyGroup),
        }
        let mut records: Vec<GroupRecord> = group
            .offsets
            .keys()
            .map(|(topic, partition)| GroupRecord::Offset {
                group_id: group_id.to_string(),
                topic: topic.clone(),
                partition: *partition,
                value: None,
            })
            .collect();
        records.push(GroupRecord::Metadata {
            group_id: group_id.to_string(),
            value: None,
        });
        if let Some(group) = self.groups.get_mut(group_id) {
            group.state = GroupState::Dead;
        }
        Ok(records)
    }

    /// Removes a deleted group once its tombstones are durable.
    pub fn forget(&mut self, group_id: &str) {
        if self
            .groups
            .get(group_id)
            .is_some_and(|g| g.state == GroupState::Dead)
        {
            self.groups.remove(group_id);
        }
    }

    /// OffsetDelete: per partition, a tombstone or GROUP_SUBSCRIBED_TO_TOPIC.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<Option<GroupRecord>, GroupError>>, GroupError> {
        let group = self
            .groups
            .get(group_id)
            .ok_or(GroupError::GroupIdNotFound)?;
        if group.state == GroupState::Dead {
            return Err(GroupError::GroupIdNotFound);
        }
        let subscribed = if group.state == GroupState::Empty {
            Some(Default::default())
        } else {
            group.subscribed_topics()
        };
        Ok(partitions
            .iter()
            .map(|(topic, partition)| {
                if subscribed
                    .as_ref()
                    .is_none_or(|topics| topics.contains(topic))
                {
                    return Err(GroupError::GroupSubscribedToTopic);
                }
                Ok(group
                    .committed(topic, *partition)
                    .map(|_| GroupRecord::Offset {
                        group_id: group_id.to_string(),
                        topic: topic.clone(),
                        partition: *partition,
                        value: None,
                    }))
            })
            .collect())
    }

    /// Runs every group's timers.
    pub fn tick(&mut self, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        for group in self.groups.values_mut() {
            effects.extend(group.tick(now_ms));
        }
        effects
    }

    /// Tombstones for the offsets of empty groups older than `offsets.retention.minutes`;
    /// apply them once durable.
    pub fn expire_offsets(&self, now_ms: i64) -> Vec<GroupRecord> {
        let retention_ms = self.config.offsets_retention_ms;
        self.groups
            .values()
            .flat_map(|group| group.expired_offsets(retention_ms, now_ms))
            .collect()
    }

    /// After tombstones from `tick` are durable: empty groups without offsets are removed
    /// (Kafka turns them Dead) and a metadata tombstone is returned for each.
    pub fn collect_empty(&mut self) -> Vec<GroupRecord> {
        let empty: Vec<String> = self
            .groups
            .values()
            .filter(|g| {
                g.state == GroupState::Empty && g.offsets.is_empty() && g.pending_members.is_empty()
            })
            .map(|g| g.group_id.clone())
            .collect();
        empty
            .into_iter()
            .map(|group_id| {
                self.groups.remove(&group_id);
                GroupRecord::Metadata {
                    group_id,
                    value: None,
                }
            })
            .collect()
    }
}
