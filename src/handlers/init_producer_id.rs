//! InitProducerId (API key 22), v0-v5.
//!
//! Without a transactional id (idempotent producers) every call gets a fresh producer id at
//! epoch 0, as Kafka does, even when a v3+ client passes its old id and epoch to recover
//! (KIP-360: for idempotent producers a new id is the recovery). Ids come from
//! `producer_ids::next_producer_id` (durable blocks on shard 0). With a transactional id the
//! transaction coordinator answers (`coordinator::txn`), which bumps the epoch of the
//! transactional id's producer and fences older instances.

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::error::BrokerError;
use crate::producer_ids::next_producer_id;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::InitProducerId;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 5;

const NO_PRODUCER_ID: i64 = -1;
const NO_PRODUCER_EPOCH: i16 = -1;

pub async fn handle(
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let given_id = request.producer_id.0;
    let given_epoch = request.producer_epoch;
    // Kafka: an id without an epoch, or the other way round, is malformed.
    if (given_id == NO_PRODUCER_ID) != (given_epoch == NO_PRODUCER_EPOCH) {
        return failed(&BrokerError::InvalidRequest(
            "producer_id and producer_epoch must both be set or both be -1".into(),
        ));
    }
    if request.transactional_id.is_some() {
        return transactional(ctx, &request).await;
    }
    match next_producer_id(&ctx.state).await {
        Ok(producer_id) => {
            let mut response = InitProducerIdResponse::default();
            response.producer_id = ProducerId(producer_id);
            response.producer_epoch = 0;
            response
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot allocate a producer id");
            failed(&err)
        }
    }
}

/// The transaction coordinator answers; PRODUCER_FENCED is INVALID_PRODUCER_EPOCH for
/// clients older than v4 (KIP-588).
async fn transactional(
    ctx: &RequestContext,
    request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response =
        crate::coordinator::txn::init_transactional_producer(&ctx.state, request).await;
    let fenced = crate::coordinator::txn::machine::TxnError::ProducerFenced;
    if response.error_code == fenced.kafka().code() {
        response.error_code = fenced.code_for(ctx.api_version, 4);
    }
    response
}

fn failed(err: &BrokerError) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.error_code = err.code_i16();
    response.producer_id = ProducerId(NO_PRODUCER_ID);
    response.producer_epoch = NO_PRODUCER_EPOCH;
    response
}
