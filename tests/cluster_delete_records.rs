//! Issue #6: DeleteRecords on a replicated partition (RF=3, three real brokers). The leader
//! moves every replica's log start through Raft, so after the leader is killed (SIGKILL) the
//! new leader starts its log where the deleted records ended, and no replica serves them.
//! The log start lands on a batch boundary: a request inside a batch keeps that batch. A
//! replica that was down when the records were deleted deletes them when it catches up.

mod common;
mod idempotence_support;

use std::net::TcpStream;

use common::cluster::{Cluster, CLUSTER_TIMEOUT};
use common::kafka::create_replicated_topic;
use common::{unique_topic, wait_for, wire};
use idempotence_support::{batch, call, fetch_request, produce, Producer};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, FetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

const BATCHES: usize = 10;
const RECORDS_PER_BATCH: usize = 10;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

#[test]
fn delete_records_moves_every_replicas_log_start_and_survives_a_leader_kill() {
    let mut cluster = Cluster::start(3);
    let topic = unique_topic("delete-rf3");
    create_replicated_topic(&cluster.bootstrap(), &topic, 1, 3);
    let leader = cluster
        .wait_for_partition(&topic, 0, |isr| isr.len() == 3)
        .leader;
    let mut to_leader = wire::connect(cluster.kafka_addr(leader));
    let values: Vec<String> = (0..RECORDS_PER_BATCH).map(|i| format!("v{i}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let bases: Vec<i64> = (0..BATCHES)
        .map(|_| {
            let answer = produce(
                &mut to_leader,
                &topic,
                0,
                batch(Producer::NONE, 0, false, &values),
            );
            assert_eq!(answer.error_code, 0);
            answer.base_offset
        })
        .collect();
    let high_watermark = bases[BATCHES - 1] + RECORDS_PER_BATCH as i64;

    // At a batch boundary: exactly there.
    assert_eq!(
        delete_records(&mut to_leader, &topic, bases[4]),
        (0, bases[4])
    );
    // Inside a batch: the log starts at that batch (its records below the offset stay).
    assert_eq!(
        delete_records(&mut to_leader, &topic, bases[6] + 3),
        (0, bases[6])
    );
    // Below the log start: nothing moves; beyond the high watermark (the commands took no
    // offset): refused.
    assert_eq!(
        delete_records(&mut to_leader, &topic, bases[2]),
        (0, bases[6])
    );
    assert_eq!(
        delete_records(&mut to_leader, &topic, high_watermark + 1000).0,
        OFFSET_OUT_OF_RANGE
    );
    let follower = *cluster.ids().iter().find(|id| **id != leader).unwrap();
    let mut to_follower = wire::connect(cluster.kafka_addr(follower));
    assert_eq!(
        delete_records(&mut to_follower, &topic, bases[8]).0,
        NOT_LEADER_OR_FOLLOWER,
        "only the leader takes DeleteRecords"
    );

    // Every replica moved its own log start (followers serve v11 fetches).
    for id in cluster.ids() {
        let mut stream = wire::connect(cluster.kafka_addr(id));
        wait_for("the replica's log start", CLUSTER_TIMEOUT, || {
            let served = fetch_from(&mut stream, &topic, bases[6]);
            (served.log_start_offset == bases[6]).then_some(())
        });
    }

    cluster.kill(leader);
    let new_leader = cluster.wait_for_partition(&topic, 0, |_| true).leader;
    let mut to_new = wire::connect(cluster.kafka_addr(new_leader));
    let served = wait_for("the new leader to serve", CLUSTER_TIMEOUT, || {
        let served = fetch_from(&mut to_new, &topic, bases[6]);
        (served.error_code != NOT_LEADER_OR_FOLLOWER).then_some(served)
    });
    assert_eq!((served.error_code, served.log_start_offset), (0, bases[6]));
    let below = fetch_from(&mut to_new, &topic, bases[5]);
    assert_eq!(
        below.error_code, OFFSET_OUT_OF_RANGE,
        "deleted records are gone"
    );
    // The new leader takes DeleteRecords too: up to the high watermark (-1).
    let (error, low_watermark) = delete_records(&mut to_new, &topic, -1);
    assert_eq!(error, 0);
    assert!(
        low_watermark >= high_watermark,
        "{low_watermark} < {high_watermark}"
    );

    // The killed node restarts and gets that command through replication as well.
    cluster.start_node(leader);
    let mut to_restarted = wire::connect(cluster.kafka_addr(leader));
    wait_for("the restarted replica's log start", CLUSTER_TIMEOUT, || {
        let served = fetch_from(&mut to_restarted, &topic, low_watermark);
        (served.error_code == 0 && served.log_start_offset == low_watermark).then_some(())
    });
}

/// DeleteRecords v2 of partition 0 up to `offset`: `(error code, low watermark)`.
fn delete_records(stream: &mut TcpStream, topic: &str, offset: i64) -> (i16, i64) {
    let mut partition = DeleteRecordsPartition::default();
    partition.partition_index = 0;
    partition.offset = offset;
    let mut t = DeleteRecordsTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions.push(partition);
    let mut request = DeleteRecordsRequest::default();
    request.timeout_ms = 30_000;
    request.topics.push(t);
    let response: DeleteRecordsResponse = call(stream, 21, 2, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

fn fetch_from(stream: &mut TcpStream, topic: &str, offset: i64) -> PartitionData {
    let request = fetch_request(topic, 0, offset, 0);
    let mut response: FetchResponse = call(stream, 1, 11, &request);
    assert_eq!(response.error_code, 0, "fetch error");
    response.responses.remove(0).partitions.remove(0)
}
