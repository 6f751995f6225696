//! DeleteRecords on replicated partitions: the leader proposes a log-start command (a
//! Ringlet control batch, `replica_storage_batch::log_start_command`, one of Raft's own
//! entries: kept in the replica's sidecar, at no Kafka offset) through the partition's Raft
//! group, and every replica moves its own log start once the command is
//! committed, so the replicas agree (a move on the leader alone would leave followers
//! serving deleted records after a failover).
//!
//! The Raft anchor sits on a batch boundary, so the log start moves to the start of the
//! batch holding the requested offset: every record below that batch is deleted, the
//! records of that batch below the offset are kept, and the answer's low watermark says
//! where the log now starts. Requests at a batch boundary (`-1`, the high watermark, always
//! is one) delete exactly what they ask for.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{written_commit, Acks, Replica, ReplicaManager};
use crate::error::BrokerError;
use crate::partition::replica_storage::{Anchor, ReplicaStorage};
use crate::partition::replica_storage_batch::log_start_command;

/// How often a DeleteRecords checks whether its committed command has been applied.
const APPLIED_POLL: Duration = Duration::from_millis(5);

impl Replica {
    /// Remembers the log-start commands a write put in the log; a write that replaced the
    /// log from index `replaced_from` on also replaced the commands there.
    pub(super) fn record_log_start_commands(
        &self,
        replaced_from: Option<u64>,
        commands: Vec<(u64, i64)>,
    ) {
        let mut pending = self.log_start_commands.borrow_mut();
        if let Some(from) = replaced_from {
            pending.split_off(&from);
        }
        pending.extend(commands);
    }
}

impl ReplicaManager {
    /// DeleteRecords of `group` up to `offset` (at most the high watermark): proposes the
    /// command, waits until it is committed and applied here; the new log start.
    pub async fn delete_records(
        &self,
        group: u64,
        offset: i64,
        timeout: Duration,
    ) -> Result<i64, BrokerError> {
        let replica = self
            .replica(group)
            .ok_or(BrokerError::NotLeaderOrFollower)?;
        let log = Rc::clone(replica.partition.log());
        if offset <= log.log_start_offset() {
            return Ok(log.log_start_offset());
        }
        let target = self.batch_start_of(group, offset)?;
        if target <= log.log_start_offset() {
            return Ok(log.log_start_offset());
        }
        let deadline = Instant::now() + timeout;
        self.produce(group, log_start_command(offset), Acks::Quorum, timeout)
            .await?;
        while log.log_start_offset() < target {
            if Instant::now() >= deadline {
                return Err(BrokerError::RequestTimedOut(
                    "the log start did not move in time".into(),
                ));
            }
            ringlet_shard::task::sleep(APPLIED_POLL).await;
        }
        Ok(log.log_start_offset())
    }

    /// The base offset of the batch holding `offset` in `group`'s log (the offset itself at
    /// the log end).
    fn batch_start_of(&self, group: u64, offset: i64) -> Result<i64, BrokerError> {
        let groups = self.groups.borrow();
        let node = groups
            .group(group)
            .ok_or(BrokerError::NotLeaderOrFollower)?;
        node.storage()
            .batch_start_of(offset)
            .ok_or(BrokerError::OffsetOutOfRange)
    }

    /// Applies every committed log-start command (in the driver loop, between rounds).
    pub(super) async fn apply_log_start_commands(&self) {
        let due: Vec<(Rc<Replica>, Anchor)> = {
            let replicas = self.replicas.borrow();
            replicas
                .values()
                .filter(|replica| !replica.log_start_commands.borrow().is_empty())
                .filter_map(|replica| Some((Rc::clone(replica), self.committed_anchor(replica)?)))
                .collect()
        };
        for (replica, anchor) in due {
            self.move_replica_log_start(&replica, anchor, "DeleteRecords")
                .await;
        }
    }

    /// The anchor the committed commands of `replica` move its log start to (dropping them
    /// from the pending ones), or `None` when none is committed or there is nothing to move.
    fn committed_anchor(&self, replica: &Replica) -> Option<Anchor> {
        let groups = self.groups.borrow();
        let node = groups.group(replica.group)?;
        let mut pending = replica.log_start_commands.borrow_mut();
        let later = pending.split_off(&(written_commit(node) + 1));
        let committed = std::mem::replace(&mut *pending, later);
        let offset = committed.into_values().max()?;
        let storage = node.storage();
        storage.anchor_at_offset(storage.batch_start_of(offset)?)
    }

    /// Moves `replica`'s log start and Raft anchor to `anchor` (retention, DeleteRecords).
    pub(super) async fn move_replica_log_start(
        &self,
        replica: &Replica,
        anchor: Anchor,
        why: &'static str,
    ) {
        let log = replica.partition.log();
        if let Err(err) = ReplicaStorage::move_log_start(log, &replica.state_dir, anchor).await {
            tracing::warn!(group = replica.group, why, error = %err, "cannot move the log start");
            return;
        }
        if let Ok(node) = self.groups.borrow_mut().group_mut(replica.group) {
            node.storage_mut().compact_to(anchor);
        }
        tracing::debug!(
            group = replica.group,
            why,
            log_start = anchor.base_offset,
            index = anchor.first_index,
            "replica log start moved"
        );
    }
}
