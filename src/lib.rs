//! Ringlet broker: Kafka semantics on top of the thread-per-core runtime (`ringlet-shard`),
//! the wire layer (`ringlet-protocol`) and the log (`ringlet-io`). See DESIGN.md.
//!
//! * [`server`]: listener, connections, dispatch; [`handlers`]: one file per Kafka API and
//!   the registry that drives dispatch and ApiVersions.
//! * [`state`]: the per-shard state every handler sees; [`cluster`]: the topic table.
//! * [`partition`]: the partitions a shard owns (log + data-plane operations).
//! * [`config`], [`cli`]: settings; [`error`]: the one error type and its Kafka codes;
//!   `server::run`: start, serve, ordered stop.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod handlers;
pub mod panic_policy;
pub mod partition;
pub mod producer_ids;
pub mod rpc;
pub mod server;
pub mod state;
