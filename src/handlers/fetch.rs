//! Fetch (API key 1), v4-v18, Kafka 4.2's range. v17 (KIP-853 `ReplicaDirectoryId`) and v18
//! (KIP-1166 `HighWatermark`) add tagged fields only KRaft voter and follower fetchers set;
//! consumers leave them at their defaults and nothing here reads them.
//!
//! 1. Sessions (KIP-227) are declined: see `partition::fetch_session`.
//! 2. Each partition is resolved (by name before v13, by topic id from v13) and
//!    grouped by owning shard; each shard gets ONE hop that reads all of its
//!    partitions (`partition::ops::fetch`), bounded by the response budget.
//! 3. The response budget is applied in request order (KIP-74,
//!    `partition::fetch_budget`).
//! 4. If fewer than `min_bytes` came back and nothing failed, the fetch parks:
//!    one hop per shard registers a waiter on its partitions
//!    (`partition::ops::wait_for_data`); the first append (or `max_wait_ms`)
//!    ends the wait, the other shards' waits are cancelled, and the reads run
//!    again. Nothing polls.
//!
//! Memory per fetch is bounded by `max_bytes` (capped by the broker) per
//! involved shard, and only whole batches are ever returned.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, ProducerId};

use crate::error::BrokerError;
use crate::partition::by_shard::{group_by_shard, Slots};
use crate::partition::fan_out::fan_out;
use crate::partition::fetch_budget::{apply_response_budget, shard_read_limit, BudgetedRead};
use crate::partition::fetch_session::{self, SessionDecision, NO_SESSION_ID};
use crate::partition::lookup;
use crate::partition::ops::{self, FetchItem, Fetched};
use crate::partition::waiters::{first_of, CrossShardSignal};
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::Fetch;
pub const MIN_VERSION: i16 = 4;
pub const MAX_VERSION: i16 = 18;

/// Upper bound on what one fetch may read per shard, whatever the client asks
/// (Kafka's `fetch.max.bytes` broker default).
pub const BROKER_FETCH_MAX_BYTES: usize = 55 * 1024 * 1024;
/// Upper bound on `max_wait_ms`, so a parked fetch always ends.
const MAX_WAIT_CAP: Duration = Duration::from_secs(60);

/// The requested partitions, resolved: routed to their owner, or refused.
struct Resolved {
    routed: Vec<(usize, usize, FetchItem)>,
    refused: Vec<(usize, Refused)>,
    count: usize,
}

/// Why a requested partition cannot be read (kept as a tag: every read round
/// reports it again).
#[derive(Clone, Copy)]
enum Refused {
    UnknownTopicId,
    UnknownTopicOrPartition,
}

impl Refused {
    fn error(self) -> BrokerError {
        match self {
            Refused::UnknownTopicId => BrokerError::UnknownTopicId,
            Refused::UnknownTopicOrPartition => BrokerError::UnknownTopicOrPartition,
        }
    }
}

pub async fn handle(ctx: &RequestContext, request: FetchRequest) -> FetchResponse {
    let (state, api_version) = (&ctx.state, ctx.api_version);
    if fetch_session::decide(request.session_id, request.session_epoch)
        == SessionDecision::SessionIdNotFound
    {
        let mut response = FetchResponse::default();
        response.error_code = BrokerError::FetchSessionIdNotFound.code_i16();
        response.session_id = NO_SESSION_ID;
        return response;
    }
    let resolved = resolve(state, api_version, &request);
    let results = fetch_until_ready(state, &request, resolved).await;
    build_response(&request, api_version, results)
}

/// Resolves every requested partition in request order.
fn resolve(state: &Rc<ShardState>, api_version: i16, request: &FetchRequest) -> Resolved {
    let consumer = ConsumerFetch::of(api_version, request);
    let mut resolved = Resolved {
        routed: Vec::new(),
        refused: Vec::new(),
        count: 0,
    };
    for topic in &request.topics {
        let meta = if api_version >= 13 {
            lookup::topic_by_id(state, topic.topic_id)
        } else {
            lookup::topic(state, topic.topic.as_str())
        };
        for partition in &topic.partitions {
            let position = resolved.count;
            resolved.count += 1;
            let owner = meta.as_ref().and_then(|m| m.owner_of(partition.partition));
            match (&meta, owner) {
                (Some(meta), Some(owner)) => resolved.routed.push((
                    owner,
                    position,
                    FetchItem {
                        topic: meta.name.clone(),
                        partition: partition.partition,
                        fetch_offset: partition.fetch_offset,
                        partition_max_bytes: partition.partition_max_bytes,
                        current_leader_epoch: partition.current_leader_epoch,
                        read_committed: request.isolation_level == 1,
                        follower_may_serve: consumer.follower_may_serve,
                        client_rack: consumer.rack.clone(),
                    },
                )),
                (None, _) if api_version >= 13 => {
                    resolved.refused.push((position, Refused::UnknownTopicId))
                }
                _ => resolved
                    .refused
                    .push((position, Refused::UnknownTopicOrPartition)),
            }
        }
    }
    resolved
}

/// What KIP-392 needs of a fetch: whether it is a consumer's at version 11 or later (a
/// follower may serve it; older clients do not understand being sent elsewhere) and its
/// `client.rack`.
struct ConsumerFetch {
    follower_may_serve: bool,
    rack: Option<Arc<str>>,
}

impl ConsumerFetch {
    fn of(api_version: i16, request: &FetchRequest) -> Self {
        let replica_id = if api_version >= 15 {
            request.replica_state.replica_id.0
        } else {
            request.replica_id.0
        };
        let follower_may_serve = api_version >= 11 && replica_id < 0;
        let rack = Some(request.rack_id.as_str())
            .filter(|rack| follower_may_serve && !rack.is_empty())
            .map(Arc::from);
        ConsumerFetch {
            follower_may_serve,
            rack,
        }
    }
}

type ShardItems = Vec<(usize, Vec<(usize, FetchItem)>)>;

/// Reads; while too little came back, parks until an append or the deadline, and reads again.
async fn fetch_until_ready(
    state: &Rc<ShardState>,
    request: &FetchRequest,
    resolved: Resolved,
) -> Vec<Fetched> {
    let max_wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let shard_limit = shard_read_limit(request.max_bytes, BROKER_FETCH_MAX_BYTES);
    let by_shard: ShardItems = group_by_shard(resolved.routed);
    loop {
        let mut slots = Slots::new(resolved.count);
        for (position, refused) in &resolved.refused {
            slots.fill(*position, Fetched::failed(refused.error()));
        }
        let failed = read_round(state, &by_shard, shard_limit, &mut slots).await;
        let mut results =
            slots.into_ordered(|_| Fetched::failed(BrokerError::internal("fetch: no result")));
        let bytes = budget(&mut results, request);
        let now = Instant::now();
        let done = failed || !resolved.refused.is_empty() || by_shard.is_empty();
        if done || bytes >= min_bytes || now >= deadline {
            return results;
        }
        // Wake on appends beyond what this round already saw, not beyond the
        // fetch offset: otherwise too little data would make the wait return
        // at once, again and again, until the deadline.
        let seen = seen_ends(&by_shard, &results);
        wait_round(state, &seen, deadline - now).await;
    }
}

/// The items of `by_shard` with `fetch_offset` moved to the log end each
/// partition had when it was read.
fn seen_ends(by_shard: &ShardItems, results: &[Fetched]) -> ShardItems {
    by_shard
        .iter()
        .map(|(owner, items)| {
            let items = items
                .iter()
                .map(|(position, item)| {
                    let mut item = item.clone();
                    if let Some(w) = results.get(*position).and_then(|r| r.watermarks) {
                        let seen_end = if item.read_committed {
                            w.last_stable_offset
                        } else {
                            w.high_watermark
                        };
                        item.fetch_offset = item.fetch_offset.max(seen_end);
                    }
                    (*position, item)
                })
                .collect();
            (*owner, items)
        })
        .collect()
}

/// One hop per owning shard reading its partitions; true when some partition failed.
async fn read_round(
    state: &Rc<ShardState>,
    by_shard: &ShardItems,
    shard_limit: usize,
    slots: &mut Slots<Fetched>,
) -> bool {
    let routed = by_shard
        .iter()
        .flat_map(|(owner, items)| {
            items
                .iter()
                .map(move |(position, item)| (*owner, *position, item.clone()))
        })
        .collect();
    let results = fan_out(
        state,
        routed,
        move |owner: Rc<ShardState>, items| async move {
            let lookup = lookup::OwnerLookup(&owner);
            let selector = owner
                .cluster
                .as_ref()
                .map(|cluster| cluster as &dyn ops::ReadReplicaSelector);
            ops::fetch(&owner.partitions, &lookup, &items, shard_limit, selector).await
        },
        |err| Fetched::failed(BrokerError::Bus(err.clone())),
    )
    .await;
    let mut failed = false;
    for (position, fetched) in results {
        // A consumer sent to another replica (KIP-392) is answered at once, like an error.
        failed |= fetched.error.is_some() || fetched.preferred_read_replica >= 0;
        slots.fill(position, fetched);
    }
    failed
}

/// Parks one waiter per owning shard; returns when the first of them sees an
/// append (or the time is up), after cancelling the others.
async fn wait_round(state: &Rc<ShardState>, by_shard: &ShardItems, timeout: Duration) {
    let cancel = CrossShardSignal::new();
    let waits: Vec<Pin<Box<dyn Future<Output = ()>>>> = by_shard
        .iter()
        .map(|(owner, items)| {
            let state = Rc::clone(state);
            let items = items.clone();
            let cancel = Arc::clone(&cancel);
            let owner = *owner;
            Box::pin(async move {
                let _ = state
                    .bus
                    .invoke_on(owner, move |owner_state: Rc<ShardState>| async move {
                        ops::wait_for_data(&owner_state.partitions, &items, timeout, cancel).await
                    })
                    .await;
            }) as Pin<Box<dyn Future<Output = ()>>>
        })
        .collect();
    first_of(waits).await;
    cancel.fire();
}

/// Applies the response budget in request order; returns the bytes kept.
fn budget(results: &mut [Fetched], request: &FetchRequest) -> usize {
    let limits = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_max_bytes));
    let mut reads: Vec<BudgetedRead> = results
        .iter_mut()
        .zip(limits)
        .map(|(fetched, partition_max_bytes)| BudgetedRead {
            records: std::mem::take(&mut fetched.records),
            partition_max_bytes,
        })
        .collect();
    let used = apply_response_budget(&mut reads, request.max_bytes);
    for (fetched, read) in results.iter_mut().zip(reads) {
        fetched.records = read.records;
    }
    used
}

/// The response, topics and partitions in request order.
pub fn build_response(
    request: &FetchRequest,
    api_version: i16,
    results: Vec<Fetched>,
) -> FetchResponse {
    let read_committed = request.isolation_level == 1;
    let mut results = results.into_iter();
    let mut response = FetchResponse::default();
    response.session_id = NO_SESSION_ID;
    for topic in &request.topics {
        let mut topic_response = FetchableTopicResponse::default();
        if api_version >= 13 {
            topic_response.topic_id = topic.topic_id;
        } else {
            topic_response.topic = topic.topic.clone();
        }
        for partition in &topic.partitions {
            let fetched = results
                .next()
                .unwrap_or_else(|| Fetched::failed(BrokerError::internal("fetch: missing result")));
            topic_response.partitions.push(partition_data(
                partition.partition,
                fetched,
                read_committed,
            ));
        }
        response.responses.push(topic_response);
    }
    response
}

fn partition_data(index: i32, fetched: Fetched, read_committed: bool) -> PartitionData {
    let mut data = PartitionData::default();
    data.partition_index = index;
    // read_uncommitted answers null; read_committed lists the aborted transactions
    // overlapping the returned records, so the client drops their records.
    data.aborted_transactions = read_committed.then(|| {
        fetched
            .aborted
            .iter()
            .map(|txn| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(txn.producer_id))
                    .with_first_offset(txn.first_offset)
            })
            .collect()
    });
    match fetched.watermarks {
        Some(w) => {
            data.high_watermark = w.high_watermark;
            data.last_stable_offset = w.last_stable_offset;
            data.log_start_offset = w.log_start_offset;
        }
        None => {
            data.high_watermark = -1;
            data.last_stable_offset = -1;
            data.log_start_offset = -1;
        }
    }
    if let Some(err) = &fetched.error {
        data.error_code = err.code_i16();
    }
    data.preferred_read_replica = BrokerId(fetched.preferred_read_replica);
    data.records = Some(fetched.records);
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Watermarks;
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn request(topics: &[(&str, &[i32])]) -> FetchRequest {
        let mut request = FetchRequest::default();
        request.max_bytes = 1 << 20;
        for (i, (name, partitions)) in topics.iter().enumerate() {
            let mut topic = FetchTopic::default();
            topic.topic = TopicName(StrBytes::from_string(name.to_string()));
            topic.topic_id = uuid::Uuid::from_u128(i as u128 + 1);
            for index in *partitions {
                let mut partition = FetchPartition::default();
                partition.partition = *index;
                partition.partition_max_bytes = 1 << 20;
                topic.partitions.push(partition);
            }
            request.topics.push(topic);
        }
        request
    }

    fn fetched(records: &'static [u8]) -> Fetched {
        Fetched {
            error: None,
            watermarks: Some(Watermarks {
                log_start_offset: 2,
                high_watermark: 10,
                last_stable_offset: 10,
            }),
            records: Bytes::from_static(records),
            aborted: Vec::new(),
            preferred_read_replica: -1,
        }
    }

    #[test]
    fn partitions_answer_in_request_order_with_watermarks() {
        let request = request(&[("a", &[1, 0]), ("b", &[3])]);
        let results = vec![
            fetched(b""),
            Fetched::failed(BrokerError::UnknownTopicOrPartition),
            fetched(b""),
        ];
        let response = build_response(&request, 11, results);
        assert_eq!(response.session_id, 0, "sessions are declined");
        let a = &response.responses[0];
        assert_eq!(a.topic.as_str(), "a");
        assert_eq!(a.partitions[0].partition_index, 1);
        assert_eq!(a.partitions[0].high_watermark, 10);
        assert_eq!(a.partitions[0].last_stable_offset, 10);
        assert_eq!(a.partitions[0].log_start_offset, 2);
        assert_eq!(a.partitions[1].partition_index, 0);
        assert_eq!(
            a.partitions[1].error_code,
            BrokerError::UnknownTopicOrPartition.code_i16()
        );
        assert_eq!(a.partitions[1].high_watermark, -1);
        assert_eq!(response.responses[1].partitions[0].partition_index, 3);
    }

    #[test]
    fn topic_ids_from_v13_names_before() {
        let request = request(&[("a", &[0])]);
        let v12 = build_response(&request, 12, vec![fetched(b"")]);
        assert_eq!(v12.responses[0].topic.as_str(), "a");
        let v13 = build_response(&request, 13, vec![fetched(b"")]);
        assert_eq!(v13.responses[0].topic_id, request.topics[0].topic_id);
        assert!(v13.responses[0].topic.is_empty());
    }

    #[test]
    fn response_encodes_at_every_served_version() {
        let request = request(&[("a", &[0])]);
        for version in MIN_VERSION..=MAX_VERSION {
            let response = build_response(&request, version, vec![fetched(b"")]);
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).expect("encodes");
        }
    }

    #[test]
    fn budget_applies_kip74_in_request_order() {
        let mut request = request(&[("a", &[0, 1])]);
        request.max_bytes = 10;
        let mut batch = vec![0u8; 64];
        batch[8..12].copy_from_slice(&52i32.to_be_bytes());
        let batch: &'static [u8] = Box::leak(batch.into_boxed_slice());
        let mut results = vec![fetched(batch), fetched(batch)];
        let used = budget(&mut results, &request);
        assert_eq!(used, 64, "first batch goes out although over max_bytes");
        assert!(results[1].records.is_empty());
    }
}
