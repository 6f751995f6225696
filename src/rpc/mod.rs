//! Broker-to-broker RPC: the transport under Raft replication and the controller.
//!
//! The model:
//!
//! * **One link per peer per shard.** A shard that talks to broker B owns one [`PeerLink`]
//!   (one TCP connection) to B, kept in its [`Peers`] registry. Everything is shard-local
//!   (`Rc`, no locks), like the rest of a shard; a Raft group lives on one shard, so its
//!   messages never need another shard's connection. N shards x M peers connections is
//!   small for a cluster of brokers, and it keeps every byte on the core that made it.
//! * **Raft frames are fire-and-forget.** [`PeerLink::send_raft`] queues a frame and
//!   returns at once; when the link is down or backed up it drops the frame and says so.
//!   Raft already retransmits (the next heartbeat or append carries what was lost), so a
//!   transport-level retry or acknowledgement would only duplicate that and add latency.
//!   The server hands a link's Raft frames to its handler in arrival order.
//! * **Requests carry correlation ids.** [`PeerLink::call`] (controller forwarding,
//!   snapshots, metadata pulls) sends a `Request` and waits for the `Response` with the same
//!   id. The server runs requests concurrently and answers in completion order, so one slow
//!   call does not block the calls or the Raft traffic behind it. A call fails when its
//!   connection drops (`Disconnected`: it may or may not have run) or when its timeout ends.
//! * **Frames** ([`frame`]): `u32 BE length | u8 kind | u64 BE correlation | payload`,
//!   decoded sans-io with a size limit. Queued frames are coalesced into one write.
//!
//! The caller binds the server's listener (so a bad address fails start-up) and passes it to
//! [`spawn_server`]; dropping the returned task closes the listener and its connections.
//! With `ringlet_shard::net::bind` (SO_REUSEPORT) on every shard, the kernel picks the shard
//! that accepts a peer's link, so the handler must route each frame to the shard that owns
//! its Raft group (or the node runs the listener on one shard and forwards over the bus).

mod client;
mod error;
pub mod frame;
mod outbox;
mod server;

pub use client::{PeerLink, Peers};
pub use error::RpcError;
pub use frame::{Frame, FrameKind};
pub use server::{spawn_server, Handler, HandlerFuture};

#[cfg(test)]
mod tests;
