//! Brings one shard's replicas in line with the installed topic table (the `*_backend` of
//! DESIGN.md): starts a replica for every partition this shard owns whose assignment names
//! this broker, stops and deletes the replicas of deleted topics, and applies topic config
//! changes to the open partitions. Runs are serialised per shard: a run asked for while one
//! is going happens right after it.

use std::rc::Rc;

use crate::partition::lookup::OwnerLookup;
use crate::partition::ops::PartitionLookup;
use crate::state::ShardState;

pub async fn reconcile(shard: &Rc<ShardState>) {
    let Some(cluster) = shard.cluster.as_ref() else {
        return;
    };
    if cluster.reconciling.replace(true) {
        cluster.reconcile_again.set(true);
        return;
    }
    loop {
        cluster.reconcile_again.set(false);
        remove_deleted(shard).await;
        add_assigned(shard).await;
        apply_configs(shard);
        if !cluster.reconcile_again.get() {
            break;
        }
    }
    cluster.reconciling.set(false);
}

/// Replicas whose group is no longer in the table: their topic was deleted.
async fn remove_deleted(shard: &Rc<ShardState>) {
    let Some(cluster) = shard.cluster.as_ref() else {
        return;
    };
    let topics = shard.topics();
    for group in cluster.replicas.groups() {
        if topics.group(group).is_some() {
            continue;
        }
        let Some(replica) = cluster.replicas.remove(group) else {
            continue;
        };
        let topic = replica.partition.topic().to_string();
        if topics.get(&topic).is_some() {
            // Re-created under the same name: only this partition's old log goes.
            if let Err(err) = replica.partition.log().delete().await {
                tracing::warn!(group, %topic, error = %err, "deleting an old replica log");
            }
            continue;
        }
        if let Err(err) = shard.partitions.delete_topic(&topic).await {
            tracing::warn!(group, %topic, error = %err, "deleting a deleted topic's logs");
        }
        tracing::info!(group, %topic, "replica of a deleted topic removed");
    }
}

async fn add_assigned(shard: &Rc<ShardState>) {
    let Some(cluster) = shard.cluster.as_ref() else {
        return;
    };
    let node = cluster.node_id;
    let topics = shard.topics();
    for meta in topics.iter() {
        for (index, assignment) in meta.assignments.iter().enumerate() {
            let partition = index as i32;
            if !assignment.replicas.contains(&node)
                || !shard.partitions.owns(&meta.name, partition)
                || cluster.replicas.replica(assignment.group).is_some()
            {
                continue;
            }
            let lookup = OwnerLookup(shard);
            let Some(settings) = lookup.settings(&meta.name, partition) else {
                continue;
            };
            let min_insync = settings.min_insync_replicas;
            let opened = shard
                .partitions
                .get_or_open(&meta.name, partition, || settings)
                .await;
            let outcome = match opened {
                Ok(log) => {
                    cluster
                        .replicas
                        .add(
                            assignment.group,
                            log,
                            assignment.replicas.clone(),
                            min_insync,
                        )
                        .await
                }
                Err(err) => Err(crate::partition::ops::storage_error(err)),
            };
            if let Err(err) = outcome {
                tracing::error!(topic = %meta.name, partition, error = %err, "cannot start replica");
            }
            ringlet_shard::task::yield_if_needed().await;
        }
    }
}

fn apply_configs(shard: &Rc<ShardState>) {
    let Some(cluster) = shard.cluster.as_ref() else {
        return;
    };
    let topics = shard.topics();
    for meta in topics.iter() {
        let lookup = OwnerLookup(shard);
        if let Some(settings) = lookup.settings(&meta.name, 0) {
            shard.partitions.apply_topic_settings(&meta.name, &settings);
            for assignment in &meta.assignments {
                if let Some(replica) = cluster.replicas.replica(assignment.group) {
                    replica
                        .min_insync_replicas
                        .set(settings.min_insync_replicas);
                }
            }
        }
    }
}
