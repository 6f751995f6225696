//! Replica placement for new partitions: which brokers hold each one, and which of them is
//! the preferred leader (`replicas[0]`).
//!
//! A pure, deterministic function of its inputs (no randomness, unlike Kafka's random start
//! index), so the controller can compute it before proposing the command and any broker can
//! recompute it in a test. The shape follows Kafka's rack-aware assignment
//! (`AdminUtils.assignReplicasToBrokers`):
//!
//! - brokers are laid out in a *rack-alternating* order: racks sorted by name, brokers sorted
//!   by id within a rack, then one broker of each rack in turn (`a1 b1 c1 a2 b2 c2 ...`);
//!   brokers without a rack form one more "rack" of their own;
//! - the preferred leader of each partition is the broker leading the fewest partitions so far
//!   (`leader_load` plus this call's picks); ties go to the broker at or after position
//!   `partition mod n` of that order, so equally loaded brokers take turns;
//! - followers are the brokers after the leader in that order, starting at a shift that grows
//!   every `n` partitions (Kafka's `nextReplicaShift`) so that follower sets differ between
//!   rounds; a broker whose rack already holds a replica is skipped while some rack holds none.
//!
//! Only preferred leadership is balanced against existing load: followers cost little
//! compared with serving produce and fetch traffic as a leader.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::BrokerError;

/// The replica lists of partitions `first_partition..first_partition + partitions`.
///
/// `brokers` are the live brokers with their racks (any order; duplicates are ignored),
/// `leader_load` how many partitions each broker already leads as preferred leader.
pub fn assign_replicas(
    partitions: i32,
    replication_factor: i32,
    brokers: &[(i32, Option<String>)],
    leader_load: &BTreeMap<i32, usize>,
    first_partition: i32,
) -> Result<Vec<Vec<i32>>, BrokerError> {
    let layout = Layout::new(brokers);
    let rf = check_replication_factor(replication_factor, layout.order.len())?;
    if partitions < 1 || first_partition < 0 {
        return Err(BrokerError::InvalidPartitions(format!(
            "Number of partitions must be larger than 0, got {partitions} from partition \
             {first_partition}."
        )));
    }
    let mut load: Vec<usize> = layout
        .order
        .iter()
        .map(|id| leader_load.get(id).copied().unwrap_or(0))
        .collect();
    let assignment = (0..partitions)
        .map(|i| {
            let partition = first_partition as usize + i as usize;
            let leader = layout.pick_leader(&load, partition);
            load[leader] += 1;
            layout.replicas(leader, partition, rf)
        })
        .collect();
    Ok(assignment)
}

fn check_replication_factor(replication_factor: i32, brokers: usize) -> Result<usize, BrokerError> {
    if replication_factor < 1 {
        return Err(BrokerError::InvalidReplicationFactor(
            "Replication factor must be larger than 0.".to_string(),
        ));
    }
    let rf = replication_factor as usize;
    if rf > brokers {
        return Err(BrokerError::InvalidReplicationFactor(format!(
            "Replication factor: {replication_factor} larger than available brokers: {brokers}."
        )));
    }
    Ok(rf)
}

/// The brokers in rack-alternating order; everything below works on positions in it.
struct Layout {
    order: Vec<i32>,
    /// `rack_of[pos]`: a small rack number for `order[pos]`.
    rack_of: Vec<usize>,
    racks: usize,
}

impl Layout {
    fn new(brokers: &[(i32, Option<String>)]) -> Self {
        // BTreeMaps sort racks (None first) and ids, and drop duplicate ids: the result does
        // not depend on the order the caller listed the brokers in.
        let unique: BTreeMap<i32, Option<&str>> = brokers
            .iter()
            .map(|(id, rack)| (*id, rack.as_deref()))
            .collect();
        let mut by_rack: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
        for (id, rack) in unique {
            by_rack.entry(rack).or_default().push(id);
        }
        let racks = by_rack.len();
        let mut order = Vec::new();
        let mut rack_of = Vec::new();
        let deepest = by_rack.values().map(Vec::len).max().unwrap_or(0);
        for round in 0..deepest {
            for (rack, ids) in by_rack.values().enumerate() {
                if let Some(id) = ids.get(round) {
                    order.push(*id);
                    rack_of.push(rack);
                }
            }
        }
        Self {
            order,
            rack_of,
            racks,
        }
    }

    /// The least loaded position; ties go to the first one at or after `partition mod n`.
    fn pick_leader(&self, load: &[usize], partition: usize) -> usize {
        let n = self.order.len();
        let start = partition % n;
        (0..n)
            .map(|k| (start + k) % n)
            .min_by_key(|&pos| load[pos])
            .expect("at least one broker (checked against the replication factor)")
    }

    /// Broker ids of one partition: the leader, then followers in rack-alternating order.
    fn replicas(&self, leader: usize, partition: usize, rf: usize) -> Vec<i32> {
        let n = self.order.len();
        // Kafka's nextReplicaShift: 1..n-1, moving on every n partitions.
        let shift = if n > 1 {
            1 + (partition / n) % (n - 1)
        } else {
            0
        };
        let candidates: Vec<usize> = (0..n)
            .map(|k| (leader + shift + k) % n)
            .filter(|&pos| pos != leader)
            .collect();
        let mut chosen = vec![leader];
        let mut racks_used = BTreeSet::from([self.rack_of[leader]]);
        while chosen.len() < rf {
            let free = |pos: &&usize| !chosen.contains(*pos);
            let pos = *candidates
                .iter()
                .filter(free)
                .find(|&&pos| {
                    racks_used.len() == self.racks || !racks_used.contains(&self.rack_of[pos])
                })
                .or_else(|| candidates.iter().find(free))
                .expect("rf <= brokers leaves a free broker");
            racks_used.insert(self.rack_of[pos]);
            chosen.push(pos);
        }
        chosen.into_iter().map(|pos| self.order[pos]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(ids: &[i32]) -> Vec<(i32, Option<String>)> {
        ids.iter().map(|&id| (id, None)).collect()
    }

    fn leader_counts(assignment: &[Vec<i32>]) -> BTreeMap<i32, usize> {
        let mut counts = BTreeMap::new();
        for replicas in assignment {
            *counts.entry(replicas[0]).or_default() += 1;
        }
        counts
    }

    #[test]
    fn leaders_and_replicas_spread_evenly() {
        let brokers = plain(&[5, 1, 3, 2, 4]);
        let assignment = assign_replicas(100, 3, &brokers, &BTreeMap::new(), 0).unwrap();
        assert_eq!(assignment.len(), 100);
        let leaders = leader_counts(&assignment);
        assert!(leaders.values().all(|&count| count == 20), "{leaders:?}");
        let mut replicas: BTreeMap<i32, usize> = BTreeMap::new();
        for partition in &assignment {
            assert_eq!(partition.len(), 3);
            let unique: BTreeSet<_> = partition.iter().collect();
            assert_eq!(unique.len(), 3, "a broker repeats in {partition:?}");
            for id in partition {
                *replicas.entry(*id).or_default() += 1;
            }
        }
        assert!(replicas.values().all(|&count| count == 60), "{replicas:?}");
        let pairs: BTreeSet<_> = assignment.iter().map(|r| (r[0], r[1])).collect();
        assert!(pairs.len() > 5, "follower sets must vary between rounds");
    }

    #[test]
    fn racks_are_spread() {
        let brokers: Vec<_> = [(1, "a"), (2, "a"), (3, "a"), (4, "b"), (5, "b"), (6, "b")]
            .iter()
            .map(|&(id, rack)| (id, Some(rack.to_string())))
            .collect();
        let rack = |id: i32| if id <= 3 { "a" } else { "b" };
        let assignment = assign_replicas(12, 3, &brokers, &BTreeMap::new(), 0).unwrap();
        for partition in &assignment {
            let racks: BTreeSet<_> = partition.iter().map(|&id| rack(id)).collect();
            assert_eq!(racks.len(), 2, "{partition:?} uses one rack");
            assert_eq!(partition.iter().collect::<BTreeSet<_>>().len(), 3);
        }
        assert!(leader_counts(&assignment).values().all(|&count| count == 2));
    }

    #[test]
    fn replication_factor_is_checked() {
        let err = assign_replicas(1, 3, &plain(&[1, 2]), &BTreeMap::new(), 0).unwrap_err();
        assert!(matches!(err, BrokerError::InvalidReplicationFactor(_)));
        assert_eq!(
            err.to_string(),
            "Replication factor: 3 larger than available brokers: 2."
        );
        let zero = assign_replicas(1, 0, &plain(&[1, 2]), &BTreeMap::new(), 0);
        assert!(matches!(
            zero,
            Err(BrokerError::InvalidReplicationFactor(_))
        ));
        let none = assign_replicas(1, 1, &[], &BTreeMap::new(), 0);
        assert!(matches!(
            none,
            Err(BrokerError::InvalidReplicationFactor(_))
        ));
        let dup = assign_replicas(1, 2, &plain(&[1, 1]), &BTreeMap::new(), 0);
        assert!(dup.is_err(), "a broker listed twice counts once");
        let no_partitions = assign_replicas(0, 1, &plain(&[1]), &BTreeMap::new(), 0);
        assert!(matches!(
            no_partitions,
            Err(BrokerError::InvalidPartitions(_))
        ));
    }

    #[test]
    fn existing_leader_load_is_respected() {
        let load = BTreeMap::from([(1, 4), (2, 1)]);
        let assignment = assign_replicas(5, 2, &plain(&[1, 2, 3]), &load, 0).unwrap();
        let leaders = leader_counts(&assignment);
        assert_eq!(leaders.get(&1), None, "the loaded broker leads nothing new");
        assert_eq!(leaders[&2], 2);
        assert_eq!(leaders[&3], 3);
    }

    #[test]
    fn placement_is_deterministic() {
        let forward = plain(&[1, 2, 3, 4]);
        let backward = plain(&[4, 3, 2, 1]);
        let load = BTreeMap::from([(3, 2)]);
        let a = assign_replicas(9, 3, &forward, &load, 7).unwrap();
        let b = assign_replicas(9, 3, &backward, &load, 7).unwrap();
        assert_eq!(a, b);
        let single = assign_replicas(3, 1, &plain(&[9]), &BTreeMap::new(), 0).unwrap();
        assert_eq!(single, vec![vec![9], vec![9], vec![9]]);
    }
}
