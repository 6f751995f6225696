//! TCP on the shard's io_uring. Listeners bind with SO_REUSEPORT, so every shard can bind
//! the same address and the kernel spreads incoming connections across shards.

use std::io;
use std::net::SocketAddr;

pub use glommio::net::{TcpListener, TcpStream};

/// Binds a listener for the current shard (SO_REUSEPORT set by glommio).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(io::Error::from)
}

/// Accepts one connection; errors converted to `io::Error`.
pub async fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    listener.accept().await.map_err(io::Error::from)
}
