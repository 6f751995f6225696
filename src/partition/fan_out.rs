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
use std::sync::Arc;

use ringlet_shard::{BusError, ShardId};

use super::by_shard::{group_by_shard, Slots};
use super::waiters::{join_all, CrossShardSignal};
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
    let hops = hops(
        state,
        routed,
        |_| (),
        move |owner, items, ()| op(owner, items),
        &on_bus_error,
    );
    join_all(hops).await.into_iter().flatten().collect()
}

/// [`fan_out`] for an operation with an ordered first stage (produce: the batches reach their
/// logs in request order). `op` gets a [`HopDispatched`] to fire once its items are through
/// that stage; the returned [`Dispatched`] completes when every hop has fired (or was dropped
/// without running), long before the hops' results (which may wait for durability).
/// Nothing runs until the returned future is polled.
pub fn fan_out_staged<'a, I, R, F, Fut>(
    state: &'a Rc<ShardState>,
    routed: Vec<(ShardId, usize, I)>,
    op: F,
    on_bus_error: &'a dyn Fn(&BusError) -> R,
) -> (impl Future<Output = Vec<(usize, R)>> + 'a, Dispatched)
where
    I: Send + 'static,
    R: Send + 'static,
    F: FnOnce(Rc<ShardState>, Vec<(usize, I)>, HopDispatched) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = Vec<(usize, R)>> + 'static,
{
    let mut signals = Vec::new();
    let make_signal = |_owner| {
        let signal = CrossShardSignal::new();
        signals.push(Arc::clone(&signal));
        HopDispatched(signal)
    };
    let hops = hops(state, routed, make_signal, op, on_bus_error);
    let results = async move { join_all(hops).await.into_iter().flatten().collect() };
    (results, Dispatched(signals))
}

/// One lazy hop per owning shard; `extra` makes each hop's extra argument for `op`.
fn hops<'a, I, R, X, F, Fut>(
    state: &'a Rc<ShardState>,
    routed: Vec<(ShardId, usize, I)>,
    mut extra: impl FnMut(ShardId) -> X,
    op: F,
    on_bus_error: &'a dyn Fn(&BusError) -> R,
) -> Vec<Hop<'a, R>>
where
    I: Send + 'static,
    R: Send + 'static,
    X: Send + 'static,
    F: FnOnce(Rc<ShardState>, Vec<(usize, I)>, X) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = Vec<(usize, R)>> + 'static,
{
    group_by_shard(routed)
        .into_iter()
        .map(|(owner, items)| {
            let state = Rc::clone(state);
            let extra = extra(owner);
            Box::pin(async move {
                let positions: Vec<usize> = items.iter().map(|(position, _)| *position).collect();
                match state
                    .bus
                    .invoke_on(owner, move |owner_state| op(owner_state, items, extra))
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
            }) as Hop<'a, R>
        })
        .collect()
}

/// Fired on the owning shard once a hop's ordered stage is done; dropping it fires it too, so
/// a hop that never ran (its shard is stopping) or failed part-way releases the connection.
pub struct HopDispatched(Arc<CrossShardSignal>);

impl HopDispatched {
    pub fn fire(self) {
        // Dropping fires.
    }
}

impl Drop for HopDispatched {
    fn drop(&mut self) {
        self.0.fire();
    }
}

/// The dispatch signals of all hops of one request.
pub struct Dispatched(Vec<Arc<CrossShardSignal>>);

impl Dispatched {
    /// Completes once every hop has fired its [`HopDispatched`].
    pub async fn all(&self) {
        for signal in &self.0 {
            signal.fired().await;
        }
    }
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
