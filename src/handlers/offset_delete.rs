//! OffsetDelete (API key 47), v0: deletes committed offsets of partitions the group does not
//! consume any more (GROUP_SUBSCRIBED_TO_TOPIC for topics an active member subscribes to).

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse};

use crate::coordinator::ops;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::OffsetDelete;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 0;

pub async fn handle(ctx: &RequestContext, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.to_string();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let target = group_id.clone();
    let outcome =
        crate::coordinator::on_coordinator(&ctx.state, &target, move |owner, partition| {
            ops::delete_offsets(owner, partition, group_id, partitions)
        })
        .await
        .and_then(|inner| inner);
    let mut response = OffsetDeleteResponse::default();
    let codes = match outcome {
        Ok(Ok(codes)) => codes,
        Ok(Err(code)) => {
            response.error_code = code;
            return response;
        }
        Err(err) => {
            response.error_code = crate::coordinator::unavailable_code(&err);
            return response;
        }
    };
    let mut codes = codes.into_iter();
    for topic in &request.topics {
        let mut out = OffsetDeleteResponseTopic::default();
        out.name = topic.name.clone();
        for p in &topic.partitions {
            let mut partition = OffsetDeleteResponsePartition::default();
            partition.partition_index = p.partition_index;
            partition.error_code = codes.next().unwrap_or(0);
            out.partitions.push(partition);
        }
        response.topics.push(out);
    }
    response
}
