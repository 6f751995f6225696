//! WriteTxnMarkers (API key 27), v1 (Kafka 4.2's v2 adds each marker's transaction version,
//! KIP-1228, for transactions v2; kafka-protocol 0.18 decodes v1 only): the transaction coordinator's request to end a
//! transaction on partitions (Kafka brokers send it to each other). Served with
//! `partition::txn_markers::write_markers`, the same path this broker's own coordinator
//! uses, so tools and tests can drive markers directly. Each marker's partitions answer
//! once the marker is durable there; errors are per partition.

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{ApiKey, WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use crate::error::code_of;
use crate::partition::txn_markers::{write_markers, TxnMarker};
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::WriteTxnMarkers;
pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 1;

pub async fn handle(
    ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let mut response = WriteTxnMarkersResponse::default();
    for marker in &request.markers {
        let partitions: Vec<(String, i32)> = marker
            .topics
            .iter()
            .flat_map(|topic| {
                topic
                    .partition_indexes
                    .iter()
                    .map(move |index| (topic.name.to_string(), *index))
            })
            .collect();
        let txn_marker = TxnMarker {
            producer_id: marker.producer_id.0,
            producer_epoch: marker.producer_epoch,
            commit: marker.transaction_result,
            coordinator_epoch: marker.coordinator_epoch,
        };
        let mut outcomes = write_markers(&ctx.state, partitions, txn_marker)
            .await
            .into_iter();
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = marker.producer_id;
        for topic in &marker.topics {
            let mut topic_result = WritableTxnMarkerTopicResult::default();
            topic_result.name = topic.name.clone();
            for index in &topic.partition_indexes {
                let mut partition = WritableTxnMarkerPartitionResult::default();
                partition.partition_index = *index;
                partition.error_code = match outcomes.next() {
                    Some((_, outcome)) => code_of(&outcome),
                    None => crate::error::BrokerError::internal("write_txn_markers: no outcome")
                        .code_i16(),
                };
                topic_result.partitions.push(partition);
            }
            result.topics.push(topic_result);
        }
        response.markers.push(result);
    }
    response
}
