//! The one error type of the broker-to-broker transport.

use std::net::SocketAddr;
use std::time::Duration;

/// Why a frame could not be decoded, a call failed, or a connection closed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("rpc i/o failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("rpc frame of {len_bytes} bytes is over the limit of {max_bytes} bytes")]
    FrameTooLarge { len_bytes: usize, max_bytes: usize },
    #[error("bad rpc frame: {0}")]
    BadFrame(String),
    #[error("connection to {peer} lost with the call pending")]
    Disconnected { peer: SocketAddr },
    #[error("call to {peer} timed out after {after:?}")]
    TimedOut { peer: SocketAddr, after: Duration },
    #[error("send queue to {peer} is full")]
    QueueFull { peer: SocketAddr },
    #[error("link to {peer} is closed")]
    Closed { peer: SocketAddr },
}

impl RpcError {
    /// Whether the peer sent something that breaks the framing (the connection must close
    /// and the peer is misbehaving), as opposed to the network failing.
    pub fn is_protocol_violation(&self) -> bool {
        matches!(self, Self::FrameTooLarge { .. } | Self::BadFrame(_))
    }
}
