//! DescribeConfigs (API key 32), v1-v4.
//!
//! Topic resources (type 2) list every topic config Ringlet knows with its effective value and
//! source: DYNAMIC_TOPIC_CONFIG for an override, STATIC_BROKER_CONFIG where the broker config
//! set the default, DEFAULT_CONFIG otherwise. Broker resources (type 4) follow Kafka's broker
//! rules (`broker_resources`): this broker's id lists its broker configs (`broker.rack`
//! included when set), all read-only since none can be changed at runtime; "" is the
//! cluster-wide dynamic defaults, of which there are none, so it lists nothing (the same
//! through every broker); another broker's id is INVALID_REQUEST (clients send it to that
//! broker). Broker-logger resources (type 8) list this broker's `root` logger level for its
//! own id, INVALID_REQUEST for "" or another id. Synonyms are sent only with include_synonyms, documentation only with
//! include_documentation; config_type goes out from v3 (the codec drops it before). A
//! configuration_keys list restricts the answer to those names (unknown ones are skipped).
//!
//! v0 is not offered: kafka-protocol 0.18 starts DescribeConfigs at v1 (v0 had `is_default`
//! instead of a source; every maintained client negotiates v1+).

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::config::config_describe::{describe_broker, describe_topic, DescribedConfig};
use crate::config::topic_defaults::{broker_config_values, broker_topic_defaults};
use crate::error::BrokerError;
use crate::handlers::broker_resources::{
    describe_broker_target, describe_logger_target, describe_loggers, RESOURCE_BROKER_LOGGER,
};
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::DescribeConfigs;
pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 4;

/// Kafka's `ConfigResource.Type` codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// What the request asks to include besides values.
#[derive(Clone, Copy, Debug)]
pub struct Detail {
    pub synonyms: bool,
    pub documentation: bool,
}

pub async fn handle(
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let state: &ShardState = &ctx.state;
    let detail = Detail {
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
    };
    let mut response = DescribeConfigsResponse::default();
    for resource in &request.resources {
        let result = if resource.resource_type == RESOURCE_BROKER_LOGGER {
            logger_result(state, resource)
        } else {
            resource_result(resource, describe_resource(state, resource), detail)
        };
        response.results.push(result);
    }
    response
}

/// A BROKER_LOGGER resource: this broker's loggers, or why not.
fn logger_result(state: &ShardState, resource: &DescribeConfigsResource) -> DescribeConfigsResult {
    let detail = Detail {
        synonyms: false,
        documentation: false,
    };
    let name = resource.resource_name.as_str();
    match describe_logger_target(name, state.node_id()) {
        Ok(()) => {
            let keys: Option<Vec<&str>> = resource
                .configuration_keys
                .as_ref()
                .map(|keys| keys.iter().map(|key| key.as_str()).collect());
            let mut result = resource_result(resource, Ok(Vec::new()), detail);
            result.configs = describe_loggers(keys.as_deref());
            result
        }
        Err(err) => resource_result(resource, Err(err), detail),
    }
}

fn describe_resource(
    state: &ShardState,
    resource: &DescribeConfigsResource,
) -> Result<Vec<DescribedConfig>, BrokerError> {
    let keys: Option<Vec<&str>> = resource
        .configuration_keys
        .as_ref()
        .map(|keys| keys.iter().map(|key| key.as_str()).collect());
    let keys = keys.as_deref();
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        RESOURCE_TOPIC => {
            let overrides = crate::cluster::topic_configs(state, name)
                .ok_or(BrokerError::UnknownTopicOrPartition)?;
            Ok(describe_topic(
                &overrides,
                &broker_topic_defaults(state),
                keys,
            ))
        }
        RESOURCE_BROKER => match describe_broker_target(name, state.node_id())? {
            // The cluster-wide dynamic broker defaults: none can be set.
            None => Ok(Vec::new()),
            Some(()) => Ok(describe_broker(&broker_config_values(&state.config), keys)),
        },
        other => Err(unsupported_resource_type(other)),
    }
}

pub fn unsupported_resource_type(resource_type: i8) -> BrokerError {
    BrokerError::InvalidRequest(format!(
        "Resource type {resource_type} is not supported; Ringlet serves topic (2), broker (4) \
         and broker logger (8) configs"
    ))
}

pub fn resource_result(
    resource: &DescribeConfigsResource,
    outcome: Result<Vec<DescribedConfig>, BrokerError>,
    detail: Detail,
) -> DescribeConfigsResult {
    let mut result = DescribeConfigsResult::default();
    result.resource_type = resource.resource_type;
    result.resource_name = resource.resource_name.clone();
    match outcome {
        Ok(configs) => {
            result.error_code = 0;
            result.error_message = None;
            result.configs = configs
                .into_iter()
                .map(|c| config_entry(c, detail))
                .collect();
        }
        Err(err) => {
            result.error_code = err.code_i16();
            result.error_message = Some(StrBytes::from_string(err.to_string()));
        }
    }
    result
}

fn config_entry(config: DescribedConfig, detail: Detail) -> DescribeConfigsResourceResult {
    let mut entry = DescribeConfigsResourceResult::default();
    entry.read_only = config.read_only;
    entry.config_source = config.source.code();
    entry.is_sensitive = config.is_sensitive;
    entry.config_type = config.config_type.code();
    entry.documentation = detail
        .documentation
        .then(|| StrBytes::from_static_str(config.documentation));
    if detail.synonyms {
        entry.synonyms = config
            .synonyms
            .into_iter()
            .map(|synonym| {
                let mut s = DescribeConfigsSynonym::default();
                s.name = StrBytes::from_string(synonym.name);
                s.value = Some(StrBytes::from_string(synonym.value));
                s.source = synonym.source.code();
                s
            })
            .collect();
    }
    entry.name = StrBytes::from_string(config.name);
    entry.value = Some(StrBytes::from_string(config.value));
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::topic_config::{BrokerTopicDefaults, ConfigOverrides};
    use kafka_protocol::ResponseError;

    fn resource(resource_type: i8, name: &'static str) -> DescribeConfigsResource {
        let mut r = DescribeConfigsResource::default();
        r.resource_type = resource_type;
        r.resource_name = StrBytes::from_static_str(name);
        r
    }

    fn topic_configs() -> Vec<DescribedConfig> {
        let overrides: ConfigOverrides = [("retention.ms".to_string(), "5000".to_string())].into();
        describe_topic(&overrides, &BrokerTopicDefaults::default(), None)
    }

    #[test]
    fn entries_carry_value_source_and_type() {
        let detail = Detail {
            synonyms: false,
            documentation: false,
        };
        let result = resource_result(&resource(RESOURCE_TOPIC, "t"), Ok(topic_configs()), detail);
        assert_eq!((result.error_code, result.error_message.clone()), (0, None));
        let retention = result
            .configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .unwrap();
        assert_eq!(retention.value.as_ref().unwrap().as_str(), "5000");
        assert_eq!(retention.config_source, 1);
        assert_eq!(retention.config_type, 5);
        assert!(retention.synonyms.is_empty());
        assert_eq!(retention.documentation, None);
        let policy = result
            .configs
            .iter()
            .find(|c| c.name.as_str() == "cleanup.policy")
            .unwrap();
        assert_eq!(policy.config_source, 5);
    }

    #[test]
    fn synonyms_and_documentation_only_when_asked() {
        let detail = Detail {
            synonyms: true,
            documentation: true,
        };
        let result = resource_result(&resource(RESOURCE_TOPIC, "t"), Ok(topic_configs()), detail);
        let retention = result
            .configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .unwrap();
        let names: Vec<_> = retention.synonyms.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["retention.ms", "log.retention.ms"]);
        assert_eq!(retention.synonyms[1].source, 5);
        assert!(retention
            .documentation
            .as_ref()
            .is_some_and(|d| !d.is_empty()));
    }

    #[test]
    fn errors_become_resource_errors() {
        let detail = Detail {
            synonyms: false,
            documentation: false,
        };
        let missing = resource_result(
            &resource(RESOURCE_TOPIC, "nope"),
            Err(BrokerError::UnknownTopicOrPartition),
            detail,
        );
        assert_eq!(
            missing.error_code,
            ResponseError::UnknownTopicOrPartition.code()
        );
        assert!(missing.configs.is_empty());
        assert_eq!(missing.resource_name.as_str(), "nope");
        let group = unsupported_resource_type(3);
        assert_eq!(group.code_i16(), ResponseError::InvalidRequest.code());
    }
}
