//! FindCoordinator (API key 10), v0-v6, Kafka 4.2's range (v4 batches keys; v5 only lets the
//! broker answer TRANSACTION_ABORTABLE, which Ringlet never does; v6 adds key type 2, share
//! groups, answered INVALID_REQUEST as Kafka does when share groups are not enabled). Group keys: this node (on a
//! cluster: the leader of the group's `__consumer_offsets` partition), after making sure
//! that topic exists. Transaction keys likewise with `__transaction_state`: as in Kafka, a
//! coordinator is wherever its internal partition's leader is.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::coordinator::internal_log::raft_group;
use crate::coordinator::routing::{offsets_partition, OFFSETS_TOPIC};
use crate::coordinator::txn::{txn_partition, TXN_TOPIC};
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::FindCoordinator;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 6;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if ctx.api_version >= 4 {
        request.coordinator_keys.clone()
    } else {
        vec![request.key.clone()]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        coordinators.push(find(ctx, request.key_type, key).await);
    }
    let mut response = FindCoordinatorResponse::default();
    if ctx.api_version < 4 {
        if let Some(only) = coordinators.first() {
            response.error_code = only.error_code;
            response.error_message = only.error_message.clone();
            response.node_id = only.node_id;
            response.host = only.host.clone();
            response.port = only.port;
        }
    } else {
        response.coordinators = coordinators;
    }
    response
}

fn unavailable(key: StrBytes, error: ResponseError, message: &str) -> Coordinator {
    Coordinator::default()
        .with_key(key)
        .with_node_id(BrokerId(-1))
        .with_port(-1)
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}

async fn find(ctx: &RequestContext, key_type: i8, key: StrBytes) -> Coordinator {
    let ready = match key_type {
        KEY_TYPE_GROUP => match crate::coordinator::ensure_offsets_topic(&ctx.state).await {
            Ok(partitions) if ctx.state.is_clustered() => {
                let partition = offsets_partition(&key, partitions);
                return coordinator_in_cluster(ctx, key, OFFSETS_TOPIC, partition);
            }
            outcome => outcome.map(|_| ()),
        },
        KEY_TYPE_TRANSACTION => match crate::coordinator::txn::ensure_txn_topic(&ctx.state).await
        {
            Ok(partitions) if ctx.state.is_clustered() => {
                let partition = txn_partition(&key, partitions);
                return coordinator_in_cluster(ctx, key, TXN_TOPIC, partition);
            }
            outcome => outcome.map(|_| ()),
        },
        _ => {
            return unavailable(
                key,
                ResponseError::InvalidRequest,
                "unknown coordinator key type",
            )
        }
    };
    if let Err(err) = ready {
        tracing::warn!(error = %err, key_type, "coordinator topic unavailable");
        return unavailable(
            key,
            ResponseError::CoordinatorNotAvailable,
            "the coordinator's internal topic is not available",
        );
    }
    let advertise = &ctx.state.config.advertise;
    Coordinator::default()
        .with_key(key)
        .with_node_id(BrokerId(ctx.state.node_id()))
        .with_host(StrBytes::from_string(advertise.host.clone()))
        .with_port(i32::from(advertise.port))
}

/// On a cluster a coordinator is the leader of its internal partition (`topic`-`partition`),
/// as this broker knows it; COORDINATOR_NOT_AVAILABLE while that partition has none.
fn coordinator_in_cluster(
    ctx: &RequestContext,
    key: StrBytes,
    topic: &str,
    partition: i32,
) -> Coordinator {
    let leader = ctx.state.cluster.as_ref().and_then(|cluster| {
        let group = raft_group(&ctx.state, topic, partition)?;
        let leader = cluster.leaders().get(group)?.leader;
        let broker = cluster.brokers().get(leader)?.clone();
        Some((leader, broker))
    });
    match leader {
        Some((id, broker)) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_string(broker.host))
            .with_port(i32::from(broker.port)),
        None => unavailable(
            key,
            ResponseError::CoordinatorNotAvailable,
            "the coordinator's internal partition has no leader yet",
        ),
    }
}
