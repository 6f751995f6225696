//! The Kafka server: a listener on every shard (SO_REUSEPORT: the kernel spreads connections),
//! each connection served wholly by the shard that accepted it.
//!
//! * [`listener`]: accept loop, `max_connections`, stop accepting on shutdown.
//! * [`connection`]: framing, pipelining with in-order responses, closing on bad input.
//! * [`dispatch`]: request -> handler through the registry in `crate::handlers`.
//! * [`produce_order`]: a connection's produce requests applied in the order it sent them.
//! * [`exclusive`]: refuse to start on a data dir or port another broker holds.
//!
//! Shutdown, per shard (driven by `main` through the runtime, all shards phase by phase):
//! [`ServerShard::begin_shutdown`] stops the accept loop and tells connections to stop reading
//! new requests; [`drain_connections`] waits until their in-flight requests are answered.

pub mod connection;
pub mod context;
pub mod dispatch;
pub mod exclusive;
pub mod listener;
pub mod panic_trigger;
pub mod produce_order;
pub mod run;

use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use ringlet_shard::sync::{Gauge, Latch};

pub use context::RequestContext;
pub use listener::start_listener;

use crate::state::ShardState;

/// One shard's listener/connection bookkeeping.
pub struct ServerShard {
    /// Set once: stop accepting, stop reading new requests.
    pub(crate) stopping: Latch,
    /// Live connections on this shard.
    pub(crate) live: Gauge,
    /// Live connections on all shards (for `max_connections`).
    pub(crate) connections_total: Arc<AtomicUsize>,
}

impl ServerShard {
    pub fn new(connections_total: Arc<AtomicUsize>) -> Self {
        Self {
            stopping: Latch::new(),
            live: Gauge::new(),
            connections_total,
        }
    }

    /// Stops accepting and asks connections to finish what they started.
    pub fn begin_shutdown(&self) {
        self.stopping.set();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.is_set()
    }

    pub fn live_connections(&self) -> usize {
        self.live.value()
    }
}

/// Waits (at most `limit`) for this shard's connections to answer their in-flight requests
/// and close. Returns how many were still open when the limit ran out.
pub async fn drain_connections(state: &Rc<ShardState>, limit: Duration) -> usize {
    state.server.begin_shutdown();
    let drained = ringlet_shard::task::timeout(limit, state.server.live.wait_zero()).await;
    if drained.is_some() {
        0
    } else {
        state.server.live.value()
    }
}
