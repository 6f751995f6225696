//! Errors of the runtime crate.

use crate::table::ShardId;

/// Failures starting, running or stopping the shards.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("invalid runtime configuration: {0}")]
    Config(String),
    #[error(
        "RLIMIT_MEMLOCK is {current_bytes} bytes and could not be raised to {required_bytes} bytes \
         ({reason}); io_uring needs locked memory for every shard. Run as root, grant \
         CAP_SYS_RESOURCE, or raise the limit (`ulimit -l`, systemd LimitMEMLOCK=, docker \
         --ulimit memlock=-1)"
    )]
    MemlockTooLow {
        current_bytes: u64,
        required_bytes: u64,
        reason: String,
    },
    #[error("cannot list online CPUs: {0}")]
    Cpus(String),
    #[error("cannot start shard {shard}: {reason}")]
    Spawn { shard: ShardId, reason: String },
    #[error("shard {shard} failed to initialise: {reason}")]
    Init { shard: ShardId, reason: String },
    #[error("shard {shard} thread ended abnormally: {reason}")]
    Join { shard: ShardId, reason: String },
    #[error("signal handling: {0}")]
    Signals(#[from] std::io::Error),
}
