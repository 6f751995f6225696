//! DescribeCluster (API key 60), v0-v2: the cluster as every broker sees it.
//!
//! * Brokers: every registered broker the controller considers alive (unfenced), with its
//!   Kafka listener and rack; v2 with `include_fenced_brokers` adds the fenced ones, marked
//!   `is_fenced`. A single node answers with itself.
//! * Controller: [`metadata_cluster::advertised_controller`], the same id Metadata names, so
//!   every broker names the same controller (see there for why not Kafka's random pick).
//! * Asking for controller endpoints (endpoint_type 2, v1+) is UNSUPPORTED_ENDPOINT_TYPE, as
//!   from any Kafka broker: clients reach controllers only through brokers.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::cluster::node::ClusterShard;
use crate::handlers::metadata::{ALL_CLUSTER_OPERATIONS, OPERATIONS_NOT_REQUESTED};
use crate::handlers::metadata_cluster::advertised_controller;
use crate::server::RequestContext;
use crate::state::ShardState;

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
    let controller = match state.cluster.as_ref() {
        Some(cluster) => advertised_controller(cluster),
        None => state.node_id(),
    };
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKERS)
        .with_cluster_id(StrBytes::from_string(state.cluster_id.to_string()))
        .with_controller_id(BrokerId(controller))
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
    // The field only exists from v2; below it the request decodes it as false.
    let include_fenced = request.include_fenced_brokers;
    let brokers = match state.cluster.as_ref() {
        Some(cluster) => cluster_brokers(cluster, include_fenced),
        None => vec![this_broker(state)],
    };
    response.with_brokers(brokers)
}

/// The registered brokers in id order: the alive ones, plus the fenced ones when asked.
fn cluster_brokers(cluster: &ClusterShard, include_fenced: bool) -> Vec<DescribeClusterBroker> {
    let alive = cluster.alive_brokers();
    cluster
        .brokers()
        .iter()
        .filter_map(|broker| {
            let fenced = !alive.contains(&broker.node_id);
            (include_fenced || !fenced).then(|| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(broker.node_id))
                    .with_host(StrBytes::from_string(broker.host.clone()))
                    .with_port(i32::from(broker.port))
                    .with_rack(broker.rack.clone().map(StrBytes::from_string))
                    .with_is_fenced(fenced)
            })
        })
        .collect()
}

fn this_broker(state: &ShardState) -> DescribeClusterBroker {
    let advertise = &state.config.advertise;
    DescribeClusterBroker::default()
        .with_broker_id(BrokerId(state.node_id()))
        .with_host(StrBytes::from_string(advertise.host.clone()))
        .with_port(i32::from(advertise.port))
}
