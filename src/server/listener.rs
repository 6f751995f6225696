//! The accept loop of one shard.

use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use futures_lite::future;
use ringlet_shard::net::{self, TcpListener};

use crate::server::connection;
use crate::state::ShardState;

/// Binds this shard's listener (SO_REUSEPORT) and spawns its accept loop.
pub fn start_listener(state: &Rc<ShardState>) -> io::Result<()> {
    let listener = net::bind(state.config.listen)?;
    let state = state.clone();
    ringlet_shard::task::spawn_local(accept_loop(state, listener)).detach();
    Ok(())
}

enum Accepted {
    Connection(io::Result<ringlet_shard::net::TcpStream>),
    Stop,
}

async fn accept_loop(state: Rc<ShardState>, listener: TcpListener) {
    loop {
        let accepted = future::or(
            async { Accepted::Connection(net::accept(&listener).await) },
            async {
                state.server.stopping.wait().await;
                Accepted::Stop
            },
        )
        .await;
        let stream = match accepted {
            Accepted::Stop => break,
            Accepted::Connection(Ok(stream)) => stream,
            Accepted::Connection(Err(err)) => {
                // EMFILE and friends: log, back off briefly, keep serving the others.
                tracing::warn!(shard = state.shard_id, error = %err, "accept failed");
                ringlet_shard::task::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let peer = match stream.peer_addr() {
            Ok(peer) => peer,
            Err(err) => {
                tracing::debug!(error = %err, "connection gone before it was served");
                continue;
            }
        };
        let total = &state.server.connections_total;
        let max = state.config.max_connections;
        if total.fetch_add(1, Ordering::AcqRel) >= max {
            total.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(%peer, max_connections = max, "refusing connection: max connections reached");
            drop(stream);
            continue;
        }
        let guard = state.server.live.enter();
        let conn_state = state.clone();
        ringlet_shard::task::spawn_local(async move {
            connection::serve(conn_state.clone(), stream, peer).await;
            conn_state
                .server
                .connections_total
                .fetch_sub(1, Ordering::AcqRel);
            drop(guard);
        })
        .detach();
    }
    tracing::debug!(shard = state.shard_id, "listener closed");
}
