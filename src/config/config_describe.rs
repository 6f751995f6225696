//! What DescribeConfigs (and CreateTopics v5+) report for a topic or a broker: each config's
//! effective value, where it came from, whether it can be changed, and its synonyms (the
//! chain of places the value could come from, most specific first, as Kafka lists them).

use super::config_def::{ConfigSource, ConfigType};
use super::topic_config::{BrokerTopicDefaults, ConfigOverrides, TopicConfig, TOPIC_CONFIGS};

/// One place a config value can come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
}

/// One described config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedConfig {
    pub name: String,
    pub value: String,
    pub read_only: bool,
    pub source: ConfigSource,
    pub is_sensitive: bool,
    pub config_type: ConfigType,
    pub documentation: &'static str,
    /// The value's sources, most specific first; the first is the effective one.
    pub synonyms: Vec<ConfigSynonym>,
}

impl DescribedConfig {
    pub fn is_default(&self) -> bool {
        self.source == ConfigSource::Default
    }
}

/// `configuration_keys` of DescribeConfigs: `None` (or an empty list) means every config.
pub fn is_wanted(keys: Option<&[&str]>, name: &str) -> bool {
    match keys {
        Some(keys) if !keys.is_empty() => keys.contains(&name),
        _ => true,
    }
}

/// Every topic config Ringlet knows, as seen on a topic with these overrides.
pub fn describe_topic(
    overrides: &ConfigOverrides,
    defaults: &BrokerTopicDefaults,
    keys: Option<&[&str]>,
) -> Vec<DescribedConfig> {
    let kafka_defaults = TopicConfig::default();
    TOPIC_CONFIGS
        .iter()
        .filter(|def| is_wanted(keys, def.name))
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(value) = overrides.get(def.name) {
                synonyms.push(synonym(def.name, value.clone(), ConfigSource::DynamicTopic));
            }
            let broker_name = def.broker_synonym.unwrap_or(def.name);
            if defaults.is_set_by_broker_config(def.name) {
                let value = defaults.topic.value_of(def.name).unwrap_or_default();
                synonyms.push(synonym(broker_name, value, ConfigSource::StaticBroker));
            }
            let builtin = match def.fixed_value {
                Some(fixed) => fixed.to_string(),
                None => kafka_defaults.value_of(def.name).unwrap_or_default(),
            };
            synonyms.push(synonym(broker_name, builtin, ConfigSource::Default));
            let effective = synonyms[0].clone();
            DescribedConfig {
                name: def.name.to_string(),
                value: effective.value,
                read_only: def.fixed_value.is_some(),
                source: effective.source,
                is_sensitive: false,
                config_type: def.config_type,
                documentation: def.doc,
                synonyms,
            }
        })
        .collect()
}

/// A broker-level config: name, value, whether the broker config file set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfigValue {
    pub name: &'static str,
    pub value: String,
    pub config_type: ConfigType,
    pub set_by_broker_config: bool,
    pub documentation: &'static str,
}

/// Describes broker configs. None can be changed at runtime, so all are read-only.
pub fn describe_broker(
    values: &[BrokerConfigValue],
    keys: Option<&[&str]>,
) -> Vec<DescribedConfig> {
    values
        .iter()
        .filter(|config| is_wanted(keys, config.name))
        .map(|config| {
            let source = if config.set_by_broker_config {
                ConfigSource::StaticBroker
            } else {
                ConfigSource::Default
            };
            DescribedConfig {
                name: config.name.to_string(),
                value: config.value.clone(),
                read_only: true,
                source,
                is_sensitive: false,
                config_type: config.config_type,
                documentation: config.documentation,
                synonyms: vec![synonym(config.name, config.value.clone(), source)],
            }
        })
        .collect()
}

/// The broker-level topic defaults, under their broker config names (`log.retention.ms`...).
pub fn broker_topic_default_values(defaults: &BrokerTopicDefaults) -> Vec<BrokerConfigValue> {
    let mut values = vec![
        BrokerConfigValue {
            name: "num.partitions",
            value: defaults.num_partitions.to_string(),
            config_type: ConfigType::Int,
            set_by_broker_config: defaults.is_set_by_broker_config("num.partitions"),
            documentation: "Partitions of a topic created without a partition count.",
        },
        BrokerConfigValue {
            name: "default.replication.factor",
            value: defaults.default_replication_factor.to_string(),
            config_type: ConfigType::Int,
            set_by_broker_config: defaults.is_set_by_broker_config("default.replication.factor"),
            documentation: "Replication factor of a topic created without one.",
        },
    ];
    for def in TOPIC_CONFIGS.iter() {
        let (Some(broker_name), None) = (def.broker_synonym, def.fixed_value) else {
            continue;
        };
        values.push(BrokerConfigValue {
            name: broker_name,
            value: defaults.topic.value_of(def.name).unwrap_or_default(),
            config_type: def.config_type,
            set_by_broker_config: defaults.is_set_by_broker_config(def.name),
            documentation: def.doc,
        });
    }
    values
}

fn synonym(name: &str, value: String, source: ConfigSource) -> ConfigSynonym {
    ConfigSynonym {
        name: name.to_string(),
        value,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::topic_config::{CLEANUP_POLICY, RETENTION_MS, SEGMENT_BYTES};

    fn find<'a>(configs: &'a [DescribedConfig], name: &str) -> &'a DescribedConfig {
        configs.iter().find(|c| c.name == name).expect(name)
    }

    #[test]
    fn override_broker_and_builtin_sources() {
        let mut defaults = BrokerTopicDefaults::default();
        defaults.topic.segment_bytes = 1 << 20;
        defaults.set_by_broker_config.insert(SEGMENT_BYTES);
        let overrides: ConfigOverrides = [(RETENTION_MS.to_string(), "1000".to_string())].into();
        let configs = describe_topic(&overrides, &defaults, None);
        assert_eq!(configs.len(), TOPIC_CONFIGS.len());

        let retention = find(&configs, RETENTION_MS);
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("1000", ConfigSource::DynamicTopic)
        );
        assert!(!retention.read_only && !retention.is_default());
        assert_eq!(retention.synonyms.len(), 2);
        assert_eq!(retention.synonyms[1].name, "log.retention.ms");
        assert_eq!(retention.synonyms[1].value, "604800000");

        let segment = find(&configs, SEGMENT_BYTES);
        assert_eq!(segment.value, "1048576");
        assert_eq!(segment.source, ConfigSource::StaticBroker);
        assert_eq!(segment.synonyms[0].name, "log.segment.bytes");
        assert_eq!(segment.synonyms[1].value, (128 << 20).to_string());

        let policy = find(&configs, CLEANUP_POLICY);
        assert_eq!(
            (policy.value.as_str(), policy.source),
            ("delete", ConfigSource::Default)
        );
        assert!(policy.is_default());
        assert_eq!(policy.config_type.code(), 7);
    }

    #[test]
    fn codec_format_and_fixed_configs_defaults() {
        let configs = describe_topic(
            &ConfigOverrides::new(),
            &BrokerTopicDefaults::default(),
            None,
        );
        let compression = find(&configs, "compression.type");
        assert_eq!(compression.value, "producer");
        assert!(!compression.read_only);
        assert_eq!(compression.source.code(), 5);
        let format = find(&configs, "message.format.version");
        assert_eq!(
            (format.value.as_str(), format.read_only),
            ("3.0-IV1", false)
        );
        assert_eq!(format.synonyms[0].name, "log.message.format.version");
        let unclean = find(&configs, "unclean.leader.election.enable");
        assert_eq!(unclean.value, "false");
    }

    #[test]
    fn keys_filter_skips_unknown_names() {
        let keys = [RETENTION_MS, "not.a.config"];
        let configs = describe_topic(
            &ConfigOverrides::new(),
            &BrokerTopicDefaults::default(),
            Some(&keys),
        );
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0].name, RETENTION_MS);
        let all = describe_topic(
            &ConfigOverrides::new(),
            &BrokerTopicDefaults::default(),
            Some(&[]),
        );
        assert_eq!(all.len(), TOPIC_CONFIGS.len());
    }

    #[test]
    fn broker_values_use_broker_names_and_are_read_only() {
        let mut defaults = BrokerTopicDefaults {
            num_partitions: 3,
            ..Default::default()
        };
        defaults.set_by_broker_config.insert("num.partitions");
        let configs = describe_broker(&broker_topic_default_values(&defaults), None);
        let partitions = find(&configs, "num.partitions");
        assert_eq!(
            (partitions.value.as_str(), partitions.source),
            ("3", ConfigSource::StaticBroker)
        );
        assert!(partitions.read_only);
        let retention = find(&configs, "log.retention.ms");
        assert_eq!(retention.value, "604800000");
        assert_eq!(retention.source, ConfigSource::Default);
        let compression = find(&configs, "compression.type");
        assert_eq!(compression.value, "producer");
    }
}
