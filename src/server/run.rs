//! The broker's life: load metadata, start the shards, listen, wait for SIGINT/SIGTERM,
//! stop in order.
//!
//! Stop order, each phase finished on every shard before the next begins (the bus keeps
//! serving cross-shard calls throughout): 1. stop accepting, let connections answer what they
//! started (bounded by [`DRAIN_LIMIT`]); 2. close every partition log (flush + sync);
//! 3. end the shards.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use ringlet_shard::runtime::{Runtime, RuntimeConfig};
use ringlet_shard::signals::Termination;

use crate::cluster::topic_store::TopicStore;
use crate::config::broker::BrokerConfig;
use crate::error::BrokerError;
use crate::server::{drain_connections, exclusive, start_listener};
use crate::state::{ShardState, SharedSetup};

/// How long shutdown waits for connections to answer their in-flight requests.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Runs the broker until SIGINT or SIGTERM. Errors are start-up failures.
pub fn run(config: BrokerConfig) -> Result<(), BrokerError> {
    let startup =
        |what: &str, err: &dyn std::fmt::Display| BrokerError::Startup(format!("{what}: {err}"));
    std::fs::create_dir_all(&config.data_dir).map_err(|err| {
        startup(
            &format!("cannot create data dir {}", config.data_dir.display()),
            &err,
        )
    })?;
    let _data_dir_lock = exclusive::lock_data_dir(&config.data_dir)?;
    exclusive::ensure_address_free(config.listen)?;
    if let Some(cluster) = &config.cluster {
        exclusive::ensure_address_free(cluster.rpc_listen)?;
        crate::config::seed_resolver::spawn(&cluster.seeds)
            .map_err(|err| startup("the seed resolver thread", &err))?;
    }
    let store = TopicStore::open(&config.meta_dir())?;
    // In a cluster the controller's log is the topic table; topics.json is single-node only.
    let topics = match config.cluster {
        Some(_) => Arc::new(crate::cluster::TopicTable::default()),
        None => Arc::new(store.load()?),
    };
    let cluster_id: Arc<str> = match &config.cluster {
        Some(cluster) => cluster.cluster_id().into(),
        None => store.cluster_id()?.into(),
    };
    ringlet_shard::memlock::raise_memlock_limit(config.shards)
        .map_err(|err| startup("memory lock limit", &err))?;
    let mut termination =
        Termination::register().map_err(|err| startup("signal handlers", &err))?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        topics = topics.len(),
        %cluster_id,
        node_id = config.node_id,
        advertise = %format!("{}:{}", config.advertise.host, config.advertise.port),
        "starting"
    );
    let setup = SharedSetup {
        config: Arc::new(config.clone()),
        cluster_id,
        topics,
        store,
        connections: Arc::new(AtomicUsize::new(0)),
    };
    let runtime_config = RuntimeConfig {
        shards: config.shards,
        thread_name: "ringlet".into(),
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::start(runtime_config, move |ctx| {
        let setup = setup.clone();
        async move {
            // The budget is per shard (thread-local in the io crate): set it on each shard.
            ringlet_io::log::set_shard_cache_budget_bytes(setup.config.log_cache_bytes_per_shard);
            ShardState::new(ctx.shard_id, ctx.shard_count, ctx.bus, &setup)
        }
    })
    .map_err(|err| startup("starting shards", &err))?;
    let handle = runtime.handle();
    handle.invoke_on_all_blocking(|state| async move {
        if !state.is_clustered() {
            crate::coordinator::GroupCoordinator::load_owned_partitions(&state).await;
        }
    });
    handle.invoke_on_all_blocking(|state| async move {
        if state.shard_id == 0 {
            crate::cluster::node::restore_metadata(&state).await;
        }
    });
    if let Err(err) = crate::server::panic_trigger::arm_from_env(&handle) {
        let _ = runtime.stop();
        return Err(err);
    }
    let listening = handle.invoke_on_all_blocking(|state| async move {
        start_listener(&state).map_err(|err| err.to_string())
    });
    for (shard, outcome) in listening.into_iter().enumerate() {
        let failure = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(err)) => format!("shard {shard} cannot listen on {}: {err}", config.listen),
            Err(err) => format!("shard {shard}: {err}"),
        };
        let _ = runtime.stop();
        return Err(BrokerError::Startup(failure));
    }
    // Transaction recovery needs every shard up (markers cross shards): started after.
    handle.invoke_on_all_blocking(|state| async move {
        crate::coordinator::txn::start(&state);
    });
    let joined = handle.invoke_on_all_blocking(|state| async move {
        crate::cluster::node::start(&state).map_err(|err| err.to_string())
    });
    for outcome in joined {
        let failure = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(err)) => err,
            Err(err) => err.to_string(),
        };
        let _ = runtime.stop();
        return Err(BrokerError::Startup(failure));
    }
    tracing::info!(
        "ringlet listening on {} ({} shards)",
        config.listen,
        config.shards
    );
    let signal = termination.wait();
    tracing::info!(signal, "shutting down: draining connections");
    shut_down(runtime);
    tracing::info!("ringlet stopped");
    Ok(())
}

fn shut_down(runtime: Runtime<ShardState>) {
    let handle = runtime.handle();
    let drained = handle.invoke_on_all_blocking(|state| async move {
        drain_connections(&state, DRAIN_LIMIT).await
    });
    for (shard, outcome) in drained.into_iter().enumerate() {
        match outcome {
            Ok(0) => {}
            Ok(open) => tracing::warn!(shard, open, "connections still open after the drain limit"),
            Err(err) => tracing::error!(shard, error = %err, "drain failed"),
        }
    }
    tracing::info!("closing partitions");
    let closed = handle.invoke_on_all_blocking(|state| async move {
        state.partitions.close_all().await;
    });
    for (shard, outcome) in closed.into_iter().enumerate() {
        if let Err(err) = outcome {
            tracing::error!(shard, error = %err, "closing partitions failed");
        }
    }
    if let Err(err) = runtime.stop() {
        tracing::error!(error = %err, "stopping shards");
    }
}
