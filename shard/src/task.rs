//! Shard-local tasks and timers: the runtime primitives the broker uses, so that only this
//! crate names glommio.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A local task running on the current shard. Awaiting it yields its output; dropping it
/// cancels it (call [`Task::detach`] to let it run on its own).
#[must_use = "dropping a Task cancels it; call detach() to let it run"]
pub struct Task<T>(glommio::Task<T>);

impl<T> Task<T> {
    /// Lets the task run to completion without anyone awaiting it.
    pub fn detach(self) {
        // The returned JoinHandle only allows cancelling; dropping it leaves the task running.
        drop(self.0.detach());
    }

    /// Cancels the task; returns its output if it had already finished.
    pub async fn cancel(self) -> Option<T> {
        self.0.cancel().await
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Spawns `future` on the current shard. Panics when called outside a shard thread (a
/// programming error, not an input-driven condition). The task is shard work: its panics are
/// never caught, even in its first poll, which glommio runs inside the spawner
/// ([`crate::panic_mark`]).
pub fn spawn_local<T: 'static>(future: impl Future<Output = T> + 'static) -> Task<T> {
    Task(glommio::spawn_local(crate::panic_mark::uncontained(future)))
}

/// Sleeps on the shard's timer wheel.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

/// Runs `future` for at most `duration`; `None` when the time ran out first (the future is
/// dropped then).
pub async fn timeout<T>(duration: Duration, future: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(future.await) }, async {
        sleep(duration).await;
        None
    })
    .await
}

/// Gives other tasks of this shard a chance to run when this one has run long.
pub async fn yield_if_needed() {
    glommio::yield_if_needed().await;
}

/// Runs `tick` every `period` on the current shard until the returned task is dropped or
/// cancelled. The next period starts after `tick` finished, so ticks never overlap.
pub fn spawn_periodic<F, Fut>(period: Duration, mut tick: F) -> Task<()>
where
    F: FnMut() -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    spawn_local(async move {
        loop {
            sleep(period).await;
            tick().await;
        }
    })
}

/// A bounded single-shard channel (both ends on one shard).
pub mod local_channel {
    pub use glommio::channels::local_channel::{LocalReceiver, LocalSender};

    /// A channel holding at most `capacity` items; `send` waits while it is full.
    pub fn bounded<T>(capacity: usize) -> (LocalSender<T>, LocalReceiver<T>) {
        glommio::channels::local_channel::new_bounded(capacity)
    }
}
