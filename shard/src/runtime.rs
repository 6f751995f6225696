//! Starting and stopping the shards.
//!
//! [`Runtime::start`] spawns one pinned executor thread per shard. Each runs the caller's
//! `init` to build its shard-local state `Rc<S>` (init must not wait on other shards: their
//! pumps may not run yet), then serves its bus inbox until stopped. `start` returns once every
//! shard finished `init`, or fails (stopping the shards that did start) if one failed.
//!
//! Ordered shutdown is driven from outside with [`RuntimeHandle::invoke_on_all_blocking`]
//! (e.g. "stop accepting and drain", then "close partitions": every phase completes on all
//! shards before the next starts, while the pumps keep serving cross-shard calls), and ends
//! with [`Runtime::stop`], which ends the pumps and joins the threads.

use std::future::Future;
use std::rc::Rc;
use std::sync::{mpsc, Arc};

use glommio::{CpuSet, LocalExecutorBuilder, Placement};

use crate::bus::{pump, Bus, Inboxes, RuntimeHandle};
use crate::error::ShardError;
use crate::table::ShardId;

/// How to run the shards.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Number of shards (executor threads); at least 1.
    pub shards: usize,
    /// Capacity of each shard's bus inbox, in calls.
    pub inbox_capacity: usize,
    /// Thread name prefix; threads are named `{prefix}-{shard}`.
    pub thread_name: String,
    /// Registered io_uring buffer memory per shard (glommio `io_memory`).
    pub io_memory_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            shards: default_shard_count(),
            inbox_capacity: 1024,
            thread_name: "shard".to_string(),
            io_memory_bytes: 10 << 20,
        }
    }
}

/// The number of CPUs this process may run on (at least 1).
pub fn default_shard_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What `init` gets on its shard.
pub struct ShardContext<S> {
    pub shard_id: ShardId,
    pub shard_count: usize,
    /// This shard's end of the bus; store it in the state.
    pub bus: Bus<S>,
    /// The CPU the shard is pinned to.
    pub cpu: usize,
}

/// Running shards.
pub struct Runtime<S> {
    handle: RuntimeHandle<S>,
    threads: Vec<glommio::ExecutorJoinHandle<()>>,
}

type InitReport = (ShardId, Result<(), String>);

impl<S: 'static> Runtime<S> {
    /// Starts `config.shards` shards and runs `init` on each. Returns when all are ready.
    pub fn start<F, Fut, E>(config: RuntimeConfig, init: F) -> Result<Self, ShardError>
    where
        F: Fn(ShardContext<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Rc<S>, E>> + 'static,
        E: std::fmt::Display,
    {
        if config.shards == 0 {
            return Err(ShardError::Config("shards must be at least 1".into()));
        }
        let cpus = online_cpus()?;
        let (inboxes, receivers) = Inboxes::new(config.shards, config.inbox_capacity);
        let handle = RuntimeHandle {
            inboxes: inboxes.clone(),
        };
        let init = Arc::new(init);
        let (report_tx, report_rx) = mpsc::channel::<InitReport>();
        let mut runtime = Self {
            handle,
            threads: Vec::with_capacity(config.shards),
        };
        for (shard_id, inbox) in receivers.into_iter().enumerate() {
            let cpu = cpus[shard_id % cpus.len()];
            let inboxes = inboxes.clone();
            let init = init.clone();
            let report_tx = report_tx.clone();
            let shard_count = config.shards;
            let spawned = LocalExecutorBuilder::new(Placement::Fixed(cpu))
                .name(&format!("{}-{shard_id}", config.thread_name))
                .io_memory(config.io_memory_bytes)
                .spawn(move || async move {
                    let bus = Bus::new(shard_id, inboxes);
                    let attach = bus.clone();
                    let context = ShardContext {
                        shard_id,
                        shard_count,
                        bus,
                        cpu,
                    };
                    match init(context).await {
                        Ok(state) => {
                            attach.attach(&state);
                            drop(attach);
                            let _ = report_tx.send((shard_id, Ok(())));
                            pump(inbox, state).await;
                        }
                        Err(err) => {
                            let _ = report_tx.send((shard_id, Err(err.to_string())));
                        }
                    }
                });
            match spawned {
                Ok(thread) => runtime.threads.push(thread),
                Err(err) => {
                    runtime.abort();
                    return Err(ShardError::Spawn {
                        shard: shard_id,
                        reason: err.to_string(),
                    });
                }
            }
        }
        drop(report_tx);
        runtime.await_ready(&report_rx)?;
        Ok(runtime)
    }

    fn await_ready(&mut self, reports: &mpsc::Receiver<InitReport>) -> Result<(), ShardError> {
        for _ in 0..self.threads.len() {
            let failure = match reports.recv() {
                Ok((_, Ok(()))) => continue,
                Ok((shard, Err(reason))) => ShardError::Init { shard, reason },
                Err(_) => ShardError::Init {
                    shard: 0,
                    reason: "a shard thread exited during init (panic?)".into(),
                },
            };
            self.abort();
            return Err(failure);
        }
        Ok(())
    }

    /// A handle for calling into the shards from this (non-shard) thread.
    pub fn handle(&self) -> RuntimeHandle<S> {
        self.handle.clone()
    }

    /// Ends every shard's pump (after the calls already queued were started) and joins the
    /// threads. Tasks still running on a shard are dropped with its executor.
    pub fn stop(mut self) -> Result<(), ShardError> {
        for shard in 0..self.threads.len() {
            self.handle.inboxes.stop(shard);
        }
        let mut first_error = None;
        for (shard, thread) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            if let Err(err) = thread.join() {
                tracing::error!(shard, error = %err, "shard thread ended abnormally");
                first_error.get_or_insert(ShardError::Join {
                    shard,
                    reason: err.to_string(),
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn abort(&mut self) {
        for shard in 0..self.handle.shard_count() {
            self.handle.inboxes.stop(shard);
        }
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
    }
}

fn online_cpus() -> Result<Vec<usize>, ShardError> {
    let set = CpuSet::online().map_err(|err| ShardError::Cpus(err.to_string()))?;
    let mut cpus: Vec<usize> = set.iter().map(|location| location.cpu).collect();
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.is_empty() {
        return Err(ShardError::Cpus("no online CPU".into()));
    }
    Ok(cpus)
}
