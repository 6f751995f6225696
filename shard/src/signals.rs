//! SIGINT/SIGTERM for an orderly stop. Register before announcing readiness so that a signal
//! arriving during start-up is not lost; then block the main thread in [`Termination::wait`].

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

/// Registered termination signals.
pub struct Termination {
    signals: Signals,
}

impl Termination {
    /// Installs handlers for SIGINT and SIGTERM (replacing the default "die at once").
    pub fn register() -> std::io::Result<Self> {
        Ok(Self {
            signals: Signals::new([SIGINT, SIGTERM])?,
        })
    }

    /// Blocks until SIGINT or SIGTERM arrives; returns the signal's name.
    pub fn wait(&mut self) -> &'static str {
        loop {
            if let Some(signal) = self.signals.forever().next() {
                return if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
            }
        }
    }
}

/// SIGUSR1, for a test hook that a test process fires from outside. Registering replaces the
/// default action (ending the process).
pub struct UserSignal {
    signals: Signals,
}

impl UserSignal {
    pub fn register() -> std::io::Result<Self> {
        Ok(Self {
            signals: Signals::new([SIGUSR1])?,
        })
    }

    /// Blocks until SIGUSR1 arrives.
    pub fn wait(&mut self) {
        while self.signals.forever().next().is_none() {}
    }
}
