//! Coordinator settings, with Kafka's names and defaults. Like every broker setting they come
//! from a `ringlet start` flag, a `RINGLET_*` environment variable, or the `[groups]` table of
//! the `--config` file (flag > environment > file > default):
//!
//! | flag | Kafka setting | default |
//! |---|---|---|
//! | `--offsets-topic-num-partitions` | `offsets.topic.num.partitions` | 50 |
//! | `--group-initial-rebalance-delay-ms` | `group.initial.rebalance.delay.ms` | 3000 |
//! | `--group-min-session-timeout-ms` | `group.min.session.timeout.ms` | 6000 |
//! | `--group-max-session-timeout-ms` | `group.max.session.timeout.ms` | 1800000 |
//! | `--group-max-size` | `group.max.size` | 2147483647 |
//! | `--offsets-retention-minutes` | `offsets.retention.minutes` | 10080 |

use clap::Args;
use serde::Deserialize;

use super::group::GroupConfig;
use crate::config::broker::pick;
use crate::error::BrokerError;

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

/// The coordinator's `ringlet start` flags (flattened into `StartArgs`). `None` means "not
/// given as a flag or environment variable".
#[derive(Debug, Default, Clone, Args, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorArgs {
    /// Partitions of the internal `__consumer_offsets` topic when it is created [default: 50].
    #[arg(long, env = "RINGLET_OFFSETS_TOPIC_NUM_PARTITIONS", value_name = "N")]
    pub offsets_topic_num_partitions: Option<i32>,

    /// How long the first rebalance of an empty group waits for more members [default: 3000].
    #[arg(
        long,
        env = "RINGLET_GROUP_INITIAL_REBALANCE_DELAY_MS",
        value_name = "MS"
    )]
    pub group_initial_rebalance_delay_ms: Option<i32>,

    /// Smallest session timeout a member may ask for [default: 6000].
    #[arg(long, env = "RINGLET_GROUP_MIN_SESSION_TIMEOUT_MS", value_name = "MS")]
    pub group_min_session_timeout_ms: Option<i32>,

    /// Largest session timeout a member may ask for [default: 1800000].
    #[arg(long, env = "RINGLET_GROUP_MAX_SESSION_TIMEOUT_MS", value_name = "MS")]
    pub group_max_session_timeout_ms: Option<i32>,

    /// Most members a group may have [default: 2147483647].
    #[arg(long, env = "RINGLET_GROUP_MAX_SIZE", value_name = "N")]
    pub group_max_size: Option<usize>,

    /// How long the offsets of an empty group are kept [default: 10080, 7 days].
    #[arg(
        long,
        env = "RINGLET_OFFSETS_RETENTION_MINUTES",
        value_name = "MINUTES"
    )]
    pub offsets_retention_minutes: Option<i64>,
}

impl CoordinatorConfig {
    /// Flags/env (`args`, already merged by clap) over the file's `[groups]` table over
    /// Kafka's defaults; then validated.
    pub fn resolve(
        args: &CoordinatorArgs,
        file: Option<&CoordinatorArgs>,
    ) -> Result<Self, BrokerError> {
        let empty = CoordinatorArgs::default();
        let file = file.unwrap_or(&empty);
        let defaults = CoordinatorConfig::default();
        let group = &defaults.group;
        let minutes = args
            .offsets_retention_minutes
            .or(file.offsets_retention_minutes);
        let config = CoordinatorConfig {
            offsets_topic_partitions: pick(
                args.offsets_topic_num_partitions,
                file.offsets_topic_num_partitions,
                defaults.offsets_topic_partitions,
            ),
            group: GroupConfig {
                min_session_timeout_ms: pick(
                    args.group_min_session_timeout_ms,
                    file.group_min_session_timeout_ms,
                    group.min_session_timeout_ms,
                ),
                max_session_timeout_ms: pick(
                    args.group_max_session_timeout_ms,
                    file.group_max_session_timeout_ms,
                    group.max_session_timeout_ms,
                ),
                initial_rebalance_delay_ms: pick(
                    args.group_initial_rebalance_delay_ms,
                    file.group_initial_rebalance_delay_ms,
                    group.initial_rebalance_delay_ms,
                ),
                max_size: pick(args.group_max_size, file.group_max_size, group.max_size),
                offsets_retention_ms: minutes
                    .map_or(group.offsets_retention_ms, |m| m.saturating_mul(60_000)),
                ..group.clone()
            },
        };
        config.validate(minutes)?;
        Ok(config)
    }

    fn validate(&self, retention_minutes: Option<i64>) -> Result<(), BrokerError> {
        let fail = |msg: String| Err(BrokerError::InvalidConfig(msg));
        let group = &self.group;
        if self.offsets_topic_partitions < 1 {
            return fail(format!(
                "offsets-topic-num-partitions must be >= 1, got {}",
                self.offsets_topic_partitions
            ));
        }
        if group.initial_rebalance_delay_ms < 0 {
            return fail("group-initial-rebalance-delay-ms must be >= 0".into());
        }
        if group.min_session_timeout_ms < 0
            || group.min_session_timeout_ms > group.max_session_timeout_ms
        {
            return fail(format!(
                "need 0 <= group-min-session-timeout-ms ({}) <= group-max-session-timeout-ms ({})",
                group.min_session_timeout_ms, group.max_session_timeout_ms
            ));
        }
        if group.max_size == 0 {
            return fail("group-max-size must be >= 1".into());
        }
        if retention_minutes.is_some_and(|m| m < 1) {
            return fail("offsets-retention-minutes must be >= 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let args = CoordinatorArgs {
            offsets_topic_num_partitions: Some(7),
            ..CoordinatorArgs::default()
        };
        let file = CoordinatorArgs {
            offsets_topic_num_partitions: Some(3),
            offsets_retention_minutes: Some(2),
            ..CoordinatorArgs::default()
        };
        let config = CoordinatorConfig::resolve(&args, Some(&file)).unwrap();
        assert_eq!(config.offsets_topic_partitions, 7);
        assert_eq!(config.group.offsets_retention_ms, 120_000);
        assert_eq!(config.group.initial_rebalance_delay_ms, 3_000);
        assert_eq!(config.group.max_session_timeout_ms, 1_800_000);
    }

    #[test]
    fn invalid_settings_are_refused() {
        let bad = [
            CoordinatorArgs {
                offsets_topic_num_partitions: Some(0),
                ..CoordinatorArgs::default()
            },
            CoordinatorArgs {
                group_min_session_timeout_ms: Some(10_000),
                group_max_session_timeout_ms: Some(5_000),
                ..CoordinatorArgs::default()
            },
            CoordinatorArgs {
                offsets_retention_minutes: Some(0),
                ..CoordinatorArgs::default()
            },
            CoordinatorArgs {
                group_max_size: Some(0),
                ..CoordinatorArgs::default()
            },
        ];
        for args in bad {
            let result = CoordinatorConfig::resolve(&args, None);
            assert!(
                matches!(result, Err(BrokerError::InvalidConfig(_))),
                "{args:?} gave {result:?}"
            );
        }
    }
}
