//! RLIMIT_MEMLOCK: io_uring (glommio's rings and registered buffers) needs locked memory.
//! glommio refuses to start an executor below 512 KiB and registers its I/O buffers only
//! when the limit allows, so raise the limit before starting shards.

use crate::error::ShardError;
use rlimit::Resource;

/// glommio's minimum for one executor.
pub const PER_SHARD_MIN_BYTES: u64 = 512 * 1024;

/// Locked memory the runtime asks for per shard: its rings plus its registered buffers.
pub const PER_SHARD_WANTED_BYTES: u64 = 12 * 1024 * 1024;

/// Raises RLIMIT_MEMLOCK for `shards` executors. Tries unlimited first (root or
/// CAP_SYS_RESOURCE), then the hard limit. Returns the resulting soft limit. Fails with a
/// clear error when even glommio's minimum for every shard is not available.
pub fn raise_memlock_limit(shards: usize) -> Result<u64, ShardError> {
    let required_bytes = PER_SHARD_MIN_BYTES.saturating_mul(shards as u64);
    let wanted_bytes = PER_SHARD_WANTED_BYTES.saturating_mul(shards as u64);
    let read = || {
        rlimit::getrlimit(Resource::MEMLOCK).map_err(|err| ShardError::MemlockTooLow {
            current_bytes: 0,
            required_bytes,
            reason: format!("getrlimit failed: {err}"),
        })
    };
    let (soft, hard) = read()?;
    if soft >= wanted_bytes {
        return Ok(soft);
    }
    let mut last_error = String::from("not attempted");
    if let Err(err) = rlimit::setrlimit(Resource::MEMLOCK, rlimit::INFINITY, rlimit::INFINITY) {
        last_error = format!("setrlimit(unlimited): {err}");
        if hard > soft {
            if let Err(err) = rlimit::setrlimit(Resource::MEMLOCK, hard, hard) {
                last_error = format!("setrlimit({hard}): {err}");
            }
        }
    }
    let (soft, _) = read()?;
    if soft < required_bytes {
        return Err(ShardError::MemlockTooLow {
            current_bytes: soft,
            required_bytes,
            reason: last_error,
        });
    }
    if soft < wanted_bytes {
        // Not necessarily a problem: with CAP_IPC_LOCK (root) io_uring does not charge locked
        // memory at all. glommio logs a warning itself if buffer registration fails.
        tracing::debug!(
            limit_bytes = soft,
            wanted_bytes,
            reason = %last_error,
            "RLIMIT_MEMLOCK could not be raised to the wanted size"
        );
    }
    Ok(soft)
}
