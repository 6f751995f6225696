//! Retention on replicated partitions. Every replica applies `retention.ms` and
//! `retention.bytes` to its own log, as Kafka's do, but only below its commit point (the
//! high watermark): an uncommitted suffix may still be replaced. The log start moves with
//! the Raft anchor (`ReplicaStorage::move_log_start`), so indexes stay the same on every
//! replica; a follower that is then behind the leader's log start gets a snapshot and
//! restarts its log there.

use std::rc::Rc;

use super::{written_commit, Replica, ReplicaManager};
use crate::partition::replica_storage::Anchor;

impl ReplicaManager {
    /// One retention pass over the shard's replicas; errors are logged per replica.
    pub(super) async fn enforce_retention(&self) {
        if !self.retention_allowed.get() {
            return;
        }
        let replicas: Vec<Rc<Replica>> = self.replicas.borrow().values().cloned().collect();
        let now_ms = crate::partition::now_ms();
        for replica in replicas {
            let Some(anchor) = self.retention_anchor(&replica, now_ms) else {
                continue;
            };
            self.move_replica_log_start(&replica, anchor, "retention")
                .await;
            ringlet_shard::task::yield_if_needed().await;
        }
    }

    /// Where retention would move this replica's log start now, as an anchor.
    fn retention_anchor(&self, replica: &Replica, now_ms: i64) -> Option<Anchor> {
        let groups = self.groups.borrow();
        let node = groups.group(replica.group)?;
        let storage = node.storage();
        let committed_end = storage.high_watermark(written_commit(node));
        let cut = match replica.partition.log().retention_cut(now_ms, committed_end) {
            Ok(cut) => cut?,
            Err(err) => {
                tracing::debug!(group = replica.group, error = %err, "no retention");
                return None;
            }
        };
        storage.anchor_at_offset(cut)
    }
}
