//! The coordinator operations, each run on the group's coordinator shard (the body of the
//! one bus hop a handler makes). Inputs and outputs are owned `Send` values.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;

use super::group::membership::{LeaveInput, SyncInput};
use super::group::{
    CommitInput, CommittedOffset, GroupError, GroupRecord, GroupState, JoinInput, JoinOutcome,
    Reply, SyncOutcome,
};
use super::log_io;
use super::service::GroupCoordinator;
use crate::error::BrokerError;
use crate::partition::now_ms;
use crate::state::ShardState;

pub async fn join(
    owner: Rc<ShardState>,
    partition: i32,
    group_id: String,
    input: JoinInput,
) -> Result<JoinOutcome, BrokerError> {
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let parked = owner.coordinator.park();
    let effects = set
        .borrow_mut()
        .join(&group_id, input, parked.token, now_ms());
    GroupCoordinator::complete(&owner, partition, &set, effects).await;
    match parked.reply().await {
        Some(Reply::Join(outcome)) => Ok(outcome),
        _ => Err(BrokerError::internal("join reply missing")),
    }
}

pub async fn sync(
    owner: Rc<ShardState>,
    partition: i32,
    group_id: String,
    input: SyncInput,
) -> Result<SyncOutcome, BrokerError> {
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let parked = owner.coordinator.park();
    let effects = set
        .borrow_mut()
        .sync(&group_id, input, parked.token, now_ms());
    GroupCoordinator::complete(&owner, partition, &set, effects).await;
    match parked.reply().await {
        Some(Reply::Sync(outcome)) => Ok(outcome),
        _ => Err(BrokerError::internal("sync reply missing")),
    }
}

pub async fn heartbeat(
    owner: Rc<ShardState>,
    partition: i32,
    group_id: String,
    member_id: String,
    group_instance_id: Option<String>,
    generation_id: i32,
) -> Result<Result<(), GroupError>, BrokerError> {
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let result = set.borrow_mut().heartbeat(
        &group_id,
        &member_id,
        group_instance_id.as_deref(),
        generation_id,
        now_ms(),
    );
    Ok(result)
}

pub async fn leave(
    owner: Rc<ShardState>,
    partition: i32,
    group_id: String,
    members: Vec<LeaveInput>,
) -> Result<Vec<Result<(), GroupError>>, BrokerError> {
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let (results, effects) = set.borrow_mut().leave(&group_id, &members, now_ms());
    GroupCoordinator::complete(&owner, partition, &set, effects).await;
    Ok(results)
}

/// Per item: 0 or the Kafka error code. Offsets are written (durable) before they apply.
pub async fn commit(
    owner: Rc<ShardState>,
    partition: i32,
    group_id: String,
    input: CommitInput,
) -> Result<Vec<i16>, BrokerError> {
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let now = now_ms();
    let checked = set.borrow_mut().validate_commit(&group_id, &input, now);
    let records: Vec<GroupRecord> = checked.iter().filter_map(|r| r.clone().ok()).collect();
    let written = log_io::write(&owner, partition, &records, now).await;
    if let Err(err) = &written {
        tracing::warn!(group = %group_id, error = %err, "offset commit not persisted");
    }
    let mut groups = set.borrow_mut();
    Ok(checked
        .into_iter()
        .map(|result| match (result, &written) {
            (Err(error), _) => error.code(),
            (Ok(_), Err(err)) => storage_code(err),
            (Ok(record), Ok(())) => {
                groups.apply(record, now);
                0
            }
        })
        .collect())
}

fn storage_code(err: &BrokerError) -> i16 {
    match err {
        BrokerError::Storage(_) => kafka_protocol::ResponseError::KafkaStorageError.code(),
        // The partition's leadership moved while the write was in flight: the group is
        // coordinated elsewhere now (Kafka maps NOT_LEADER_OR_FOLLOWER likewise).
        BrokerError::NotLeaderOrFollower | BrokerError::NotCoordinator => {
            kafka_protocol::ResponseError::NotCoordinator.code()
        }
        _ => kafka_protocol::ResponseError::CoordinatorNotAvailable.code(),
    }
}

/// One partition of an OffsetFetch answer.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    pub partition: i32,
    /// None: nothing committed.
    pub committed: Option<CommittedOffset>,
    /// The caller asked for stable offsets and a transaction's offset for this partition awaits
    /// its marker (Kafka answers UNSTABLE_OFFSET_COMMIT; the client retries).
    pub unstable: bool,
}

/// Topic -> partitions, as OffsetFetch answers them.
pub type FetchedOffsets = Vec<(String, Vec<FetchedPartition>)>;

/// OffsetFetch for one group; `topics` None means every committed partition. With
/// `require_stable` (KIP-447) a partition with a pending transactional offset is unstable.
pub async fn fetch_offsets(
    owner: Rc<ShardState>,
    partition: i32,
    group_id: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<FetchedOffsets, BrokerError> {
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let set = set.borrow();
    let group = set.get(&group_id);
    let fetched = |topic: &str, p: i32, committed: Option<CommittedOffset>| FetchedPartition {
        partition: p,
        committed,
        unstable: require_stable
            && crate::coordinator::txn::offsets::is_pending(&owner, partition, &group_id, topic, p),
    };
    Ok(match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let found = partitions
                    .into_iter()
                    .map(|p| {
                        let committed = group.and_then(|g| g.committed(&topic, p)).cloned();
                        fetched(&topic, p, committed)
                    })
                    .collect();
                (topic, found)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<FetchedPartition>> = BTreeMap::new();
            for ((topic, p), committed) in group.into_iter().flat_map(|g| g.all_committed()) {
                let one = fetched(topic, *p, Some(committed.clone()));
                by_topic.entry(topic.clone()).or_default().push(one);
            }
            by_topic.into_iter().collect()
        }
    })
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberView>,
}

/// Kafka's group summary: member metadata and assignments only while Stable.
pub async fn describe(
    owner: Rc<ShardState>,
    partition: i32,
    group_id: String,
) -> Result<GroupView, BrokerError> {
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let set = set.borrow();
    let Some(group) = set.get(&group_id) else {
        return Ok(GroupView {
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol_name: String::new(),
            members: Vec::new(),
        });
    };
    let stable = group.state() == GroupState::Stable;
    let protocol = group.protocol_name().unwrap_or_default().to_string();
    Ok(GroupView {
        state: group.state(),
        protocol_type: group.protocol_type().unwrap_or_default().to_string(),
        protocol_name: if stable {
            protocol.clone()
        } else {
            String::new()
        },
        members: group
            .members()
            .iter()
            .map(|m| MemberView {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, meta)| meta.clone())
                        .unwrap_or_default()
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect(),
    })
}

/// (group id, protocol type, state) of every group this shard coordinates, once the
/// partitions being loaded are in.
pub async fn list(owner: &ShardState) -> Vec<(String, String, GroupState)> {
    owner.coordinator.wait_loads().await;
    owner
        .coordinator
        .loaded(owner)
        .into_iter()
        .flat_map(|(_, set)| {
            set.borrow()
                .groups()
                .map(|g| {
                    (
                        g.group_id().to_string(),
                        g.protocol_type().unwrap_or_default().to_string(),
                        g.state(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// DeleteGroups for one group: 0 or the error code.
pub async fn delete(
    owner: Rc<ShardState>,
    partition: i32,
    group_id: String,
) -> Result<i16, BrokerError> {
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let tombstones = match set.borrow_mut().delete(&group_id) {
        Ok(records) => records,
        Err(error) => return Ok(error.code()),
    };
    let written = log_io::write(&owner, partition, &tombstones, now_ms()).await;
    set.borrow_mut().forget(&group_id);
    Ok(match written {
        Ok(()) => 0,
        Err(err) => storage_code(&err),
    })
}

/// OffsetDelete: a group-level error, or per partition 0 or the error code.
pub async fn delete_offsets(
    owner: Rc<ShardState>,
    partition: i32,
    group_id: String,
    partitions: Vec<(String, i32)>,
) -> Result<Result<Vec<i16>, i16>, BrokerError> {
    let set = GroupCoordinator::groups(&owner, partition).await?;
    let checked = match set.borrow().delete_offsets(&group_id, &partitions) {
        Ok(checked) => checked,
        Err(error) => return Ok(Err(error.code())),
    };
    let records: Vec<GroupRecord> = checked
        .iter()
        .filter_map(|r| r.clone().ok().flatten())
        .collect();
    let now = now_ms();
    let written = log_io::write(&owner, partition, &records, now).await;
    let mut groups = set.borrow_mut();
    Ok(Ok(checked
        .into_iter()
        .map(|result| match (result, &written) {
            (Err(error), _) => error.code(),
            (Ok(_), Err(err)) => storage_code(err),
            (Ok(record), Ok(())) => {
                if let Some(record) = record {
                    groups.apply(record, now);
                }
                0
            }
        })
        .collect()))
}
