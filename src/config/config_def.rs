//! Typed definitions of Kafka configs: the type, the allowed values and how a value string is
//! checked and normalised.
//!
//! Kafka sends every config value as a string. A [`ConfigDef`] says how to read that string the
//! way Kafka's `ConfigDef` does (trimmed, then parsed by type and checked against a
//! [`Constraint`]), so that a value Kafka would refuse is refused here with `INVALID_CONFIG` and a
//! message saying why. The normalised string (trimmed, list items trimmed) is what gets stored,
//! so stored values always parse.

use thiserror::Error;

/// Kafka's `DescribeConfigsResponse` config types (`config_type`, v3+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Long,
    Double,
    List,
}

impl ConfigType {
    /// The wire code Kafka uses (`org.apache.kafka.clients.admin.ConfigEntry.ConfigType`).
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

/// Where an effective config value comes from (`config_source` in DescribeConfigs v1+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// A per-topic override.
    DynamicTopic,
    /// Set in the broker's config file or command line.
    StaticBroker,
    /// Kafka's built-in default (nobody set it).
    Default,
}

impl ConfigSource {
    pub fn code(self) -> i8 {
        match self {
            ConfigSource::DynamicTopic => 1,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// What values a config accepts.
#[derive(Clone, Copy, Debug)]
pub enum Constraint {
    /// An integer (`Int` or `Long`) in `min..=max`.
    Range { min: i64, max: i64 },
    /// One of these strings, compared exactly (Kafka's `ValidString`).
    OneOf(&'static [&'static str]),
    /// A non-empty comma-separated list of these strings (Kafka's `ValidList`).
    ListOf(&'static [&'static str]),
    /// `true` or `false`, any case.
    Boolean,
    /// A floating point number in `min..=max`.
    DoubleRange { min: f64, max: f64 },
    /// A Kafka release as `MetadataVersion.fromVersionString` reads it ("2.8", "3.0-IV1",
    /// "0.10.2.1"): Kafka 3.x's validator of `message.format.version`.
    KafkaVersion,
}

/// Why a config entry was refused. `InvalidRequest` kinds are protocol misuse (Kafka answers
/// `INVALID_REQUEST`); every other kind is `INVALID_CONFIG`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("Unknown topic config name: {0}")]
    UnknownName(String),
    #[error("Invalid value {value} for configuration {name}: {reason}")]
    InvalidValue {
        name: String,
        value: String,
        reason: String,
    },
    #[error("Null value not supported for topic configs: {0}")]
    NullValue(String),
    #[error("Config {name} is read-only on this broker: its value is always {fixed}")]
    ReadOnly { name: String, fixed: String },
    #[error("Config value {operation} is not allowed for config key {name}: it is not a list")]
    ListOperationOnScalar { name: String, operation: String },
    #[error("Unknown config operation {0}")]
    UnknownOperation(i8),
    #[error("Duplicate config key {0} in one request")]
    DuplicateKey(String),
    #[error("Cannot update these configs dynamically: {0}")]
    NotDynamic(String),
}

impl ConfigError {
    /// True when Kafka answers this with `INVALID_REQUEST` rather than `INVALID_CONFIG`.
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            ConfigError::UnknownOperation(_)
                | ConfigError::DuplicateKey(_)
                | ConfigError::NotDynamic(_)
        )
    }
}

/// One config Kafka clients know by `name`.
#[derive(Clone, Copy, Debug)]
pub struct ConfigDef {
    pub name: &'static str,
    pub config_type: ConfigType,
    pub constraint: Constraint,
    /// `Some(value)`: read-only here, always this value (it is accepted when set to exactly this,
    /// so tools that write back a whole described config still work).
    pub fixed_value: Option<&'static str>,
    /// The broker-level config whose value is this config's default (`log.retention.ms` for
    /// `retention.ms`); listed as a synonym in DescribeConfigs.
    pub broker_synonym: Option<&'static str>,
    pub doc: &'static str,
}

impl ConfigDef {
    /// Checks `raw` and returns the normalised string to store.
    pub fn normalise(&self, raw: &str) -> Result<String, ConfigError> {
        let normalised = normalise_by_constraint(self, raw.trim())?;
        if let Some(fixed) = self.fixed_value {
            if normalised != fixed {
                return Err(ConfigError::ReadOnly {
                    name: self.name.to_string(),
                    fixed: fixed.to_string(),
                });
            }
        }
        Ok(normalised)
    }

    pub fn is_list(&self) -> bool {
        self.config_type == ConfigType::List
    }

    fn invalid(&self, value: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            name: self.name.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

fn normalise_by_constraint(def: &ConfigDef, value: &str) -> Result<String, ConfigError> {
    match def.constraint {
        Constraint::Range { min, max } => {
            let parsed: i64 = value
                .parse()
                .map_err(|_| def.invalid(value, "not a whole number"))?;
            let type_max = if def.config_type == ConfigType::Int {
                i64::from(i32::MAX)
            } else {
                i64::MAX
            };
            if parsed < min || parsed > max.min(type_max) {
                let reason = format!("must be between {min} and {}", max.min(type_max));
                return Err(def.invalid(value, reason));
            }
            Ok(parsed.to_string())
        }
        Constraint::OneOf(allowed) => {
            if allowed.contains(&value) {
                Ok(value.to_string())
            } else {
                Err(def.invalid(value, format!("must be one of {}", allowed.join(", "))))
            }
        }
        Constraint::ListOf(allowed) => normalise_list(def, value, allowed),
        Constraint::Boolean => match value.to_ascii_lowercase().as_str() {
            "true" => Ok("true".to_string()),
            "false" => Ok("false".to_string()),
            _ => Err(def.invalid(value, "must be true or false")),
        },
        Constraint::DoubleRange { min, max } => {
            let parsed: f64 = value
                .parse()
                .map_err(|_| def.invalid(value, "not a number"))?;
            if !(min..=max).contains(&parsed) {
                return Err(def.invalid(value, format!("must be between {min} and {max}")));
            }
            Ok(value.to_string())
        }
        Constraint::KafkaVersion if is_kafka_version(value) => Ok(value.to_string()),
        Constraint::KafkaVersion => Err(def.invalid(value, "not a valid Kafka version")),
    }
}

/// Kafka 3.9's releases with how many IVs each had (`IBP_2_8_IV0`, `IBP_2_8_IV1`...): every
/// `MetadataVersion` string that `fromVersionString` accepts.
const KAFKA_RELEASES: &[(&str, u8)] = &[
    ("0.8.0", 0),
    ("0.8.1", 0),
    ("0.8.2", 0),
    ("0.9.0", 0),
    ("0.10.0", 2),
    ("0.10.1", 3),
    ("0.10.2", 1),
    ("0.11.0", 3),
    ("1.0", 1),
    ("1.1", 1),
    ("2.0", 2),
    ("2.1", 3),
    ("2.2", 2),
    ("2.3", 2),
    ("2.4", 2),
    ("2.5", 1),
    ("2.6", 1),
    ("2.7", 3),
    ("2.8", 2),
    ("3.0", 2),
    ("3.1", 1),
    ("3.2", 1),
    ("3.3", 4),
    ("3.4", 1),
    ("3.5", 3),
    ("3.6", 3),
    ("3.7", 5),
    ("3.8", 1),
    ("3.9", 1),
];

/// Kafka's `MetadataVersion.fromVersionString`: the first three dot-separated segments of a
/// 0.x version (two of any other) name a release or one of its IVs.
fn is_kafka_version(value: &str) -> bool {
    let kept = if value.starts_with("0.") { 3 } else { 2 };
    let key: String = value.split('.').take(kept).collect::<Vec<_>>().join(".");
    KAFKA_RELEASES.iter().any(|(release, ivs)| {
        key == *release
            || key
                .strip_prefix(release)
                .and_then(|rest| rest.strip_prefix("-IV"))
                .and_then(|iv| iv.parse::<u8>().ok().filter(|n| n.to_string() == iv))
                .is_some_and(|iv| iv < *ivs)
    })
}

fn normalise_list(
    def: &ConfigDef,
    value: &str,
    allowed: &[&'static str],
) -> Result<String, ConfigError> {
    let items = split_list(value);
    if items.is_empty() {
        let reason = format!("must list at least one of {}", allowed.join(", "));
        return Err(def.invalid(value, reason));
    }
    if let Some(bad) = items.iter().find(|item| !allowed.contains(item)) {
        let reason = format!("{bad} is not one of {}", allowed.join(", "));
        return Err(def.invalid(value, reason));
    }
    Ok(items.join(","))
}

/// Splits a Kafka list value: comma separated, items trimmed, empty items dropped.
pub fn split_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(config_type: ConfigType, constraint: Constraint) -> ConfigDef {
        ConfigDef {
            name: "x",
            config_type,
            constraint,
            fixed_value: None,
            broker_synonym: None,
            doc: "",
        }
    }

    #[test]
    fn integers_are_trimmed_parsed_and_range_checked() {
        let long = def(
            ConfigType::Long,
            Constraint::Range {
                min: -1,
                max: i64::MAX,
            },
        );
        assert_eq!(long.normalise(" 42 ").unwrap(), "42");
        assert_eq!(long.normalise("-1").unwrap(), "-1");
        assert!(matches!(
            long.normalise("-2"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            long.normalise("1h"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(long.normalise("").is_err());
        assert!(long.normalise("99999999999999999999").is_err());
    }

    #[test]
    fn int_type_caps_at_i32_max() {
        let int = def(
            ConfigType::Int,
            Constraint::Range {
                min: 0,
                max: i64::MAX,
            },
        );
        assert_eq!(int.normalise("2147483647").unwrap(), "2147483647");
        let err = int.normalise("2147483648").unwrap_err();
        assert!(
            err.to_string().contains("between 0 and 2147483647"),
            "{err}"
        );
    }

    #[test]
    fn one_of_is_case_sensitive_like_kafka() {
        let d = def(
            ConfigType::String,
            Constraint::OneOf(&["CreateTime", "LogAppendTime"]),
        );
        assert_eq!(d.normalise("LogAppendTime").unwrap(), "LogAppendTime");
        assert!(d.normalise("logappendtime").is_err());
    }

    #[test]
    fn lists_are_normalised_and_checked_item_by_item() {
        let d = def(ConfigType::List, Constraint::ListOf(&["compact", "delete"]));
        assert_eq!(d.normalise(" compact , delete ").unwrap(), "compact,delete");
        assert_eq!(d.normalise("delete").unwrap(), "delete");
        assert!(d
            .normalise("delete,shred")
            .unwrap_err()
            .to_string()
            .contains("shred"));
        assert!(d.normalise(" , ").is_err());
    }

    #[test]
    fn booleans_and_doubles() {
        let b = def(ConfigType::Boolean, Constraint::Boolean);
        assert_eq!(b.normalise("TRUE").unwrap(), "true");
        assert!(b.normalise("yes").is_err());
        let d = def(
            ConfigType::Double,
            Constraint::DoubleRange { min: 0.0, max: 1.0 },
        );
        assert_eq!(d.normalise("0.5").unwrap(), "0.5");
        assert!(d.normalise("1.5").is_err());
        assert!(d.normalise("NaN").is_err());
    }

    #[test]
    fn kafka_versions_as_kafka_reads_them() {
        for ok in [
            "3.0-IV1",
            "2.8",
            "2.8.1",
            "0.10.2.1",
            "0.10.0-IV0",
            "0.8.2",
            "3.7-IV4",
        ] {
            assert!(is_kafka_version(ok), "{ok}");
        }
        for bad in [
            "", "4.0", "3.7-IV5", "2.8-IV01", "0.10", "banana", "3.0-IV", "-IV0",
        ] {
            assert!(!is_kafka_version(bad), "{bad}");
        }
    }

    #[test]
    fn fixed_value_accepts_only_itself() {
        let mut d = def(ConfigType::String, Constraint::OneOf(&["producer", "gzip"]));
        d.fixed_value = Some("producer");
        assert_eq!(d.normalise("producer").unwrap(), "producer");
        assert!(matches!(
            d.normalise("gzip"),
            Err(ConfigError::ReadOnly { .. })
        ));
    }

    #[test]
    fn error_kinds_map_to_request_or_config_errors() {
        assert!(ConfigError::UnknownOperation(9).is_invalid_request());
        assert!(ConfigError::DuplicateKey("a".into()).is_invalid_request());
        assert!(!ConfigError::UnknownName("a".into()).is_invalid_request());
        assert!(!ConfigError::NullValue("a".into()).is_invalid_request());
    }
}
