//! A small lock-step harness for one group: nodes exchange messages directly
//! (no wire, no faults beyond cut links and crashed nodes). The protocol
//! tests and the benchmark drive it by hand; `world` is the fault-injecting
//! multi-group simulator.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use crate::manager::persist_ready;
use crate::message::{ConfState, Entry, Message, NodeId};
use crate::node::{Config, RawNode};
use crate::rng::SplitMix64;
use crate::storage::MemStorage;

pub struct Cluster {
    pub nodes: BTreeMap<NodeId, RawNode<MemStorage>>,
    /// Storage of crashed nodes (what was persisted).
    pub crashed: BTreeMap<NodeId, MemStorage>,
    /// Entries each node applied, in order (volatile: cleared on restart).
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub in_flight: VecDeque<Message>,
    /// Cut links, one direction each.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Every message ever delivered, for tests that count traffic.
    pub delivered: Vec<Message>,
    rng: SplitMix64,
    make_config: fn(NodeId) -> Config,
}

pub fn default_config(id: NodeId) -> Config {
    Config::new(id)
}

impl Cluster {
    pub fn new(voters: &[NodeId], seed: u64) -> Self {
        Self::with_config(voters, seed, default_config)
    }

    pub fn with_config(voters: &[NodeId], seed: u64, make_config: fn(NodeId) -> Config) -> Self {
        let mut cluster = Self {
            nodes: BTreeMap::new(),
            crashed: BTreeMap::new(),
            applied: BTreeMap::new(),
            in_flight: VecDeque::new(),
            cut: BTreeSet::new(),
            delivered: Vec::new(),
            rng: SplitMix64::new(seed),
            make_config,
        };
        for id in voters {
            cluster.add_node_with(*id, MemStorage::new_with_voters(voters));
        }
        cluster
    }

    /// Start a replica over `storage` (fresh, crafted by a test, or recovered).
    pub fn add_node_with(&mut self, id: NodeId, storage: MemStorage) {
        let rng = self.rng.fork();
        let node = RawNode::new((self.make_config)(id), storage, rng).expect("valid test config");
        self.nodes.insert(id, node);
        self.applied.insert(id, Vec::new());
    }

    /// A new, empty replica that joins with membership `conf`.
    pub fn add_empty_node(&mut self, id: NodeId, conf: ConfState) {
        self.add_node_with(id, MemStorage::new_with_conf(conf));
    }

    pub fn node(&self, id: NodeId) -> &RawNode<MemStorage> {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut RawNode<MemStorage> {
        self.nodes.get_mut(&id).expect("node is up")
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.is_leader())
            .map(|n| n.id())
            .collect()
    }

    /// Run one node's Ready cycle: persist, apply, queue its messages.
    pub fn process(&mut self, id: NodeId) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        if !node.has_ready() {
            return;
        }
        let mut ready = node.ready();
        persist_ready(node.storage_mut(), &ready).expect("in-memory storage accepts a Ready");
        let applied = self.applied.entry(id).or_default();
        applied.extend(ready.committed_entries.iter().cloned());
        self.in_flight.extend(std::mem::take(&mut ready.messages));
        node.advance(&ready);
    }

    /// Deliver messages until the cluster is quiet.
    pub fn stabilize(&mut self) {
        loop {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                self.process(id);
            }
            let Some(m) = self.in_flight.pop_front() else {
                break;
            };
            self.deliver(m);
        }
    }

    fn deliver(&mut self, m: Message) {
        if self.cut.contains(&(m.from, m.to)) {
            return;
        }
        if let Some(node) = self.nodes.get_mut(&m.to) {
            self.delivered.push(m.clone());
            node.step(m).expect("step");
        }
    }

    pub fn tick(&mut self, times: usize) {
        for _ in 0..times {
            for node in self.nodes.values_mut() {
                node.tick();
            }
            self.stabilize();
        }
    }

    /// Make `id` campaign now (its election timeout fired).
    pub fn campaign(&mut self, id: NodeId) {
        self.node_mut(id).hup();
        self.stabilize();
    }

    pub fn propose(&mut self, id: NodeId, data: &'static [u8]) -> crate::Result<u64> {
        let index = self.node_mut(id).propose(Bytes::from_static(data))?;
        self.stabilize();
        Ok(index)
    }

    pub fn isolate(&mut self, id: NodeId) {
        let all: Vec<NodeId> = self
            .nodes
            .keys()
            .chain(self.crashed.keys())
            .copied()
            .collect();
        for other in all.into_iter().filter(|o| *o != id) {
            self.cut.insert((id, other));
            self.cut.insert((other, id));
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Kill -9: only what the storage holds survives.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.remove(&id) {
            self.crashed.insert(id, node.into_storage());
            self.applied.remove(&id);
        }
    }

    pub fn restart(&mut self, id: NodeId) {
        if let Some(storage) = self.crashed.remove(&id) {
            self.add_node_with(id, storage);
        }
    }

    /// Applied record batches (no no-ops, no configuration entries).
    pub fn applied_data(&self, id: NodeId) -> Vec<Bytes> {
        let is_batch =
            |e: &&Entry| e.kind == crate::message::EntryKind::Normal && !e.data.is_empty();
        self.applied[&id]
            .iter()
            .filter(is_batch)
            .map(|e| e.data.clone())
            .collect()
    }
}
