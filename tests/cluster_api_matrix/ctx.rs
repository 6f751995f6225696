//! The matrix's cluster and what it holds: three brokers on racks rack-1..3, topic `matrix`
//! created with an explicit assignment (partition p led by broker p+1), a few records from an
//! idempotent producer in each partition, and every partition (the internal topics' too) led
//! by its preferred replica before the checks start, so leadership does not move under them.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, MetadataResponse, ProduceRequest, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::common::api_call::call;
use crate::common::cluster::{Cluster, CLUSTER_TIMEOUT};
use crate::common::wait_for;

pub const TOPIC: &str = "matrix";
/// Partition p's replicas: led by broker p+1, followed by the other two.
pub const ASSIGNMENT: [[i32; 3]; 3] = [[1, 2, 3], [2, 3, 1], [3, 1, 2]];
/// Records the setup writes to each partition of [`TOPIC`].
pub const RECORDS_PER_PARTITION: i64 = 5;
pub const GROUP_KEY: i8 = 0;
pub const TXN_KEY: i8 = 1;

pub const NOT_LEADER: i16 = 6;
pub const NOT_COORDINATOR: i16 = 16;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_REQUEST: i16 = 42;

pub struct Ctx {
    pub cluster: Cluster,
    pub ids: Vec<i32>,
    /// The controller every broker names.
    pub controller: i32,
    /// The idempotent producer the setup wrote with, and its next sequence per partition.
    pub producer_id: i64,
    pub next_sequence: [i32; 3],
    /// A counter for names that must be unique per check.
    serial: u32,
}

impl Ctx {
    pub fn start() -> Ctx {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::env::set_var("RINGLET_TRANSACTION_STATE_PARTITIONS", "3");
            std::env::set_var("RINGLET_OFFSETS_TOPIC_NUM_PARTITIONS", "3");
            std::env::set_var("RINGLET_GROUP_INITIAL_REBALANCE_DELAY_MS", "0");
        });
        let cluster = Cluster::start_with(3, &["--rack", "rack-{id}"]);
        let ids = cluster.ids();
        let mut ctx = Ctx {
            cluster,
            ids,
            controller: -1,
            producer_id: -1,
            next_sequence: [0; 3],
            serial: 0,
        };
        ctx.create_matrix_topic();
        // FindCoordinator creates the internal topics; then wait for every leader to settle.
        for key_type in [GROUP_KEY, TXN_KEY] {
            let request = FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![StrBytes::from_static_str("setup")]);
            call(ctx.addr(1), 4, &request);
        }
        ctx.wait_for_preferred_leaders();
        ctx.controller = ctx.metadata(1).controller_id.0;
        ctx.write_records();
        ctx
    }

    pub fn addr(&self, id: i32) -> SocketAddr {
        self.cluster.kafka_addr(id)
    }

    pub fn others(&self, id: i32) -> Vec<i32> {
        self.ids
            .iter()
            .copied()
            .filter(|other| *other != id)
            .collect()
    }

    /// A fresh name with `prefix`.
    pub fn unique(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("{prefix}-{}", self.serial)
    }

    /// Broker `via`'s Metadata answer for every topic (v12).
    pub fn metadata(&self, via: i32) -> MetadataResponse {
        let request = MetadataRequest::default().with_topics(None);
        call(self.addr(via), 12, &request)
    }

    pub fn assert_alive(&mut self) {
        for id in self.ids.clone() {
            self.cluster.broker(id).assert_alive("after the API matrix");
        }
    }

    fn create_matrix_topic(&mut self) {
        let assignments = ASSIGNMENT
            .iter()
            .enumerate()
            .map(|(p, replicas)| {
                CreatableReplicaAssignment::default()
                    .with_partition_index(p as i32)
                    .with_broker_ids(replicas.iter().map(|id| BrokerId(*id)).collect())
            })
            .collect();
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(assignments);
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(30_000);
        let response = call(self.addr(2), 7, &request);
        let result = &response.topics[0];
        assert_eq!(
            result.error_code, 0,
            "creating {TOPIC} with an explicit assignment through broker 2: {:?}",
            result.error_message
        );
        assert_eq!((result.num_partitions, result.replication_factor), (3, 3));
    }

    /// Waits until every broker lists every partition led by its first replica, with all
    /// replicas in sync.
    fn wait_for_preferred_leaders(&self) {
        for via in &self.ids {
            wait_for(
                &format!("broker {via} to list every partition on its preferred leader"),
                CLUSTER_TIMEOUT,
                || {
                    let metadata = self.metadata(*via);
                    let settled = metadata.topics.iter().all(|topic| {
                        topic.partitions.iter().all(|p| {
                            p.error_code == 0
                                && p.replica_nodes.first() == Some(&p.leader_id)
                                && p.isr_nodes.len() == p.replica_nodes.len()
                        })
                    });
                    (settled && metadata.topics.len() >= 3).then_some(())
                },
            );
        }
    }

    /// RECORDS_PER_PARTITION records from an idempotent producer into each partition,
    /// through its leader.
    fn write_records(&mut self) {
        let init = call(
            self.addr(1),
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
        assert_eq!(init.error_code, 0, "InitProducerId for the setup producer");
        self.producer_id = init.producer_id.0;
        // Two batches, so that offset 1 (where the DeleteRecords check moves the log start)
        // is a batch boundary: a replicated partition's log start moves to the start of the
        // batch holding the requested offset (`partition/replicas/log_start.rs`), where
        // Kafka's moves to the offset itself.
        for partition in 0..3 {
            let leader = ASSIGNMENT[partition as usize][0];
            for count in [1, RECORDS_PER_PARTITION as i32 - 1] {
                let request = self.produce_request(partition, count);
                let response = call(self.addr(leader), 9, &request);
                let p = &response.responses[0].partition_responses[0];
                assert_eq!(p.error_code, 0, "setup produce to {TOPIC}-{partition}");
            }
        }
    }

    /// A produce request (acks=all) of `count` records from the setup producer to
    /// `partition`, at its next sequence.
    pub fn produce_request(&mut self, partition: i32, count: i32) -> ProduceRequest {
        let sequence = self.next_sequence[partition as usize];
        self.next_sequence[partition as usize] += count;
        let records = batch(self.producer_id, sequence, count);
        let data = PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(records));
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_data(vec![data])])
    }
}

/// One record batch of `count` records from producer `producer_id` (epoch 0).
pub fn batch(producer_id: i64, first_sequence: i32, count: i32) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: first_sequence + i,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(format!("value-{}", first_sequence + i))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode a record batch");
    buf.freeze()
}
