//! DescribeTransactions (API key 65), v0: the coordinator's view of each transactional id.

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::coordinator::txn::records::partitions_by_topic;
use crate::coordinator::txn::{on_txn_coordinator, ops, unavailable_code};
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::DescribeTransactions;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 0;

pub async fn handle(
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut response = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let transactional_id = id.to_string();
        let mut out = TransactionState::default();
        out.transactional_id = id;
        out.producer_id = ProducerId(-1);
        out.producer_epoch = -1;
        let target = transactional_id.clone();
        let found = on_txn_coordinator(&ctx.state, &target, move |owner, partition| {
            ops::describe(owner, partition, transactional_id)
        })
        .await;
        match found {
            Ok(Some(meta)) => {
                out.transaction_state = StrBytes::from_static_str(meta.state.name());
                out.transaction_timeout_ms = meta.timeout_ms;
                out.transaction_start_time_ms = meta.start_timestamp_ms;
                out.producer_id = ProducerId(meta.producer_id);
                out.producer_epoch = meta.producer_epoch;
                for (topic, partitions) in partitions_by_topic(&meta.partitions) {
                    let mut data = TopicData::default();
                    data.topic = TopicName(StrBytes::from_string(topic.to_string()));
                    data.partitions = partitions;
                    out.topics.push(data);
                }
            }
            Ok(None) => out.error_code = ResponseError::TransactionalIdNotFound.code(),
            Err(err) => out.error_code = unavailable_code(&err),
        }
        response.transaction_states.push(out);
    }
    response
}
