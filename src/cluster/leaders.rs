//! Who leads each replicated partition, as this broker knows it: the table Metadata answers
//! from on every shard.
//!
//! A partition's Raft group knows its leader only on the shards hosting a replica of it, and
//! only its leader knows the in-sync replicas. Each shard reports its replicas' view to shard 0
//! when it changes; shard 0 sends them to the controller with its heartbeat, and the controller
//! answers with the merge of every broker's reports. Shard 0 merges local and controller
//! reports into one immutable [`LeaderTable`] and installs it on every shard.
//!
//! Merge rule per group: the report with the highest leader epoch wins; at equal epochs, the
//! leader's own report (the one that knows the ISR) wins over a follower's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One replica's view of its partition's leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderReport {
    pub group: u64,
    /// -1: no leader known (an election is running).
    pub leader: i32,
    /// The Raft term, which is the Kafka leader epoch.
    pub epoch: i32,
    /// The in-sync replicas, known only by the leader itself.
    pub isr: Option<Vec<i32>>,
}

impl LeaderReport {
    /// True when `self` should replace `other` for the same group.
    fn supersedes(&self, other: &LeaderReport) -> bool {
        use std::cmp::Ordering::*;
        match self.epoch.cmp(&other.epoch) {
            Greater => true,
            Less => false,
            // The leader's newest report is the truth for its epoch (its ISR moves).
            Equal if self.isr.is_some() => self != other,
            Equal if other.isr.is_some() => false,
            Equal => self.leader >= 0 && other.leader < 0,
        }
    }
}

/// An immutable snapshot: group -> best report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderTable {
    by_group: BTreeMap<u64, LeaderReport>,
}

impl LeaderTable {
    pub fn get(&self, group: u64) -> Option<&LeaderReport> {
        self.by_group.get(&group)
    }

    pub fn reports(&self) -> impl Iterator<Item = &LeaderReport> {
        self.by_group.values()
    }

    pub fn len(&self) -> usize {
        self.by_group.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_group.is_empty()
    }

    /// Merges `reports` in; true when anything changed.
    pub fn merge(&mut self, reports: impl IntoIterator<Item = LeaderReport>) -> bool {
        let mut changed = false;
        for report in reports {
            match self.by_group.get(&report.group) {
                Some(current) if !report.supersedes(current) => {}
                _ => {
                    self.by_group.insert(report.group, report);
                    changed = true;
                }
            }
        }
        changed
    }

    /// Replaces the reports of `groups` outright (a shard's own replicas: their newest view
    /// is the truth even when the epoch did not move, e.g. a leader whose ISR shrank).
    pub fn replace(&mut self, reports: impl IntoIterator<Item = LeaderReport>) -> bool {
        let mut changed = false;
        for report in reports {
            if self.by_group.get(&report.group) != Some(&report) {
                changed = true;
                self.by_group.insert(report.group, report);
            }
        }
        changed
    }

    /// Lays this broker's own replicas' reports over the table (the controller's merge of
    /// every broker's reports, a heartbeat old). A replica's own view wins unless the table
    /// knows a newer epoch, or the same leader at the same epoch with the ISR (which only the
    /// leader knows): so a leader that stepped down stops being advertised at once.
    pub fn overlay_local(&mut self, local: impl IntoIterator<Item = LeaderReport>) {
        for report in local {
            let keep_current = self.by_group.get(&report.group).is_some_and(|current| {
                current.epoch > report.epoch
                    || (current.epoch == report.epoch
                        && current.leader == report.leader
                        && report.isr.is_none())
            });
            if !keep_current {
                self.by_group.insert(report.group, report);
            }
        }
    }

    /// Drops groups that no longer exist.
    pub fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) -> bool {
        let before = self.by_group.len();
        self.by_group.retain(|group, _| keep(*group));
        before != self.by_group.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(group: u64, leader: i32, epoch: i32, isr: Option<Vec<i32>>) -> LeaderReport {
        LeaderReport {
            group,
            leader,
            epoch,
            isr,
        }
    }

    #[test]
    fn higher_epochs_win_and_the_leaders_own_report_wins_ties() {
        let mut table = LeaderTable::default();
        assert!(table.merge([report(1, 2, 3, None)]));
        assert!(
            table.merge([report(1, 2, 3, Some(vec![2, 1]))]),
            "leader's report"
        );
        assert!(
            !table.merge([report(1, 2, 3, None)]),
            "a follower's view adds nothing"
        );
        assert!(
            !table.merge([report(1, 1, 2, Some(vec![1]))]),
            "older epoch"
        );
        assert!(table.merge([report(1, 3, 4, None)]), "newer epoch");
        assert_eq!(table.get(1).map(|r| r.leader), Some(3));
        assert!(table.merge([report(1, 3, 4, Some(vec![3]))]));
        assert!(table.merge([report(1, 3, 4, Some(vec![3, 1]))]), "ISR grew");
        assert_eq!(table.get(1).and_then(|r| r.isr.clone()), Some(vec![3, 1]));
    }

    #[test]
    fn a_replicas_own_view_overrides_the_controllers_merge() {
        let mut table = LeaderTable::default();
        table.merge([
            report(1, 2, 3, Some(vec![2, 1, 3])),
            report(2, 1, 5, Some(vec![1])),
        ]);
        table.overlay_local([report(1, -1, 3, None)]);
        assert_eq!(
            table.get(1).map(|r| r.leader),
            Some(-1),
            "our leader stepped down"
        );
        table.overlay_local([report(2, 1, 5, None)]);
        assert_eq!(
            table.get(2).and_then(|r| r.isr.clone()),
            Some(vec![1]),
            "a follower's view keeps the leader's ISR"
        );
        table.overlay_local([report(2, 3, 4, None)]);
        assert_eq!(
            table.get(2).map(|r| r.leader),
            Some(1),
            "an older view loses"
        );
    }

    #[test]
    fn replace_and_retain() {
        let mut table = LeaderTable::default();
        table.merge([report(1, 2, 3, Some(vec![2, 1])), report(2, 1, 1, None)]);
        assert!(table.replace([report(1, 2, 3, Some(vec![2]))]));
        assert!(!table.replace([report(1, 2, 3, Some(vec![2]))]));
        assert!(table.retain(|group| group == 1));
        assert_eq!(table.len(), 1);
    }
}
