//! Raft micro-benchmarks (issue 5).
//!
//! 1. Steps per second for one busy group: three in-memory replicas, a
//!    leader proposing 256-byte batches, every message stepped. Baseline in the
//!    same run: steps per second of the cheapest possible step (a stale-term
//!    message rejected at once), so the ratio shows the protocol's own cost.
//! 2. Bytes per tick between two nodes hosting 10,000 idle groups, on real
//!    encoded frames. Baselines in the same run: the same heartbeats with the
//!    term and commit every group would carry without id-only heartbeats, and
//!    one frame per group (no coalescing).
//!
//! `CARGO_TARGET_DIR=target-raft cargo run --release -p ringlet-benches --bin raft_bench`

use std::time::Instant;

use bytes::Bytes;
use ringlet_raft::manager::persist_ready;
use ringlet_raft::wire::{self, Batch, GroupMessage};
use ringlet_raft::{
    Config, GroupManager, MemStorage, Message, MessageBody, NodeId, RawNode, SplitMix64, Storage,
};

const VOTERS: [NodeId; 3] = [1, 2, 3];

fn busy_group(proposals: u64) -> (u64, f64) {
    let mut rng = SplitMix64::new(1);
    let mut nodes: Vec<RawNode<MemStorage>> = VOTERS
        .iter()
        .map(|&id| {
            RawNode::new(
                Config::new(id),
                MemStorage::new_with_voters(&VOTERS),
                rng.fork(),
            )
            .unwrap()
        })
        .collect();
    nodes[0].hup();
    let payload = Bytes::from(vec![7u8; 256]);
    let mut steps = 0u64;
    let mut inbox: Vec<Message> = Vec::new();
    let started = Instant::now();
    let mut proposed = 0;
    while proposed < proposals || nodes.iter().any(|n| n.has_ready()) {
        if proposed < proposals && nodes[0].is_leader() {
            // A few produce requests arrive between two Ready cycles.
            for _ in 0..4 {
                nodes[0].propose(payload.clone()).unwrap();
                proposed += 1;
            }
        }
        for node in nodes.iter_mut() {
            if !node.has_ready() {
                continue;
            }
            let mut rd = node.ready();
            persist_ready(node.storage_mut(), &rd).unwrap();
            inbox.extend(std::mem::take(&mut rd.messages));
            node.advance(&rd);
            compact_if_long(node);
        }
        for m in std::mem::take(&mut inbox) {
            let to = (m.to - 1) as usize;
            nodes[to].step(m).unwrap();
            steps += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        nodes.iter().all(|n| n.commit_index() >= proposals),
        "every proposal committed everywhere"
    );
    (steps, steps as f64 / elapsed)
}

/// Keep memory flat: drop applied entries well behind the commit point.
fn compact_if_long(node: &mut RawNode<MemStorage>) {
    let commit = node.storage().hard_state().commit;
    if commit > node.first_index() + 20_000 {
        let conf = node.conf_state().clone();
        node.storage_mut()
            .compact(commit - 10_000, conf, Bytes::new())
            .unwrap();
    }
}

fn stale_steps(count: u64) -> f64 {
    let mut node = RawNode::new(
        Config::new(1),
        MemStorage::new_with_voters(&VOTERS),
        SplitMix64::new(2),
    )
    .unwrap();
    node.hup();
    for id in [2, 3] {
        let grant = MessageBody::VoteResponse {
            pre_vote: true,
            reject: false,
        };
        node.step(Message {
            from: id,
            to: 1,
            term: node.term() + 1,
            body: grant,
        })
        .unwrap();
    }
    let term = node.term();
    let started = Instant::now();
    for i in 0..count {
        let body = MessageBody::VoteResponse {
            pre_vote: false,
            reject: i % 2 == 0,
        };
        node.step(Message {
            from: 2,
            to: 1,
            term: term.saturating_sub(1),
            body,
        })
        .unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

struct IdleFigures {
    bytes_per_tick: f64,
    bytes_per_group_heartbeat: f64,
    full_bytes_per_group_heartbeat: f64,
    per_group_frames_bytes_per_group_heartbeat: f64,
}

fn idle_groups(groups: u64, ticks: u64) -> IdleFigures {
    let mut rng = SplitMix64::new(3);
    let voters = [1, 2];
    let mut managers: Vec<GroupManager<MemStorage>> = voters
        .iter()
        .map(|&id| {
            let mut m = GroupManager::new(id);
            for g in 0..groups {
                let raw = RawNode::new(
                    Config::new(id),
                    MemStorage::new_with_voters(&voters),
                    rng.fork(),
                )
                .unwrap();
                m.add_group(g, raw).unwrap();
            }
            m
        })
        .collect();
    for g in 0..groups {
        managers[0].group_mut(g).unwrap().hup();
    }
    for _ in 0..20 {
        exchange(&mut managers, true);
    }
    let (mut light_bytes, mut full_bytes, mut per_group_bytes, mut group_heartbeats) =
        (0u64, 0u64, 0u64, 0u64);
    for _ in 0..ticks {
        for (batch, bytes) in exchange(&mut managers, true) {
            light_bytes += bytes as u64;
            group_heartbeats += batch
                .messages
                .iter()
                .filter(|gm| matches!(gm.msg.body, MessageBody::HeartbeatLight))
                .count() as u64;
            let full = as_full_heartbeats(&batch, &managers);
            full_bytes += wire::encode(&full).len() as u64;
            per_group_bytes += full
                .messages
                .iter()
                .map(|gm| {
                    wire::encode(&Batch {
                        from: full.from,
                        to: full.to,
                        messages: vec![gm.clone()],
                    })
                    .len() as u64
                })
                .sum::<u64>();
        }
    }
    let hb = group_heartbeats.max(1) as f64;
    IdleFigures {
        bytes_per_tick: light_bytes as f64 / ticks as f64,
        bytes_per_group_heartbeat: light_bytes as f64 / hb,
        full_bytes_per_group_heartbeat: full_bytes as f64 / hb,
        per_group_frames_bytes_per_group_heartbeat: per_group_bytes as f64 / hb,
    }
}

/// What the same frame would be if every group carried its term and commit.
fn as_full_heartbeats(batch: &Batch, managers: &[GroupManager<MemStorage>]) -> Batch {
    let leader = &managers[0];
    let messages = batch
        .messages
        .iter()
        .map(|gm| {
            let node = leader.group(gm.group).unwrap();
            let (term, commit) = (node.term(), node.commit_index());
            let body = match gm.msg.body {
                MessageBody::HeartbeatLight => MessageBody::Heartbeat { commit },
                MessageBody::HeartbeatLightResponse => MessageBody::HeartbeatResponse {
                    commit,
                    need_full: false,
                },
                ref other => other.clone(),
            };
            GroupMessage {
                group: gm.group,
                msg: Message {
                    term,
                    body,
                    ..gm.msg.clone()
                },
            }
        })
        .collect();
    Batch {
        messages,
        ..batch.clone()
    }
}

fn exchange(managers: &mut [GroupManager<MemStorage>], tick: bool) -> Vec<(Batch, usize)> {
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
            frames.extend(m.take_frames());
        }
        if frames.is_empty() {
            return sent;
        }
        for (to, frame) in frames {
            sent.push((wire::decode(frame.clone()).unwrap(), frame.len()));
            managers[(to - 1) as usize].receive(frame).unwrap();
        }
    }
}

fn main() {
    let proposals = 200_000;
    let (steps, steps_per_s) = busy_group(proposals);
    let floor = stale_steps(5_000_000);
    println!("busy group: {proposals} proposals of 256 B, 3 replicas, {steps} steps");
    println!("  steps/s (busy group)            {steps_per_s:>14.0}");
    println!("  steps/s (baseline: stale reject){floor:>14.0}");
    println!(
        "  ratio busy/baseline             {:>14.3}",
        steps_per_s / floor
    );

    let groups = 10_000;
    let idle = idle_groups(groups, 100);
    println!("idle groups: 2 nodes x {groups} groups, heartbeat every 2 ticks, both directions");
    println!(
        "  bytes per tick                  {:>14.1}",
        idle.bytes_per_tick
    );
    println!(
        "  bytes per idle group per heartbeat+response (id-only) {:>8.3}",
        idle.bytes_per_group_heartbeat
    );
    println!(
        "  baseline: same frames with term+commit per group      {:>8.3}",
        idle.full_bytes_per_group_heartbeat
    );
    println!(
        "  baseline: one frame per group and message             {:>8.3}",
        idle.per_group_frames_bytes_per_group_heartbeat
    );
    println!(
        "  ratio id-only/full {:.3}, id-only/per-group-frames {:.3}",
        idle.bytes_per_group_heartbeat / idle.full_bytes_per_group_heartbeat,
        idle.bytes_per_group_heartbeat / idle.per_group_frames_bytes_per_group_heartbeat
    );
}
