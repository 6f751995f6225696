//! Version-aware random requests for the property-style round trips. Each generator sets only
//! the fields its version carries (kafka-protocol refuses to encode a non-default field the
//! version lacks) and leaves the rest at their defaults, which is also what decoding yields.

use std::collections::BTreeMap;

use bytes::Bytes;
use ringlet_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use ringlet_protocol::kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use ringlet_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic,
};
use ringlet_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use ringlet_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use ringlet_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use ringlet_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, RequestKind, TopicName, TransactionalId,
};
use ringlet_protocol::kafka_protocol::protocol::Decodable;

use super::Rng;

/// The request types the round trips cover.
pub const COVERED: [ApiKey; 7] = [
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
];

/// A random request body of type `key` valid at `version`.
pub fn random_request(key: ApiKey, version: i16, rng: &mut Rng) -> RequestKind {
    let flexible = key.request_header_version(version) >= 2;
    match key {
        ApiKey::ApiVersions => RequestKind::ApiVersions(api_versions(version, rng)),
        ApiKey::Metadata => RequestKind::Metadata(metadata(version, rng, flexible)),
        ApiKey::Produce => RequestKind::Produce(produce(version, rng, flexible)),
        ApiKey::Fetch => RequestKind::Fetch(fetch(version, rng, flexible)),
        ApiKey::ListOffsets => RequestKind::ListOffsets(list_offsets(version, rng, flexible)),
        ApiKey::CreateTopics => RequestKind::CreateTopics(create_topics(rng, flexible)),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(delete_topics(version, rng, flexible)),
        other => panic!("no generator for {other:?}"),
    }
}

fn topic_name(rng: &mut Rng) -> TopicName {
    TopicName(rng.name(40))
}

/// Unknown tagged fields (tags far above any the schemas use), only in flexible versions.
fn tagged(rng: &mut Rng, flexible: bool) -> BTreeMap<i32, Bytes> {
    let mut fields = BTreeMap::new();
    if flexible {
        for _ in 0..rng.count(2) {
            fields.insert(1_000 + rng.below(1_000) as i32, rng.bytes(12));
        }
    }
    fields
}

/// A random UUID, obtained through the crate's own decoder (the uuid crate is not a dependency
/// here): a v10 MetadataRequestTopic is 16 id bytes, a null compact name and no tagged fields.
fn random_uuid_holder(rng: &mut Rng) -> MetadataRequestTopic {
    let mut raw: Vec<u8> = (0..16).map(|_| rng.next_u64() as u8).collect();
    raw.extend_from_slice(&[0, 0]);
    MetadataRequestTopic::decode(&mut Bytes::from(raw), 10).expect("decode a v10 topic")
}

fn api_versions(version: i16, rng: &mut Rng) -> ApiVersionsRequest {
    let mut request = ApiVersionsRequest::default();
    if version >= 3 {
        request.client_software_name = rng.name(20);
        request.client_software_version = rng.name(10);
        request.unknown_tagged_fields = tagged(rng, true);
    }
    request
}

fn metadata(version: i16, rng: &mut Rng, flexible: bool) -> MetadataRequest {
    let mut request = MetadataRequest::default();
    request.topics = if version >= 1 && rng.chance(5) {
        None // all topics
    } else {
        Some(
            (0..rng.count(4))
                .map(|_| {
                    let mut topic = MetadataRequestTopic::default();
                    if version >= 10 {
                        topic.topic_id = random_uuid_holder(rng).topic_id;
                        topic.name = if rng.chance(3) {
                            None
                        } else {
                            Some(topic_name(rng))
                        };
                    } else {
                        topic.name = Some(topic_name(rng));
                    }
                    topic.unknown_tagged_fields = tagged(rng, flexible);
                    topic
                })
                .collect(),
        )
    };
    if version >= 4 {
        request.allow_auto_topic_creation = rng.bool();
    }
    if (8..=10).contains(&version) {
        request.include_cluster_authorized_operations = rng.bool();
    }
    if version >= 8 {
        request.include_topic_authorized_operations = rng.bool();
    }
    request.unknown_tagged_fields = tagged(rng, flexible);
    request
}

fn produce(version: i16, rng: &mut Rng, flexible: bool) -> ProduceRequest {
    let mut request = ProduceRequest::default();
    request.transactional_id = rng.chance(3).then(|| TransactionalId(rng.name(20)));
    request.acks = [-1, 0, 1][rng.below(3) as usize];
    request.timeout_ms = rng.i32();
    request.topic_data = (0..rng.count(3))
        .map(|_| {
            let mut topic = TopicProduceData::default();
            if version >= 13 {
                topic.topic_id = random_uuid_holder(rng).topic_id;
            } else {
                topic.name = topic_name(rng);
            }
            topic.partition_data = (0..rng.count(3))
                .map(|_| {
                    let mut partition = PartitionProduceData::default();
                    partition.index = rng.i32();
                    partition.records = if rng.chance(6) {
                        None
                    } else {
                        Some(rng.bytes(200))
                    };
                    partition.unknown_tagged_fields = tagged(rng, flexible);
                    partition
                })
                .collect();
            topic.unknown_tagged_fields = tagged(rng, flexible);
            topic
        })
        .collect();
    request.unknown_tagged_fields = tagged(rng, flexible);
    request
}

fn fetch_partition(version: i16, rng: &mut Rng, flexible: bool) -> FetchPartition {
    let mut partition = FetchPartition::default();
    partition.partition = rng.i32();
    partition.fetch_offset = rng.i64();
    partition.partition_max_bytes = rng.i32();
    if version >= 9 {
        partition.current_leader_epoch = rng.i32();
    }
    if version >= 12 {
        partition.last_fetched_epoch = rng.i32();
    }
    if version >= 5 {
        partition.log_start_offset = rng.i64();
    }
    partition.unknown_tagged_fields = tagged(rng, flexible);
    partition
}

fn fetch(version: i16, rng: &mut Rng, flexible: bool) -> FetchRequest {
    let mut request = FetchRequest::default();
    if version <= 14 {
        request.replica_id = BrokerId(if rng.bool() { -1 } else { rng.i32() });
    }
    request.max_wait_ms = rng.i32();
    request.min_bytes = rng.i32();
    request.max_bytes = rng.i32();
    request.isolation_level = rng.i8() & 1;
    if version >= 7 {
        request.session_id = rng.i32();
        request.session_epoch = rng.i32();
    }
    request.topics = (0..rng.count(3))
        .map(|_| {
            let mut topic = FetchTopic::default();
            if version >= 13 {
                topic.topic_id = random_uuid_holder(rng).topic_id;
            } else {
                topic.topic = topic_name(rng);
            }
            topic.partitions = (0..rng.count(3))
                .map(|_| fetch_partition(version, rng, flexible))
                .collect();
            topic.unknown_tagged_fields = tagged(rng, flexible);
            topic
        })
        .collect();
    if version >= 7 {
        request.forgotten_topics_data = (0..rng.count(2))
            .map(|_| {
                let mut forgotten = ForgottenTopic::default();
                if version >= 13 {
                    forgotten.topic_id = random_uuid_holder(rng).topic_id;
                } else {
                    forgotten.topic = topic_name(rng);
                }
                forgotten.partitions = (0..rng.count(4)).map(|_| rng.i32()).collect();
                forgotten.unknown_tagged_fields = tagged(rng, flexible);
                forgotten
            })
            .collect();
    }
    if version >= 11 {
        request.rack_id = rng.name(8);
    }
    if version >= 12 && rng.bool() {
        request.cluster_id = Some(rng.name(22));
    }
    request.unknown_tagged_fields = tagged(rng, flexible);
    request
}

fn list_offsets(version: i16, rng: &mut Rng, flexible: bool) -> ListOffsetsRequest {
    let mut request = ListOffsetsRequest::default();
    request.replica_id = BrokerId(-1);
    if version >= 2 {
        request.isolation_level = rng.i8() & 1;
    }
    request.topics = (0..rng.count(3))
        .map(|_| {
            let mut topic = ListOffsetsTopic::default();
            topic.name = topic_name(rng);
            topic.partitions = (0..rng.count(3))
                .map(|_| {
                    let mut partition = ListOffsetsPartition::default();
                    partition.partition_index = rng.i32();
                    partition.timestamp = [-1, -2, -3, rng.i64()][rng.below(4) as usize];
                    if version >= 4 {
                        partition.current_leader_epoch = rng.i32();
                    }
                    partition.unknown_tagged_fields = tagged(rng, flexible);
                    partition
                })
                .collect();
            topic.unknown_tagged_fields = tagged(rng, flexible);
            topic
        })
        .collect();
    if version >= 10 {
        request.timeout_ms = rng.i32();
    }
    request.unknown_tagged_fields = tagged(rng, flexible);
    request
}

fn create_topics(rng: &mut Rng, flexible: bool) -> CreateTopicsRequest {
    let mut request = CreateTopicsRequest::default();
    request.topics = (0..rng.count(3))
        .map(|_| {
            let mut topic = CreatableTopic::default();
            topic.name = topic_name(rng);
            topic.num_partitions = rng.i32();
            topic.replication_factor = rng.i16();
            topic.assignments = (0..rng.count(2))
                .map(|_| {
                    let mut assignment = CreatableReplicaAssignment::default();
                    assignment.partition_index = rng.i32();
                    assignment.broker_ids =
                        (0..rng.count(3)).map(|_| BrokerId(rng.i32())).collect();
                    assignment.unknown_tagged_fields = tagged(rng, flexible);
                    assignment
                })
                .collect();
            topic.configs = (0..rng.count(3))
                .map(|_| {
                    let mut config = CreatableTopicConfig::default();
                    config.name = rng.name(30);
                    config.value = rng.bool().then(|| rng.name(30));
                    config.unknown_tagged_fields = tagged(rng, flexible);
                    config
                })
                .collect();
            topic.unknown_tagged_fields = tagged(rng, flexible);
            topic
        })
        .collect();
    request.timeout_ms = rng.i32();
    request.validate_only = rng.bool();
    request.unknown_tagged_fields = tagged(rng, flexible);
    request
}

fn delete_topics(version: i16, rng: &mut Rng, flexible: bool) -> DeleteTopicsRequest {
    let mut request = DeleteTopicsRequest::default();
    if version >= 6 {
        request.topics = (0..rng.count(3))
            .map(|_| {
                let mut state = DeleteTopicState::default();
                state.name = rng.bool().then(|| topic_name(rng));
                state.topic_id = random_uuid_holder(rng).topic_id;
                state.unknown_tagged_fields = tagged(rng, flexible);
                state
            })
            .collect();
    } else {
        request.topic_names = (0..rng.count(4)).map(|_| topic_name(rng)).collect();
    }
    request.timeout_ms = rng.i32();
    request.unknown_tagged_fields = tagged(rng, flexible);
    request
}
