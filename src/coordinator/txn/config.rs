//! Transaction coordinator settings, read from `RINGLET_*` environment variables (as the
//! group coordinator's are) with Kafka's defaults.

use super::machine::TxnLimits;

/// Kafka's `transaction.state.log.num.partitions`.
pub const DEFAULT_TXN_TOPIC_PARTITIONS: i32 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// Partitions of `__transaction_state` when it is created.
    pub topic_partitions: i32,
    /// `transaction.max.timeout.ms` and `transactional.id.expiration.ms`.
    pub limits: TxnLimits,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often timed-out
    /// transactions are aborted and unfinished markers retried.
    pub abort_check_interval_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub expiration_check_interval_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            topic_partitions: DEFAULT_TXN_TOPIC_PARTITIONS,
            limits: TxnLimits::default(),
            abort_check_interval_ms: 10_000,
            expiration_check_interval_ms: 3_600_000,
        }
    }
}

impl TxnConfig {
    /// Defaults overridden by `RINGLET_TRANSACTION_STATE_PARTITIONS`,
    /// `RINGLET_TRANSACTION_MAX_TIMEOUT_MS`, `RINGLET_TRANSACTIONAL_ID_EXPIRATION_MS`,
    /// `RINGLET_TRANSACTION_ABORT_CHECK_INTERVAL_MS`,
    /// `RINGLET_TRANSACTION_EXPIRATION_CHECK_INTERVAL_MS`. Unparsable values are logged and
    /// ignored.
    pub fn from_env() -> TxnConfig {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> TxnConfig {
        let mut config = TxnConfig::default();
        let get = |name: &str| -> Option<i64> {
            let text = lookup(name)?;
            match text.trim().parse::<i64>() {
                Ok(value) if value > 0 => Some(value),
                _ => {
                    tracing::warn!(name, value = %text, "ignoring invalid transaction setting");
                    None
                }
            }
        };
        let to_i32 = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
        if let Some(v) = get("RINGLET_TRANSACTION_STATE_PARTITIONS") {
            config.topic_partitions = to_i32(v);
        }
        if let Some(v) = get("RINGLET_TRANSACTION_MAX_TIMEOUT_MS") {
            config.limits.max_timeout_ms = to_i32(v);
        }
        if let Some(v) = get("RINGLET_TRANSACTIONAL_ID_EXPIRATION_MS") {
            config.limits.id_expiration_ms = v;
        }
        if let Some(v) = get("RINGLET_TRANSACTION_ABORT_CHECK_INTERVAL_MS") {
            config.abort_check_interval_ms = u64::try_from(v).unwrap_or(u64::MAX);
        }
        if let Some(v) = get("RINGLET_TRANSACTION_EXPIRATION_CHECK_INTERVAL_MS") {
            config.expiration_check_interval_ms = v;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults_and_bad_values_are_ignored() {
        let config = TxnConfig::from_lookup(|name| match name {
            "RINGLET_TRANSACTION_STATE_PARTITIONS" => Some("4".into()),
            "RINGLET_TRANSACTION_MAX_TIMEOUT_MS" => Some("-3".into()),
            "RINGLET_TRANSACTION_ABORT_CHECK_INTERVAL_MS" => Some("250".into()),
            _ => None,
        });
        assert_eq!(config.topic_partitions, 4);
        assert_eq!(config.limits.max_timeout_ms, 900_000);
        assert_eq!(config.abort_check_interval_ms, 250);
    }
}
