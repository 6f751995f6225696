//! Many Raft groups on one shard (redpanda's heartbeat manager and
//! replicate batcher, STYLE.md item 2).
//!
//! One timer ticks every group. Outgoing messages are queued per destination
//! node and leave as one [`Batch`] per peer per flush, so one frame carries
//! every group's traffic; idle groups' heartbeats are id-only
//! ([`MessageBody::HeartbeatLight`]), about one byte per group on the wire.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::{RaftError, Result};
use crate::message::{GroupId, MessageBody, NodeId};
use crate::node::{RawNode, Ready};
use crate::storage::Storage;
use crate::wire::{self, Batch, GroupMessage};

/// Persist what a Ready asks for, in the required order: snapshot, entries, hard state.
pub fn persist_ready<S: Storage>(storage: &mut S, ready: &Ready) -> Result<()> {
    if let Some(snapshot) = &ready.snapshot {
        storage.install_snapshot(snapshot.clone())?;
    }
    storage.append(&ready.entries)?;
    if let Some(hard_state) = ready.hard_state {
        storage.set_hard_state(hard_state)?;
    }
    Ok(())
}

pub struct GroupManager<S: Storage> {
    node_id: NodeId,
    groups: BTreeMap<GroupId, RawNode<S>>,
    outbox: BTreeMap<NodeId, Vec<GroupMessage>>,
    /// Messages for groups this node does not host (e.g. just deleted).
    dropped_unknown_group: u64,
}

impl<S: Storage> GroupManager<S> {
    pub fn new(node_id: NodeId) -> Self {
        Self {
            node_id,
            groups: BTreeMap::new(),
            outbox: BTreeMap::new(),
            dropped_unknown_group: 0,
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn add_group(&mut self, group: GroupId, node: RawNode<S>) -> Result<()> {
        if node.id() != self.node_id {
            return Err(RaftError::Config(format!(
                "group {group}: replica id {} on node {}",
                node.id(),
                self.node_id
            )));
        }
        self.groups.insert(group, node);
        Ok(())
    }

    pub fn remove_group(&mut self, group: GroupId) -> Option<RawNode<S>> {
        self.groups.remove(&group)
    }

    pub fn group(&self, group: GroupId) -> Option<&RawNode<S>> {
        self.groups.get(&group)
    }

    pub fn group_mut(&mut self, group: GroupId) -> Result<&mut RawNode<S>> {
        self.groups
            .get_mut(&group)
            .ok_or(RaftError::UnknownGroup { group })
    }

    pub fn groups(&self) -> impl Iterator<Item = (GroupId, &RawNode<S>)> {
        self.groups.iter().map(|(g, n)| (*g, n))
    }

    pub fn into_groups(self) -> BTreeMap<GroupId, RawNode<S>> {
        self.groups
    }

    pub fn dropped_unknown_group(&self) -> u64 {
        self.dropped_unknown_group
    }

    /// One timer for every group.
    pub fn tick(&mut self) {
        for node in self.groups.values_mut() {
            node.tick();
        }
    }

    /// Decode a frame from a peer and step every message in it.
    pub fn receive(&mut self, frame: Bytes) -> Result<()> {
        let batch = wire::decode(frame)?;
        if batch.to != self.node_id {
            return Err(RaftError::Wire {
                offset: 0,
                reason: "batch addressed to another node",
            });
        }
        self.step_batch(batch)
    }

    pub fn step_batch(&mut self, batch: Batch) -> Result<()> {
        for GroupMessage { group, mut msg } in batch.messages {
            let Some(node) = self.groups.get_mut(&group) else {
                self.dropped_unknown_group += 1;
                continue;
            };
            if matches!(
                msg.body,
                MessageBody::HeartbeatLight | MessageBody::HeartbeatLightResponse
            ) {
                // Id-only messages mean "same term as you know": see MessageBody::HeartbeatLight.
                msg.term = node.term();
            }
            msg.from = batch.from;
            msg.to = batch.to;
            node.step(msg)?;
        }
        Ok(())
    }

    /// Run the Ready cycle of every group that has one: persist into the
    /// group's storage, queue its messages, and hand the Ready to `on_ready`
    /// (before persisting, so it can inspect the log the entries go into)
    /// for applying committed entries.
    pub fn process_ready(
        &mut self,
        mut on_ready: impl FnMut(GroupId, &RawNode<S>, &Ready),
    ) -> Result<()> {
        for (group, node) in self.groups.iter_mut() {
            if !node.has_ready() {
                continue;
            }
            let mut ready = node.ready();
            on_ready(*group, node, &ready);
            persist_ready(node.storage_mut(), &ready)?;
            for msg in std::mem::take(&mut ready.messages) {
                self.outbox
                    .entry(msg.to)
                    .or_default()
                    .push(GroupMessage { group: *group, msg });
            }
            node.advance(&ready);
        }
        Ok(())
    }

    /// Queue messages produced outside [`Self::process_ready`] (a caller
    /// running its own persistence).
    pub fn queue(&mut self, group: GroupId, messages: Vec<crate::message::Message>) {
        for msg in messages {
            self.outbox
                .entry(msg.to)
                .or_default()
                .push(GroupMessage { group, msg });
        }
    }

    /// One batch per destination carrying everything queued for it.
    pub fn take_batches(&mut self) -> Vec<Batch> {
        std::mem::take(&mut self.outbox)
            .into_iter()
            .map(|(to, messages)| Batch {
                from: self.node_id,
                to,
                messages,
            })
            .collect()
    }

    /// [`Self::take_batches`], encoded: `(destination, frame)`.
    pub fn take_frames(&mut self) -> Vec<(NodeId, Bytes)> {
        self.take_batches()
            .iter()
            .map(|b| (b.to, wire::encode(b)))
            .collect()
    }
}
