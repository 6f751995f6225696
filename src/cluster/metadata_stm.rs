//! The controller's state machine: the cluster metadata that Raft group 0's committed log
//! describes, and the function that applies one command of that log.
//!
//! Every broker applies the same committed commands in the same order to a
//! [`MetadataState`] and so holds the same broker and topic tables; shards get them as
//! immutable `Arc` snapshots. [`MetadataState::apply`] is therefore deterministic: it reads
//! nothing but the state and the command (no clock, no randomness, no broker config), and
//! every decision the controller could make differently on different brokers (topic ids,
//! replica placement) is made before proposing and carried in the command. Only Raft group
//! ids are allocated at apply time, from a counter in the state, so they are unique without
//! the proposer having to know what else is in flight. Group ids are never reused: a deleted
//! and re-created topic gets new groups, so stale Raft traffic for the old one cannot reach it.
//!
//! Validation here is limited to what keeps the tables consistent (brokers exist, replica
//! lists are sane, topics exist or do not); name and config validation is the frontend's job
//! before proposing, because changing those rules between releases must not make two brokers
//! replaying the same log disagree. A command that fails changes nothing except
//! `applied_index`, and its error is what the proposer reports to the client.
//!
//! Commands are JSON (a low-rate control log; readable with `jq` when debugging). New fields
//! must carry `#[serde(default)]` so that logs written by older brokers still decode.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cluster::topic_table::{PartitionAssignment, TopicConfigs, TopicTable};
use crate::error::BrokerError;

/// How a broker announces itself to the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node_id: i32,
    /// The Kafka listener clients connect to.
    pub host: String,
    pub port: u16,
    /// The broker-to-broker (Raft) listener.
    pub rpc_host: String,
    pub rpc_port: u16,
    pub rack: Option<String>,
}

/// One entry of the controller log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Adds a broker, or replaces its registration (a restart with a new address).
    RegisterBroker(BrokerRegistration),
    CreateTopic {
        name: String,
        /// A UUID in its hyphenated form (the `uuid` crate has no serde support here).
        topic_id: String,
        configs: TopicConfigs,
        /// One replica list per partition; `replicas[p][0]` is the preferred leader.
        replicas: Vec<Vec<i32>>,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        /// The added partitions only, in partition order.
        new_replicas: Vec<Vec<i32>>,
    },
    /// Replaces all config overrides of the topic.
    AlterConfigs {
        name: String,
        configs: TopicConfigs,
    },
}

impl MetadataCommand {
    pub fn encode(&self) -> Bytes {
        // Only strings, integers, vectors and string-keyed maps: serialization cannot fail.
        Bytes::from(serde_json::to_vec(self).expect("metadata commands always serialize"))
    }

    /// Decodes a log entry; garbage is an error, never a panic.
    pub fn decode(data: &[u8]) -> Result<Self, BrokerError> {
        serde_json::from_slice(data)
            .map_err(|err| BrokerError::Metadata(format!("undecodable metadata command: {err}")))
    }
}

/// An immutable snapshot of the registered brokers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerTable {
    brokers: BTreeMap<i32, BrokerRegistration>,
}

impl BrokerTable {
    pub fn get(&self, node_id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&node_id)
    }

    pub fn contains(&self, node_id: i32) -> bool {
        self.brokers.contains_key(&node_id)
    }

    /// Brokers in id order.
    pub fn iter(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    pub fn ids(&self) -> Vec<i32> {
        self.brokers.keys().copied().collect()
    }

    /// `(id, rack)` of every broker: the input [`crate::cluster::placement`] takes.
    pub fn racks(&self) -> Vec<(i32, Option<String>)> {
        self.iter().map(|b| (b.node_id, b.rack.clone())).collect()
    }

    pub fn len(&self) -> usize {
        self.brokers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.brokers.is_empty()
    }

    fn with_registered(&self, registration: BrokerRegistration) -> BrokerTable {
        let mut next = self.clone();
        next.brokers.insert(registration.node_id, registration);
        next
    }
}

/// The cluster metadata as of `applied_index` of the controller log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataState {
    topics: Arc<TopicTable>,
    brokers: Arc<BrokerTable>,
    /// The Raft group id the next new partition gets (0 is the controller).
    next_group: u64,
    applied_index: u64,
}

impl Default for MetadataState {
    fn default() -> Self {
        Self {
            topics: Arc::default(),
            brokers: Arc::default(),
            next_group: 1,
            applied_index: 0,
        }
    }
}

impl MetadataState {
    pub fn topics(&self) -> Arc<TopicTable> {
        self.topics.clone()
    }

    pub fn brokers(&self) -> Arc<BrokerTable> {
        self.brokers.clone()
    }

    pub fn next_group(&self) -> u64 {
        self.next_group
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// How many partitions each broker is the preferred leader of (placement's input).
    pub fn preferred_leader_load(&self) -> BTreeMap<i32, usize> {
        let mut load = BTreeMap::new();
        let assignments = self
            .topics
            .iter()
            .flat_map(|topic| topic.assignments.iter());
        for leader in assignments.filter_map(|a| a.replicas.first()) {
            *load.entry(*leader).or_default() += 1;
        }
        load
    }

    /// Records that the entry at `index` carried no command (the leader's empty no-op, a
    /// membership change), so `applied_index` keeps following the Raft applied index.
    pub fn skip(&mut self, index: u64) {
        self.advance(index);
    }

    /// Applies the committed command at Raft `index`. On error nothing changes but
    /// `applied_index`: the command was committed and is not retried.
    pub fn apply(&mut self, index: u64, command: &MetadataCommand) -> Result<(), BrokerError> {
        self.advance(index);
        match command {
            MetadataCommand::RegisterBroker(registration) => self.register(registration),
            MetadataCommand::CreateTopic {
                name,
                topic_id,
                configs,
                replicas,
            } => self.create_topic(index, name, topic_id, configs, replicas),
            MetadataCommand::DeleteTopic { name } => {
                let (next, _) = self.topics.with_deleted_at(name, index)?;
                self.topics = Arc::new(next);
                Ok(())
            }
            MetadataCommand::CreatePartitions { name, new_replicas } => {
                self.create_partitions(index, name, new_replicas)
            }
            MetadataCommand::AlterConfigs { name, configs } => {
                let next = self.topics.with_configs_at(name, configs.clone(), index)?;
                self.topics = Arc::new(next);
                Ok(())
            }
        }
    }

    fn advance(&mut self, index: u64) {
        // Raft applies each committed entry once, in index order.
        assert!(
            index > self.applied_index,
            "metadata entry {index} applied after {}",
            self.applied_index
        );
        self.applied_index = index;
    }

    fn register(&mut self, registration: &BrokerRegistration) -> Result<(), BrokerError> {
        if registration.node_id < 0 {
            return Err(BrokerError::InvalidRequest(format!(
                "Broker id must be non-negative, got {}.",
                registration.node_id
            )));
        }
        self.brokers = Arc::new(self.brokers.with_registered(registration.clone()));
        Ok(())
    }

    fn create_topic(
        &mut self,
        index: u64,
        name: &str,
        topic_id: &str,
        configs: &TopicConfigs,
        replicas: &[Vec<i32>],
    ) -> Result<(), BrokerError> {
        if self.topics.get(name).is_some() {
            return Err(BrokerError::TopicAlreadyExists(name.to_string()));
        }
        let topic_id = Uuid::parse_str(topic_id)
            .ok()
            .filter(|id| !id.is_nil())
            .ok_or_else(|| BrokerError::InvalidRequest(format!("Bad topic id {topic_id:?}.")))?;
        let rf = replicas.first().map_or(0, Vec::len);
        self.check_replicas(replicas, rf)?;
        let (assignments, next_group) = self.allocate_groups(replicas);
        let next = self.topics.with_created_assigned(
            name,
            configs.clone(),
            topic_id,
            assignments,
            index,
        )?;
        self.topics = Arc::new(next);
        self.next_group = next_group;
        Ok(())
    }

    fn create_partitions(
        &mut self,
        index: u64,
        name: &str,
        new_replicas: &[Vec<i32>],
    ) -> Result<(), BrokerError> {
        let topic = self
            .topics
            .get(name)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let rf = topic.assignments.first().map_or(0, |a| a.replicas.len());
        if new_replicas.is_empty() {
            return Err(BrokerError::InvalidPartitions(
                "No partitions to add.".to_string(),
            ));
        }
        self.check_replicas(new_replicas, rf)?;
        let (added, next_group) = self.allocate_groups(new_replicas);
        let next = self.topics.with_partitions_assigned(name, added, index)?;
        self.topics = Arc::new(next);
        self.next_group = next_group;
        Ok(())
    }

    /// Each list non-empty, `rf` long (Kafka wants one replication factor per topic), made of
    /// registered brokers, none twice.
    fn check_replicas(&self, replicas: &[Vec<i32>], rf: usize) -> Result<(), BrokerError> {
        let invalid = |message: String| Err(BrokerError::InvalidReplicaAssignment(message));
        for (partition, list) in replicas.iter().enumerate() {
            if list.is_empty() {
                return invalid(format!("Partition {partition} has no replicas."));
            }
            if list.len() != rf {
                return invalid(format!(
                    "Inconsistent replication factor: partition {partition} has {} replicas, \
                     expected {rf}.",
                    list.len()
                ));
            }
            let unknown: Vec<_> = list
                .iter()
                .filter(|id| !self.brokers.contains(**id))
                .collect();
            if !unknown.is_empty() {
                return invalid(format!(
                    "Unknown broker(s) in replica assignment: {unknown:?}."
                ));
            }
            if list.iter().collect::<BTreeSet<_>>().len() != list.len() {
                return invalid(format!(
                    "Duplicate brokers in replica assignment: {list:?}."
                ));
            }
        }
        Ok(())
    }

    /// One fresh group per partition; returns the counter to store if the command succeeds.
    fn allocate_groups(&self, replicas: &[Vec<i32>]) -> (Vec<PartitionAssignment>, u64) {
        let mut group = self.next_group;
        let assignments = replicas
            .iter()
            .map(|list| {
                let assignment = PartitionAssignment {
                    replicas: list.clone(),
                    group,
                };
                group += 1;
                assignment
            })
            .collect();
        (assignments, group)
    }
}

#[cfg(test)]
mod tests;
