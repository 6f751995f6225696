//! What the data plane needs from the topic table, in one place.
//!
//! Handlers resolve a requested topic on the connection's shard (every shard
//! has a read-only copy of the topic table) into a [`TopicMeta`]: does it exist,
//! how many partitions, which shard owns each, what its limits are. The owning
//! shard checks again ([`OwnerLookup`]) so a topic deleted while the hop was in
//! flight answers UNKNOWN_TOPIC_OR_PARTITION instead of re-creating its log.

use ringlet_shard::ShardId;
use uuid::Uuid;

use super::ops::PartitionLookup;
use super::PartitionSettings;
use crate::config::topic_config::{CompressionType, TopicConfig};
use crate::config::topic_defaults::broker_topic_defaults;
use crate::state::ShardState;

/// A topic as the data plane sees it.
#[derive(Debug, Clone)]
pub struct TopicMeta {
    pub name: String,
    pub partition_count: i32,
    /// `max.message.bytes`: the largest batch a producer may send.
    pub max_message_bytes: i32,
    /// `compression.type`: the codec produced batches are stored in.
    pub compression: CompressionType,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub compacted: bool,
    shard_count: usize,
}

impl TopicMeta {
    /// The owning shard of `partition`, or `None` when the topic has no such partition.
    pub fn owner_of(&self, partition: i32) -> Option<ShardId> {
        (0..self.partition_count)
            .contains(&partition)
            .then(|| owner_shard(&self.name, partition, self.shard_count))
    }
}

/// The shard owning a partition: the one placement rule every shard uses.
pub fn owner_shard(topic: &str, partition: i32, shard_count: usize) -> ShardId {
    crate::cluster::partition_shard(topic, partition, shard_count)
}

fn meta_of(state: &ShardState, table_meta: &crate::cluster::TopicMeta) -> TopicMeta {
    let config = TopicConfig::resolve(&table_meta.configs, &broker_topic_defaults(state));
    TopicMeta {
        name: table_meta.name.clone(),
        partition_count: table_meta.partitions,
        max_message_bytes: config.max_message_bytes,
        compression: config.compression_type,
        compacted: config.cleanup_policy.compact,
        shard_count: state.shard_count,
    }
}

/// The topic named `name`, if it exists.
pub fn topic(state: &ShardState, name: &str) -> Option<TopicMeta> {
    let table = state.topics();
    table.get(name).map(|meta| meta_of(state, meta))
}

/// The topic with id `topic_id` (Fetch v13+), if it exists.
pub fn topic_by_id(state: &ShardState, topic_id: Uuid) -> Option<TopicMeta> {
    let table = state.topics();
    table.by_id(topic_id).map(|meta| meta_of(state, meta))
}

/// The settings of a topic's partitions.
pub fn settings_of(config: &TopicConfig, replicated: bool) -> PartitionSettings {
    PartitionSettings {
        log_config: config.log_config(),
        log_append_time: config.uses_log_append_time(),
        min_insync_replicas: config.min_insync_replicas,
        replicated,
    }
}

/// The owning shard's view: a partition exists while its topic does.
pub struct OwnerLookup<'a>(pub &'a ShardState);

impl PartitionLookup for OwnerLookup<'_> {
    fn settings(&self, topic: &str, partition: i32) -> Option<PartitionSettings> {
        let table = self.0.topics();
        let meta = table
            .get(topic)
            .filter(|meta| meta.has_partition(partition))?;
        let config = TopicConfig::resolve(&meta.configs, &broker_topic_defaults(self.0));
        Some(settings_of(&config, !meta.assignments.is_empty()))
    }
}
