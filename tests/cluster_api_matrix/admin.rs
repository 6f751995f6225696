//! The cluster-describing and topic-changing APIs: every broker names the same brokers (with
//! racks) and controller, and a topic change made through any broker (explicit assignments
//! included) is what every broker then lists.

use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteTopicsRequest, DescribeClusterRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::ctx::{Ctx, ASSIGNMENT, INVALID_REPLICA_ASSIGNMENT, TOPIC};
use crate::common::api_call::{api_versions as served, call};
use crate::common::cluster::CLUSTER_TIMEOUT;
use crate::common::wait_for;

pub fn api_versions(ctx: &mut Ctx, via: i32, version: i16) {
    let mut request = ApiVersionsRequest::default();
    if version >= 3 {
        request = request
            .with_client_software_name("ringlet-matrix".into())
            .with_client_software_version("1".into());
    }
    let response = call(ctx.addr(via), version, &request);
    assert_eq!(response.error_code, 0);
    let listed: Vec<(i16, i16, i16)> = response
        .api_keys
        .iter()
        .map(|a| (a.api_key, a.min_version, a.max_version))
        .collect();
    assert_eq!(listed, served(ctx.addr(1)), "broker {via} v{version}");
}

pub fn metadata(ctx: &mut Ctx, via: i32, version: i16) {
    let topics = if version == 0 { Some(Vec::new()) } else { None };
    let request = MetadataRequest::default().with_topics(topics);
    let response = call(ctx.addr(via), version, &request);
    let brokers: Vec<(i32, Option<String>)> = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.rack.as_ref().map(|r| r.to_string())))
        .collect();
    let racks = version >= 1;
    assert_eq!(
        brokers,
        expected_brokers(ctx, racks),
        "broker {via} v{version}"
    );
    if version >= 1 {
        assert_eq!(response.controller_id.0, ctx.controller, "broker {via}");
    }
    let topic = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == TOPIC))
        .unwrap_or_else(|| panic!("broker {via} does not list {TOPIC}"));
    for (p, partition) in topic.partitions.iter().enumerate() {
        let replicas: Vec<i32> = partition.replica_nodes.iter().map(|id| id.0).collect();
        assert_eq!(
            replicas, ASSIGNMENT[p],
            "broker {via}: {TOPIC}-{p} replicas"
        );
        assert_eq!(
            partition.leader_id.0, ASSIGNMENT[p][0],
            "{TOPIC}-{p} leader"
        );
    }
}

/// `(id, rack)` of brokers 1..3, racks only where the version carries them.
fn expected_brokers(ctx: &Ctx, racks: bool) -> Vec<(i32, Option<String>)> {
    ctx.ids
        .iter()
        .map(|id| (*id, racks.then(|| format!("rack-{id}"))))
        .collect()
}

pub fn describe_cluster(ctx: &mut Ctx, via: i32, version: i16) {
    let request = DescribeClusterRequest::default()
        .with_endpoint_type(1)
        .with_include_fenced_brokers(version >= 2);
    let response = call(ctx.addr(via), version, &request);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let brokers: Vec<(i32, Option<String>)> = response
        .brokers
        .iter()
        .map(|b| {
            assert!(!b.is_fenced, "broker {} reported fenced", b.broker_id.0);
            let addr = ctx.addr(b.broker_id.0);
            assert_eq!(
                (b.host.as_str(), b.port),
                ("127.0.0.1", i32::from(addr.port()))
            );
            (b.broker_id.0, b.rack.as_ref().map(|r| r.to_string()))
        })
        .collect();
    assert_eq!(
        brokers,
        expected_brokers(ctx, true),
        "broker {via} v{version}"
    );
    assert_eq!(
        response.controller_id.0, ctx.controller,
        "broker {via} names another controller than Metadata does"
    );
    let metadata = ctx.metadata(via);
    assert_eq!(
        response.cluster_id.as_str(),
        metadata.cluster_id.as_deref().unwrap_or("")
    );
}

/// A CreateTopics topic with explicit replica lists.
fn assigned_topic(name: &str, lists: &[&[i32]]) -> CreatableTopic {
    let assignments = lists
        .iter()
        .enumerate()
        .map(|(p, replicas)| {
            CreatableReplicaAssignment::default()
                .with_partition_index(p as i32)
                .with_broker_ids(replicas.iter().map(|id| BrokerId(*id)).collect())
        })
        .collect();
    CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(assignments)
}

pub fn create_topics(ctx: &mut Ctx, via: i32, version: i16) {
    let good = ctx.unique("assigned");
    let lists: [&[i32]; 2] = [&[3, 1], &[2, 3]];
    let refused = [
        (ctx.unique("unknown-broker"), vec![&[1, 9][..]]),
        (ctx.unique("twice"), vec![&[2, 2][..]]),
        (ctx.unique("uneven"), vec![&[1, 2][..], &[3][..]]),
    ];
    let mut topics = vec![assigned_topic(&good, &lists)];
    topics.extend(refused.iter().map(|(name, l)| assigned_topic(name, l)));
    let request = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(30_000);
    let response = call(ctx.addr(via), version, &request);
    let created = &response.topics[0];
    assert_eq!(
        created.error_code, 0,
        "{good} through {via}: {:?}",
        created.error_message
    );
    if version >= 5 {
        assert_eq!((created.num_partitions, created.replication_factor), (2, 2));
    }
    for (result, (name, _)) in response.topics[1..].iter().zip(&refused) {
        assert_eq!(result.name.as_str(), name);
        assert_eq!(
            result.error_code, INVALID_REPLICA_ASSIGNMENT,
            "{name} through {via}: {:?}",
            result.error_message
        );
    }
    for other in ctx.ids.clone() {
        assert_eq!(replicas_of(ctx, other, &good), vec![vec![3, 1], vec![2, 3]]);
    }
}

/// The replica lists of `topic` as broker `via` lists them (waiting for it to appear).
fn replicas_of(ctx: &Ctx, via: i32, topic: &str) -> Vec<Vec<i32>> {
    wait_for(
        &format!("broker {via} to list {topic}"),
        CLUSTER_TIMEOUT,
        || {
            let metadata = ctx.metadata(via);
            let t = metadata
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))?;
            Some(
                t.partitions
                    .iter()
                    .map(|p| p.replica_nodes.iter().map(|id| id.0).collect())
                    .collect(),
            )
        },
    )
}

pub fn create_partitions(ctx: &mut Ctx, via: i32, version: i16) {
    let name = ctx.unique("grown");
    let request = CreateTopicsRequest::default()
        .with_topics(vec![assigned_topic(&name, &[&[1, 2]])])
        .with_timeout_ms(30_000);
    assert_eq!(call(ctx.addr(via), 7, &request).topics[0].error_code, 0);
    let grow = |count: i32, lists: &[&[i32]]| {
        let assignments = lists
            .iter()
            .map(|l| {
                CreatePartitionsAssignment::default()
                    .with_broker_ids(l.iter().map(|id| BrokerId(*id)).collect())
            })
            .collect();
        CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.clone())))
                .with_count(count)
                .with_assignments(Some(assignments))])
            .with_timeout_ms(30_000)
    };
    for bad in [&[&[1, 7][..]][..], &[&[3][..]], &[&[3, 3][..]]] {
        let response = call(ctx.addr(via), version, &grow(2, bad));
        assert_eq!(
            response.results[0].error_code, INVALID_REPLICA_ASSIGNMENT,
            "{bad:?} through {via}: {:?}",
            response.results[0].error_message
        );
    }
    let response = call(ctx.addr(via), version, &grow(3, &[&[3, 1], &[2, 3]]));
    let result = &response.results[0];
    assert_eq!(
        result.error_code, 0,
        "{name} through {via}: {:?}",
        result.error_message
    );
    for other in ctx.ids.clone() {
        wait_for(
            &format!("broker {other} to list 3 partitions of {name}"),
            CLUSTER_TIMEOUT,
            || {
                let lists = replicas_of(ctx, other, &name);
                (lists == vec![vec![1, 2], vec![3, 1], vec![2, 3]]).then_some(())
            },
        );
    }
}

pub fn delete_topics(ctx: &mut Ctx, via: i32, version: i16) {
    let name = ctx.unique("doomed");
    let lists: [&[i32]; 1] = [&[2, 3, 1]];
    let request = CreateTopicsRequest::default()
        .with_topics(vec![assigned_topic(&name, &lists)])
        .with_timeout_ms(30_000);
    assert_eq!(call(ctx.addr(via), 7, &request).topics[0].error_code, 0);
    let topic_name = TopicName(StrBytes::from_string(name.clone()));
    let request = if version >= 6 {
        DeleteTopicsRequest::default()
            .with_topics(vec![DeleteTopicState::default().with_name(Some(topic_name))])
    } else {
        DeleteTopicsRequest::default().with_topic_names(vec![topic_name])
    }
    .with_timeout_ms(30_000);
    let response = call(ctx.addr(via), version, &request);
    assert_eq!(response.responses[0].error_code, 0, "{name} through {via}");
    for other in ctx.ids.clone() {
        wait_for(
            &format!("broker {other} to forget {name}"),
            CLUSTER_TIMEOUT,
            || {
                let metadata = ctx.metadata(other);
                let listed = metadata
                    .topics
                    .iter()
                    .any(|t| t.name.as_ref().is_some_and(|n| n.as_str() == name));
                (!listed).then_some(())
            },
        );
    }
}
