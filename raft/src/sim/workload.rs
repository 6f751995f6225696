//! The simulated clients and operators: the workload of proposals, membership
//! changes, log compaction (retention), and the liveness probes after the heal.

use bytes::Bytes;

use super::checker::fnv1a;
use super::world::World;
use crate::message::{ConfChange, GroupId};

impl World {
    pub(super) fn workload(&mut self) {
        for group in 0..self.cfg.groups {
            if !self.rng.chance_ppm(self.cfg.propose_ppm) {
                continue;
            }
            let value = Bytes::from(format!("g{group}-v{}", self.next_value));
            self.next_value += 1;
            let _accepted = self.propose_to_leader(group, value);
        }
        for group in 0..self.cfg.groups {
            if self.rng.chance_ppm(self.cfg.conf_change_ppm) {
                self.change_membership(group);
            }
            if self.rng.chance_ppm(self.cfg.transfer_ppm) {
                self.transfer_leadership(group);
            }
        }
    }

    /// An operator moving leadership (e.g. to rebalance leaders across brokers).
    fn transfer_leadership(&mut self, group: GroupId) {
        let pick = self.rng.next_u64();
        for node in self.nodes.iter_mut() {
            let Some(manager) = node.up.as_mut() else {
                continue;
            };
            let Ok(raw) = manager.group_mut(group) else {
                continue;
            };
            if !raw.is_leader() {
                continue;
            }
            let mut voters = raw.conf_state().voters.clone();
            voters.sort_unstable();
            let target = voters[(pick % voters.len() as u64) as usize];
            raw.transfer_leadership(target);
            self.trace = fnv1a(self.trace, &[40, target as u8]);
            return;
        }
    }

    /// Cycle membership one server at a time: remove a voter, add it back as
    /// a learner, promote it once caught up (the leader refuses before).
    fn change_membership(&mut self, group: GroupId) {
        let pick = self.rng.next_u64();
        let nodes = self.cfg.nodes;
        for node in self.nodes.iter_mut() {
            let Some(manager) = node.up.as_mut() else {
                continue;
            };
            let Ok(raw) = manager.group_mut(group) else {
                continue;
            };
            if !raw.is_leader() {
                continue;
            }
            let conf = raw.conf_state().clone();
            let change = if let Some(&learner) = conf.learners.first() {
                ConfChange::PromoteLearner(learner)
            } else if let Some(missing) = (1..=nodes).find(|id| !conf.contains(*id)) {
                ConfChange::AddLearner(missing)
            } else {
                let mut voters = conf.voters.clone();
                voters.sort_unstable();
                ConfChange::RemoveNode(voters[(pick % voters.len() as u64) as usize])
            };
            let accepted = raw.propose_conf_change(change).is_ok();
            let code = match change {
                ConfChange::AddLearner(id) => 10 + id,
                ConfChange::PromoteLearner(id) => 20 + id,
                ConfChange::RemoveNode(id) => 30 + id,
            };
            self.trace = fnv1a(self.trace, &[code as u8, u8::from(accepted)]);
            return;
        }
    }

    /// Retention: move some replicas' log start up to what they applied, so
    /// lagging followers must catch up by snapshot.
    pub(super) fn maybe_compact(&mut self, idx: usize) -> Result<(), String> {
        let Some(manager) = self.nodes[idx].up.as_mut() else {
            return Ok(());
        };
        for group in 0..self.cfg.groups {
            if !self.rng.chance_ppm(self.cfg.compact_ppm) {
                continue;
            }
            let Ok(raw) = manager.group_mut(group) else {
                continue;
            };
            let applied = raw.applied_index();
            if applied != raw.commit_index() || applied < raw.first_index() {
                continue;
            }
            let conf = raw.conf_state().clone();
            raw.storage_mut()
                .compact(applied, conf, Bytes::new())
                .map_err(|e| format!("seed {}: compaction failed: {e}", self.cfg.seed))?;
        }
        Ok(())
    }

    /// Propose to whoever believes it leads (possibly a stale leader, whose
    /// entry may then be lost: that is allowed). Returns whether one accepted.
    fn propose_to_leader(&mut self, group: GroupId, value: Bytes) -> bool {
        for node in self.nodes.iter_mut() {
            let Some(manager) = node.up.as_mut() else {
                continue;
            };
            let Ok(raw) = manager.group_mut(group) else {
                continue;
            };
            if raw.is_leader() && raw.propose(value.clone()).is_ok() {
                return true;
            }
        }
        false
    }

    pub(super) fn liveness_probes(&mut self) {
        for group in 0..self.cfg.groups {
            let due = match self.probes.get(&group) {
                None => true,
                Some((_, at)) => self.now - at >= 60 && !self.probe_done(group),
            };
            if due {
                let value = Bytes::from(format!("probe-g{group}-t{}", self.now));
                if self.propose_to_leader(group, value.clone()) {
                    self.probe_applied.retain(|(_, g)| *g != group);
                    self.probes.insert(group, (value, self.now));
                }
            }
        }
    }

    /// Every member of the group (in its leader's view) applied the probe.
    pub(super) fn probe_done(&self, group: GroupId) -> bool {
        let leader_conf = self.nodes.iter().find_map(|n| {
            let raw = n.up.as_ref()?.group(group)?;
            raw.is_leader().then(|| raw.conf_state().clone())
        });
        match leader_conf {
            Some(conf) => conf
                .members()
                .iter()
                .all(|id| self.probe_applied.contains(&(*id, group))),
            None => false,
        }
    }
}
