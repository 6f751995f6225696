//! Cluster metadata. On a cluster member, the Raft controller (group 0, [`controller`]) holds
//! the topic and broker tables and every broker installs what it applies ([`node`]); topic
//! mutations go to its leader through [`frontend`]. A single node (no `--seeds`) keeps the
//! topic table in `data_dir/meta` and mutates it on shard 0 ([`topic_backend`]), which
//! persists the new table and broadcasts the snapshot to every shard before answering. The
//! functions re-exported here are the entry points for both (callable on any shard).

pub mod controller;
pub mod controller_log;
pub mod controller_rpc;
pub mod frontend;
pub mod leaders;
pub mod manual_assignment;
pub mod metadata_stm;
pub mod node;
pub mod placement;
pub mod read_replica;
pub mod reconcile;
pub mod topic_backend;
pub mod topic_store;
pub mod topic_table;

use uuid::Uuid;

pub use topic_backend::{
    alter_topic_configs, check_assignment, create_partitions, create_partitions_assigned,
    create_topic, create_topic_assigned, delete_topic,
};
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
