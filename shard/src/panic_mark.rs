//! Which code on a thread may have its panic caught: the mark a process-wide panic hook reads
//! to tell a panic it must let unwind (to a `catch_unwind` that turns it into an error) from
//! one that must end the process.
//!
//! A caller marks the code it will catch with [`ContainedScope`]. Work a shard runs *as a
//! shard* is never marked, even when it is polled inside marked code: glommio polls a newly
//! spawned task once at once, inside its spawner, and a bus call to the caller's own shard
//! runs inline. [`spawn_local`](crate::task::spawn_local) and the bus run that work through
//! [`uncontained`], which clears the mark while it is polled.

use std::cell::Cell;
use std::future::Future;

thread_local! {
    /// How many contained scopes the current thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether a panic raised here now is one a caller will catch.
pub fn is_contained() -> bool {
    DEPTH.try_with(|depth| depth.get() > 0).unwrap_or(false)
}

/// Marks the current thread as running contained code while it lives (also while a panic
/// unwinds through it).
pub struct ContainedScope(());

impl ContainedScope {
    pub fn enter() -> Self {
        DEPTH.with(|depth| depth.set(depth.get() + 1));
        ContainedScope(())
    }
}

impl Drop for ContainedScope {
    fn drop(&mut self) {
        DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

/// Clears the mark while it lives, and puts back what was there.
struct UncontainedScope {
    saved: u32,
}

impl UncontainedScope {
    fn enter() -> Self {
        UncontainedScope {
            saved: DEPTH.with(|depth| depth.replace(0)),
        }
    }
}

impl Drop for UncontainedScope {
    fn drop(&mut self) {
        let saved = self.saved;
        DEPTH.with(|depth| depth.set(saved));
    }
}

/// Runs `future` with the mark cleared whenever it is polled.
pub async fn uncontained<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |cx| {
        let _scope = UncontainedScope::enter();
        future.as_mut().poll(cx)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_uncontained_work_clears_the_mark_while_polled() {
        assert!(!is_contained());
        let outer = ContainedScope::enter();
        assert!(is_contained());
        let inside = futures_lite::future::block_on(uncontained(async { is_contained() }));
        assert!(!inside, "uncontained work is not marked");
        assert!(is_contained(), "the mark comes back after it");
        drop(outer);
        assert!(!is_contained());
    }

    #[test]
    fn the_mark_is_cleared_when_a_marked_panic_unwinds() {
        let caught = std::panic::catch_unwind(|| {
            let _scope = ContainedScope::enter();
            panic!("caught below");
        });
        assert!(caught.is_err());
        assert!(!is_contained());
    }
}
