//! Configuration: the broker's own settings ([`broker`]) and the topic config model
//! (`topic_config` and friends: Kafka topic configs, their validation and defaults).

pub mod broker;
pub mod cluster;
pub mod config_def;
pub mod config_describe;
pub mod config_ops;
pub mod seed_address;
pub mod seed_resolver;
pub mod topic_config;
pub mod topic_defaults;
pub mod topic_name;
