//! Phase two's transport: the coordinator's markers reach every partition of a transaction
//! wherever its leader is. On one node every partition is here
//! (`partition::txn_markers::write_markers`). On a cluster each partition's marker goes to
//! its leader, as this broker knows it: the partitions this node leads are written here,
//! the others in one `WriteTxnMarkers` request per leader over the internal RPC (Kafka's
//! brokers send each other WriteTxnMarkers too). A partition without a known leader, or
//! whose leader moved meanwhile, fails with NOT_LEADER_OR_FOLLOWER, and the coordinator
//! retries it (markers are idempotent on the partitions that already have theirs).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::cluster::controller_rpc::{ControllerRequest, ControllerResponse, WireError};
use crate::error::BrokerError;
use crate::partition::txn_markers::{write_markers, TxnMarker};
use crate::partition::waiters::join_all;
use crate::state::ShardState;

/// One partition of a transaction and how writing its marker went.
pub type MarkerResult = ((String, i32), Result<i64, BrokerError>);

/// Partitions of one leader, each with its position in the caller's list.
type Positioned = Vec<(usize, (String, i32))>;

/// Writes `marker` to every one of `partitions`; results in their order.
pub async fn send_markers(
    state: &Rc<ShardState>,
    partitions: Vec<(String, i32)>,
    marker: TxnMarker,
) -> Vec<MarkerResult> {
    let Some(cluster) = state.cluster.as_ref() else {
        return write_markers(state, partitions, marker).await;
    };
    let leaders = cluster.leaders();
    let mut by_leader: BTreeMap<i32, Positioned> = BTreeMap::new();
    let mut results: Vec<Option<MarkerResult>> = Vec::with_capacity(partitions.len());
    for (position, (topic, partition)) in partitions.into_iter().enumerate() {
        let group = crate::coordinator::internal_log::raft_group(state, &topic, partition);
        match group.and_then(|group| leaders.get(group)).map(|l| l.leader) {
            Some(leader) => {
                by_leader
                    .entry(leader)
                    .or_default()
                    .push((position, (topic, partition)));
                results.push(None);
            }
            None => results.push(Some((
                (topic, partition),
                Err(BrokerError::NotLeaderOrFollower),
            ))),
        }
    }
    let node_id = cluster.node_id;
    let calls: Vec<Pin<Box<dyn Future<Output = _>>>> = by_leader
        .into_iter()
        .map(|(leader, items)| {
            Box::pin(async move {
                let (positions, targets): (Vec<usize>, Vec<(String, i32)>) =
                    items.into_iter().unzip();
                let written = if leader == node_id {
                    write_markers(state, targets, marker).await
                } else {
                    write_on_peer(state, leader, targets, marker).await
                };
                positions.into_iter().zip(written).collect::<Vec<_>>()
            }) as Pin<Box<dyn Future<Output = _>>>
        })
        .collect();
    for (position, result) in join_all(calls).await.into_iter().flatten() {
        results[position] = Some(result);
    }
    results.into_iter().flatten().collect()
}

/// Asks broker `leader` to write `marker` to `partitions` (it leads them, as far as this
/// broker knows).
async fn write_on_peer(
    state: &Rc<ShardState>,
    leader: i32,
    partitions: Vec<(String, i32)>,
    marker: TxnMarker,
) -> Vec<MarkerResult> {
    let request = ControllerRequest::WriteTxnMarkers {
        marker,
        partitions: partitions.clone(),
    };
    let answer = crate::cluster::node::call_peer(state, leader, &request).await;
    let errors: Vec<Option<WireError>> = match answer {
        Ok(ControllerResponse::TxnMarkers(errors)) if errors.len() == partitions.len() => errors,
        Ok(other) => {
            let why =
                BrokerError::internal(format!("broker {leader} answered markers with {other:?}"));
            vec![Some(WireError::from_error(&why)); partitions.len()]
        }
        Err(err) => vec![Some(WireError::from_error(&err)); partitions.len()],
    };
    partitions
        .into_iter()
        .zip(errors)
        .map(|(partition, error)| {
            // The peer's offset is of no use to the coordinator: only success counts.
            (partition, error.map_or(Ok(-1), |e| Err(e.into_error())))
        })
        .collect()
}
