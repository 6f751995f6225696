//! The run's clock: nanoseconds since one `Instant` shared by every producer and consumer
//! thread of the process, so send times written into payloads compare directly with receipt
//! times (monotonic, immune to wall-clock steps).

use std::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    epoch: Instant,
}

impl Default for RunClock {
    fn default() -> Self {
        RunClock::start()
    }
}

impl RunClock {
    pub fn start() -> RunClock {
        RunClock {
            epoch: Instant::now(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The whole second of the run a timestamp falls in.
    pub fn second_of(ns: u64) -> usize {
        (ns / 1_000_000_000) as usize
    }
}
