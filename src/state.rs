//! Per-shard state: everything one shard owns, behind one `Rc` that never leaves its thread.
//!
//! Handlers get it through `RequestContext::state`; cross-shard work goes through
//! `state.bus.invoke_on(shard, move |state: Rc<ShardState>| async move { ... })`, where the
//! closure runs on the target shard against that shard's `ShardState`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use ringlet_shard::{Bus, ShardId};

use crate::cluster::topic_store::TopicStore;
use crate::cluster::topic_table::TopicTable;
use crate::config::broker::BrokerConfig;
use crate::partition::PartitionManager;
use crate::server::ServerShard;

/// What every shard is started with (built once on the main thread, shared read-only).
#[derive(Debug, Clone)]
pub struct SharedSetup {
    pub config: Arc<BrokerConfig>,
    pub cluster_id: Arc<str>,
    /// The topic table as loaded at start.
    pub topics: Arc<TopicTable>,
    pub store: TopicStore,
    /// Open client connections across all shards (for `max_connections`).
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

/// One shard's state.
pub struct ShardState {
    pub shard_id: ShardId,
    pub shard_count: usize,
    pub config: Arc<BrokerConfig>,
    /// Stable across restarts (stored in the meta dir).
    pub cluster_id: Arc<str>,
    pub bus: Bus<ShardState>,
    /// The partitions this shard owns.
    pub partitions: PartitionManager,
    /// Listener and connection bookkeeping of this shard.
    pub server: ServerShard,
    /// The consumer-group coordinator of the offsets partitions this shard owns.
    pub coordinator: crate::coordinator::GroupCoordinator,
    /// The transaction coordinator of the `__transaction_state` partitions this shard owns.
    pub txn: crate::coordinator::txn::TxnCoordinator,
    /// The current topic table snapshot; replaced wholesale by `cluster::topic_backend`.
    topics: RefCell<Arc<TopicTable>>,
    /// Only shard 0 writes it (all topic mutations run there).
    pub(crate) store: TopicStore,
    /// Cluster membership (`--seeds`); `None` on a single node.
    pub cluster: Option<crate::cluster::node::ClusterShard>,
}

impl ShardState {
    pub fn new(
        shard_id: ShardId,
        shard_count: usize,
        bus: Bus<ShardState>,
        setup: &SharedSetup,
    ) -> Result<Rc<Self>, crate::error::BrokerError> {
        let cluster = match &setup.config.cluster {
            Some(cluster) => Some(
                crate::cluster::node::ClusterShard::new(
                    cluster.clone(),
                    setup.config.node_id,
                    shard_id,
                    &setup.config.meta_dir(),
                )?
                .with_retention_check_interval(setup.config.log_retention_check_interval),
            ),
            None => None,
        };
        Ok(Rc::new(ShardState {
            shard_id,
            shard_count,
            config: setup.config.clone(),
            cluster_id: setup.cluster_id.clone(),
            bus,
            partitions: PartitionManager::new(setup.config.data_dir.clone(), shard_id, shard_count)
                .with_node_id(setup.config.node_id)
                .with_producer_expiration_ms(setup.config.producer_id_expiration_ms)
                .with_retention_check_interval(setup.config.log_retention_check_interval),
            server: ServerShard::new(setup.connections.clone()),
            coordinator: crate::coordinator::GroupCoordinator::new(
                setup.config.coordinator.clone(),
            ),
            txn: crate::coordinator::txn::TxnCoordinator::new(
                crate::coordinator::txn::TxnConfig::from_env(),
            ),
            topics: RefCell::new(setup.topics.clone()),
            store: setup.store.clone(),
            cluster,
        }))
    }

    /// True when this broker is a cluster member (started with `--seeds`).
    pub fn is_clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The current topic table snapshot (cheap: an `Arc` clone).
    pub fn topics(&self) -> Arc<TopicTable> {
        self.topics.borrow().clone()
    }

    /// Installs a newer snapshot; older or equal revisions are ignored, so concurrent
    /// broadcasts arriving out of order cannot roll the table back.
    pub(crate) fn install_topics(&self, table: Arc<TopicTable>) -> bool {
        let mut current = self.topics.borrow_mut();
        if table.revision() <= current.revision() {
            return false;
        }
        *current = table;
        true
    }
}
