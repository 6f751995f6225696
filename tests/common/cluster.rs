//! A cluster of real `ringlet` broker processes on 127.0.0.1 for the replication tests: each
//! node has its own Kafka port, internal (rpc) port and data directory; the first three nodes
//! are the controller voters (`--seeds`). Nodes can be killed with SIGKILL and restarted on the
//! same ports and data, and the cluster's view (brokers, controller, partition leaders and ISR)
//! is read over the wire with a raw Metadata request, as a client sees it.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::netsplit::NetSplit;
use super::wire::{connect, read_reaction, request_frame, send, Reaction};
use super::{free_port, wait_for, Broker};

/// How long the cluster may take to agree on something (a controller, a leader). Hang
/// detector only: elections take about a second.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(120);
/// Most controller voters; further nodes are plain brokers.
const MAX_VOTERS: usize = 3;
const METADATA_KEY: i16 = 3;
const METADATA_VERSION: i16 = 12;

/// One node's fixed identity: ids and ports survive restarts.
struct Node {
    id: i32,
    kafka_port: u16,
    rpc_port: u16,
    data_dir: PathBuf,
    log_dir: PathBuf,
    /// This node's `--seeds`: the voters' rpc addresses as this node reaches them.
    seeds: String,
    broker: Option<Broker>,
}

pub struct Cluster {
    nodes: Vec<Node>,
    extra_args: Vec<String>,
    _dir: tempfile::TempDir,
}

/// One partition as Metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub partition: i32,
    pub error_code: i16,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// What one broker's Metadata answer says about the cluster.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub brokers: Vec<i32>,
    pub controller: i32,
    pub partitions: Vec<PartitionView>,
}

impl Cluster {
    /// [`Cluster::start`] with few `__transaction_state` and `__consumer_offsets`
    /// partitions (brokers start and elect them faster) and a 500 ms transaction abort
    /// check (a coordinator aborts a timed-out transaction about when it times out). The
    /// brokers inherit them from this process's environment, set once for every test of the
    /// binary.
    pub fn start_for_transactions(size: usize) -> Cluster {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::env::set_var("RINGLET_TRANSACTION_STATE_PARTITIONS", "4");
            std::env::set_var("RINGLET_OFFSETS_TOPIC_NUM_PARTITIONS", "4");
            std::env::set_var("RINGLET_TRANSACTION_ABORT_CHECK_INTERVAL_MS", "500");
        });
        Cluster::start(size)
    }

    /// Starts `size` nodes with ids 1..=size and waits until every one lists all of them.
    pub fn start(size: usize) -> Cluster {
        Cluster::start_with(size, &[])
    }

    /// As [`Cluster::start`], with ids `first_id..first_id + size`: from 0 as Kafka allows
    /// (StatefulSet ordinals, Kafka's sample configs and client test suites start there).
    pub fn start_from_id(size: usize, first_id: i32) -> Cluster {
        Cluster::start_inner(size, first_id, &[], None)
    }

    /// As [`Cluster::start`], passing `extra_args` to every node's `ringlet start`; `{id}` in
    /// an argument becomes the node's id (`--rack rack-{id}`).
    pub fn start_with(size: usize, extra_args: &[&str]) -> Cluster {
        Cluster::start_inner(size, 1, extra_args, None)
    }

    /// [`Cluster::start_with`] with ids from `first_id` as in [`Cluster::start_from_id`].
    pub fn start_from_id_with(size: usize, first_id: i32, extra_args: &[&str]) -> Cluster {
        Cluster::start_inner(size, first_id, extra_args, None)
    }

    /// As [`Cluster::start`], with every broker-to-broker link through a proxy of `split`, so
    /// the test can cut nodes off from each other.
    pub fn start_split(size: usize, split: &NetSplit) -> Cluster {
        Cluster::start_split_with(size, split, &[])
    }

    /// [`Cluster::start_split`] with `extra_args` as in [`Cluster::start_with`].
    pub fn start_split_with(size: usize, split: &NetSplit, extra_args: &[&str]) -> Cluster {
        Cluster::start_inner(size, 1, extra_args, Some(split))
    }

    fn start_inner(
        size: usize,
        first_id: i32,
        extra_args: &[&str],
        split: Option<&NetSplit>,
    ) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("ringlet-cluster-")
            .tempdir()
            .expect("create the cluster's temporary directory");
        let ports: Vec<(i32, u16, u16)> = (first_id..first_id + size as i32)
            .map(|id| (id, free_port(), free_port()))
            .collect();
        let voters = &ports[..ports.len().min(MAX_VOTERS)];
        let seeds_of = |me: i32| -> String {
            let seed = |(id, _, rpc_port): &(i32, u16, u16)| {
                let real = SocketAddr::from(([127, 0, 0, 1], *rpc_port));
                let address = match split {
                    Some(split) if *id != me => split.proxy(me, *id, real),
                    _ => real,
                };
                format!("{id}@{address}")
            };
            voters.iter().map(seed).collect::<Vec<_>>().join(",")
        };
        let nodes: Vec<Node> = ports
            .iter()
            .map(|(id, kafka_port, rpc_port)| Node {
                id: *id,
                kafka_port: *kafka_port,
                rpc_port: *rpc_port,
                data_dir: dir.path().join(format!("node-{id}/data")),
                log_dir: dir.path().join(format!("node-{id}/logs")),
                seeds: seeds_of(*id),
                broker: None,
            })
            .collect();
        let mut cluster = Cluster {
            nodes,
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
            _dir: dir,
        };
        for id in cluster.ids() {
            cluster.start_node(id);
        }
        cluster.wait_for_brokers(&cluster.ids());
        cluster
    }

    pub fn ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    /// Ids of the nodes whose process runs.
    pub fn running_ids(&mut self) -> Vec<i32> {
        self.nodes
            .iter_mut()
            .filter_map(|node| {
                let alive = node.broker.as_mut().is_some_and(Broker::is_alive);
                alive.then_some(node.id)
            })
            .collect()
    }

    /// Bootstrap list of every node (clients skip the dead ones).
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.kafka_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Bootstrap list of the running nodes only.
    pub fn running_bootstrap(&mut self) -> String {
        let running = self.running_ids();
        running
            .iter()
            .map(|id| format!("127.0.0.1:{}", self.node(*id).kafka_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn kafka_addr(&self, id: i32) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.node(id).kafka_port))
    }

    /// Starts (or restarts, on the same ports and data) node `id`.
    pub fn start_node(&mut self, id: i32) {
        let extra = self.extra_args.clone();
        let node = self.node_mut(id);
        let seeds = node.seeds.clone();
        assert!(node.broker.is_none(), "node {id} is already running");
        let mut args = vec![
            "--node-id".to_string(),
            id.to_string(),
            "--rpc-listen".to_string(),
            format!("127.0.0.1:{}", node.rpc_port),
            "--seeds".to_string(),
            seeds,
        ];
        args.extend(extra.iter().map(|arg| arg.replace("{id}", &id.to_string())));
        node.broker = Some(Broker::start_with_args(
            &node.data_dir,
            &node.log_dir,
            node.kafka_port,
            node.kafka_port,
            &args,
        ));
    }

    /// SIGTERM node `id` and wait for it to exit (a clean shutdown).
    pub fn stop(&mut self, id: i32) {
        if let Some(mut broker) = self.node_mut(id).broker.take() {
            let status = broker.stop_graceful();
            assert!(status.success(), "node {id} exited with {status}");
        }
    }

    /// SIGKILL node `id` (a crash: nothing is flushed).
    pub fn kill(&mut self, id: i32) {
        if let Some(mut broker) = self.node_mut(id).broker.take() {
            broker.kill_hard();
        }
    }

    /// SIGSTOP / SIGCONT node `id` (a stalled process that keeps its sockets open).
    pub fn pause(&mut self, id: i32, paused: bool) {
        let pid = self.broker(id).pid();
        let signal = if paused { "STOP" } else { "CONT" };
        let status = std::process::Command::new("sh")
            .args(["-c", &format!("kill -{signal} {pid}")])
            .status()
            .expect("run sh -c kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    pub fn broker(&mut self, id: i32) -> &mut Broker {
        self.node_mut(id)
            .broker
            .as_mut()
            .unwrap_or_else(|| panic!("node {id} is not running"))
    }

    /// Each node's log directory: one file per run of the node (a restart adds one).
    pub fn log_dirs(&self) -> Vec<(i32, PathBuf)> {
        self.nodes
            .iter()
            .map(|node| (node.id, node.log_dir.clone()))
            .collect()
    }

    /// The logs of every node (for failure messages).
    pub fn log_tails(&self, lines: usize) -> String {
        self.nodes
            .iter()
            .filter_map(|node| node.broker.as_ref().map(|b| b.log_tail(lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Node `asked`'s Metadata answer for `topics` (None when it does not answer).
    pub fn view_from(&self, asked: i32, topics: &[&str]) -> Option<ClusterView> {
        metadata(self.kafka_addr(asked), topics)
    }

    /// Waits until every running node lists exactly `expected` brokers.
    pub fn wait_for_brokers(&mut self, expected: &[i32]) {
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        for asked in self.running_ids() {
            wait_for(
                &format!("node {asked} to list brokers {expected:?}"),
                CLUSTER_TIMEOUT,
                || {
                    let view = self.view_from(asked, &[])?;
                    (view.brokers == expected).then_some(())
                },
            );
        }
    }

    /// Waits until a running node names a running controller; returns its id.
    pub fn wait_for_controller(&mut self) -> i32 {
        let running = self.running_ids();
        wait_for("a live controller", CLUSTER_TIMEOUT, || {
            running.iter().find_map(|asked| {
                let view = self.view_from(*asked, &[])?;
                running
                    .contains(&view.controller)
                    .then_some(view.controller)
            })
        })
    }

    /// Waits until partition `partition` of `topic` has a running leader whose ISR satisfies
    /// `isr_ok`, as seen by a running node; returns that view.
    pub fn wait_for_partition(
        &mut self,
        topic: &str,
        partition: i32,
        isr_ok: impl Fn(&[i32]) -> bool,
    ) -> PartitionView {
        let running = self.running_ids();
        wait_for(
            &format!("{topic}-{partition} to have a live leader and the expected ISR"),
            CLUSTER_TIMEOUT,
            || {
                running.iter().find_map(|asked| {
                    let view = self.view_from(*asked, &[topic])?;
                    let p = view
                        .partitions
                        .into_iter()
                        .find(|p| p.partition == partition)?;
                    (p.error_code == 0 && running.contains(&p.leader) && isr_ok(&p.isr))
                        .then_some(p)
                })
            },
        )
    }

    fn node(&self, id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }
}

/// A raw Metadata v12 request (rdkafka does not expose the controller id).
pub fn metadata(addr: SocketAddr, topics: &[&str]) -> Option<ClusterView> {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    let mut stream = connect(addr);
    let mut request = MetadataRequest::default();
    request.topics = Some(
        topics
            .iter()
            .map(|name| {
                let mut topic = MetadataRequestTopic::default();
                topic.name = Some(TopicName(StrBytes::from_string(name.to_string())));
                topic
            })
            .collect(),
    );
    request.allow_auto_topic_creation = false;
    send(
        &mut stream,
        &request_frame(&request, METADATA_KEY, METADATA_VERSION, 1),
    );
    let Reaction::Answered(body) = read_reaction(&mut stream, "Metadata") else {
        return None;
    };
    let mut bytes = Bytes::from(body);
    ResponseHeader::decode(&mut bytes, 1).ok()?;
    let response = MetadataResponse::decode(&mut bytes, METADATA_VERSION).ok()?;
    let mut brokers: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
    brokers.sort_unstable();
    let partitions = response
        .topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|p| PartitionView {
            partition: p.partition_index,
            error_code: p.error_code,
            leader: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            replicas: p.replica_nodes.iter().map(|id| id.0).collect(),
            isr: p.isr_nodes.iter().map(|id| id.0).collect(),
        })
        .collect();
    Some(ClusterView {
        brokers,
        controller: response.controller_id.0,
        partitions,
    })
}
