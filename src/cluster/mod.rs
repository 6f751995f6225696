//! Cluster metadata. For now a single node: the topic table lives in `data_dir/meta`, every
//! mutation runs on shard 0 ([`topic_backend`]), which persists the new table and broadcasts
//! the snapshot to every shard before answering. The Raft controller replaces the backend
//! later; the functions below are the stable entry points (callable on any shard).

pub mod controller;
pub mod controller_log;
pub mod controller_rpc;
pub mod frontend;
pub mod leaders;
pub mod metadata_stm;
pub mod node;
pub mod placement;
pub mod read_replica;
pub mod reconcile;
pub mod topic_backend;
pub mod topic_store;
pub mod topic_table;

use uuid::Uuid;

pub use topic_backend::{alter_topic_configs, create_partitions, create_topic, delete_topic};
pub use topic_table::{partition_shard, PartitionRoute, TopicConfigs, TopicMeta, TopicTable};

use crate::state::ShardState;

/// Names of all topics, sorted.
pub fn topic_names(state: &ShardState) -> Vec<String> {
    state.topics().names()
}

/// The id of `name`, if it exists.
pub fn topic_id(state: &ShardState, name: &str) -> Option<Uuid> {
    state.topics().get(name).map(|meta| meta.topic_id)
}

/// The name of the topic with id `topic_id`, if it exists.
pub fn topic_name_by_id(state: &ShardState, topic_id: Uuid) -> Option<String> {
    state.topics().by_id(topic_id).map(|meta| meta.name.clone())
}

/// The partition count of `name`, if it exists.
pub fn partition_count(state: &ShardState, name: &str) -> Option<i32> {
    state.topics().get(name).map(|meta| meta.partitions)
}

/// The config overrides of `name`, if it exists.
pub fn topic_configs(state: &ShardState, name: &str) -> Option<TopicConfigs> {
    state.topics().get(name).map(|meta| meta.configs.clone())
}
