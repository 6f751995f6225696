//! Checks of explicit replica assignments (CreateTopics `assignments`, CreatePartitions
//! `assignments`) against the registered brokers, with the KRaft controller's rules and
//! messages (`ReplicationControlManager.validateManualPartitionAssignment`): every list
//! non-empty, made of registered brokers, none twice, all as long as the topic's other
//! partitions, and at least one replica on a live (unfenced) broker to lead it.
//!
//! Pure: the caller passes the registered and live broker ids (on a single node, itself).
//! The controller's state machine checks the same shape again when it applies the command,
//! against the brokers registered at that point of the log.

use crate::error::BrokerError;

/// The brokers an assignment may name.
pub struct Brokers<'a> {
    pub registered: &'a [i32],
    pub alive: &'a [i32],
}

/// Checks one partition's replica list; `replication_factor` is the topic's (the first list's
/// length for a new topic, partition 0's for an existing one).
pub fn check_partition(
    brokers: &Brokers<'_>,
    partition: i32,
    replicas: &[i32],
    replication_factor: Option<usize>,
) -> Result<(), BrokerError> {
    let refuse = |message: String| Err(BrokerError::InvalidReplicaAssignment(message));
    if replicas.is_empty() {
        return refuse("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    let mut previous = None;
    for broker in sorted {
        if !brokers.registered.contains(&broker) {
            return refuse(format!(
                "The manual partition assignment includes broker {broker}, but no such broker \
                 is registered."
            ));
        }
        if previous == Some(broker) {
            return refuse(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            ));
        }
        previous = Some(broker);
    }
    if let Some(expected) = replication_factor.filter(|rf| *rf != replicas.len()) {
        return refuse(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this \
             is not consistent with previous partitions, which have {expected} replica(s).",
            replicas.len()
        ));
    }
    if !replicas.iter().any(|id| brokers.alive.contains(id)) {
        return refuse(format!(
            "All brokers specified in the manual partition assignment for partition \
             {partition} are fenced or in controlled shutdown."
        ));
    }
    Ok(())
}

/// Checks the lists of partitions `first_partition..`, all of `replication_factor` replicas
/// (`None`: as many as the first list).
pub fn check_all(
    brokers: &Brokers<'_>,
    first_partition: i32,
    lists: &[Vec<i32>],
    replication_factor: Option<usize>,
) -> Result<(), BrokerError> {
    let rf = replication_factor.or_else(|| lists.first().map(Vec::len));
    for (offset, replicas) in lists.iter().enumerate() {
        let partition = first_partition.saturating_add(offset as i32);
        check_partition(brokers, partition, replicas, rf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::ResponseError;

    const REGISTERED: &[i32] = &[1, 2, 3];
    const ALIVE: &[i32] = &[1, 2];

    fn check(lists: &[Vec<i32>], rf: Option<usize>) -> Result<(), String> {
        let brokers = Brokers {
            registered: REGISTERED,
            alive: ALIVE,
        };
        check_all(&brokers, 0, lists, rf).map_err(|err| {
            assert_eq!(
                err.code_i16(),
                ResponseError::InvalidReplicaAssignment.code()
            );
            err.to_string()
        })
    }

    #[test]
    fn registered_distinct_and_consistent_lists_pass() {
        assert_eq!(check(&[vec![1, 2, 3], vec![3, 1, 2]], None), Ok(()));
        assert_eq!(
            check(&[vec![3, 1]], Some(2)),
            Ok(()),
            "a fenced follower is fine"
        );
    }

    #[test]
    fn kafka_refusals() {
        let unknown = check(&[vec![1, 7]], None).unwrap_err();
        assert!(
            unknown.contains("includes broker 7, but no such broker"),
            "{unknown}"
        );
        let twice = check(&[vec![2, 2]], None).unwrap_err();
        assert!(twice.contains("broker 2 more than once"), "{twice}");
        let empty = check(&[vec![]], None).unwrap_err();
        assert!(empty.contains("empty replica list"), "{empty}");
        let uneven = check(&[vec![1, 2], vec![1]], None).unwrap_err();
        assert!(
            uneven.contains("with 1 replica(s)") && uneven.contains("have 2"),
            "{uneven}"
        );
        let short = check(&[vec![1]], Some(3)).unwrap_err();
        assert!(short.contains("which have 3 replica(s)"), "{short}");
        let fenced = check(&[vec![1], vec![3]], None).unwrap_err();
        assert!(fenced.contains("partition 1 are fenced"), "{fenced}");
    }
}
