//! Coordinator settings. Read from `RINGLET_*` environment variables until the broker's
//! flags carry them (the CLI is owned by the config module); defaults are Kafka's, except
//! where a single-node broker wants faster tests (none so far).

use super::group::GroupConfig;

/// Kafka's `offsets.topic.num.partitions`.
pub const DEFAULT_OFFSETS_TOPIC_PARTITIONS: i32 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Partitions of `__consumer_offsets` when it is created.
    pub offsets_topic_partitions: i32,
    pub group: GroupConfig,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            offsets_topic_partitions: DEFAULT_OFFSETS_TOPIC_PARTITIONS,
            group: GroupConfig::default(),
        }
    }
}

impl CoordinatorConfig {
    /// Defaults overridden by `RINGLET_OFFSETS_TOPIC_PARTITIONS`,
    /// `RINGLET_GROUP_INITIAL_REBALANCE_DELAY_MS`, `RINGLET_GROUP_MIN_SESSION_TIMEOUT_MS`,
    /// `RINGLET_GROUP_MAX_SESSION_TIMEOUT_MS`, `RINGLET_OFFSETS_RETENTION_MINUTES`,
    /// `RINGLET_GROUP_MAX_SIZE`. Unparsable values are logged and ignored.
    pub fn from_env() -> CoordinatorConfig {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> CoordinatorConfig {
        let mut config = CoordinatorConfig::default();
        let get = |name: &str| -> Option<i64> {
            let text = lookup(name)?;
            match text.trim().parse::<i64>() {
                Ok(value) if value >= 0 => Some(value),
                _ => {
                    tracing::warn!(name, value = %text, "ignoring invalid coordinator setting");
                    None
                }
            }
        };
        let to_i32 = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
        if let Some(v) = get("RINGLET_OFFSETS_TOPIC_PARTITIONS").filter(|v| *v > 0) {
            config.offsets_topic_partitions = to_i32(v);
        }
        if let Some(v) = get("RINGLET_GROUP_INITIAL_REBALANCE_DELAY_MS") {
            config.group.initial_rebalance_delay_ms = to_i32(v);
        }
        if let Some(v) = get("RINGLET_GROUP_MIN_SESSION_TIMEOUT_MS") {
            config.group.min_session_timeout_ms = to_i32(v);
        }
        if let Some(v) = get("RINGLET_GROUP_MAX_SESSION_TIMEOUT_MS") {
            config.group.max_session_timeout_ms = to_i32(v);
        }
        if let Some(v) = get("RINGLET_OFFSETS_RETENTION_MINUTES") {
            config.group.offsets_retention_ms = v.saturating_mul(60_000);
        }
        if let Some(v) = get("RINGLET_GROUP_MAX_SIZE").filter(|v| *v > 0) {
            config.group.max_size = usize::try_from(v).unwrap_or(usize::MAX);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults_and_bad_values_are_ignored() {
        let config = CoordinatorConfig::from_lookup(|name| match name {
            "RINGLET_OFFSETS_TOPIC_PARTITIONS" => Some("7".into()),
            "RINGLET_OFFSETS_RETENTION_MINUTES" => Some("2".into()),
            "RINGLET_GROUP_INITIAL_REBALANCE_DELAY_MS" => Some("nope".into()),
            _ => None,
        });
        assert_eq!(config.offsets_topic_partitions, 7);
        assert_eq!(config.group.offsets_retention_ms, 120_000);
        assert_eq!(config.group.initial_rebalance_delay_ms, 3_000);
    }
}
