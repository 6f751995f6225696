//! IncrementalAlterConfigs (API key 44), v0-v1.
//!
//! Each entry is one operation on one config of a topic: SET (validated like any override),
//! DELETE (back to the default), APPEND and SUBTRACT (list configs only, i.e. cleanup.policy;
//! they start from the effective value, so APPEND compact on a default topic gives
//! "delete,compact"). A key given twice in one resource or an unknown operation is
//! INVALID_REQUEST; a bad value, an unknown name or a list operation on a scalar is
//! INVALID_CONFIG. All operations of a resource apply together or not at all; validate_only
//! stores nothing. Broker resources behave as in AlterConfigs (this broker's id or "", none is
//! dynamic yet); a broker-logger resource names this broker's id and takes no entry (the log
//! level is fixed at start).

use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use crate::config::config_ops::{apply_incremental, IncrementalEntry};
use crate::config::topic_config::{BrokerTopicDefaults, ConfigOverrides};
use crate::handlers::alter_configs::{
    alter_resource, duplicate_resource, duplicated_resources, error_parts,
};
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::IncrementalAlterConfigs;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 1;

pub async fn handle(
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let state: &ShardState = &ctx.state;
    let keys: Vec<(i8, &str)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.as_str()))
        .collect();
    let duplicates = duplicated_resources(&keys);
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in &request.resources {
        let key = (resource.resource_type, resource.resource_name.as_str());
        let entries = entries_of(resource);
        let names: Vec<&str> = entries.iter().map(|entry| entry.name).collect();
        let outcome = if duplicates.contains(&key) {
            Err(duplicate_resource())
        } else {
            let change = |current: &ConfigOverrides, defaults: &BrokerTopicDefaults| {
                apply_incremental(current, &entries, defaults)
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

/// The operations of one resource, borrowed from the request.
pub fn entries_of(resource: &AlterConfigsResource) -> Vec<IncrementalEntry<'_>> {
    resource
        .configs
        .iter()
        .map(|c| IncrementalEntry {
            name: c.name.as_str(),
            op_code: c.config_operation,
            value: c.value.as_ref().map(|v| v.as_str()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::config_def::ConfigError;
    use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
    use kafka_protocol::protocol::StrBytes;

    fn resource(ops: &[(&'static str, i8, Option<&'static str>)]) -> AlterConfigsResource {
        let mut resource = AlterConfigsResource::default();
        resource.resource_type = 2;
        resource.resource_name = StrBytes::from_static_str("t");
        for (name, op, value) in ops {
            let mut config = AlterableConfig::default();
            config.name = StrBytes::from_static_str(name);
            config.config_operation = *op;
            config.value = value.map(StrBytes::from_static_str);
            resource.configs.push(config);
        }
        resource
    }

    #[test]
    fn wire_operations_apply_in_order() {
        let current: ConfigOverrides = [("segment.ms".to_string(), "1000".to_string())].into();
        let request = resource(&[
            ("retention.ms", 0, Some("60000")),
            ("segment.ms", 1, None),
            ("cleanup.policy", 2, Some("compact")),
        ]);
        let next = apply_incremental(
            &current,
            &entries_of(&request),
            &BrokerTopicDefaults::default(),
        )
        .unwrap();
        let expected: ConfigOverrides = [
            ("retention.ms".to_string(), "60000".to_string()),
            ("cleanup.policy".to_string(), "delete,compact".to_string()),
        ]
        .into();
        assert_eq!(next, expected);
    }

    #[test]
    fn wire_errors_keep_their_kind() {
        let defaults = BrokerTopicDefaults::default();
        let none = ConfigOverrides::new();
        let bad_op = resource(&[("retention.ms", 9, Some("1"))]);
        assert_eq!(
            apply_incremental(&none, &entries_of(&bad_op), &defaults),
            Err(ConfigError::UnknownOperation(9))
        );
        let append_scalar = resource(&[("retention.ms", 2, Some("1"))]);
        let err = apply_incremental(&none, &entries_of(&append_scalar), &defaults).unwrap_err();
        assert!(!err.is_invalid_request(), "{err}");
    }
}
