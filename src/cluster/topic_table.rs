//! The topic table: every topic's name, id, partition count and config overrides.
//!
//! A [`TopicTable`] value is an immutable snapshot; every shard holds an `Arc` of the current
//! one and reads it without locks. Mutations build a new snapshot with a higher revision
//! (pure functions here); `topic_backend` persists it on shard 0 and broadcasts it. A topic
//! remembers the revision that created it, so work addressed to a deleted and re-created
//! topic of the same name can be told apart (see [`PartitionRoute`]).
//!
//! Replica placement: a topic created by the Raft controller carries one
//! [`PartitionAssignment`] per partition (its replicas and its Raft group id), and the table
//! indexes those group ids so a Raft message for a group finds its partition. A topic with
//! EMPTY assignments is a single-node broker's local, unreplicated topic; the `with_created` /
//! `with_partitions` family keeps producing those. The controller uses the `*_assigned` /
//! `*_at` family, which sets the revision to the Raft index of the command that produced the
//! table, so revisions are monotonic and identical on every broker.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ringlet_shard::{shard_for, ShardId};
use uuid::Uuid;

use crate::error::BrokerError;

/// Topic config overrides (`retention.ms` -> `"60000"`); the defaults come from the broker.
pub type TopicConfigs = BTreeMap<String, String>;

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    /// Random at creation; what clients use as the topic id (Metadata v10+, Fetch v13+).
    pub topic_id: Uuid,
    /// Partitions `0..partitions`.
    pub partitions: i32,
    pub configs: TopicConfigs,
    /// The table revision that created this topic.
    pub created_revision: u64,
    /// Index = partition. Empty for a local, unreplicated topic; otherwise exactly
    /// `partitions` long.
    pub assignments: Vec<PartitionAssignment>,
}

impl TopicMeta {
    pub fn has_partition(&self, partition: i32) -> bool {
        (0..self.partitions).contains(&partition)
    }

    /// The replicas of `partition`; `None` for a local topic or an unknown partition.
    pub fn assignment(&self, partition: i32) -> Option<&PartitionAssignment> {
        usize::try_from(partition)
            .ok()
            .and_then(|index| self.assignments.get(index))
    }
}

/// Where one partition's replicas live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionAssignment {
    /// Broker ids; `replicas[0]` is the preferred leader.
    pub replicas: Vec<i32>,
    /// The partition's Raft group id; never 0 (the controller's group).
    pub group: u64,
}

/// Where a partition lives and which incarnation of its topic it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRoute {
    pub shard: ShardId,
    pub topic_id: Uuid,
    pub created_revision: u64,
}

/// An immutable snapshot of all topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicTable {
    revision: u64,
    by_name: BTreeMap<String, Arc<TopicMeta>>,
    name_by_id: HashMap<Uuid, String>,
    /// Raft group id -> (topic, partition), for assigned topics only.
    by_group: HashMap<u64, (String, i32)>,
}

impl TopicTable {
    /// Builds a table from stored topics.
    pub fn from_topics(revision: u64, topics: impl IntoIterator<Item = TopicMeta>) -> Self {
        let mut table = TopicTable {
            revision,
            ..TopicTable::default()
        };
        for topic in topics {
            table.insert(topic);
        }
        table
    }

    /// Bumped by every change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn get(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.by_name.get(name)
    }

    pub fn by_id(&self, topic_id: Uuid) -> Option<&Arc<TopicMeta>> {
        self.name_by_id
            .get(&topic_id)
            .and_then(|name| self.get(name))
    }

    /// Topics in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<TopicMeta>> {
        self.by_name.values()
    }

    /// The replicas of `partition` of `topic`; `None` for a local topic or an unknown one.
    pub fn assignment(&self, topic: &str, partition: i32) -> Option<&PartitionAssignment> {
        self.get(topic)?.assignment(partition)
    }

    /// The topic and partition whose Raft group is `group`.
    pub fn group(&self, group: u64) -> Option<(&str, i32)> {
        self.by_group
            .get(&group)
            .map(|(topic, partition)| (topic.as_str(), *partition))
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The owner of `partition` of `topic`, or UNKNOWN_TOPIC_OR_PARTITION.
    pub fn route(
        &self,
        topic: &str,
        partition: i32,
        shard_count: usize,
    ) -> Result<PartitionRoute, BrokerError> {
        let meta = self
            .get(topic)
            .filter(|meta| meta.has_partition(partition))
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        Ok(PartitionRoute {
            shard: partition_shard(topic, partition, shard_count),
            topic_id: meta.topic_id,
            created_revision: meta.created_revision,
        })
    }

    /// A new table with `name` added as a local topic (no assignments), at the next revision.
    pub fn with_created(
        &self,
        name: &str,
        partitions: i32,
        configs: TopicConfigs,
        topic_id: Uuid,
    ) -> Result<TopicTable, BrokerError> {
        let revision = self.revision + 1;
        self.created(name, partitions, configs, topic_id, Vec::new(), revision)
    }

    /// A new table at `revision` with `name` added, replicated as `assignments` (one per
    /// partition). For the controller: `revision` is the Raft index of the command.
    pub fn with_created_assigned(
        &self,
        name: &str,
        configs: TopicConfigs,
        topic_id: Uuid,
        assignments: Vec<PartitionAssignment>,
        revision: u64,
    ) -> Result<TopicTable, BrokerError> {
        self.check_revision(revision)?;
        let partitions = partition_count_of(assignments.len());
        self.check_new_groups(&assignments)?;
        self.created(name, partitions, configs, topic_id, assignments, revision)
    }

    /// A new table without `name`; also returns the removed topic.
    pub fn with_deleted(&self, name: &str) -> Result<(TopicTable, Arc<TopicMeta>), BrokerError> {
        self.deleted(name, self.revision + 1)
    }

    /// [`TopicTable::with_deleted`] at `revision` (the controller's Raft index).
    pub fn with_deleted_at(
        &self,
        name: &str,
        revision: u64,
    ) -> Result<(TopicTable, Arc<TopicMeta>), BrokerError> {
        self.check_revision(revision)?;
        self.deleted(name, revision)
    }

    /// A new table where the local topic `name` has `new_total` partitions (only growth).
    pub fn with_partitions(&self, name: &str, new_total: i32) -> Result<TopicTable, BrokerError> {
        let current = self.get(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        check_growth(current, new_total)?;
        if !current.assignments.is_empty() {
            return Err(BrokerError::internal(format!(
                "topic {name} is replicated: its partitions are added with assignments"
            )));
        }
        let mut meta = TopicMeta::clone(current);
        meta.partitions = new_total;
        Ok(self.replaced(meta, self.revision + 1))
    }

    /// A new table at `revision` where the replicated topic `name` gains one partition per
    /// entry of `added` (the new partitions only, in partition order).
    pub fn with_partitions_assigned(
        &self,
        name: &str,
        added: Vec<PartitionAssignment>,
        revision: u64,
    ) -> Result<TopicTable, BrokerError> {
        self.check_revision(revision)?;
        let current = self.get(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        if current.assignments.is_empty() {
            return Err(BrokerError::internal(format!(
                "topic {name} is local: it cannot gain replicated partitions"
            )));
        }
        let new_total = partition_count_of(current.assignments.len() + added.len());
        check_growth(current, new_total)?;
        self.check_new_groups(&added)?;
        let mut meta = TopicMeta::clone(current);
        meta.partitions = new_total;
        meta.assignments.extend(added);
        Ok(self.replaced(meta, revision))
    }

    /// A new table where `name`'s overrides are replaced by `configs`.
    pub fn with_configs(
        &self,
        name: &str,
        configs: TopicConfigs,
    ) -> Result<TopicTable, BrokerError> {
        self.configured(name, configs, self.revision + 1)
    }

    /// [`TopicTable::with_configs`] at `revision` (the controller's Raft index).
    pub fn with_configs_at(
        &self,
        name: &str,
        configs: TopicConfigs,
        revision: u64,
    ) -> Result<TopicTable, BrokerError> {
        self.check_revision(revision)?;
        self.configured(name, configs, revision)
    }

    fn created(
        &self,
        name: &str,
        partitions: i32,
        configs: TopicConfigs,
        topic_id: Uuid,
        assignments: Vec<PartitionAssignment>,
        revision: u64,
    ) -> Result<TopicTable, BrokerError> {
        if self.by_name.contains_key(name) {
            return Err(BrokerError::TopicAlreadyExists(name.to_string()));
        }
        check_partition_count(partitions)?;
        // Two topics sharing an id would corrupt `name_by_id`; ids are random, so this is a
        // bug (or a corrupt command), not a client error.
        if self.name_by_id.contains_key(&topic_id) {
            return Err(BrokerError::internal(format!(
                "topic id {topic_id} is already in use"
            )));
        }
        let meta = TopicMeta {
            name: name.to_string(),
            topic_id,
            partitions,
            configs,
            created_revision: revision,
            assignments,
        };
        Ok(self.replaced(meta, revision))
    }

    fn deleted(
        &self,
        name: &str,
        revision: u64,
    ) -> Result<(TopicTable, Arc<TopicMeta>), BrokerError> {
        let mut next = self.clone();
        next.revision = revision;
        let removed = next
            .by_name
            .remove(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        next.name_by_id.remove(&removed.topic_id);
        for assignment in &removed.assignments {
            next.by_group.remove(&assignment.group);
        }
        Ok((next, removed))
    }

    fn configured(
        &self,
        name: &str,
        configs: TopicConfigs,
        revision: u64,
    ) -> Result<TopicTable, BrokerError> {
        let current = self.get(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        let mut meta = TopicMeta::clone(current);
        meta.configs = configs;
        Ok(self.replaced(meta, revision))
    }

    /// A copy at `revision` with `meta` inserted (replacing the topic of the same name).
    fn replaced(&self, meta: TopicMeta, revision: u64) -> TopicTable {
        let mut next = self.clone();
        next.revision = revision;
        next.insert(meta);
        next
    }

    /// The controller's revisions are Raft indexes: they only move forward.
    fn check_revision(&self, revision: u64) -> Result<(), BrokerError> {
        if revision <= self.revision {
            return Err(BrokerError::internal(format!(
                "topic table revision {revision} does not follow {}",
                self.revision
            )));
        }
        Ok(())
    }

    /// Group ids are allocated once by the controller; a reused or zero one is a bug.
    fn check_new_groups(&self, assignments: &[PartitionAssignment]) -> Result<(), BrokerError> {
        let mut seen = std::collections::HashSet::new();
        for assignment in assignments {
            let group = assignment.group;
            if group == 0 || self.by_group.contains_key(&group) || !seen.insert(group) {
                return Err(BrokerError::internal(format!(
                    "raft group {group} is reserved or already in use"
                )));
            }
        }
        Ok(())
    }

    fn insert(&mut self, topic: TopicMeta) {
        for (partition, assignment) in topic.assignments.iter().enumerate() {
            let partition = i32::try_from(partition).expect("partition counts fit in i32");
            self.by_group
                .insert(assignment.group, (topic.name.clone(), partition));
        }
        self.name_by_id.insert(topic.topic_id, topic.name.clone());
        self.by_name.insert(topic.name.clone(), Arc::new(topic));
    }
}

/// The shard that owns a partition: placement by topic name (names and ids map 1:1 in the
/// table, and produce requests before v13 only carry names).
pub fn partition_shard(topic: &str, partition: i32, shard_count: usize) -> ShardId {
    shard_for(topic.as_bytes(), partition, shard_count)
}

/// Kafka's ceiling for one topic is far above this; the limit keeps one request from
/// creating more partition directories than a single node can hold open.
pub const MAX_PARTITIONS: i32 = 100_000;

fn check_growth(current: &TopicMeta, new_total: i32) -> Result<(), BrokerError> {
    if new_total <= current.partitions {
        return Err(BrokerError::InvalidPartitions(format!(
            "Topic currently has {} partitions, which is higher than or equal to the requested {new_total}.",
            current.partitions
        )));
    }
    check_partition_count(new_total)
}

/// A partition count from a number of assignments; too many saturates, and the count checks
/// then refuse it.
fn partition_count_of(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

fn check_partition_count(partitions: i32) -> Result<(), BrokerError> {
    if !(1..=MAX_PARTITIONS).contains(&partitions) {
        return Err(BrokerError::InvalidPartitions(format!(
            "Number of partitions must be in 1..={MAX_PARTITIONS}, got {partitions}."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    #[test]
    fn create_route_delete_recreate() {
        let table = TopicTable::default();
        let table = table
            .with_created("orders", 3, TopicConfigs::new(), id(1))
            .unwrap();
        assert_eq!(table.revision(), 1);
        let route = table.route("orders", 2, 4).unwrap();
        assert_eq!(route.topic_id, id(1));
        assert_eq!(route.shard, partition_shard("orders", 2, 4));
        assert!(matches!(
            table.route("orders", 3, 4),
            Err(BrokerError::UnknownTopicOrPartition)
        ));
        assert!(matches!(
            table.with_created("orders", 1, TopicConfigs::new(), id(2)),
            Err(BrokerError::TopicAlreadyExists(_))
        ));
        let (table, removed) = table.with_deleted("orders").unwrap();
        assert_eq!(removed.topic_id, id(1));
        assert!(table.by_id(id(1)).is_none());
        let table = table
            .with_created("orders", 1, TopicConfigs::new(), id(2))
            .unwrap();
        let route = table.route("orders", 0, 4).unwrap();
        assert_eq!(
            route.created_revision, 3,
            "a re-created topic is a new incarnation"
        );
        assert_eq!(table.by_id(id(2)).unwrap().name, "orders");
    }

    #[test]
    fn partitions_only_grow() {
        let table = TopicTable::default()
            .with_created("t", 2, TopicConfigs::new(), id(1))
            .unwrap();
        assert!(matches!(
            table.with_partitions("t", 2),
            Err(BrokerError::InvalidPartitions(_))
        ));
        let grown = table.with_partitions("t", 5).unwrap();
        assert_eq!(grown.get("t").unwrap().partitions, 5);
        assert_eq!(grown.get("t").unwrap().topic_id, id(1));
        assert!(TopicTable::default()
            .with_created("z", 0, TopicConfigs::new(), id(3))
            .is_err());
    }

    #[test]
    fn configs_are_replaced() {
        let table = TopicTable::default()
            .with_created("t", 1, TopicConfigs::new(), id(1))
            .unwrap();
        let mut configs = TopicConfigs::new();
        configs.insert("retention.ms".into(), "1000".into());
        let next = table.with_configs("t", configs.clone()).unwrap();
        assert_eq!(next.get("t").unwrap().configs, configs);
        assert!(
            table.get("t").unwrap().configs.is_empty(),
            "snapshots are immutable"
        );
    }

    fn assigned(groups: std::ops::Range<u64>) -> Vec<PartitionAssignment> {
        groups
            .map(|group| PartitionAssignment {
                replicas: vec![1, 2, 3],
                group,
            })
            .collect()
    }

    #[test]
    fn assigned_topics_index_their_groups() {
        let table = TopicTable::default()
            .with_created_assigned("t", TopicConfigs::new(), id(1), assigned(1..3), 10)
            .unwrap();
        assert_eq!(table.revision(), 10);
        assert_eq!(table.get("t").unwrap().created_revision, 10);
        assert_eq!(table.get("t").unwrap().partitions, 2);
        assert_eq!(table.group(2), Some(("t", 1)));
        assert_eq!(table.assignment("t", 0).unwrap().group, 1);
        assert!(table.assignment("t", 2).is_none());
        assert!(table.assignment("t", -1).is_none());

        let grown = table
            .with_partitions_assigned("t", assigned(3..4), 11)
            .unwrap();
        assert_eq!(grown.get("t").unwrap().partitions, 3);
        assert_eq!(grown.group(3), Some(("t", 2)));
        let configured = grown.with_configs_at("t", TopicConfigs::new(), 12).unwrap();
        assert_eq!(configured.revision(), 12);
        let (deleted, _) = configured.with_deleted_at("t", 13).unwrap();
        assert!(deleted.group(1).is_none() && deleted.group(3).is_none());
        assert_eq!(deleted.revision(), 13);
    }

    #[test]
    fn assigned_mutations_refuse_bad_revisions_and_groups() {
        let table = TopicTable::default()
            .with_created_assigned("t", TopicConfigs::new(), id(1), assigned(1..3), 10)
            .unwrap();
        let stale = table.with_configs_at("t", TopicConfigs::new(), 10);
        assert!(matches!(stale, Err(BrokerError::Internal(_))));
        let reused =
            table.with_created_assigned("u", TopicConfigs::new(), id(2), assigned(2..3), 11);
        assert!(matches!(reused, Err(BrokerError::Internal(_))));
        let zero = table.with_partitions_assigned("t", assigned(0..1), 11);
        assert!(matches!(zero, Err(BrokerError::Internal(_))));
        let none = table.with_created_assigned("u", TopicConfigs::new(), id(2), Vec::new(), 11);
        assert!(matches!(none, Err(BrokerError::InvalidPartitions(_))));
        let local = table
            .with_created("l", 1, TopicConfigs::new(), id(3))
            .unwrap();
        assert!(local.get("l").unwrap().assignments.is_empty());
        assert!(
            local.with_partitions("t", 5).is_err(),
            "replicated topics need assignments"
        );
        assert!(local
            .with_partitions_assigned("l", assigned(5..6), 20)
            .is_err());
    }
}
