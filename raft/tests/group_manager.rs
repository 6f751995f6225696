//! The group manager: one frame per peer per tick for every group, id-only
//! heartbeats for idle groups, and the fallback to full heartbeats.

use bytes::Bytes;
use ringlet_raft::wire::{self, Batch};
use ringlet_raft::{Config, GroupManager, MemStorage, MessageBody, NodeId, RawNode, SplitMix64};

fn cluster(nodes: &[NodeId], groups: u64, seed: u64) -> Vec<GroupManager<MemStorage>> {
    let mut rng = SplitMix64::new(seed);
    nodes
        .iter()
        .map(|&id| {
            let mut m = GroupManager::new(id);
            for g in 0..groups {
                let raw = RawNode::new(
                    Config::new(id),
                    MemStorage::new_with_voters(nodes),
                    rng.fork(),
                )
                .unwrap();
                m.add_group(g, raw).unwrap();
            }
            m
        })
        .collect()
}

/// One tick: tick, then exchange frames until quiet. Returns every frame sent
/// (as decoded batches) and its encoded size.
fn round(managers: &mut [GroupManager<MemStorage>], tick: bool) -> Vec<(Batch, usize)> {
    if tick {
        for m in managers.iter_mut() {
            m.tick();
        }
    }
    let mut sent = Vec::new();
    loop {
        let mut frames = Vec::new();
        for m in managers.iter_mut() {
            m.process_ready(|_, _, _| {}).unwrap();
            let from = m.node_id();
            let out = m.take_frames();
            let mut peers: Vec<NodeId> = out.iter().map(|(to, _)| *to).collect();
            peers.dedup();
            assert_eq!(
                peers.len(),
                out.len(),
                "node {from} sent two frames to one peer in one flush"
            );
            frames.extend(out);
        }
        if frames.is_empty() {
            return sent;
        }
        for (to, frame) in frames {
            sent.push((wire::decode(frame.clone()).unwrap(), frame.len()));
            let target = managers.iter_mut().find(|m| m.node_id() == to).unwrap();
            target.receive(frame).unwrap();
        }
    }
}

fn elect_node_1(managers: &mut [GroupManager<MemStorage>], groups: u64) {
    for g in 0..groups {
        managers[0].group_mut(g).unwrap().hup();
    }
    round(managers, false);
    for g in 0..groups {
        assert!(managers[0].group(g).unwrap().is_leader(), "group {g}");
    }
}

#[test]
fn every_groups_traffic_shares_one_frame_per_peer() {
    let mut managers = cluster(&[1, 2, 3], 50, 1);
    elect_node_1(&mut managers, 50);
    for g in 0..50 {
        managers[0]
            .group_mut(g)
            .unwrap()
            .propose(Bytes::from_static(b"batch"))
            .unwrap();
    }
    let sent = round(&mut managers, true);
    let first_flush: Vec<&Batch> = sent
        .iter()
        .map(|(b, _)| b)
        .filter(|b| b.from == 1)
        .take(2)
        .collect();
    assert_eq!(first_flush.len(), 2);
    for batch in first_flush {
        let groups: std::collections::BTreeSet<u64> =
            batch.messages.iter().map(|gm| gm.group).collect();
        assert_eq!(
            groups.len(),
            50,
            "one frame to node {} carries all 50 groups",
            batch.to
        );
    }
    for m in &managers {
        for g in 0..50 {
            assert_eq!(
                m.group(g).unwrap().commit_index(),
                2,
                "node {} group {g}",
                m.node_id()
            );
        }
    }
}

#[test]
fn idle_groups_heartbeat_with_their_id_only() {
    let groups = 1_000;
    let mut managers = cluster(&[1, 2], groups, 2);
    elect_node_1(&mut managers, groups);
    for _ in 0..10 {
        round(&mut managers, true);
    }
    let mut heartbeat_rounds = 0;
    for _ in 0..10 {
        let sent = round(&mut managers, true);
        if sent.is_empty() {
            continue;
        }
        heartbeat_rounds += 1;
        for (batch, bytes) in &sent {
            assert_eq!(batch.messages.len() as u64, groups);
            assert!(
                batch.messages.iter().all(|gm| matches!(
                    gm.msg.body,
                    MessageBody::HeartbeatLight | MessageBody::HeartbeatLightResponse
                )),
                "an idle group sent more than its id"
            );
            assert!(
                *bytes < 2 * groups as usize,
                "{bytes} bytes for {groups} id-only heartbeats"
            );
        }
    }
    assert!(
        heartbeat_rounds >= 4,
        "heartbeats every 2 ticks: {heartbeat_rounds} in 10 ticks"
    );
}

#[test]
fn restarted_follower_asks_for_full_heartbeats_and_catches_up() {
    let mut managers = cluster(&[1, 2], 3, 3);
    elect_node_1(&mut managers, 3);
    for _ in 0..10 {
        round(&mut managers, true);
    }
    // Restart node 2 from its storage: it no longer knows who leads.
    let old = std::mem::replace(&mut managers[1], GroupManager::new(2));
    let mut rng = SplitMix64::new(9);
    for (g, node) in old.into_groups() {
        let raw = RawNode::new(Config::new(2), node.into_storage(), rng.fork()).unwrap();
        managers[1].add_group(g, raw).unwrap();
    }
    managers[0]
        .group_mut(0)
        .unwrap()
        .propose(Bytes::from_static(b"after-restart"))
        .unwrap();
    let mut sent = Vec::new();
    for _ in 0..6 {
        sent.extend(round(&mut managers, true));
    }
    let asked_full = sent.iter().flat_map(|(b, _)| &b.messages).any(|gm| {
        matches!(
            gm.msg.body,
            MessageBody::HeartbeatResponse {
                need_full: true,
                ..
            }
        )
    });
    assert!(
        asked_full,
        "the restarted follower must refuse id-only heartbeats"
    );
    for g in 0..3 {
        let follower = managers[1].group(g).unwrap();
        assert_eq!(follower.leader(), Some(1), "group {g}");
        assert_eq!(
            follower.commit_index(),
            managers[0].group(g).unwrap().commit_index(),
            "group {g}"
        );
    }
}
