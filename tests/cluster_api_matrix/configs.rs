//! The config APIs: topic configs are the cluster's (changed through one broker, seen through
//! all); broker and broker-logger configs follow Kafka's per-broker rules on every broker (its
//! own id answers, with `broker.rack`; another broker's id is INVALID_REQUEST; "" is the
//! cluster-wide default, the same everywhere).

use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as LegacyResource, AlterableConfig as LegacyConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::ctx::{Ctx, INVALID_REQUEST, TOPIC};
use crate::common::api_call::call;
use crate::common::cluster::CLUSTER_TIMEOUT;
use crate::common::wait_for;

const TOPIC_RESOURCE: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;

fn describe(
    ctx: &Ctx,
    via: i32,
    version: i16,
    resources: &[(i8, String)],
) -> Vec<DescribeConfigsResult> {
    let request = DescribeConfigsRequest::default().with_resources(
        resources
            .iter()
            .map(|(kind, name)| {
                DescribeConfigsResource::default()
                    .with_resource_type(*kind)
                    .with_resource_name(StrBytes::from_string(name.clone()))
                    .with_configuration_keys(None)
            })
            .collect(),
    );
    call(ctx.addr(via), version, &request).results
}

fn value_of(result: &DescribeConfigsResult, name: &str) -> Option<String> {
    result
        .configs
        .iter()
        .find(|c| c.name.as_str() == name)
        .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
}

pub fn describe_configs(ctx: &mut Ctx, via: i32, version: i16) {
    let other = ctx.others(via)[0];
    let resources = [
        (TOPIC_RESOURCE, TOPIC.to_string()),
        (BROKER, via.to_string()),
        (BROKER, other.to_string()),
        (BROKER, String::new()),
        (BROKER_LOGGER, via.to_string()),
        (BROKER_LOGGER, other.to_string()),
        (BROKER_LOGGER, String::new()),
    ];
    let results = describe(ctx, via, version, &resources);
    let [topic, own, foreign, default, logger, foreign_logger, no_logger] = &results[..] else {
        panic!(
            "{} results for {} resources",
            results.len(),
            resources.len()
        );
    };
    assert_eq!(topic.error_code, 0);
    assert!(
        value_of(topic, "cleanup.policy").is_some(),
        "{TOPIC} configs through {via}"
    );
    assert_eq!(own.error_code, 0, "{:?}", own.error_message);
    assert_eq!(value_of(own, "broker.id"), Some(via.to_string()));
    assert_eq!(value_of(own, "broker.rack"), Some(format!("rack-{via}")));
    for refused in [foreign, foreign_logger, no_logger] {
        assert_eq!(
            refused.error_code, INVALID_REQUEST,
            "{}/{:?} through {via}",
            refused.resource_type, refused.resource_name
        );
        assert!(refused.configs.is_empty());
    }
    // The cluster-wide dynamic defaults: none is set, the same answer through every broker.
    assert_eq!(
        (default.error_code, default.configs.len()),
        (0, 0),
        "\"\" through {via}"
    );
    assert_eq!(logger.error_code, 0, "{:?}", logger.error_message);
    assert_eq!(logger.configs.len(), 1);
    assert_eq!(logger.configs[0].name.as_str(), "root");
}

/// Kafka's answer to a change of broker configs: another broker's id is INVALID_REQUEST, and
/// nothing can be set (INVALID_REQUEST), while an empty change of "" or its own id is fine.
fn broker_resources(via: i32, other: i32) -> Vec<(i8, String, i16)> {
    vec![
        (BROKER, other.to_string(), INVALID_REQUEST),
        (BROKER, via.to_string(), 0),
        (BROKER, String::new(), 0),
        (BROKER_LOGGER, other.to_string(), INVALID_REQUEST),
    ]
}

pub fn alter_configs(ctx: &mut Ctx, via: i32, version: i16) {
    let other = ctx.others(via)[0];
    let retention = format!("{}", 3_600_000 + i64::from(via) * 1000 + i64::from(version));
    let topic = LegacyResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(StrBytes::from_static_str(TOPIC))
        .with_configs(vec![LegacyConfig::default()
            .with_name(StrBytes::from_static_str("retention.ms"))
            .with_value(Some(StrBytes::from_string(retention.clone())))]);
    let mut resources = vec![topic];
    let expected = broker_resources(via, other);
    resources.extend(expected.iter().map(|(kind, name, _)| {
        LegacyResource::default()
            .with_resource_type(*kind)
            .with_resource_name(StrBytes::from_string(name.clone()))
    }));
    let request = AlterConfigsRequest::default().with_resources(resources);
    let response = call(ctx.addr(via), version, &request);
    assert_eq!(response.responses[0].error_code, 0, "{TOPIC} through {via}");
    for (result, (kind, name, code)) in response.responses[1..].iter().zip(&expected) {
        assert_eq!(result.error_code, *code, "{kind}/{name:?} through {via}");
    }
    // The legacy API refuses broker loggers even for the receiving broker.
    let logger = LegacyResource::default()
        .with_resource_type(BROKER_LOGGER)
        .with_resource_name(StrBytes::from_string(via.to_string()));
    let response = call(
        ctx.addr(via),
        version,
        &AlterConfigsRequest::default().with_resources(vec![logger]),
    );
    assert_eq!(response.responses[0].error_code, INVALID_REQUEST);
    topic_config_everywhere(ctx, "retention.ms", &retention);
}

pub fn incremental_alter_configs(ctx: &mut Ctx, via: i32, version: i16) {
    let other = ctx.others(via)[0];
    let segment = format!("{}", 7_200_000 + i64::from(via) * 1000 + i64::from(version));
    let topic = AlterConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(StrBytes::from_static_str(TOPIC))
        .with_configs(vec![AlterableConfig::default()
            .with_name(StrBytes::from_static_str("segment.ms"))
            .with_config_operation(0)
            .with_value(Some(StrBytes::from_string(segment.clone())))]);
    let mut resources = vec![topic];
    let mut expected = broker_resources(via, other);
    expected.push((BROKER_LOGGER, via.to_string(), 0));
    expected.push((BROKER_LOGGER, String::new(), INVALID_REQUEST));
    resources.extend(expected.iter().map(|(kind, name, _)| {
        AlterConfigsResource::default()
            .with_resource_type(*kind)
            .with_resource_name(StrBytes::from_string(name.clone()))
    }));
    let request = IncrementalAlterConfigsRequest::default().with_resources(resources);
    let response = call(ctx.addr(via), version, &request);
    assert_eq!(response.responses[0].error_code, 0, "{TOPIC} through {via}");
    for (result, (kind, name, code)) in response.responses[1..].iter().zip(&expected) {
        assert_eq!(result.error_code, *code, "{kind}/{name:?} through {via}");
    }
    topic_config_everywhere(ctx, "segment.ms", &segment);
}

/// Waits until every broker describes `name` = `value` for the matrix topic.
fn topic_config_everywhere(ctx: &Ctx, name: &str, value: &str) {
    for via in &ctx.ids {
        wait_for(
            &format!("broker {via} to describe {TOPIC} {name}={value}"),
            CLUSTER_TIMEOUT,
            || {
                let results = describe(ctx, *via, 4, &[(TOPIC_RESOURCE, TOPIC.to_string())]);
                (value_of(&results[0], name).as_deref() == Some(value)).then_some(())
            },
        );
    }
}
