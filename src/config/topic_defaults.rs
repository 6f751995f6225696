//! Where topic configs meet the broker config and the log: the broker-level topic defaults
//! ([`BrokerTopicDefaults`]) built from [`BrokerConfig`], the broker configs DescribeConfigs
//! shows, and [`log_config_for`], which turns a topic's overrides into the [`LogConfig`] of its
//! partitions.
//!
//! The broker config has knobs only for `num.partitions` and `message.max.bytes`; every other
//! topic default is Ringlet's built-in one ([`TopicConfig::default`]). A broker value that
//! differs from its built-in default is reported as STATIC_BROKER_CONFIG (the resolved config
//! does not record whether a flag was given, so a flag set to the default reads as default).

use ringlet_io::log::LogConfig;

use super::broker::{
    BrokerConfig, DEFAULT_COMPRESSION_TYPE, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MESSAGE_MAX_BYTES, DEFAULT_NODE_ID, DEFAULT_NUM_PARTITIONS,
};
use super::config_def::ConfigType;
use super::config_describe::{broker_topic_default_values, BrokerConfigValue};
use super::topic_config::{
    BrokerTopicDefaults, CompressionType, ConfigOverrides, TopicConfig, COMPRESSION_TYPE,
    MAX_MESSAGE_BYTES,
};
use crate::state::ShardState;

/// The broker-level topic defaults of this shard's broker.
pub fn broker_topic_defaults(state: &ShardState) -> BrokerTopicDefaults {
    topic_defaults_from(&state.config)
}

/// The topic defaults this broker config implies.
pub fn topic_defaults_from(config: &BrokerConfig) -> BrokerTopicDefaults {
    let mut defaults = BrokerTopicDefaults {
        num_partitions: config.num_partitions,
        ..BrokerTopicDefaults::default()
    };
    if config.num_partitions != DEFAULT_NUM_PARTITIONS {
        defaults.set_by_broker_config.insert("num.partitions");
    }
    defaults.topic.max_message_bytes = i32::try_from(config.message_max_bytes).unwrap_or(i32::MAX);
    if config.message_max_bytes != DEFAULT_MESSAGE_MAX_BYTES {
        defaults.set_by_broker_config.insert(MAX_MESSAGE_BYTES);
    }
    defaults.clustered = config.cluster.is_some();
    defaults.default_replication_factor = config.default_replication_factor;
    if config.default_replication_factor != 1 {
        defaults
            .set_by_broker_config
            .insert("default.replication.factor");
    }
    if let Some(codec) = CompressionType::parse(&config.compression_type) {
        defaults.topic.compression_type = codec;
    }
    if config.compression_type != DEFAULT_COMPRESSION_TYPE {
        defaults.set_by_broker_config.insert(COMPRESSION_TYPE);
    }
    defaults.topic.min_insync_replicas = config.min_insync_replicas;
    if config.min_insync_replicas != 1 {
        defaults
            .set_by_broker_config
            .insert(super::topic_config::MIN_INSYNC_REPLICAS);
    }
    defaults
}

/// The log settings of a topic's partitions: its overrides over the broker defaults.
pub fn log_config_for(overrides: &ConfigOverrides, defaults: &BrokerTopicDefaults) -> LogConfig {
    TopicConfig::resolve(overrides, defaults).log_config()
}

/// Every broker config DescribeConfigs shows for this node: the topic defaults under their
/// broker names plus the node's identity and limits. None is changeable at runtime.
pub fn broker_config_values(config: &BrokerConfig) -> Vec<BrokerConfigValue> {
    let listener = format!("PLAINTEXT://{}", config.listen);
    let advertised = format!(
        "PLAINTEXT://{}:{}",
        config.advertise.host, config.advertise.port
    );
    let node_id = config.node_id.to_string();
    let custom_node = config.node_id != DEFAULT_NODE_ID;
    let mut values = vec![
        value(
            "node.id",
            node_id.clone(),
            ConfigType::Int,
            custom_node,
            "This node's id.",
        ),
        value(
            "broker.id",
            node_id,
            ConfigType::Int,
            custom_node,
            "This node's id.",
        ),
        value(
            "log.dirs",
            config.data_dir.display().to_string(),
            ConfigType::String,
            true,
            "Directory holding the partition logs and metadata.",
        ),
        value(
            "listeners",
            listener,
            ConfigType::List,
            true,
            "Address the broker listens on.",
        ),
        value(
            "advertised.listeners",
            advertised,
            ConfigType::List,
            true,
            "Address clients are told to connect to.",
        ),
        value(
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            ConfigType::Boolean,
            !config.auto_create_topics,
            "Create a topic on first Metadata/Produce request for it.",
        ),
        value(
            "socket.request.max.bytes",
            config.max_request_bytes.to_string(),
            ConfigType::Int,
            config.max_request_bytes != DEFAULT_MAX_REQUEST_BYTES,
            "Largest request frame accepted.",
        ),
        value(
            "max.connections",
            config.max_connections.to_string(),
            ConfigType::Int,
            config.max_connections != DEFAULT_MAX_CONNECTIONS,
            "Connections accepted at once.",
        ),
        value(
            "delete.topic.enable",
            "true".to_string(),
            ConfigType::Boolean,
            false,
            "Topics can be deleted.",
        ),
    ];
    // Kafka lists broker.rack with a null value when unset; a described value here is a
    // string, so an unset rack is left out rather than shown as "".
    if let Some(rack) = config.cluster.as_ref().and_then(|c| c.rack.clone()) {
        values.push(value(
            "broker.rack",
            rack,
            ConfigType::String,
            true,
            "Rack of the broker, used for rack-aware replica placement.",
        ));
    }
    values.extend(broker_topic_default_values(&topic_defaults_from(config)));
    values.sort_by(|a, b| a.name.cmp(b.name));
    values
}

fn value(
    name: &'static str,
    value: String,
    config_type: ConfigType,
    set_by_broker_config: bool,
    documentation: &'static str,
) -> BrokerConfigValue {
    BrokerConfigValue {
        name,
        value,
        config_type,
        set_by_broker_config,
        documentation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::broker::{
        Advertised, DEFAULT_MAX_IN_FLIGHT, DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    };
    use crate::config::topic_config::{CLEANUP_POLICY, RETENTION_MS};

    fn broker_config(num_partitions: i32, message_max_bytes: usize) -> BrokerConfig {
        BrokerConfig {
            data_dir: "/var/lib/ringlet".into(),
            listen: "0.0.0.0:9092".parse().expect("literal address"),
            advertise: Advertised {
                host: "127.0.0.1".into(),
                port: 9092,
            },
            shards: 2,
            node_id: DEFAULT_NODE_ID,
            num_partitions,
            auto_create_topics: true,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            message_max_bytes,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT,
            coordinator: Default::default(),
            producer_id_expiration_ms: DEFAULT_PRODUCER_ID_EXPIRATION_MS,
            log_retention_check_interval: crate::partition::RETENTION_CHECK_INTERVAL,
            log_cache_bytes_per_shard: ringlet_io::log::DEFAULT_SHARD_CACHE_BUDGET_BYTES,
            cluster: None,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            compression_type: DEFAULT_COMPRESSION_TYPE.into(),
        }
    }

    #[test]
    fn broker_knobs_become_topic_defaults() {
        let plain = topic_defaults_from(&broker_config(1, DEFAULT_MESSAGE_MAX_BYTES));
        assert_eq!(plain.num_partitions, 1);
        assert!(plain.set_by_broker_config.is_empty());
        assert_eq!(plain.topic.max_message_bytes, 1_048_588);
        let tuned = topic_defaults_from(&broker_config(6, 5_000_000));
        assert_eq!(tuned.num_partitions, 6);
        assert_eq!(tuned.topic.max_message_bytes, 5_000_000);
        assert!(tuned.is_set_by_broker_config("num.partitions"));
        assert!(tuned.is_set_by_broker_config(MAX_MESSAGE_BYTES));
    }

    #[test]
    fn log_config_uses_broker_message_max_unless_overridden() {
        let defaults = topic_defaults_from(&broker_config(1, 3_000_000));
        assert_eq!(
            log_config_for(&ConfigOverrides::new(), &defaults).max_batch_bytes,
            3_000_000
        );
        let overrides: ConfigOverrides = [
            (MAX_MESSAGE_BYTES.to_string(), "1000".to_string()),
            (RETENTION_MS.to_string(), "-1".to_string()),
            (CLEANUP_POLICY.to_string(), "delete".to_string()),
        ]
        .into();
        let log = log_config_for(&overrides, &defaults);
        assert_eq!((log.max_batch_bytes, log.retention_ms), (1000, -1));
    }

    #[test]
    fn broker_values_describe_identity_and_defaults() {
        let values = broker_config_values(&broker_config(4, DEFAULT_MESSAGE_MAX_BYTES));
        let get = |name: &str| values.iter().find(|v| v.name == name).expect(name);
        assert_eq!(get("node.id").value, DEFAULT_NODE_ID.to_string());
        assert_eq!(get("num.partitions").value, "4");
        assert!(get("num.partitions").set_by_broker_config);
        assert_eq!(get("message.max.bytes").value, "1048588");
        assert!(!get("message.max.bytes").set_by_broker_config);
        assert_eq!(get("log.segment.bytes").value, (128 << 20).to_string());
        assert_eq!(
            get("advertised.listeners").value,
            "PLAINTEXT://127.0.0.1:9092"
        );
        let names: Vec<_> = values.iter().map(|v| v.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted and unique");
    }
}
