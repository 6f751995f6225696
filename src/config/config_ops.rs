//! Changing a topic's overrides: the legacy AlterConfigs (the request's entries *replace* every
//! override) and IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT per entry).
//!
//! Both are pure: they take the current overrides and return the new set, or the first error.
//! Nothing is half-applied; the caller persists the result through the topic table.

use std::collections::BTreeSet;

use super::config_def::{split_list, ConfigError};
use super::topic_config::{
    topic_config_def, validate_override, validate_overrides, BrokerTopicDefaults, ConfigOverrides,
    TopicConfig,
};

/// One IncrementalAlterConfigs operation (Kafka's `AlterConfigOp.OpType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlterOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl AlterOp {
    pub fn from_code(code: i8) -> Result<Self, ConfigError> {
        match code {
            0 => Ok(AlterOp::Set),
            1 => Ok(AlterOp::Delete),
            2 => Ok(AlterOp::Append),
            3 => Ok(AlterOp::Subtract),
            other => Err(ConfigError::UnknownOperation(other)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            AlterOp::Set => "set",
            AlterOp::Delete => "delete",
            AlterOp::Append => "append",
            AlterOp::Subtract => "subtract",
        }
    }
}

/// One entry of an IncrementalAlterConfigs resource.
#[derive(Clone, Copy, Debug)]
pub struct IncrementalEntry<'a> {
    pub name: &'a str,
    pub op_code: i8,
    pub value: Option<&'a str>,
}

/// Legacy AlterConfigs: the entries become the topic's whole set of overrides.
pub fn replace_overrides<'a>(
    entries: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<ConfigOverrides, ConfigError> {
    validate_overrides(entries)
}

/// IncrementalAlterConfigs: applies `entries` in order to `current` and returns the new
/// overrides. APPEND and SUBTRACT start from the effective value (the override, else the broker
/// default), as Kafka does, so `APPEND cleanup.policy=compact` on a default topic gives
/// `delete,compact`. DELETE of a name that has no override (or that nobody knows) is a no-op.
pub fn apply_incremental(
    current: &ConfigOverrides,
    entries: &[IncrementalEntry<'_>],
    defaults: &BrokerTopicDefaults,
) -> Result<ConfigOverrides, ConfigError> {
    reject_duplicates(entries)?;
    let mut next = current.clone();
    for entry in entries {
        match AlterOp::from_code(entry.op_code)? {
            AlterOp::Set => {
                let value = validate_override(entry.name, entry.value)?;
                next.insert(entry.name.to_string(), value);
            }
            AlterOp::Delete => {
                next.remove(entry.name);
            }
            op @ (AlterOp::Append | AlterOp::Subtract) => {
                let value = alter_list(&next, entry, op, defaults)?;
                next.insert(entry.name.to_string(), value);
            }
        }
    }
    Ok(next)
}

fn reject_duplicates(entries: &[IncrementalEntry<'_>]) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for entry in entries {
        if !seen.insert(entry.name) {
            return Err(ConfigError::DuplicateKey(entry.name.to_string()));
        }
    }
    Ok(())
}

fn alter_list(
    overrides: &ConfigOverrides,
    entry: &IncrementalEntry<'_>,
    op: AlterOp,
    defaults: &BrokerTopicDefaults,
) -> Result<String, ConfigError> {
    let def =
        topic_config_def(entry.name).ok_or_else(|| ConfigError::UnknownName(entry.name.into()))?;
    if !def.is_list() {
        return Err(ConfigError::ListOperationOnScalar {
            name: entry.name.to_string(),
            operation: op.name().to_string(),
        });
    }
    let operand = entry
        .value
        .ok_or_else(|| ConfigError::NullValue(entry.name.to_string()))?;
    let current = match overrides.get(entry.name) {
        Some(value) => value.clone(),
        None => TopicConfig::resolve(overrides, defaults)
            .value_of(entry.name)
            .unwrap_or_default(),
    };
    let mut items: Vec<&str> = split_list(&current);
    for item in split_list(operand) {
        match op {
            AlterOp::Append if !items.contains(&item) => items.push(item),
            AlterOp::Subtract => items.retain(|existing| *existing != item),
            _ => {}
        }
    }
    def.normalise(&items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::topic_config::{CLEANUP_POLICY, RETENTION_MS, SEGMENT_MS};

    fn entry<'a>(name: &'a str, op_code: i8, value: Option<&'a str>) -> IncrementalEntry<'a> {
        IncrementalEntry {
            name,
            op_code,
            value,
        }
    }

    fn with(entries: &[(&str, &str)]) -> ConfigOverrides {
        entries
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_and_delete_touch_only_named_entries() {
        let current = with(&[(RETENTION_MS, "1000"), (SEGMENT_MS, "5000")]);
        let next = apply_incremental(
            &current,
            &[
                entry(RETENTION_MS, 0, Some("2000")),
                entry(SEGMENT_MS, 1, None),
            ],
            &BrokerTopicDefaults::default(),
        )
        .unwrap();
        assert_eq!(next, with(&[(RETENTION_MS, "2000")]));
    }

    #[test]
    fn delete_of_absent_or_unknown_name_is_a_noop() {
        let current = with(&[(RETENTION_MS, "1000")]);
        let defaults = BrokerTopicDefaults::default();
        let next = apply_incremental(
            &current,
            &[entry("no.such.config", 1, None), entry(SEGMENT_MS, 1, None)],
            &defaults,
        )
        .unwrap();
        assert_eq!(next, current);
    }

    #[test]
    fn append_starts_from_the_default_and_skips_duplicates() {
        let defaults = BrokerTopicDefaults::default();
        let once = apply_incremental(
            &ConfigOverrides::new(),
            &[entry(CLEANUP_POLICY, 2, Some("compact"))],
            &defaults,
        )
        .unwrap();
        assert_eq!(once[CLEANUP_POLICY], "delete,compact");
        let twice = apply_incremental(
            &once,
            &[entry(CLEANUP_POLICY, 2, Some("compact,delete"))],
            &defaults,
        )
        .unwrap();
        assert_eq!(twice[CLEANUP_POLICY], "delete,compact");
    }

    #[test]
    fn subtract_removes_items_and_refuses_an_empty_policy() {
        let defaults = BrokerTopicDefaults::default();
        let current = with(&[(CLEANUP_POLICY, "delete,compact")]);
        let next = apply_incremental(
            &current,
            &[entry(CLEANUP_POLICY, 3, Some("delete"))],
            &defaults,
        )
        .unwrap();
        assert_eq!(next[CLEANUP_POLICY], "compact");
        let err = apply_incremental(
            &next,
            &[entry(CLEANUP_POLICY, 3, Some("compact"))],
            &defaults,
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err}");
    }

    #[test]
    fn list_operations_on_scalars_and_bad_values_fail_whole_request() {
        let defaults = BrokerTopicDefaults::default();
        let current = with(&[(RETENTION_MS, "1000")]);
        let err = apply_incremental(&current, &[entry(RETENTION_MS, 2, Some("5"))], &defaults)
            .unwrap_err();
        assert!(matches!(err, ConfigError::ListOperationOnScalar { .. }));
        let err = apply_incremental(
            &current,
            &[
                entry(SEGMENT_MS, 0, Some("10")),
                entry(CLEANUP_POLICY, 2, Some("shred")),
            ],
            &defaults,
        )
        .unwrap_err();
        assert!(!err.is_invalid_request());
    }

    #[test]
    fn protocol_misuse_is_an_invalid_request() {
        let defaults = BrokerTopicDefaults::default();
        let none = ConfigOverrides::new();
        let dup = [
            entry(RETENTION_MS, 0, Some("1")),
            entry(RETENTION_MS, 1, None),
        ];
        assert!(apply_incremental(&none, &dup, &defaults)
            .unwrap_err()
            .is_invalid_request());
        let bad_op = [entry(RETENTION_MS, 7, Some("1"))];
        assert_eq!(
            apply_incremental(&none, &bad_op, &defaults),
            Err(ConfigError::UnknownOperation(7))
        );
        assert!(matches!(
            apply_incremental(&none, &[entry(RETENTION_MS, 0, None)], &defaults),
            Err(ConfigError::NullValue(_))
        ));
    }

    #[test]
    fn legacy_alter_replaces_everything() {
        let next = replace_overrides([(SEGMENT_MS, Some("60000"))]).unwrap();
        assert_eq!(next, with(&[(SEGMENT_MS, "60000")]));
        assert!(replace_overrides([("bogus", Some("1"))]).is_err());
    }
}
