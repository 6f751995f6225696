//! AlterConfigs (API key 33), v0-v2: the legacy, non-incremental form.
//!
//! For a topic, the request's entries *replace* all its overrides (a config left out goes back
//! to its default), exactly as Kafka's legacy API does. Every entry is validated by the topic
//! config model first; one bad entry fails the resource and changes nothing. With
//! validate_only nothing is stored. The new overrides go through the topic table
//! (`cluster::alter_topic_configs`), which persists them and applies them to the live
//! partition logs.
//!
//! Broker resources name this broker's id or "" (the cluster-wide default), through any broker;
//! another broker's id is INVALID_REQUEST, as Kafka's `ConfigAdminManager` answers (clients
//! send a per-broker change to that broker). No broker config can be changed at runtime yet,
//! so a broker resource with entries is INVALID_REQUEST ("Cannot update these configs
//! dynamically"), like Kafka for a read-only broker config; an empty one is accepted (nothing
//! to do). Broker-logger resources are INVALID_REQUEST here, as in Kafka (the legacy API does
//! not take them); IncrementalAlterConfigs takes them for this broker's id, with no entries
//! (the log level is fixed at start).
//!
//! IncrementalAlterConfigs shares [`alter_resource`] and differs only in how the new overrides
//! are computed.

use std::collections::HashSet;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;

use crate::config::config_def::ConfigError;
use crate::config::config_ops::replace_overrides;
use crate::config::topic_config::{BrokerTopicDefaults, ConfigOverrides};
use crate::config::topic_defaults::broker_topic_defaults;
use crate::error::BrokerError;
use crate::handlers::broker_resources::{alter_target, RESOURCE_BROKER_LOGGER};
use crate::handlers::describe_configs::{
    unsupported_resource_type, RESOURCE_BROKER, RESOURCE_TOPIC,
};
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::AlterConfigs;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 2;

pub async fn handle(ctx: &RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let state: &ShardState = &ctx.state;
    let keys: Vec<(i8, &str)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.as_str()))
        .collect();
    let duplicates = duplicated_resources(&keys);
    let mut response = AlterConfigsResponse::default();
    for resource in &request.resources {
        let key = (resource.resource_type, resource.resource_name.as_str());
        let entries: Vec<(&str, Option<&str>)> = resource
            .configs
            .iter()
            .map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str())))
            .collect();
        let names: Vec<&str> = entries.iter().map(|(name, _)| *name).collect();
        let outcome = if duplicates.contains(&key) {
            Err(duplicate_resource())
        } else if resource.resource_type == RESOURCE_BROKER_LOGGER {
            Err(BrokerError::InvalidRequest(
                "AlterConfigs is deprecated and does not support the resource type BROKER_LOGGER"
                    .to_string(),
            ))
        } else {
            let change = |_: &ConfigOverrides, _: &BrokerTopicDefaults| {
                replace_overrides(entries.iter().copied())
            };
            alter_resource(state, key, &names, change, request.validate_only).await
        };
        let (code, message) = error_parts(outcome);
        let mut result = AlterConfigsResourceResponse::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        result.error_code = code;
        result.error_message = message;
        response.responses.push(result);
    }
    response
}

/// Applies one resource's change: `change` computes a topic's new overrides from its current
/// ones; broker and broker-logger resources accept no entries.
pub async fn alter_resource(
    state: &ShardState,
    (resource_type, name): (i8, &str),
    entry_names: &[&str],
    change: impl FnOnce(&ConfigOverrides, &BrokerTopicDefaults) -> Result<ConfigOverrides, ConfigError>,
    validate_only: bool,
) -> Result<(), BrokerError> {
    match resource_type {
        RESOURCE_TOPIC => {
            let current = crate::cluster::topic_configs(state, name)
                .ok_or(BrokerError::UnknownTopicOrPartition)?;
            let next =
                change(&current, &broker_topic_defaults(state)).map_err(BrokerError::from)?;
            if validate_only || next == current {
                return Ok(());
            }
            crate::cluster::alter_topic_configs(state, name, next).await
        }
        RESOURCE_BROKER => {
            alter_target(name, state.node_id(), true)?;
            check_broker_entries(entry_names).map_err(BrokerError::from)
        }
        RESOURCE_BROKER_LOGGER => {
            alter_target(name, state.node_id(), false)?;
            check_broker_entries(entry_names).map_err(BrokerError::from)
        }
        other => Err(unsupported_resource_type(other)),
    }
}

/// No broker config is dynamic yet: any entry is refused, naming them all.
pub fn check_broker_entries(entry_names: &[&str]) -> Result<(), ConfigError> {
    if entry_names.is_empty() {
        return Ok(());
    }
    Err(ConfigError::NotDynamic(entry_names.join(", ")))
}

/// Resources named more than once in one request (Kafka: INVALID_REQUEST for each).
pub fn duplicated_resources<'a>(keys: &[(i8, &'a str)]) -> HashSet<(i8, &'a str)> {
    let mut seen = HashSet::new();
    keys.iter()
        .filter(|key| !seen.insert(**key))
        .copied()
        .collect()
}

pub fn duplicate_resource() -> BrokerError {
    BrokerError::InvalidRequest("Duplicate resource in request.".to_string())
}

/// `(error_code, error_message)` of a resource result.
pub fn error_parts(outcome: Result<(), BrokerError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(err) => (err.code_i16(), Some(StrBytes::from_string(err.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::ResponseError;

    #[test]
    fn broker_entries_are_not_dynamic() {
        assert!(check_broker_entries(&[]).is_ok());
        let err = BrokerError::from(check_broker_entries(&["log.retention.ms", "x"]).unwrap_err());
        assert_eq!(err.code_i16(), ResponseError::InvalidRequest.code());
        assert!(err.to_string().contains("log.retention.ms, x"), "{err}");
    }

    #[test]
    fn duplicate_resources_are_found() {
        let keys = [(2, "a"), (4, "1"), (2, "a"), (4, "a")];
        assert_eq!(duplicated_resources(&keys), HashSet::from([(2, "a")]));
    }

    #[test]
    fn config_errors_map_to_invalid_config_and_request() {
        let (code, message) = error_parts(Err(BrokerError::from(ConfigError::UnknownName(
            "bogus".into(),
        ))));
        assert_eq!(code, ResponseError::InvalidConfig.code());
        assert!(message.unwrap().contains("bogus"));
        let (code, _) = error_parts(Err(BrokerError::from(ConfigError::DuplicateKey(
            "a".into(),
        ))));
        assert_eq!(code, ResponseError::InvalidRequest.code());
        assert_eq!(error_parts(Ok(())), (0, None));
    }
}
