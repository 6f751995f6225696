//! The topic table: every topic's name, id, partition count and config overrides.
//!
//! A [`TopicTable`] value is an immutable snapshot; every shard holds an `Arc` of the current
//! one and reads it without locks. Mutations build a new snapshot with a higher revision
//! (pure functions here); `topic_backend` persists it on shard 0 and broadcasts it. A topic
//! remembers the revision that created it, so work addressed to a deleted and re-created
//! topic of the same name can be told apart (see [`PartitionRoute`]).

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
}

impl TopicMeta {
    pub fn has_partition(&self, partition: i32) -> bool {
        (0..self.partitions).contains(&partition)
    }
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

    /// A new table with `name` added.
    pub fn with_created(
        &self,
        name: &str,
        partitions: i32,
        configs: TopicConfigs,
        topic_id: Uuid,
    ) -> Result<TopicTable, BrokerError> {
        if self.by_name.contains_key(name) {
            return Err(BrokerError::TopicAlreadyExists(name.to_string()));
        }
        check_partition_count(partitions)?;
        let mut next = self.next_revision();
        next.insert(TopicMeta {
            name: name.to_string(),
            topic_id,
            partitions,
            configs,
            created_revision: next.revision,
        });
        Ok(next)
    }

    /// A new table without `name`; also returns the removed topic.
    pub fn with_deleted(&self, name: &str) -> Result<(TopicTable, Arc<TopicMeta>), BrokerError> {
        let mut next = self.next_revision();
        let removed = next
            .by_name
            .remove(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        next.name_by_id.remove(&removed.topic_id);
        Ok((next, removed))
    }

    /// A new table where `name` has `new_total` partitions (only growth is allowed).
    pub fn with_partitions(&self, name: &str, new_total: i32) -> Result<TopicTable, BrokerError> {
        let current = self.get(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        if new_total <= current.partitions {
            return Err(BrokerError::InvalidPartitions(format!(
                "Topic currently has {} partitions, which is higher than or equal to the requested {new_total}.",
                current.partitions
            )));
        }
        check_partition_count(new_total)?;
        let mut meta = TopicMeta::clone(current);
        meta.partitions = new_total;
        let mut next = self.next_revision();
        next.insert(meta);
        Ok(next)
    }

    /// A new table where `name`'s overrides are replaced by `configs`.
    pub fn with_configs(
        &self,
        name: &str,
        configs: TopicConfigs,
    ) -> Result<TopicTable, BrokerError> {
        let current = self.get(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        let mut meta = TopicMeta::clone(current);
        meta.configs = configs;
        let mut next = self.next_revision();
        next.insert(meta);
        Ok(next)
    }

    fn next_revision(&self) -> TopicTable {
        let mut next = self.clone();
        next.revision += 1;
        next
    }

    fn insert(&mut self, topic: TopicMeta) {
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
}
