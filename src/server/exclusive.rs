//! Start-up guards against a second broker sharing what must be one broker's alone.
//!
//! Both failure modes are silent without them: the shards bind with SO_REUSEPORT, so a second
//! broker on the same port is *accepted* by the kernel, which then splits new connections
//! between the two processes (clients see offsets jump backwards); and two brokers on one data
//! directory would interleave writes into the same segment files.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::BrokerError;

/// An exclusive lock on the data directory, held for as long as this value lives.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Locks `data_dir/.lock` (an advisory `flock`, released by the kernel when the process dies,
/// so a `kill -9` never leaves a stale lock behind).
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, BrokerError> {
    let path = data_dir.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| BrokerError::Startup(format!("cannot open {}: {err}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(BrokerError::Startup(format!(
            "data dir {} is in use by another ringlet process",
            data_dir.display()
        ))),
        Err(std::fs::TryLockError::Error(err)) => Err(BrokerError::Startup(format!(
            "cannot lock {}: {err}",
            path.display()
        ))),
    }
}

/// How long start-up waits for a listener of a process that just died to go away. The
/// kernel tears an io_uring instance down after its process has been reaped, and the
/// listening sockets its pending accepts hold stay open until then: measured here, a port
/// still accepted connections for about 10 ms after `kill -9` and `waitpid` returned. A
/// supervisor restarting a crashed broker at once must not fail on that.
const RELEASE_WAIT: Duration = Duration::from_secs(5);
const RELEASE_POLL: Duration = Duration::from_millis(20);

/// Fails when another process listens on `addr`: a plain bind (without SO_REUSEPORT) is
/// refused by any existing listener, including one that set SO_REUSEPORT itself. A listener
/// still going away (see [`RELEASE_WAIT`]) is waited for.
pub fn ensure_address_free(addr: SocketAddr) -> Result<(), BrokerError> {
    let deadline = Instant::now() + RELEASE_WAIT;
    let mut warned = false;
    loop {
        match TcpListener::bind(addr) {
            Ok(_) => return Ok(()),
            Err(err) if err.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                if !warned {
                    warned = true;
                    tracing::warn!(%addr, "address in use; waiting for a listener that may be going away");
                }
                std::thread::sleep(RELEASE_POLL);
            }
            Err(err) => {
                return Err(BrokerError::Startup(format!(
                    "cannot listen on {addr}: {err} (is another broker running?)"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_data_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_data_dir(dir.path()).unwrap();
        let err = lock_data_dir(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("in use by another ringlet"),
            "{err}"
        );
        drop(first);
        lock_data_dir(dir.path()).unwrap();
    }

    #[test]
    fn an_address_with_a_listener_is_reported_busy() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let err = ensure_address_free(addr).unwrap_err();
        assert!(err.to_string().contains("another broker"), "{err}");
        drop(listener);
        ensure_address_free(addr).unwrap();
    }

    #[test]
    fn a_listener_going_away_is_waited_for() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(listener);
        });
        ensure_address_free(addr).unwrap();
        closer.join().unwrap();
    }
}
