//! One bus hop per owning shard, all hops in flight at once.
//!
//! Every data-plane handler has the same middle: partitions already resolved to
//! `(owner, request position, item)`; group them by owner; send each owner one
//! `bus.invoke_on` carrying all its items; collect the per-item results. A hop
//! that fails (the shard is stopping) yields an error result for each of its
//! items instead of failing the request (`BrokerError::Bus`, retriable for clients).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use ringlet_shard::{BusError, ShardId};

use super::by_shard::{group_by_shard, Slots};
use super::waiters::join_all;
use crate::error::BrokerError;
use crate::state::ShardState;

type Hop<'a, R> = Pin<Box<dyn Future<Output = Vec<(usize, R)>> + 'a>>;

/// Runs `op` on each owning shard with that shard's items; results tagged with
/// their request positions, in no particular order.
pub async fn fan_out<I, R, F, Fut>(
    state: &Rc<ShardState>,
    routed: Vec<(ShardId, usize, I)>,
    op: F,
    on_bus_error: impl Fn(&BusError) -> R,
) -> Vec<(usize, R)>
where
    I: Send + 'static,
    R: Send + 'static,
    F: FnOnce(Rc<ShardState>, Vec<(usize, I)>) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = Vec<(usize, R)>> + 'static,
{
    let on_bus_error = &on_bus_error;
    let hops: Vec<Hop<'_, R>> = group_by_shard(routed)
        .into_iter()
        .map(|(owner, items)| {
            let state = Rc::clone(state);
            Box::pin(async move {
                let positions: Vec<usize> = items.iter().map(|(position, _)| *position).collect();
                match state
                    .bus
                    .invoke_on(owner, move |owner_state| op(owner_state, items))
                    .await
                {
                    Ok(results) => results,
                    Err(err) => {
                        tracing::warn!(shard = owner, error = %err, "data-plane hop failed");
                        positions
                            .into_iter()
                            .map(|p| (p, on_bus_error(&err)))
                            .collect()
                    }
                }
            }) as Hop<'_, R>
        })
        .collect();
    join_all(hops).await.into_iter().flatten().collect()
}

/// The whole middle of a per-partition handler: runs `op` on each partition's owning shard
/// (one hop per owner, through [`fan_out`]) and answers one outcome per item, in request order.
///
/// `items` are in request order; `None` marks a partition whose topic or partition is unknown
/// here (UNKNOWN_TOPIC_OR_PARTITION). A failed hop fails its items with `BrokerError::Bus`.
pub async fn on_owners<I, T, F, Fut>(
    state: &Rc<ShardState>,
    items: Vec<Option<(ShardId, I)>>,
    op: F,
    api_name: &'static str,
) -> Vec<Result<T, BrokerError>>
where
    I: Send + 'static,
    T: Send + 'static,
    F: FnOnce(Rc<ShardState>, Vec<(usize, I)>) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = Vec<(usize, Result<T, BrokerError>)>> + 'static,
{
    let mut slots = Slots::new(items.len());
    let mut routed = Vec::new();
    for (position, item) in items.into_iter().enumerate() {
        match item {
            Some((owner, item)) => routed.push((owner, position, item)),
            None => slots.fill(position, Err(BrokerError::UnknownTopicOrPartition)),
        }
    }
    let results = fan_out(state, routed, op, |err| Err(BrokerError::Bus(err.clone()))).await;
    for (position, outcome) in results {
        slots.fill(position, outcome);
    }
    slots.into_ordered(|_| Err(BrokerError::internal(format!("{api_name}: no outcome"))))
}
