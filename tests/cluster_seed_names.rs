//! Issue 19 item 5: seeds given by DNS name, as a Kubernetes StatefulSet names its pods
//! (`ringlet-0.ringlet:9192`). Three real brokers start before any of their names resolve
//! (the names are added to /etc/hosts only afterwards: glibc reads it on every lookup); they
//! must keep serving, keep retrying, and form one cluster once the names answer. Then a node
//! comes back at a new address under the same name (a rescheduled pod) and its peers find it
//! again: with another node down, acks=all writes need it, and succeed.
//!
//! Needs root (it edits /etc/hosts, restoring it at the end), as CI runs.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use common::cluster::{metadata, CLUSTER_TIMEOUT};
use common::kafka::{
    create_replicated_topic, flush_and_check_all_acked, recording_producer, send_with_retry,
};
use common::{free_port, unique_topic, wait_for, Broker};
use rdkafka::producer::BaseRecord;

const HOSTS: &str = "/etc/hosts";
const NODES: [i32; 3] = [1, 2, 3];
const MESSAGES: usize = 100;

#[test]
fn brokers_started_before_their_peers_names_resolve_form_one_cluster_and_follow_a_move() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let suffix = unique_topic("seed").replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let nodes: Vec<NamedNode> = NODES
        .iter()
        .map(|id| NamedNode::new(*id, &suffix, dir.path().into()))
        .collect();
    let seeds = nodes
        .iter()
        .map(|node| format!("{}@{}:{}", node.id, node.name, node.rpc_port))
        .collect::<Vec<_>>()
        .join(",");
    for node in &nodes {
        assert!(
            format!("{}:1", node.name).parse::<SocketAddr>().is_err()
                && std::net::ToSocketAddrs::to_socket_addrs(&format!("{}:1", node.name)).is_err(),
            "{} resolves before the test maps it",
            node.name
        );
    }
    let mut brokers: Vec<Option<Broker>> = nodes
        .iter()
        .map(|node| Some(node.start(&seeds, [127, 0, 0, 1])))
        .collect();
    // Serving while the names do not resolve, and saying so.
    for (node, broker) in nodes.iter().zip(&brokers) {
        let broker = broker.as_ref().expect("started");
        let view =
            metadata(kafka_addr(node), &[]).expect("a Metadata answer before the names resolve");
        assert!(view.brokers.len() < NODES.len(), "{view:?}");
        wait_for("the resolver's warning", CLUSTER_TIMEOUT, || {
            broker
                .log_tail(200)
                .contains("seed does not resolve; retrying")
                .then_some(())
        });
    }

    let mut hosts = HostsEntries::default();
    for node in &nodes {
        hosts.set(&node.name, "127.0.0.1");
    }
    for node in &nodes {
        wait_for("one cluster of three", CLUSTER_TIMEOUT, || {
            let view = metadata(kafka_addr(node), &[])?;
            (view.brokers == NODES && view.controller >= 1).then_some(())
        });
    }

    let topic = unique_topic("seed-names");
    let bootstrap = format!("127.0.0.1:{}", nodes[0].kafka_port);
    create_replicated_topic(&bootstrap, &topic, 1, 3);
    let in_sync = |isr_ok: &dyn Fn(&[i32]) -> bool| {
        wait_for("the ISR", CLUSTER_TIMEOUT, || {
            let view = metadata(kafka_addr(&nodes[0]), &[topic.as_str()])?;
            let partition = view.partitions.first()?;
            (partition.leader >= 1 && isr_ok(&partition.isr)).then_some(())
        })
    };
    in_sync(&|isr| isr.len() == 3);

    // Node 3 is rescheduled: the same name, the same data, a new address.
    let moved = &nodes[2];
    brokers[2].take().expect("node 3").kill_hard();
    hosts.set(&moved.name, "127.0.0.3");
    brokers[2] = Some(moved.start(&seeds, [127, 0, 0, 3]));
    // Node 2 goes too: nodes 1 and 3 are the majority now, so every acks=all write (and any
    // election) needs them to reach each other, node 1 finding node 3 at its new address.
    brokers[1].take().expect("node 2").kill_hard();
    let (producer, context) = recording_producer(&bootstrap, &[("acks", "all")]);
    for index in 0..MESSAGES {
        let payload = format!("after-the-move-{index}");
        send_with_retry(
            &producer,
            BaseRecord::with_opaque_to(&topic, index).payload(payload.as_bytes()),
        );
    }
    flush_and_check_all_acked(&producer, &context, MESSAGES);
    brokers[1] = Some(nodes[1].start(&seeds, [127, 0, 0, 1]));
    for node in &nodes {
        wait_for("three brokers again", CLUSTER_TIMEOUT, || {
            let view = metadata(kafka_addr(node), &[])?;
            (view.brokers == NODES).then_some(())
        });
    }
}

struct NamedNode {
    id: i32,
    name: String,
    kafka_port: u16,
    rpc_port: u16,
    dir: PathBuf,
}

impl NamedNode {
    fn new(id: i32, suffix: &str, root: PathBuf) -> NamedNode {
        NamedNode {
            id,
            name: format!("ringlet-{id}.{suffix}.test"),
            kafka_port: free_port(),
            rpc_port: free_port(),
            dir: root.join(format!("node-{id}")),
        }
    }

    fn start(&self, seeds: &str, rpc_ip: [u8; 4]) -> Broker {
        let rpc_listen = SocketAddr::from((rpc_ip, self.rpc_port));
        let args = [
            "--node-id".to_string(),
            self.id.to_string(),
            "--rpc-listen".to_string(),
            rpc_listen.to_string(),
            "--seeds".to_string(),
            seeds.to_string(),
        ];
        Broker::start_with_args(
            &self.dir.join("data"),
            &self.dir.join("logs"),
            self.kafka_port,
            self.kafka_port,
            &args,
        )
    }
}

fn kafka_addr(node: &NamedNode) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], node.kafka_port))
}

/// Lines this test put in /etc/hosts, taken out again on drop (also when the test fails).
#[derive(Default)]
struct HostsEntries {
    names: Vec<String>,
}

impl HostsEntries {
    /// Maps `name` to `ip`, replacing this test's earlier line for it.
    fn set(&mut self, name: &str, ip: &str) {
        remove_lines_for(name);
        let mut file = OpenOptions::new()
            .append(true)
            .open(HOSTS)
            .expect("open /etc/hosts to append (the test needs root)");
        writeln!(file, "{ip} {name}").expect("append to /etc/hosts");
        if !self.names.iter().any(|known| known == name) {
            self.names.push(name.to_string());
        }
    }
}

impl Drop for HostsEntries {
    fn drop(&mut self) {
        for name in &self.names {
            remove_lines_for(name);
        }
    }
}

/// Rewrites /etc/hosts in place (it may be a bind mount, which a rename would break).
fn remove_lines_for(name: &str) {
    let text = std::fs::read_to_string(HOSTS).expect("read /etc/hosts");
    let kept: String = text
        .lines()
        .filter(|line| line.split_whitespace().nth(1) != Some(name))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(HOSTS, kept).expect("rewrite /etc/hosts");
}
