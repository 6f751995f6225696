//! Issue 27: every API Ringlet serves answers for the whole cluster, whichever broker receives
//! it. Three real brokers (racks rack-1..3); for every API in the ApiVersions answer, a raw
//! request (kafka-protocol structs) through each broker at the versions the Java client 3.9
//! and librdkafka 2.12 send (clamped to the range served), its answer checked against what the
//! cluster holds: the same brokers, racks and controller through every broker, partitions where
//! they were assigned, data and producers on the partition leaders (NOT_LEADER_OR_FOLLOWER
//! elsewhere, as Kafka), groups and transactions on their coordinators (NOT_COORDINATOR
//! elsewhere), per-broker configs on their broker. The API list comes from the ApiVersions
//! answer, so an API added to the registry without a matrix entry fails this test.
//!
//! Then confluent-kafka's AdminClient (Python) through each broker: describe_cluster,
//! create_topics with a replica assignment, describe_configs of a BROKER.

mod common;

#[path = "cluster_api_matrix/admin.rs"]
mod admin;
#[path = "cluster_api_matrix/configs.rs"]
mod configs;
#[path = "cluster_api_matrix/ctx.rs"]
mod ctx;
#[path = "cluster_api_matrix/data.rs"]
mod data;
#[path = "cluster_api_matrix/groups.rs"]
mod groups;
#[path = "cluster_api_matrix/txn.rs"]
mod txn;

use kafka_protocol::messages::ApiKey;

use common::api_call::api_versions;
use common::scripts::run_python_check;
use ctx::Ctx;

/// The highest version of each API that the Java client 3.9 and librdkafka 2.12 send (their
/// own maxima; a client negotiates the lower of its maximum and the broker's). `None`: the
/// API has no matrix entry.
fn client_versions(key: ApiKey) -> Option<[i16; 2]> {
    use ApiKey::*;
    Some(match key {
        Produce => [11, 10],
        Fetch => [17, 16],
        ListOffsets => [9, 7],
        Metadata => [12, 12],
        OffsetCommit => [9, 9],
        OffsetFetch => [9, 7],
        FindCoordinator => [5, 2],
        JoinGroup => [9, 5],
        Heartbeat => [4, 3],
        LeaveGroup => [5, 1],
        SyncGroup => [5, 3],
        DescribeGroups => [5, 4],
        ListGroups => [5, 4],
        ApiVersions => [3, 3],
        CreateTopics => [7, 4],
        DeleteTopics => [6, 1],
        DeleteRecords => [2, 1],
        InitProducerId => [5, 4],
        OffsetForLeaderEpoch => [4, 2],
        AddPartitionsToTxn => [3, 0],
        AddOffsetsToTxn => [3, 0],
        EndTxn => [3, 1],
        WriteTxnMarkers => [1, 1],
        TxnOffsetCommit => [3, 3],
        DescribeConfigs => [4, 1],
        AlterConfigs => [2, 2],
        CreatePartitions => [3, 0],
        DeleteGroups => [2, 1],
        IncrementalAlterConfigs => [1, 1],
        OffsetDelete => [0, 0],
        DescribeCluster => [1, 0],
        DescribeProducers => [0, 0],
        DescribeTransactions => [0, 0],
        ListTransactions => [1, 0],
        _ => return None,
    })
}

/// The versions to test: each client's, clamped into `min..=max`, plus `max` itself (so a
/// version only newer clients send is covered too), without repeats.
fn versions_to_test(key: ApiKey, min: i16, max: i16) -> Vec<i16> {
    let clients = client_versions(key)
        .unwrap_or_else(|| panic!("{key:?} is served but has no cluster matrix entry"));
    let mut versions: Vec<i16> = clients.iter().map(|v| (*v).clamp(min, max)).collect();
    versions.push(max);
    versions.sort_unstable();
    versions.dedup();
    versions
}

/// Runs the check of `key` through broker `via` at `version`.
fn check_api(ctx: &mut Ctx, key: ApiKey, via: i32, version: i16) {
    use ApiKey::*;
    match key {
        ApiVersions => admin::api_versions(ctx, via, version),
        Metadata => admin::metadata(ctx, via, version),
        DescribeCluster => admin::describe_cluster(ctx, via, version),
        CreateTopics => admin::create_topics(ctx, via, version),
        DeleteTopics => admin::delete_topics(ctx, via, version),
        CreatePartitions => admin::create_partitions(ctx, via, version),
        DescribeConfigs => configs::describe_configs(ctx, via, version),
        AlterConfigs => configs::alter_configs(ctx, via, version),
        IncrementalAlterConfigs => configs::incremental_alter_configs(ctx, via, version),
        Produce => data::produce(ctx, via, version),
        Fetch => data::fetch(ctx, via, version),
        ListOffsets => data::list_offsets(ctx, via, version),
        DeleteRecords => data::delete_records(ctx, via, version),
        OffsetForLeaderEpoch => data::offset_for_leader_epoch(ctx, via, version),
        DescribeProducers => data::describe_producers(ctx, via, version),
        WriteTxnMarkers => data::write_txn_markers(ctx, via, version),
        FindCoordinator => groups::find_coordinator(ctx, via, version),
        JoinGroup => groups::join_group(ctx, via, version),
        SyncGroup => groups::sync_group(ctx, via, version),
        Heartbeat => groups::heartbeat(ctx, via, version),
        LeaveGroup => groups::leave_group(ctx, via, version),
        OffsetCommit => groups::offset_commit(ctx, via, version),
        OffsetFetch => groups::offset_fetch(ctx, via, version),
        DescribeGroups => groups::describe_groups(ctx, via, version),
        ListGroups => groups::list_groups(ctx, via, version),
        DeleteGroups => groups::delete_groups(ctx, via, version),
        OffsetDelete => groups::offset_delete(ctx, via, version),
        InitProducerId => txn::init_producer_id(ctx, via, version),
        AddPartitionsToTxn => txn::add_partitions_to_txn(ctx, via, version),
        AddOffsetsToTxn => txn::add_offsets_to_txn(ctx, via, version),
        EndTxn => txn::end_txn(ctx, via, version),
        TxnOffsetCommit => txn::txn_offset_commit(ctx, via, version),
        DescribeTransactions => txn::describe_transactions(ctx, via, version),
        ListTransactions => txn::list_transactions(ctx, via, version),
        other => panic!("{other:?} is served but has no cluster matrix check"),
    }
}

#[test]
fn every_api_answers_for_the_whole_cluster() {
    let mut ctx = Ctx::start();
    let served = api_versions(ctx.addr(1));
    for via in ctx.ids.clone() {
        assert_eq!(
            api_versions(ctx.addr(via)),
            served,
            "broker {via} serves a different API list than broker 1"
        );
    }
    let mut checked = 0;
    for (key, min, max) in served {
        let key = ApiKey::try_from(key).unwrap_or_else(|_| panic!("unknown API key {key}"));
        for version in versions_to_test(key, min, max) {
            for via in ctx.ids.clone() {
                println!("{key:?} v{version} through broker {via}");
                check_api(&mut ctx, key, via, version);
                checked += 1;
            }
        }
    }
    println!("{checked} API checks passed");
    ctx.assert_alive();
    confluent_admin_through_each_broker(&ctx);
}

/// confluent-kafka's AdminClient, bootstrapped from one broker at a time.
fn confluent_admin_through_each_broker(ctx: &Ctx) {
    for via in &ctx.ids {
        let bootstrap = format!("127.0.0.1:{}", ctx.addr(*via).port());
        let args = [
            "--broker-id".to_string(),
            via.to_string(),
            "--controller".to_string(),
            ctx.controller.to_string(),
        ];
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run_python_check("cluster_admin_check.py", &bootstrap, &arg_refs);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("ALL CHECKS PASSED"),
            "cluster_admin_check.py through broker {via} did not report success:\n{stdout}"
        );
    }
}
