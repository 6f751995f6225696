//! EndTxn (API key 26), v0-v4: commit or abort. v4 only lets the broker answer
//! TRANSACTION_ABORTABLE (never sent here). Kafka 4.2's v5 is transactions v2 (KIP-890 part 2:
//! the epoch is bumped at every commit and returned), which Ringlet does not implement, so it
//! is not offered; clients without transaction.version 2 use v4 anyway. Answered once the decision is durable and
//! the markers are written (see `coordinator::txn`).

use kafka_protocol::messages::{ApiKey, EndTxnRequest, EndTxnResponse};

use crate::coordinator::txn::machine::TxnError;
use crate::coordinator::txn::{on_txn_coordinator, ops, unavailable_code};
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::EndTxn;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 4;
/// Versions below this get INVALID_PRODUCER_EPOCH instead of PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

pub async fn handle(ctx: &RequestContext, request: EndTxnRequest) -> EndTxnResponse {
    let transactional_id = request.transactional_id.to_string();
    let producer = (request.producer_id.0, request.producer_epoch);
    let commit = request.committed;
    let target = transactional_id.clone();
    let outcome = on_txn_coordinator(&ctx.state, &target, move |owner, partition| {
        ops::end_txn(owner, partition, transactional_id, producer, commit)
    })
    .await;
    let mut response = EndTxnResponse::default();
    response.error_code = match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(code)) if code == TxnError::ProducerFenced.kafka().code() => {
            TxnError::ProducerFenced.code_for(ctx.api_version, FENCED_SINCE)
        }
        Ok(Err(code)) => code,
        Err(err) => unavailable_code(&err),
    };
    response
}
