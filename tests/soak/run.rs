//! What every soak worker shares for one topology: where the brokers are, when to stop, the
//! findings (anything that breaks a guarantee or stops a broker) and progress counters.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Run {
    /// "one-broker" or "three-brokers": prefixes every line and topic name.
    pub label: &'static str,
    pub bootstrap: String,
    pub replication: i32,
    pub seed: u64,
    started: Instant,
    stop: AtomicBool,
    findings: Mutex<Vec<String>>,
    counters: Mutex<BTreeMap<&'static str, u64>>,
}

impl Run {
    pub fn new(label: &'static str, bootstrap: String, replication: i32, seed: u64) -> Arc<Run> {
        Arc::new(Run {
            label,
            bootstrap,
            replication,
            seed,
            started: Instant::now(),
            stop: AtomicBool::new(false),
            findings: Mutex::new(Vec::new()),
            counters: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Sleeps up to `duration`, returning early (false) once the run stops.
    pub fn pause(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            if self.stopping() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
        }
        !self.stopping()
    }

    /// Minutes and seconds since the start, as every line shows it.
    pub fn clock(&self) -> String {
        let elapsed = self.started.elapsed().as_secs();
        format!("{}m{:02}s", elapsed / 60, elapsed % 60)
    }

    /// Something that must not happen: printed at once and failing the soak at the end.
    pub fn finding(&self, what: impl Into<String>) {
        let line = format!(
            "[{} +{}] FINDING: {}",
            self.label,
            self.clock(),
            what.into()
        );
        eprintln!("{line}");
        self.findings.lock().expect("findings lock").push(line);
    }

    pub fn say(&self, what: impl AsRef<str>) {
        eprintln!("[{} +{}] {}", self.label, self.clock(), what.as_ref());
    }

    pub fn count(&self, counter: &'static str, by: u64) {
        *self
            .counters
            .lock()
            .expect("counters lock")
            .entry(counter)
            .or_default() += by;
    }

    pub fn counters(&self) -> String {
        let counters = self.counters.lock().expect("counters lock");
        counters
            .iter()
            .map(|(name, value)| format!("{name} {value}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn findings(&self) -> Vec<String> {
        self.findings.lock().expect("findings lock").clone()
    }

    /// Runs `work` on its own thread; a panic in it (a helper's failed check) is a finding.
    pub fn spawn(self: &Arc<Self>, name: &'static str, work: fn(&Run)) -> JoinHandle<()> {
        let run = self.clone();
        std::thread::Builder::new()
            .name(format!("{}-{name}", self.label))
            .spawn(move || {
                run.guarded(name, || work(&run));
            })
            .expect("spawn a soak worker")
    }

    /// Runs `work`, turning a panic into a finding named `what`; false when it panicked.
    pub fn guarded(&self, what: &str, work: impl FnOnce()) -> bool {
        let Err(panic) = catch_unwind(AssertUnwindSafe(work)) else {
            return true;
        };
        {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into());
            self.finding(format!("{what}: {message}"));
        }
        false
    }
}
