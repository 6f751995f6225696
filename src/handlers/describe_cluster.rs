//! DescribeCluster (API key 60), v0-v2: this node as the only broker (and controller).
//! Asking for controller endpoints (endpoint_type 2, v1+) is UNSUPPORTED_ENDPOINT_TYPE, as
//! from any Kafka broker.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::handlers::metadata::{ALL_CLUSTER_OPERATIONS, OPERATIONS_NOT_REQUESTED};
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::DescribeCluster;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 2;

/// `endpoint_type` of brokers.
const ENDPOINT_BROKERS: i8 = 1;

pub async fn handle(
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let state = &ctx.state;
    let mut response = DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKERS)
        .with_cluster_id(StrBytes::from_string(state.cluster_id.to_string()))
        .with_controller_id(BrokerId(state.node_id()))
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            ALL_CLUSTER_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        });
    if ctx.api_version >= 1 && request.endpoint_type != ENDPOINT_BROKERS {
        let err = ResponseError::UnsupportedEndpointType;
        return response
            .with_error_code(err.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "The broker only handles broker endpoint requests",
            )));
    }
    let advertise = &state.config.advertise;
    response.brokers = vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(state.node_id()))
        .with_host(StrBytes::from_string(advertise.host.clone()))
        .with_port(i32::from(advertise.port))];
    response
}
