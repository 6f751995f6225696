//! The topic configuration model: which Kafka topic configs Ringlet knows, their defaults, how a
//! topic's overrides are validated, and how they become a [`LogConfig`].
//!
//! A topic stores only its *overrides* ([`ConfigOverrides`], name -> normalised value). The
//! effective value of a config is the override if there is one, else the broker-level default
//! ([`BrokerTopicDefaults`], from the broker config), else Kafka's built-in default. Keeping only
//! overrides is what Kafka does too: changing a broker default changes every topic that did not
//! override it, and DescribeConfigs can say where each value came from.
//!
//! Configs come in two kinds:
//! - *honoured*: retention.ms, retention.bytes, segment.bytes, segment.ms, max.message.bytes,
//!   index.interval.bytes (all drive the log), message.timestamp.type (drives produce),
//!   min.insync.replicas, compression.type (produce recompresses batches whose codec differs
//!   from the topic's, unless it is `producer`) and cleanup.policy. `cleanup.policy=compact` is
//!   accepted and stored, and a compacted topic refuses records without a key as Kafka does, but
//!   compaction is not built yet: a compacted topic is retained forever (a "delete" in the
//!   policy still applies time/size retention). segment.index.bytes is validated and stored but
//!   the log sizes its index itself. message.format.version is accepted, stored and described
//!   and has no effect, as in Kafka 3.x (deprecated there; batches are always format v2).
//! - *fixed* (read-only here): described so clients see what Kafka would show, and accepted only
//!   when set to exactly the fixed value.

use std::collections::{BTreeMap, BTreeSet};

use ringlet_io::log::LogConfig;
use ringlet_protocol::record_batch::BatchCompression;

use super::config_def::{ConfigDef, ConfigError, ConfigType, Constraint};

/// A topic's config overrides: Kafka config name -> normalised value. Only validated entries
/// (see [`validate_overrides`]) are ever stored, so every value parses.
pub type ConfigOverrides = BTreeMap<String, String>;

pub const RETENTION_MS: &str = "retention.ms";
pub const RETENTION_BYTES: &str = "retention.bytes";
pub const SEGMENT_BYTES: &str = "segment.bytes";
pub const SEGMENT_MS: &str = "segment.ms";
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
pub const CLEANUP_POLICY: &str = "cleanup.policy";
pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
pub const SEGMENT_INDEX_BYTES: &str = "segment.index.bytes";
pub const INDEX_INTERVAL_BYTES: &str = "index.interval.bytes";
pub const COMPRESSION_TYPE: &str = "compression.type";
pub const MESSAGE_FORMAT_VERSION: &str = "message.format.version";
/// What Kafka 3.x describes for message.format.version when nobody set it.
const MESSAGE_FORMAT_VERSION_DEFAULT: &str = "3.0-IV1";

/// Smallest segment.bytes: the log writes whole 4 KiB DMA blocks and would round a smaller
/// value up, so it is refused rather than silently changed (Kafka 3.x allows 14, Kafka 4 1 MiB).
pub const MIN_SEGMENT_BYTES: i64 = 4096;
const SEVEN_DAYS_MS: i64 = 7 * 24 * 60 * 60 * 1000;
const LONG_MAX: &str = "9223372036854775807";

const fn range(min: i64, max: i64) -> Constraint {
    Constraint::Range { min, max }
}

const fn honoured(
    name: &'static str,
    config_type: ConfigType,
    constraint: Constraint,
    broker_synonym: &'static str,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        config_type,
        constraint,
        fixed_value: None,
        broker_synonym: Some(broker_synonym),
        doc,
    }
}

const fn fixed(
    name: &'static str,
    config_type: ConfigType,
    constraint: Constraint,
    value: &'static str,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        config_type,
        constraint,
        fixed_value: Some(value),
        broker_synonym: None,
        doc,
    }
}

/// Every topic config Ringlet knows, sorted by name (DescribeConfigs lists them in this order).
pub static TOPIC_CONFIGS: &[ConfigDef] = &[
    honoured(CLEANUP_POLICY, ConfigType::List, Constraint::ListOf(&["compact", "delete"]),
        "log.cleanup.policy",
        "\"delete\" discards old segments by retention.ms/retention.bytes; \"compact\" is accepted \
         but compaction is not implemented yet (a compact-only topic is kept forever)."),
    honoured(COMPRESSION_TYPE, ConfigType::String,
        Constraint::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "compression.type",
        "Codec of the stored batches: \"producer\" keeps the producer's; any other value \
         recompresses batches produced in a different codec."),
    fixed("delete.retention.ms", ConfigType::Long, range(0, i64::MAX), "86400000",
        "How long delete tombstones are kept on compacted topics (compaction is not implemented)."),
    fixed("file.delete.delay.ms", ConfigType::Long, range(0, i64::MAX), "60000",
        "Delay before a deleted segment's file is removed."),
    honoured(INDEX_INTERVAL_BYTES, ConfigType::Int, range(0, i64::MAX), "log.index.interval.bytes",
        "Bytes of log between two entries of the sparse offset index."),
    fixed("max.compaction.lag.ms", ConfigType::Long, range(1, i64::MAX), LONG_MAX,
        "Maximum time a record stays uncompacted (compaction is not implemented)."),
    honoured(MAX_MESSAGE_BYTES, ConfigType::Int, range(0, i64::MAX), "message.max.bytes",
        "Largest record batch (after compression) the topic accepts."),
    honoured(MESSAGE_FORMAT_VERSION, ConfigType::String, Constraint::KafkaVersion,
        "log.message.format.version",
        "Deprecated (as in Kafka 3.x) and ignored: batches are always stored in format v2."),
    fixed("message.timestamp.after.max.ms", ConfigType::Long, range(0, i64::MAX), LONG_MAX,
        "How far in the future a CreateTime timestamp may be; not checked."),
    fixed("message.timestamp.before.max.ms", ConfigType::Long, range(0, i64::MAX), LONG_MAX,
        "How far in the past a CreateTime timestamp may be; not checked."),
    honoured(MESSAGE_TIMESTAMP_TYPE, ConfigType::String,
        Constraint::OneOf(&["CreateTime", "LogAppendTime"]), "log.message.timestamp.type",
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the \
         broker's clock on append."),
    fixed("min.cleanable.dirty.ratio", ConfigType::Double,
        Constraint::DoubleRange { min: 0.0, max: 1.0 }, "0.5",
        "Dirty ratio that triggers compaction (compaction is not implemented)."),
    fixed("min.compaction.lag.ms", ConfigType::Long, range(0, i64::MAX), "0",
        "Minimum time a record stays uncompacted (compaction is not implemented)."),
    honoured(MIN_INSYNC_REPLICAS, ConfigType::Int, range(1, i64::MAX), "min.insync.replicas",
        "Replicas that must have a batch before an acks=all produce succeeds."),
    fixed("preallocate", ConfigType::Boolean, Constraint::Boolean, "false",
        "Segment files are not preallocated."),
    honoured(RETENTION_BYTES, ConfigType::Long, range(i64::MIN, i64::MAX), "log.retention.bytes",
        "Size a partition may grow to before old segments are deleted; negative means unlimited."),
    honoured(RETENTION_MS, ConfigType::Long, range(-1, i64::MAX), "log.retention.ms",
        "Age after which a segment is deleted; -1 means forever."),
    honoured(SEGMENT_BYTES, ConfigType::Int, range(MIN_SEGMENT_BYTES, i64::MAX), "log.segment.bytes",
        "Size at which a new log segment is rolled; at least 4096 (the log writes 4 KiB blocks)."),
    honoured(SEGMENT_INDEX_BYTES, ConfigType::Int, range(4, i64::MAX), "log.index.size.max.bytes",
        "Maximum offset index size per segment; accepted, the log sizes its index itself."),
    fixed("segment.jitter.ms", ConfigType::Long, range(0, i64::MAX), "0",
        "Random jitter subtracted from segment.ms; none is applied."),
    honoured(SEGMENT_MS, ConfigType::Long, range(1, i64::MAX), "log.roll.ms",
        "Age at which a new log segment is rolled even if not full."),
    fixed("unclean.leader.election.enable", ConfigType::Boolean, Constraint::Boolean, "false",
        "Out-of-sync replicas never become leader."),
];

/// The definition of the topic config `name`, if Ringlet knows it.
pub fn topic_config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// Validates one `name=value` override and returns its normalised value.
pub fn validate_override(name: &str, value: Option<&str>) -> Result<String, ConfigError> {
    let def = topic_config_def(name).ok_or_else(|| ConfigError::UnknownName(name.to_string()))?;
    let value = value.ok_or_else(|| ConfigError::NullValue(name.to_string()))?;
    def.normalise(value)
}

/// Validates a full set of overrides (CreateTopics configs, a legacy AlterConfigs). Like a Kafka
/// `Properties`, a name given twice keeps its last value.
pub fn validate_overrides<'a>(
    entries: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<ConfigOverrides, ConfigError> {
    let mut overrides = ConfigOverrides::new();
    for (name, value) in entries {
        let normalised = validate_override(name, value)?;
        overrides.insert(name.to_string(), normalised);
    }
    Ok(overrides)
}

/// What cleanup.policy asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    fn parse(value: &str) -> Option<Self> {
        let items = super::config_def::split_list(value);
        let policy = CleanupPolicy {
            delete: items.contains(&"delete"),
            compact: items.contains(&"compact"),
        };
        (policy.delete || policy.compact).then_some(policy)
    }

    fn as_kafka_value(self) -> &'static str {
        match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            _ => "delete",
        }
    }
}

/// Which timestamp a topic's records carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "CreateTime" => Some(TimestampType::CreateTime),
            "LogAppendTime" => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }

    fn as_kafka_value(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// `compression.type`: the codec a topic stores its batches in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionType {
    /// Keep whatever codec the producer used.
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "producer" => CompressionType::Producer,
            "uncompressed" => CompressionType::Uncompressed,
            "gzip" => CompressionType::Gzip,
            "snappy" => CompressionType::Snappy,
            "lz4" => CompressionType::Lz4,
            "zstd" => CompressionType::Zstd,
            _ => return None,
        })
    }

    fn as_kafka_value(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }

    /// The codec batches must be stored in, `None` for `producer` (stored as produced).
    pub fn target(self) -> Option<BatchCompression> {
        Some(match self {
            CompressionType::Producer => return None,
            CompressionType::Uncompressed => BatchCompression::None,
            CompressionType::Gzip => BatchCompression::Gzip,
            CompressionType::Snappy => BatchCompression::Snappy,
            CompressionType::Lz4 => BatchCompression::Lz4,
            CompressionType::Zstd => BatchCompression::Zstd,
        })
    }
}

/// Effective values of the honoured configs of one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub segment_bytes: i32,
    pub segment_ms: i64,
    pub max_message_bytes: i32,
    pub cleanup_policy: CleanupPolicy,
    pub message_timestamp_type: TimestampType,
    pub min_insync_replicas: i32,
    pub segment_index_bytes: i32,
    pub index_interval_bytes: i32,
    pub compression_type: CompressionType,
}

impl Default for TopicConfig {
    /// Ringlet's built-in defaults: Kafka's, except segment.bytes, which is the log's own
    /// default (`LogConfig::default()`, 128 MiB) rather than Kafka's 1 GiB, so retention frees
    /// space in smaller steps and recovering the active segment stays quick.
    fn default() -> Self {
        TopicConfig {
            retention_ms: SEVEN_DAYS_MS,
            retention_bytes: -1,
            segment_bytes: i32::try_from(LogConfig::default().segment_bytes).unwrap_or(i32::MAX),
            segment_ms: SEVEN_DAYS_MS,
            max_message_bytes: 1_048_588,
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            message_timestamp_type: TimestampType::CreateTime,
            min_insync_replicas: 1,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            compression_type: CompressionType::Producer,
        }
    }
}

impl TopicConfig {
    /// The effective config of a topic: each override over the broker-level default.
    pub fn resolve(overrides: &ConfigOverrides, defaults: &BrokerTopicDefaults) -> Self {
        fn pick<T>(
            overrides: &ConfigOverrides,
            name: &str,
            parse: impl Fn(&str) -> Option<T>,
            default: T,
        ) -> T {
            overrides
                .get(name)
                .and_then(|value| parse(value))
                .unwrap_or(default)
        }
        let base = &defaults.topic;
        let num = |name, default| pick(overrides, name, |v| v.parse::<i64>().ok(), default);
        let int = |name, default| pick(overrides, name, |v| v.parse::<i32>().ok(), default);
        TopicConfig {
            retention_ms: num(RETENTION_MS, base.retention_ms),
            retention_bytes: num(RETENTION_BYTES, base.retention_bytes),
            segment_bytes: int(SEGMENT_BYTES, base.segment_bytes),
            segment_ms: num(SEGMENT_MS, base.segment_ms),
            max_message_bytes: int(MAX_MESSAGE_BYTES, base.max_message_bytes),
            cleanup_policy: pick(
                overrides,
                CLEANUP_POLICY,
                CleanupPolicy::parse,
                base.cleanup_policy,
            ),
            message_timestamp_type: pick(
                overrides,
                MESSAGE_TIMESTAMP_TYPE,
                TimestampType::parse,
                base.message_timestamp_type,
            ),
            min_insync_replicas: int(MIN_INSYNC_REPLICAS, base.min_insync_replicas),
            segment_index_bytes: int(SEGMENT_INDEX_BYTES, base.segment_index_bytes),
            index_interval_bytes: int(INDEX_INTERVAL_BYTES, base.index_interval_bytes),
            compression_type: pick(
                overrides,
                COMPRESSION_TYPE,
                CompressionType::parse,
                base.compression_type,
            ),
        }
    }

    /// The log settings of this topic's partitions. Without "delete" in cleanup.policy nothing
    /// is deleted by age or size (compaction, the alternative, is not implemented yet, so a
    /// compact-only topic keeps everything). `cache_bytes_max` is the log's own default.
    pub fn log_config(&self) -> LogConfig {
        let deletes = self.cleanup_policy.delete;
        LogConfig {
            segment_bytes: u64::try_from(self.segment_bytes).unwrap_or(MIN_SEGMENT_BYTES as u64),
            segment_ms: self.segment_ms,
            index_interval_bytes: u32::try_from(self.index_interval_bytes).unwrap_or(1),
            retention_ms: if deletes { self.retention_ms } else { -1 },
            retention_bytes: if deletes && self.retention_bytes >= 0 {
                self.retention_bytes
            } else {
                -1
            },
            max_batch_bytes: usize::try_from(self.max_message_bytes).unwrap_or(0),
            ..LogConfig::default()
        }
    }

    /// `message.timestamp.type=LogAppendTime`: the broker stamps batches with its clock.
    pub fn uses_log_append_time(&self) -> bool {
        self.message_timestamp_type == TimestampType::LogAppendTime
    }

    /// The Kafka string of an honoured config, `None` for a fixed or unknown one.
    pub fn value_of(&self, name: &str) -> Option<String> {
        let value = match name {
            RETENTION_MS => self.retention_ms.to_string(),
            RETENTION_BYTES => self.retention_bytes.to_string(),
            SEGMENT_BYTES => self.segment_bytes.to_string(),
            SEGMENT_MS => self.segment_ms.to_string(),
            MAX_MESSAGE_BYTES => self.max_message_bytes.to_string(),
            CLEANUP_POLICY => self.cleanup_policy.as_kafka_value().to_string(),
            MESSAGE_TIMESTAMP_TYPE => self.message_timestamp_type.as_kafka_value().to_string(),
            MIN_INSYNC_REPLICAS => self.min_insync_replicas.to_string(),
            SEGMENT_INDEX_BYTES => self.segment_index_bytes.to_string(),
            INDEX_INTERVAL_BYTES => self.index_interval_bytes.to_string(),
            COMPRESSION_TYPE => self.compression_type.as_kafka_value().to_string(),
            MESSAGE_FORMAT_VERSION => MESSAGE_FORMAT_VERSION_DEFAULT.to_string(),
            _ => return None,
        };
        Some(value)
    }
}

/// Broker-level defaults for topics and for CreateTopics, from the broker config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerTopicDefaults {
    /// Partitions of a topic created with num_partitions = -1 (`num.partitions`).
    pub num_partitions: i32,
    /// Replication factor of a topic created with replication_factor = -1
    /// (`default.replication.factor`).
    pub default_replication_factor: i16,
    /// The default of every honoured topic config.
    pub topic: TopicConfig,
    /// Which defaults the broker config set explicitly, by topic config name (`retention.ms`), or
    /// `num.partitions` / `default.replication.factor`. DescribeConfigs reports those as
    /// STATIC_BROKER_CONFIG and the rest as DEFAULT_CONFIG.
    pub set_by_broker_config: BTreeSet<&'static str>,
    /// A cluster member: replication factors above 1 are placed by the controller.
    pub clustered: bool,
}

impl Default for BrokerTopicDefaults {
    fn default() -> Self {
        BrokerTopicDefaults {
            num_partitions: 1,
            default_replication_factor: 1,
            topic: TopicConfig::default(),
            set_by_broker_config: BTreeSet::new(),
            clustered: false,
        }
    }
}

impl BrokerTopicDefaults {
    /// True when the broker config (not Kafka's built-in default) gives `topic_config`'s default.
    pub fn is_set_by_broker_config(&self, topic_config: &str) -> bool {
        self.set_by_broker_config.contains(topic_config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(entries: &[(&str, &str)]) -> ConfigOverrides {
        validate_overrides(entries.iter().map(|(n, v)| (*n, Some(*v)))).unwrap()
    }

    #[test]
    fn table_is_sorted_unique_and_fixed_values_are_valid() {
        let names: Vec<_> = TOPIC_CONFIGS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for def in TOPIC_CONFIGS {
            if let Some(value) = def.fixed_value {
                assert_eq!(def.normalise(value).as_deref(), Ok(value), "{}", def.name);
            }
        }
    }

    #[test]
    fn every_honoured_config_has_a_default_that_validates() {
        let defaults = TopicConfig::default();
        for def in TOPIC_CONFIGS.iter().filter(|d| d.fixed_value.is_none()) {
            let value = defaults.value_of(def.name).expect(def.name);
            assert_eq!(def.normalise(&value), Ok(value.clone()), "{}", def.name);
        }
    }

    #[test]
    fn kafka_defaults() {
        let config = TopicConfig::default();
        assert_eq!(config.retention_ms, 604_800_000);
        assert_eq!(config.retention_bytes, -1);
        assert_eq!(config.segment_ms, 604_800_000);
        assert_eq!(config.max_message_bytes, 1_048_588);
        assert_eq!(config.index_interval_bytes, 4096);
        assert_eq!(config.min_insync_replicas, 1);
        assert_eq!(config.value_of(CLEANUP_POLICY).as_deref(), Some("delete"));
    }

    #[test]
    fn compression_type_is_honoured_and_message_format_version_accepted() {
        let defaults = BrokerTopicDefaults::default();
        assert_eq!(TopicConfig::default().compression_type.target(), None);
        for (value, codec) in [
            ("uncompressed", BatchCompression::None),
            ("gzip", BatchCompression::Gzip),
            ("snappy", BatchCompression::Snappy),
            ("lz4", BatchCompression::Lz4),
            ("zstd", BatchCompression::Zstd),
        ] {
            let config = TopicConfig::resolve(&overrides(&[(COMPRESSION_TYPE, value)]), &defaults);
            assert_eq!(config.compression_type.target(), Some(codec));
            assert_eq!(config.value_of(COMPRESSION_TYPE).as_deref(), Some(value));
        }
        for version in [
            "2.8",
            "3.0-IV1",
            "0.10.2.1",
            "0.10.0-IV0",
            "2.8.1",
            "1.0",
            "3.9",
        ] {
            let o = overrides(&[(MESSAGE_FORMAT_VERSION, version)]);
            assert_eq!(o[MESSAGE_FORMAT_VERSION], version);
            assert_eq!(TopicConfig::resolve(&o, &defaults), TopicConfig::default());
        }
    }

    #[test]
    fn unknown_names_null_values_and_bad_values_are_refused() {
        assert_eq!(
            validate_override("retention.hours", Some("1")),
            Err(ConfigError::UnknownName("retention.hours".into()))
        );
        assert_eq!(
            validate_override(RETENTION_MS, None),
            Err(ConfigError::NullValue(RETENTION_MS.into()))
        );
        for (name, value) in [
            (RETENTION_MS, "-2"),
            (SEGMENT_BYTES, "4095"),
            (SEGMENT_BYTES, "4294967296"),
            (SEGMENT_MS, "0"),
            (MIN_INSYNC_REPLICAS, "0"),
            (CLEANUP_POLICY, "shred"),
            (CLEANUP_POLICY, ""),
            (MESSAGE_TIMESTAMP_TYPE, "WallClock"),
            (COMPRESSION_TYPE, "brotli"),
            (COMPRESSION_TYPE, "GZIP"),
            (MESSAGE_FORMAT_VERSION, "4.0"),
            (MESSAGE_FORMAT_VERSION, "banana"),
            ("unclean.leader.election.enable", "true"),
        ] {
            let err = validate_override(name, Some(value)).unwrap_err();
            assert!(!err.is_invalid_request(), "{name}={value}: {err}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn later_duplicates_win_and_values_are_normalised() {
        let o = overrides(&[
            (RETENTION_MS, "1"),
            (RETENTION_MS, " 2 "),
            (CLEANUP_POLICY, "delete , compact"),
        ]);
        assert_eq!(o[RETENTION_MS], "2");
        assert_eq!(o[CLEANUP_POLICY], "delete,compact");
    }

    #[test]
    fn log_config_follows_the_topic() {
        let defaults = BrokerTopicDefaults::default();
        let o = overrides(&[
            (SEGMENT_BYTES, "65536"),
            (RETENTION_MS, "60000"),
            (RETENTION_BYTES, "-7"),
            (MAX_MESSAGE_BYTES, "2000"),
            (INDEX_INTERVAL_BYTES, "100"),
        ]);
        let log = TopicConfig::resolve(&o, &defaults).log_config();
        assert_eq!(log.segment_bytes, 65536);
        assert_eq!(log.retention_ms, 60000);
        assert_eq!(log.retention_bytes, -1);
        assert_eq!(log.max_batch_bytes, 2000);
        assert_eq!(log.index_interval_bytes, 100);
        assert_eq!(log.cache_bytes_max, LogConfig::default().cache_bytes_max);
        let compact = overrides(&[(CLEANUP_POLICY, "compact"), (RETENTION_BYTES, "10")]);
        let log = TopicConfig::resolve(&compact, &defaults).log_config();
        assert_eq!((log.retention_ms, log.retention_bytes), (-1, -1));
        let both = overrides(&[(CLEANUP_POLICY, "compact,delete"), (RETENTION_BYTES, "10")]);
        assert_eq!(
            TopicConfig::resolve(&both, &defaults)
                .log_config()
                .retention_bytes,
            10
        );
    }

    #[test]
    fn default_log_config_is_the_logs_own() {
        let log = TopicConfig::default().log_config();
        let own = LogConfig::default();
        assert_eq!(log.segment_bytes, own.segment_bytes);
        assert_eq!(log.segment_ms, own.segment_ms);
        assert_eq!(log.retention_ms, own.retention_ms);
        assert_eq!(log.retention_bytes, own.retention_bytes);
        assert_eq!(log.index_interval_bytes, own.index_interval_bytes);
        assert_eq!(log.max_batch_bytes, own.max_batch_bytes);
    }

    #[test]
    fn overrides_win_over_broker_defaults() {
        let mut defaults = BrokerTopicDefaults::default();
        defaults.topic.retention_ms = 1000;
        defaults.topic.segment_bytes = 1 << 20;
        let o = overrides(&[
            (RETENTION_MS, "-1"),
            (CLEANUP_POLICY, "compact"),
            (MESSAGE_TIMESTAMP_TYPE, "LogAppendTime"),
        ]);
        let config = TopicConfig::resolve(&o, &defaults);
        assert_eq!(config.retention_ms, -1);
        assert_eq!(config.segment_bytes, 1 << 20);
        assert_eq!(
            config.cleanup_policy,
            CleanupPolicy {
                delete: false,
                compact: true
            }
        );
        assert_eq!(config.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(config.value_of(CLEANUP_POLICY).as_deref(), Some("compact"));
        assert_eq!(
            TopicConfig::resolve(&ConfigOverrides::new(), &defaults).retention_ms,
            1000
        );
    }
}
