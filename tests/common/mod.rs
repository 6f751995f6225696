//! Shared harness for the integration tests: runs the REAL `ringlet` binary as a child process
//! on a free port with its own data directory, waits until it accepts connections, and kills it
//! when the guard drops (also when the test panics), printing the tail of the broker's log on a
//! failure so that CI output says what the broker did.
//!
//! Nothing here sleeps to synchronise: every wait polls a condition with a generous deadline
//! (the machines running CI are small and loaded; the deadlines only turn a hang into a failure).
#![allow(dead_code)] // each test binary compiles this module and uses a different part of it

pub mod acked_load;
pub mod api_call;
pub mod cluster;
pub mod ctp;
pub mod eos_load;
pub mod group_events;
pub mod group_wire;
pub mod kafka;
pub mod leader_kill;
pub mod netsplit;
pub mod ordering;
pub mod scripts;
pub mod seeded;
pub mod traffic;
pub mod wire;

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a broker may take to start accepting connections. Generous: a debug build on a
/// loaded 2-core machine. It is a hang detector, not a performance assertion.
pub const BROKER_START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a broker may take to exit after SIGTERM.
pub const BROKER_STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// Shards per broker in every test (the issue asks for `--shards 2`).
pub const TEST_SHARDS: u32 = 2;

/// The broker binary the tests run: this build's, or `RINGLET_TEST_BINARY` when set (to run a
/// test against another build, e.g. the one before a fix, and see it fail there).
pub fn broker_binary() -> PathBuf {
    std::env::var_os("RINGLET_TEST_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ringlet")))
}

/// A running broker process. Dropping it kills the process (SIGKILL) and reaps it.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    /// Held so the temporary directory (data + logs) outlives the process; None when the
    /// caller owns the data directory (restart tests).
    _owned_dir: Option<tempfile::TempDir>,
}

impl Broker {
    /// Starts a broker with a fresh temporary data directory.
    pub fn start() -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("ringlet-test-")
            .tempdir()
            .expect("create temporary directory for the broker");
        let data_dir = dir.path().join("data");
        let mut broker = Broker::start_in(&data_dir, &dir.path().join("logs"));
        broker._owned_dir = Some(dir);
        broker
    }

    /// As [`Broker::start`], with `envs` added to the broker's environment.
    pub fn start_with_env(envs: &[(&str, &str)]) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("ringlet-test-")
            .tempdir()
            .expect("create temporary directory for the broker");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create broker data directory");
        let mut command = Command::new(broker_binary());
        command
            .arg("start")
            .arg("--data-dir")
            .arg(&data_dir)
            .envs(envs.iter().copied());
        let port = free_port();
        let logs = dir.path().join("logs");
        let mut broker = Broker::launch(command, &data_dir, &logs, port, port, &[]);
        broker._owned_dir = Some(dir);
        broker
    }

    /// Starts a broker on `data_dir` (created if missing), writing its output under `log_dir`.
    /// Restart tests call this again with the same `data_dir` after stopping the first broker.
    pub fn start_in(data_dir: &Path, log_dir: &Path) -> Broker {
        let port = free_port();
        Broker::start_advertising(data_dir, log_dir, port, port)
    }

    /// As [`Broker::start_in`], listening on `port` and advertising `advertise_port` in
    /// metadata (e.g. a forwarding port in the test that outlives broker restarts, so clients
    /// keep one address across them).
    pub fn start_advertising(
        data_dir: &Path,
        log_dir: &Path,
        port: u16,
        advertise_port: u16,
    ) -> Broker {
        Broker::start_with_args(data_dir, log_dir, port, advertise_port, &[])
    }

    /// As [`Broker::start_advertising`], with more `ringlet start` arguments (cluster tests:
    /// `--node-id`, `--rpc-listen`, `--seeds`).
    pub fn start_with_args(
        data_dir: &Path,
        log_dir: &Path,
        port: u16,
        advertise_port: u16,
        extra_args: &[String],
    ) -> Broker {
        std::fs::create_dir_all(data_dir).expect("create broker data directory");
        let mut command = Command::new(broker_binary());
        command.arg("start").arg("--data-dir").arg(data_dir);
        Broker::launch(command, data_dir, log_dir, port, advertise_port, extra_args)
    }

    /// Starts `ringlet start` in `working_dir` without `--data-dir`, as the README's first
    /// command does: the data lands in the default `./data`.
    pub fn start_in_working_dir(working_dir: &Path) -> Broker {
        let mut command = Command::new(broker_binary());
        command.arg("start").current_dir(working_dir);
        let port = free_port();
        let data_dir = working_dir.join("data");
        Broker::launch(
            command,
            &data_dir,
            &working_dir.join("logs"),
            port,
            port,
            &[],
        )
    }

    fn launch(
        mut command: Command,
        data_dir: &Path,
        log_dir: &Path,
        port: u16,
        advertise_port: u16,
        extra_args: &[String],
    ) -> Broker {
        std::fs::create_dir_all(log_dir).expect("create broker log directory");
        let log_path = unused_log_path(log_dir);
        let log = File::create(&log_path).expect("create broker log file");
        let address = format!("127.0.0.1:{port}");
        let advertise = format!("127.0.0.1:{advertise_port}");
        let child = command
            .args(["--listen", &address, "--advertise", &advertise])
            .args(["--shards", &TEST_SHARDS.to_string()])
            .args(extra_args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone broker log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn the ringlet binary");
        let mut broker = Broker {
            child: Some(child),
            port,
            data_dir: data_dir.to_path_buf(),
            log_path,
            _owned_dir: None,
        };
        broker.wait_until_accepting();
        broker
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, the bootstrap address for clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The file this run of the broker writes its stdout and stderr to.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// How the process ended, once it has (None while it runs or after it was stopped here).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is running").id()
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Panics with the broker log if the process has exited.
    pub fn assert_alive(&mut self, context: &str) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("broker exited ({status}) {context}\n{}", self.log_tail(80));
            }
        } else {
            panic!("broker was already stopped {context}");
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn stop_graceful(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("broker is running");
        send_sigterm(child.id());
        let status = wait_with_deadline(child, BROKER_STOP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "broker did not exit within {BROKER_STOP_TIMEOUT:?} after SIGTERM\n{}",
                self.log_tail(80)
            )
        });
        self.child = None;
        status
    }

    /// Sends `signal` (a name `kill` knows, e.g. `USR1`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid();
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {pid}")])
            .status()
            .expect("run sh -c kill");
        assert!(status.success(), "kill -{signal} {pid} failed: {status}");
    }

    /// Waits up to `timeout` for the process to end by itself and reaps it: its exit status,
    /// or None while it still runs.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("broker is running");
        let status = wait_with_deadline(child, timeout)?;
        self.child = None;
        Some(status)
    }

    /// SIGKILL (kill -9) and reap, simulating a crash; returns once the Kafka port no longer
    /// accepts (the kernel closes an io_uring's listeners a few ms after the reap, and a
    /// restart's readiness check must not mistake the dying listener for the new one).
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill is SIGKILL on Unix: no chance to flush anything.
            let _ = child.kill();
            let _ = child.wait();
            // No panic here: this also runs from Drop, maybe while a test panics.
            let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
            let deadline = Instant::now() + BROKER_STOP_TIMEOUT;
            while TcpStream::connect(addr).is_ok() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Last `lines` lines of the broker's stdout+stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log_path) {
            let _ = file.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        let start = all.len().saturating_sub(lines);
        format!(
            "---- broker log {} (last {} lines) ----\n{}\n---- end of broker log ----",
            self.log_path.display(),
            all.len() - start,
            all[start..].join("\n")
        )
    }

    /// Whole broker log (for assertions about logged reasons).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_until_accepting(&mut self) {
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        loop {
            self.assert_alive("before it accepted connections");
            if TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "broker did not accept connections on {} within {BROKER_START_TIMEOUT:?}\n{}",
                    self.bootstrap(),
                    self.log_tail(80)
                );
            }
            std::thread::sleep(Duration::from_millis(50)); // poll interval, not synchronisation
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(60));
        }
        self.kill_hard();
    }
}

/// A TCP port that was free a moment ago (bind to port 0 and release it).
/// A port nothing listens on, from below the kernel's ephemeral range (32768-60999 by
/// default): a port the kernel handed out with `bind(:0)` can later become the source port of
/// some outgoing connection, and a broker restarted on it would find it taken.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    const COUNT: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % COUNT;
    for _ in 0..COUNT {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + step) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

fn unused_log_path(log_dir: &Path) -> PathBuf {
    (0..)
        .map(|n| log_dir.join(format!("broker-{n}.log")))
        .find(|path| !path.exists())
        .expect("some log name is free")
}

/// SIGTERM through the shell's builtin `kill` (keeps `unsafe` out of the tests, per the guide).
fn send_sigterm(pid: u32) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .expect("run sh -c kill");
    assert!(status.success(), "kill -TERM {pid} failed: {status}");
}

fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() > deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(err) => panic!("waiting for the broker failed: {err}"),
        }
    }
}

/// Polls `condition` until it returns Some, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A topic name unique within this machine's test run.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
