//! AddOffsetsToTxn (API key 25), v0-v4, Kafka 4.2's range (v4 only lets the broker answer
//! TRANSACTION_ABORTABLE, which Ringlet never does): adds the group's `__consumer_offsets` partition to
//! the transaction, so its COMMIT/ABORT marker also decides the TxnOffsetCommit offsets.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey};

use crate::coordinator::routing::OFFSETS_TOPIC;
use crate::coordinator::txn::machine::TxnError;
use crate::coordinator::txn::{on_txn_coordinator, ops, unavailable_code};
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::AddOffsetsToTxn;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 4;
/// Versions below this get INVALID_PRODUCER_EPOCH instead of PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

pub async fn handle(
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let mut response = AddOffsetsToTxnResponse::default();
    response.error_code = match add(ctx, &request).await {
        Ok(()) => 0,
        Err(code) if code == TxnError::ProducerFenced.kafka().code() => {
            TxnError::ProducerFenced.code_for(ctx.api_version, FENCED_SINCE)
        }
        Err(code) => code,
    };
    response
}

async fn add(ctx: &RequestContext, request: &AddOffsetsToTxnRequest) -> Result<(), i16> {
    let (offsets_partition, _) = crate::coordinator::locate(&ctx.state, request.group_id.as_str())
        .await
        .map_err(|err| unavailable_code(&err))?;
    let transactional_id = request.transactional_id.to_string();
    let producer = (request.producer_id.0, request.producer_epoch);
    let partitions = vec![(OFFSETS_TOPIC.to_string(), offsets_partition)];
    let target = transactional_id.clone();
    on_txn_coordinator(&ctx.state, &target, move |owner, partition| {
        ops::add_partitions(owner, partition, transactional_id, producer, partitions)
    })
    .await
    .map_err(|err| unavailable_code(&err))?
}
