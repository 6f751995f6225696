//! ListTransactions (API key 66), v0-v1: every transactional id this broker coordinates,
//! filtered by state, producer id and (v1) minimum running time. Kafka 4.2's v2 adds a
//! transactional id pattern (KIP-1152), a Java regular expression; not offered.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ApiKey, ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::txn::machine::TxnState;
use crate::coordinator::txn::{on_all_txn_coordinators, ops, unavailable_code};
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::ListTransactions;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 1;

pub async fn handle(
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    let mut states = Vec::new();
    for name in &request.state_filters {
        match TxnState::parse(name.as_str()) {
            Some(state) => states.push(state),
            None => response.unknown_state_filters.push(name.clone()),
        }
    }
    if !response.unknown_state_filters.is_empty() && states.is_empty() {
        // Only unknown states asked for: nothing can match.
        return response;
    }
    let producer_ids: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let min_duration_ms = if ctx.api_version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    let listed = on_all_txn_coordinators(&ctx.state, move |owner| async move {
        ops::list(&owner, &states, &producer_ids, min_duration_ms)
    })
    .await;
    match listed {
        Ok(per_shard) => {
            for (transactional_id, producer_id, state) in per_shard.into_iter().flatten() {
                let mut out = TransactionState::default();
                out.transactional_id = TransactionalId(StrBytes::from_string(transactional_id));
                out.producer_id = ProducerId(producer_id);
                out.transaction_state = StrBytes::from_static_str(state.name());
                response.transaction_states.push(out);
            }
        }
        Err(err) => response.error_code = unavailable_code(&err),
    }
    response
}
