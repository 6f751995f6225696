//! What a handler knows about the request it serves.

use std::net::SocketAddr;
use std::rc::Rc;

use super::produce_order::ProduceTurn;
use crate::state::ShardState;

/// Passed by reference to every handler.
pub struct RequestContext {
    /// The state of the shard serving the connection.
    pub state: Rc<ShardState>,
    /// The version the request was sent (and must be answered) at.
    pub api_version: i16,
    pub correlation_id: i32,
    /// The client's self-declared id (request header), if any.
    pub client_id: Option<String>,
    pub peer: SocketAddr,
    /// A produce request's place in its connection's order (`None` for other APIs).
    pub produce_turn: Option<ProduceTurn>,
}
