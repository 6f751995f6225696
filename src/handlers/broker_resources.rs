//! Which broker a BROKER or BROKER_LOGGER config resource may name on this broker, and the
//! loggers a BROKER_LOGGER resource lists: the rules Kafka's brokers apply
//! (`ConfigHelper.describeConfigs`, `ConfigAdminManager.preprocess`), so that every broker of
//! a cluster answers a request for another broker's configs the way Kafka does.
//!
//! Per-broker configs and loggers live on their broker: a resource naming another broker's id
//! is INVALID_REQUEST, and clients (the Java Admin client, librdkafka) send such a request to
//! the broker it names. The empty name is the cluster-wide dynamic default of BROKER configs,
//! the same through every broker; it is not a valid BROKER_LOGGER name.

use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::protocol::StrBytes;
use tracing::level_filters::LevelFilter;

use crate::error::BrokerError;

/// Kafka's `ConfigResource.Type` of a broker's loggers.
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
/// Kafka's `ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG`.
const SOURCE_BROKER_LOGGER: i8 = 6;
/// Kafka's `ConfigType.STRING`.
const TYPE_STRING: i8 = 2;
/// The one logger Ringlet has: its process-wide level (`RUST_LOG`), in log4j's name.
pub const ROOT_LOGGER: &str = "root";

/// DescribeConfigs of a BROKER resource: `Ok(None)` for the cluster-wide default (""),
/// `Ok(Some(()))` for this broker, INVALID_REQUEST for any other name.
pub fn describe_broker_target(name: &str, node_id: i32) -> Result<Option<()>, BrokerError> {
    if name.is_empty() {
        return Ok(None);
    }
    let id = broker_id(name, "Broker id must be an integer, but it is")?;
    if id != node_id {
        return Err(BrokerError::InvalidRequest(format!(
            "Unexpected broker id, expected {node_id} or empty string, but received {name}"
        )));
    }
    Ok(Some(()))
}

/// DescribeConfigs of a BROKER_LOGGER resource: only this broker's id.
pub fn describe_logger_target(name: &str, node_id: i32) -> Result<(), BrokerError> {
    if name.is_empty() {
        return Err(BrokerError::InvalidRequest(
            "Broker id must not be empty".to_string(),
        ));
    }
    let id = broker_id(name, "Broker id must be an integer, but it is")?;
    if id != node_id {
        return Err(BrokerError::InvalidRequest(format!(
            "Unexpected broker id, expected {node_id} but received {name}"
        )));
    }
    Ok(())
}

/// (Incremental)AlterConfigs of a BROKER resource ("" or this broker's id) or of a
/// BROKER_LOGGER resource (this broker's id only): Kafka's `validateResourceNameIsCurrentNodeId`.
pub fn alter_target(name: &str, node_id: i32, allow_empty: bool) -> Result<(), BrokerError> {
    if allow_empty && name.is_empty() {
        return Ok(());
    }
    let id = broker_id(name, "Node id must be an integer, but it is")?;
    if id != node_id {
        return Err(BrokerError::InvalidRequest(format!(
            "Unexpected node id. Expected {node_id}, but received {id}"
        )));
    }
    Ok(())
}

fn broker_id(name: &str, what: &str) -> Result<i32, BrokerError> {
    name.parse::<i32>()
        .map_err(|_| BrokerError::InvalidRequest(format!("{what}: {name}")))
}

/// This broker's loggers as DescribeConfigs lists them: `root` at the level the process logs
/// at. Read-only: the level is fixed at start (`RUST_LOG`).
pub fn describe_loggers(keys: Option<&[&str]>) -> Vec<DescribeConfigsResourceResult> {
    if keys.is_some_and(|keys| !keys.contains(&ROOT_LOGGER)) {
        return Vec::new();
    }
    let mut entry = DescribeConfigsResourceResult::default();
    entry.name = StrBytes::from_static_str(ROOT_LOGGER);
    entry.value = Some(StrBytes::from_static_str(log4j_level(
        LevelFilter::current(),
    )));
    entry.read_only = true;
    entry.config_source = SOURCE_BROKER_LOGGER;
    entry.config_type = TYPE_STRING;
    vec![entry]
}

fn log4j_level(level: LevelFilter) -> &'static str {
    match level {
        LevelFilter::OFF => "OFF",
        LevelFilter::ERROR => "ERROR",
        LevelFilter::WARN => "WARN",
        LevelFilter::INFO => "INFO",
        LevelFilter::DEBUG => "DEBUG",
        _ => "TRACE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::ResponseError;

    fn code<T>(outcome: Result<T, BrokerError>) -> i16 {
        outcome.map(|_| 0).unwrap_or_else(|err| err.code_i16())
    }

    #[test]
    fn broker_names_follow_kafka() {
        let invalid = ResponseError::InvalidRequest.code();
        assert_eq!(describe_broker_target("", 1).unwrap(), None);
        assert_eq!(describe_broker_target("1", 1).unwrap(), Some(()));
        let other = describe_broker_target("2", 1).unwrap_err();
        assert_eq!(other.code_i16(), invalid);
        assert!(
            other.to_string().contains("expected 1 or empty string"),
            "{other}"
        );
        assert_eq!(code(describe_broker_target("one", 1)), invalid);
        assert_eq!(code(describe_logger_target("", 1)), invalid);
        assert_eq!(code(describe_logger_target("2", 1)), invalid);
        assert_eq!(code(describe_logger_target("1", 1)), 0);
        assert_eq!(code(alter_target("", 1, true)), 0);
        assert_eq!(code(alter_target("", 1, false)), invalid);
        assert_eq!(code(alter_target("3", 1, true)), invalid);
        assert_eq!(code(alter_target("1", 1, false)), 0);
    }

    #[test]
    fn loggers_list_root_unless_filtered_out() {
        let all = describe_loggers(None);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name.as_str(), ROOT_LOGGER);
        assert!(describe_loggers(Some(&["kafka.server"])).is_empty());
        assert_eq!(log4j_level(LevelFilter::WARN), "WARN");
    }
}
