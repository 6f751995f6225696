//! TCP on the shard's io_uring. Listeners bind with SO_REUSEPORT, so every shard can bind
//! the same address and the kernel spreads incoming connections across shards.

use std::io;
use std::net::SocketAddr;
use std::os::unix::io::{FromRawFd, IntoRawFd};

pub use glommio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

/// Kafka's default listen backlog is 50; more absorbs a reconnect storm after a restart.
const LISTEN_BACKLOG: i32 = 1024;

/// Binds a listener for the current shard with SO_REUSEPORT (one listener per shard) and
/// SO_REUSEADDR. glommio's own `bind` sets only SO_REUSEPORT, and then a restarted broker
/// cannot bind its port while connections of the previous process linger in the kernel
/// (FIN_WAIT/TIME_WAIT, up to a minute), as Kafka's sockets can (they set SO_REUSEADDR).
/// A second live broker is still refused: nothing binds over a listening socket unless
/// both set SO_REUSEPORT, and the start-up probe (`std` bind) does not.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is a bound, listening TCP socket that we own (`into_raw_fd` gave up
    // `socket`'s ownership), which is what glommio's `from_raw_fd` requires; it must run
    // on a glommio executor thread, as every shard does.
    Ok(unsafe { TcpListener::from_raw_fd(fd) })
}

/// Accepts one connection; errors converted to `io::Error`.
pub async fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    listener.accept().await.map_err(io::Error::from)
}
