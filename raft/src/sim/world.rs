//! The fault-injecting simulator: several nodes, each a [`GroupManager`]
//! hosting every group, talking through encoded [`crate::wire`] frames over
//! a network that drops, duplicates, delays, reorders and partitions; nodes
//! crash (losing whatever the Ready cycle had not persisted) and restart; a
//! workload proposes values. The [`Checker`] runs on every Ready and tick.
//!
//! After `fault_ticks` the faults heal; within `heal_ticks` every group must
//! elect a leader and commit a fresh proposal on every node (liveness).
//! Everything random comes from one seed: the same seed gives the same trace.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::checker::{fnv1a, Checker, FNV_OFFSET};
use crate::manager::GroupManager;
use crate::message::{GroupId, NodeId};
use crate::node::{Config, RawNode};
use crate::rng::SplitMix64;
use crate::storage::MemStorage;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: u64,
    pub groups: u64,
    pub fault_ticks: u64,
    pub heal_ticks: u64,
    /// Per-frame fault chances, parts per million.
    pub drop_ppm: u64,
    pub duplicate_ppm: u64,
    pub max_delay_ticks: u64,
    /// Per-tick chance that the partition changes (a new one, or healed).
    pub partition_ppm: u64,
    /// Per-node, per-tick chances.
    pub crash_ppm: u64,
    pub restart_ppm: u64,
    /// Per-group, per-tick chance of a proposal.
    pub propose_ppm: u64,
    /// Per-group, per-tick chance that the leader proposes a membership change.
    pub conf_change_ppm: u64,
    /// Per-replica, per-tick chance of compacting the log up to the applied index.
    pub compact_ppm: u64,
    /// Small limits split catch-up into many appends, so followers acknowledge
    /// old-term entries without the new leader's no-op (thesis Figure 3.7).
    pub max_append_bytes: u64,
    /// Per-group, per-tick chance that the leader hands leadership to a random voter.
    pub transfer_ppm: u64,
}

impl SimConfig {
    /// A run sized for the 1,000-seed test: the cluster shape varies with the seed.
    pub fn quick(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x5EED);
        Self {
            seed,
            nodes: rng.gen_range(3, 6),
            groups: rng.gen_range(1, 4),
            fault_ticks: 1_200,
            heal_ticks: 400,
            drop_ppm: rng.gen_range(0, 200_000),
            duplicate_ppm: rng.gen_range(0, 100_000),
            max_delay_ticks: rng.gen_range(1, 5),
            partition_ppm: rng.gen_range(0, 20_000),
            crash_ppm: rng.gen_range(0, 5_000),
            restart_ppm: 50_000,
            propose_ppm: 200_000,
            conf_change_ppm: rng.gen_range(0, 4_000),
            compact_ppm: rng.gen_range(0, 3_000),
            max_append_bytes: [1, 100, 4096][rng.gen_range(0, 3) as usize],
            transfer_ppm: rng.gen_range(0, 3_000),
        }
    }

    /// A longer run for the sweep script and the example.
    pub fn long(seed: u64) -> Self {
        Self {
            fault_ticks: 5_000,
            heal_ticks: 600,
            ..Self::quick(seed)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReport {
    pub seed: u64,
    pub trace_hash: u64,
    pub ticks: u64,
    pub committed_entries: u64,
    pub frames_sent: u64,
    pub frame_bytes: u64,
    pub crashes: u64,
    pub ticks_to_recover: u64,
    /// Snapshots installed by followers whose log start had moved on the leader.
    pub snapshots_installed: u64,
    /// Membership changes applied (summed over replicas).
    pub conf_changes_applied: u64,
}

pub(super) struct Packet {
    deliver_at: u64,
    seq: u64,
    from: NodeId,
    to: NodeId,
    frame: Bytes,
}

pub(super) struct SimNode {
    pub(super) id: NodeId,
    pub(super) up: Option<GroupManager<MemStorage>>,
    /// What survives a crash.
    disk: BTreeMap<GroupId, MemStorage>,
}

pub struct World {
    pub(super) cfg: SimConfig,
    pub(super) rng: SplitMix64,
    pub(super) now: u64,
    pub(super) nodes: Vec<SimNode>,
    pub(super) network: Vec<Packet>,
    pub(super) next_seq: u64,
    /// One side of the current partition; links across it are cut.
    pub(super) partition: Option<BTreeSet<NodeId>>,
    pub(super) checker: Checker,
    pub(super) trace: u64,
    pub(super) next_value: u64,
    pub(super) faults_on: bool,
    /// Liveness probes after the heal: the value per group, and who applied it.
    pub(super) probes: BTreeMap<GroupId, (Bytes, u64)>,
    pub(super) probe_applied: BTreeSet<(NodeId, GroupId)>,
    pub(super) report: SimReport,
}

fn node_config(id: NodeId, cfg: &SimConfig) -> Config {
    Config {
        max_inflight_appends: 8,
        max_append_bytes: cfg.max_append_bytes,
        ..Config::new(id)
    }
}

impl World {
    pub fn new(cfg: SimConfig) -> Self {
        let rng = SplitMix64::new(cfg.seed);
        let voters: Vec<NodeId> = (1..=cfg.nodes).collect();
        let mut world = Self {
            rng,
            now: 0,
            nodes: Vec::new(),
            network: Vec::new(),
            next_seq: 0,
            partition: None,
            checker: Checker::new(cfg.seed),
            trace: FNV_OFFSET,
            next_value: 0,
            faults_on: true,
            probes: BTreeMap::new(),
            probe_applied: BTreeSet::new(),
            report: SimReport {
                seed: cfg.seed,
                trace_hash: 0,
                ticks: 0,
                committed_entries: 0,
                frames_sent: 0,
                frame_bytes: 0,
                crashes: 0,
                ticks_to_recover: 0,
                snapshots_installed: 0,
                conf_changes_applied: 0,
            },
            cfg,
        };
        for &id in &voters {
            let disk = (0..world.cfg.groups)
                .map(|g| (g, MemStorage::new_with_voters(&voters)))
                .collect();
            world.nodes.push(SimNode { id, up: None, disk });
            world.start(id);
        }
        world
    }

    pub(super) fn record(&mut self, words: &[u64]) {
        for w in words {
            self.trace = fnv1a(self.trace, &w.to_le_bytes());
        }
    }

    fn start(&mut self, id: NodeId) {
        let mut rng = self.rng.fork();
        let node = &mut self.nodes[(id - 1) as usize];
        let mut manager = GroupManager::new(id);
        for (group, storage) in std::mem::take(&mut node.disk) {
            let raw = RawNode::new(node_config(id, &self.cfg), storage, rng.fork())
                .expect("valid sim config");
            manager
                .add_group(group, raw)
                .expect("replica id matches node");
        }
        node.up = Some(manager);
        self.checker.on_restart(id);
        self.record(&[self.now, 1, id]);
    }

    fn crash(&mut self, id: NodeId) {
        let node = &mut self.nodes[(id - 1) as usize];
        if let Some(manager) = node.up.take() {
            node.disk = manager
                .into_groups()
                .into_iter()
                .map(|(g, n)| (g, n.into_storage()))
                .collect();
            self.report.crashes += 1;
            self.record(&[self.now, 2, id]);
        }
    }

    pub(super) fn maybe_crash_some(&mut self) {
        if !self.faults_on {
            return;
        }
        for id in 1..=self.cfg.nodes {
            if self.nodes[(id - 1) as usize].up.is_some() && self.rng.chance_ppm(self.cfg.crash_ppm)
            {
                self.crash(id);
            }
        }
    }

    fn faults(&mut self) {
        if self.rng.chance_ppm(self.cfg.partition_ppm) {
            self.partition = if self.partition.is_some() || self.cfg.nodes < 2 {
                None
            } else {
                let side: BTreeSet<NodeId> = (1..=self.cfg.nodes)
                    .filter(|_| self.rng.chance_ppm(500_000))
                    .collect();
                Some(side)
            };
            self.record(&[self.now, 3]);
        }
        for id in 1..=self.cfg.nodes {
            if self.nodes[(id - 1) as usize].up.is_none()
                && self.rng.chance_ppm(self.cfg.restart_ppm)
            {
                self.start(id);
            }
        }
        self.maybe_crash_some();
    }

    fn linked(&self, a: NodeId, b: NodeId) -> bool {
        match &self.partition {
            Some(side) => side.contains(&a) == side.contains(&b),
            None => true,
        }
    }

    fn deliver_due(&mut self) -> Result<(), String> {
        let now = self.now;
        let mut due: Vec<Packet> = Vec::new();
        let mut i = 0;
        while i < self.network.len() {
            if self.network[i].deliver_at <= now {
                due.push(self.network.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|p| (p.deliver_at, p.seq));
        for p in due {
            if !self.linked(p.from, p.to) {
                continue;
            }
            if self.nodes[(p.to - 1) as usize].up.is_none() {
                continue;
            }
            self.record(&[now, 4, p.from, p.to, p.frame.len() as u64]);
            let manager = self.nodes[(p.to - 1) as usize]
                .up
                .as_mut()
                .expect("checked above");
            manager
                .receive(p.frame)
                .map_err(|e| format!("seed {}: own frame rejected: {e}", self.cfg.seed))?;
        }
        Ok(())
    }

    fn process_and_send(&mut self) -> Result<(), String> {
        let mut outgoing = Vec::new();
        for idx in 0..self.nodes.len() {
            let id = self.nodes[idx].id;
            let Some(manager) = self.nodes[idx].up.as_mut() else {
                continue;
            };
            let checker = &mut self.checker;
            let probes = &self.probes;
            let probe_applied = &mut self.probe_applied;
            let mut trace = Vec::new();
            let mut failure = None;
            let (mut snapshots, mut conf_changes) = (0, 0);
            manager
                .process_ready(|group, node, rd| {
                    if let Err(e) = checker.on_ready(id, group, node, rd) {
                        failure.get_or_insert(e);
                    }
                    snapshots += u64::from(rd.snapshot.is_some());
                    for e in &rd.committed_entries {
                        conf_changes += u64::from(e.kind == crate::message::EntryKind::ConfChange);
                        trace.extend_from_slice(&[id, group, e.index, e.term]);
                        if probes
                            .get(&group)
                            .is_some_and(|(value, _)| *value == e.data)
                        {
                            probe_applied.insert((id, group));
                        }
                    }
                })
                .map_err(|e| format!("seed {}: persist failed: {e}", self.cfg.seed))?;
            if let Some(e) = failure {
                return Err(e);
            }
            self.report.snapshots_installed += snapshots;
            self.report.conf_changes_applied += conf_changes;
            outgoing.push((id, manager.take_frames()));
            self.record(&trace);
            self.maybe_compact(idx)?;
        }
        // A crash here loses messages that were persisted but not yet sent.
        self.maybe_crash_some();
        for (from, frames) in outgoing {
            if self.nodes[(from - 1) as usize].up.is_none() {
                continue;
            }
            for (to, frame) in frames {
                self.send(from, to, frame);
            }
        }
        Ok(())
    }

    fn send(&mut self, from: NodeId, to: NodeId, frame: Bytes) {
        self.report.frames_sent += 1;
        self.report.frame_bytes += frame.len() as u64;
        let copies = if !self.faults_on {
            1
        } else if self.rng.chance_ppm(self.cfg.drop_ppm) {
            0
        } else if self.rng.chance_ppm(self.cfg.duplicate_ppm) {
            2
        } else {
            1
        };
        let max_delay = if self.faults_on {
            self.cfg.max_delay_ticks
        } else {
            1
        };
        for _ in 0..copies {
            let deliver_at = self.now + self.rng.gen_range(1, max_delay + 1);
            self.network.push(Packet {
                deliver_at,
                seq: self.next_seq,
                from,
                to,
                frame: frame.clone(),
            });
            self.next_seq += 1;
        }
    }

    fn check_tick(&mut self) -> Result<(), String> {
        for node in &self.nodes {
            let Some(manager) = node.up.as_ref() else {
                continue;
            };
            for (group, raw) in manager.groups() {
                self.checker.on_tick(node.id, group, raw)?;
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), String> {
        self.now += 1;
        if self.faults_on {
            self.faults();
            self.workload();
        } else {
            self.liveness_probes();
        }
        for node in self.nodes.iter_mut() {
            if let Some(manager) = node.up.as_mut() {
                manager.tick();
            }
        }
        self.deliver_due()?;
        // A crash here loses what was received or proposed but not persisted.
        self.maybe_crash_some();
        self.process_and_send()?;
        self.check_tick()
    }

    fn heal(&mut self) {
        self.faults_on = false;
        self.partition = None;
        for id in 1..=self.cfg.nodes {
            if self.nodes[(id - 1) as usize].up.is_none() {
                self.start(id);
            }
        }
    }

    /// After the heal: propose one probe per group to its leader, again every
    /// few election timeouts until every node applied it.
    pub fn run(mut self) -> Result<SimReport, String> {
        for _ in 0..self.cfg.fault_ticks {
            self.step()?;
        }
        self.heal();
        let healed_at = self.now;
        loop {
            self.step()?;
            if (0..self.cfg.groups).all(|g| self.probe_done(g)) {
                break;
            }
            if self.now - healed_at >= self.cfg.heal_ticks {
                let pending: Vec<GroupId> = (0..self.cfg.groups)
                    .filter(|g| !self.probe_done(*g))
                    .collect();
                return Err(format!(
                    "seed {}: liveness: groups {pending:?} did not commit a proposal on every node within {} ticks of healing",
                    self.cfg.seed, self.cfg.heal_ticks
                ));
            }
        }
        self.report.ticks_to_recover = self.now - healed_at;
        self.report.ticks = self.now;
        self.report.committed_entries = (0..self.cfg.groups)
            .map(|g| self.checker.committed_len(g) as u64)
            .sum();
        self.report.trace_hash = self.trace;
        Ok(self.report)
    }
}

/// Run one seed; a panic inside the core (a failed invariant assert) is
/// turned into an error naming the seed.
pub fn run_seed(cfg: SimConfig) -> Result<SimReport, String> {
    let seed = cfg.seed;
    match std::panic::catch_unwind(move || World::new(cfg).run()) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("seed {seed}: panic: {what}"))
        }
    }
}
