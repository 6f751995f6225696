//! Locked-memory limit: every glommio executor registers I/O buffers and rings that count
//! against `RLIMIT_MEMLOCK`.

use crate::error::LogError;

/// Raises the soft and hard `RLIMIT_MEMLOCK` to unlimited (needs CAP_SYS_RESOURCE, e.g. root).
/// If that is refused, raises the soft limit to the hard limit. Returns the soft limit now in
/// effect, or an error saying why it could not be raised.
pub fn raise_memlock_limit() -> Result<u64, LogError> {
    let wanted = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid, initialised rlimit struct that outlives the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &wanted) } == 0 {
        return Ok(libc::RLIM_INFINITY);
    }
    let first_error = std::io::Error::last_os_error();
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut current) } != 0 {
        return Err(LogError::Memlock(std::io::Error::last_os_error()));
    }
    let soft_to_hard = libc::rlimit {
        rlim_cur: current.rlim_max,
        rlim_max: current.rlim_max,
    };
    // SAFETY: as above, a valid rlimit struct that outlives the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &soft_to_hard) } == 0 {
        tracing::info!(
            "could not lift RLIMIT_MEMLOCK ({first_error}); soft limit raised to hard limit {}",
            current.rlim_max
        );
        return Ok(current.rlim_max);
    }
    Err(LogError::Memlock(first_error))
}
