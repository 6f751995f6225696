//! Periodic retention for every log of a shard, in a low-priority task queue.
//!
//! The runner holds weak references, so a log that is closed and dropped simply disappears from
//! it. Retention takes the log's `io_lock` only for the short log-start update; file removal
//! runs after it, one segment at a time with yields in between, so appends keep flowing.

use super::PartitionLog;
use crate::error::LogError;
use crate::rt;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

/// Shares of the retention task queue; the default queue has 1000.
pub const RETENTION_SHARES: usize = 50;

#[derive(Default)]
pub struct RetentionRunner {
    logs: RefCell<Vec<Weak<PartitionLog>>>,
    stopped: Cell<bool>,
}

impl RetentionRunner {
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    pub fn register(&self, log: &Rc<PartitionLog>) {
        self.logs.borrow_mut().push(Rc::downgrade(log));
    }

    /// One pass over all live logs; returns segments deleted. Errors are logged per log.
    pub async fn run_once(&self, now_ms: i64) -> usize {
        let logs: Vec<Rc<PartitionLog>> = {
            let mut logs = self.logs.borrow_mut();
            logs.retain(|weak| weak.strong_count() > 0);
            logs.iter().filter_map(Weak::upgrade).collect()
        };
        let mut deleted = 0;
        for log in logs {
            match log.enforce_retention(now_ms).await {
                Ok(count) => deleted += count,
                Err(LogError::Closed { .. }) => {}
                Err(err) => tracing::warn!(dir = %log.dir().display(), "retention failed: {err}"),
            }
            rt::yield_now().await;
        }
        deleted
    }

    /// Runs [`Self::run_once`] every `interval` in a task queue with [`RETENTION_SHARES`]
    /// shares, until [`Self::stop`] is called.
    pub fn spawn(self: &Rc<Self>, interval: Duration) -> Result<(), LogError> {
        let queue = rt::LowPriorityQueue::new("log-retention", RETENTION_SHARES);
        let runner = self.clone();
        queue
            .spawn(async move {
                while !runner.stopped.get() {
                    rt::sleep(interval).await;
                    if runner.stopped.get() {
                        break;
                    }
                    runner.run_once(rt::now_ms()).await;
                }
            })
            .map_err(|err| LogError::io("spawn retention task", std::path::PathBuf::new(), err))
    }

    pub fn stop(&self) {
        self.stopped.set(true);
    }
}
