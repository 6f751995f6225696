//! Metadata's cluster view on a cluster member (also DescribeCluster's controller): the live
//! brokers, the advertised controller, and per partition the leader, leader epoch, replicas, ISR and offline replicas as this broker
//! knows them (`cluster::leaders`). A partition without a known leader answers
//! LEADER_NOT_AVAILABLE, which clients retry.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;

use crate::cluster::node::ClusterShard;
use crate::cluster::TopicMeta;

/// Kafka's LEADER_NOT_AVAILABLE.
const LEADER_NOT_AVAILABLE: i16 = 5;

/// The live registered brokers, plus every registered broker that leads one of `topics`'
/// partitions. A leader missing from the broker list is one a client cannot reach:
/// librdkafka then files the partition as unknown and does not ask again for minutes. That
/// happens right after a restart, when Raft has elected a node the controller has not yet
/// heard a heartbeat from (or has just fenced, and will move the leadership off).
pub fn brokers(
    cluster: &ClusterShard,
    topics: &[MetadataResponseTopic],
) -> Vec<MetadataResponseBroker> {
    let table = cluster.brokers();
    let mut listed = cluster.alive_brokers();
    let leaders = topics
        .iter()
        .flat_map(|topic| &topic.partitions)
        .map(|partition| partition.leader_id.0);
    for leader in leaders {
        if leader >= 0 && !listed.contains(&leader) {
            listed.push(leader);
        }
    }
    listed.sort_unstable();
    listed
        .into_iter()
        .filter_map(|id| table.get(id).map(|b| (id, b.clone())))
        .map(|(id, broker)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(broker.host))
                .with_port(i32::from(broker.port))
                .with_rack(broker.rack.map(StrBytes::from_string))
        })
        .collect()
}

/// The controller id Metadata and DescribeCluster report: the Raft controller leader when it
/// is a live broker, else the lowest live broker id (-1 with none).
///
/// Kafka 4.x (KRaft) reports a *random* live broker here, since its controllers have no
/// client listener and brokers forward controller-bound requests (KIP-590). Ringlet's
/// controllers are brokers and any broker forwards topic mutations to the leader, so either
/// choice routes correctly; naming the leader, with a deterministic fallback while it is
/// unknown, makes every broker (and every answer) name the same node, which tools that
/// compare answers (and `describeCluster().controller()`) expect.
pub fn advertised_controller(cluster: &ClusterShard) -> i32 {
    let alive = cluster.alive_brokers();
    let leader = cluster.controller_id();
    if alive.contains(&leader) {
        return leader;
    }
    alive.into_iter().min().unwrap_or(-1)
}

pub fn partitions(cluster: &ClusterShard, meta: &TopicMeta) -> Vec<MetadataResponsePartition> {
    let leaders = cluster.leaders();
    let alive = cluster.alive_brokers();
    meta.assignments
        .iter()
        .enumerate()
        .map(|(index, assignment)| {
            let replicas: Vec<BrokerId> =
                assignment.replicas.iter().map(|id| BrokerId(*id)).collect();
            let offline: Vec<BrokerId> = assignment
                .replicas
                .iter()
                .filter(|id| !alive.contains(id))
                .map(|id| BrokerId(*id))
                .collect();
            let report = leaders.get(assignment.group);
            let leader = report.map_or(-1, |r| r.leader);
            let epoch = report.map_or(-1, |r| r.epoch);
            let isr: Vec<BrokerId> = match report.and_then(|r| r.isr.clone()) {
                Some(isr) => isr.into_iter().map(BrokerId).collect(),
                None if leader >= 0 => presumed_isr(leader, &assignment.replicas, &alive),
                None => Vec::new(),
            };
            MetadataResponsePartition::default()
                .with_error_code(if leader < 0 { LEADER_NOT_AVAILABLE } else { 0 })
                .with_partition_index(index as i32)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(epoch)
                .with_replica_nodes(replicas)
                .with_isr_nodes(isr)
                .with_offline_replicas(offline)
        })
        .collect()
}

/// The ISR as a broker that is not the leader presumes it until the leader's own report
/// reaches it (a heartbeat or two after an election): the leader and the live replicas, as
/// a new leader starts out (every replica counts as in sync until it fails to catch up).
/// Not the leader alone: that would tell clients the followers fell behind when they did not.
fn presumed_isr(leader: i32, replicas: &[i32], alive: &[i32]) -> Vec<BrokerId> {
    std::iter::once(leader)
        .chain(
            replicas
                .iter()
                .copied()
                .filter(|id| *id != leader && alive.contains(id)),
        )
        .map(BrokerId)
        .collect()
}
