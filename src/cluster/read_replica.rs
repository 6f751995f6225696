//! KIP-392 follower fetching: a consumer that names its `client.rack` is sent to an
//! in-sync replica in that rack when the leader is elsewhere, as Kafka's
//! `RackAwareReplicaSelector` does. Saves cross-rack (cross-zone) traffic, the point of
//! the KIP. Ringlet selects this way always: without racks on brokers and consumers it
//! picks nothing and everyone reads from the leader, Kafka's default.

use crate::partition::ops::ReadReplicaSelector;
use crate::partition::Partition;

use super::node::ClusterShard;

impl ReadReplicaSelector for ClusterShard {
    fn preferred_read_replica(&self, partition: &Partition, rack: &str) -> Option<i32> {
        if self.config.rack.as_deref() == Some(rack) {
            return None; // the leader is in the consumer's rack
        }
        let group = partition.replica_group()?;
        let brokers = self.brokers();
        let alive = self.alive_brokers();
        let in_rack = |id: &i32| {
            alive.contains(id) && brokers.get(*id).and_then(|b| b.rack.as_deref()) == Some(rack)
        };
        // The ISR lists the leader first, then followers that matched its log recently.
        self.replicas
            .in_sync_replicas(group)
            .into_iter()
            .filter(|id| *id != self.node_id)
            .find(in_rack)
    }
}
