//! One panic policy for the whole process: a panic ends the broker at once.
//!
//! A panic on a shard unwinds that executor thread alone; the other shards keep running and
//! the broker keeps accepting connections it can no longer serve (every request that hops to
//! the dead shard waits forever). A supervisor restarts a process that exits, not one that is
//! half alive, and the recovery path (log recovery, Raft, coordinator loading) is the tested
//! way back to a consistent state. So [`install`] sets a process-wide hook that logs the panic
//! with its backtrace and aborts, before anything unwinds: SIGABRT leaves a core dump where
//! the host keeps them.
//!
//! Two places turn a panic into an error on purpose, and stay so: a request handler's panic
//! closes its connection (`server::dispatch`), and a panic in kafka-protocol's generated
//! decoders refuses the frame (`ringlet_protocol::decode_request`). Both run inside
//! [`contained`] or [`contained_sync`], which mark the thread while that code runs
//! ([`ringlet_shard::panic_mark`]), so the hook logs such a panic and lets it unwind to its
//! `catch_unwind`. What a handler hands to a shard (a bus call, its own shard's included, or a
//! spawned task) is shard work, never marked: the partition logs, Raft and the coordinators
//! keep their invariants as `assert!`s, and a broken one ends the process.

use std::backtrace::Backtrace;
use std::future::Future;
use std::io::Write;
use std::panic::{AssertUnwindSafe, PanicHookInfo};

use futures_lite::FutureExt;
use ringlet_shard::panic_mark::{is_contained, ContainedScope};

/// Installs the process-wide hook. Call first thing in `main`.
pub fn install() {
    std::panic::set_hook(Box::new(on_panic));
}

/// Runs `future`, turning a panic raised while it is polled into `Err` with the panic's
/// message instead of ending the process.
pub async fn contained<F: Future>(future: F) -> Result<F::Output, String> {
    let mut caught = std::pin::pin!(AssertUnwindSafe(future).catch_unwind());
    let outcome = std::future::poll_fn(move |cx| {
        let _scope = ContainedScope::enter();
        caught.as_mut().poll(cx)
    })
    .await;
    outcome.map_err(|payload| payload_text(payload.as_ref()).to_string())
}

/// Runs `f` with the thread marked as contained, for code that catches its own panics
/// (`std::panic::catch_unwind` inside `f`).
pub fn contained_sync<T>(f: impl FnOnce() -> T) -> T {
    let _scope = ContainedScope::enter();
    f()
}

fn on_panic(info: &PanicHookInfo<'_>) {
    let message = payload_text(info.payload());
    let location = info
        .location()
        .map_or_else(|| "an unknown place".to_string(), ToString::to_string);
    let current = std::thread::current();
    let thread = current.name().unwrap_or("unnamed");
    if is_contained() {
        tracing::error!(
            thread,
            %location,
            %message,
            "panic in a request handler or decoder, contained: its connection closes"
        );
        return;
    }
    let backtrace = Backtrace::force_capture();
    tracing::error!(thread, %location, %message, "panic: the broker stops at once");
    // The backtrace goes straight to stderr, in the shape Rust's own hook prints, so tools
    // that read panics find it; then stderr is flushed before the abort.
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "thread '{thread}' panicked at {location}:\n{message}\nstack backtrace:\n{backtrace}"
    );
    let _ = stderr.flush();
    std::process::abort();
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contained_panic_is_an_error_with_its_message() {
        let outcome = futures_lite::future::block_on(contained(async {
            assert!(is_contained());
            panic!("handler bug");
        }));
        assert_eq!(outcome, Err::<(), _>("handler bug".to_string()));
        assert!(!is_contained(), "the mark ends with the scope");
    }

    #[test]
    fn the_mark_lasts_only_while_the_future_is_polled() {
        let outcome = futures_lite::future::block_on(contained(async {
            futures_lite::future::yield_now().await;
            is_contained()
        }));
        assert_eq!(outcome, Ok(true));
        assert!(!is_contained());
        assert!(contained_sync(is_contained));
        assert!(!is_contained());
    }
}
