//! Fetch waiters: how a long-polling fetch sleeps until an append wakes it.
//!
//! Everything here is shard-local (`Rc`, `Cell`): a waiter is registered only on
//! the shard that owns the partitions it watches, and the append that wakes it
//! runs on that same shard, so no atomics or cross-thread wakers are needed.
//!
//! One [`FetchWaiter`] watches every partition of one fetch hop on this shard:
//! it is registered (as a `Weak`) with the [`AppendWaiters`] list of each
//! partition, and the first append to any of them wakes it. Registrations of a
//! waiter that already finished (timeout, or woken by another partition) are
//! dropped the next time the list is touched, so a partition nobody appends to
//! does not accumulate dead entries beyond one per live fetch.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// The parked fetches interested in one partition.
#[derive(Default)]
pub struct AppendWaiters {
    waiters: RefCell<Vec<Weak<FetchWaiter>>>,
}

impl AppendWaiters {
    /// Registers `waiter`; it stays registered until the next append or until it is dropped.
    pub fn register(&self, waiter: &Rc<FetchWaiter>) {
        let mut waiters = self.waiters.borrow_mut();
        waiters.retain(|w| w.strong_count() > 0);
        waiters.push(Rc::downgrade(waiter));
    }

    /// Wakes every parked fetch; called after each successful append.
    pub fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waiter in waiters.iter().filter_map(Weak::upgrade) {
            waiter.wake();
        }
    }

    /// Number of registrations still held (live or not yet pruned).
    pub fn registered(&self) -> usize {
        self.waiters.borrow().len()
    }
}

/// One parked fetch on one shard. Completes once any watched partition got an append.
#[derive(Default)]
pub struct FetchWaiter {
    woken: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl FetchWaiter {
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    fn wake(&self) {
        self.woken.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Resolves when an append to a watched partition happened after registration.
    pub fn woken(self: &Rc<Self>) -> WaitWoken {
        WaitWoken {
            waiter: Rc::clone(self),
        }
    }
}

/// Future returned by [`FetchWaiter::woken`].
pub struct WaitWoken {
    waiter: Rc<FetchWaiter>,
}

impl Future for WaitWoken {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.waiter.woken.get() {
            return Poll::Ready(());
        }
        *self.waiter.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Polls `first` and `second` together and returns whichever finishes first
/// (`first` wins a tie). Used to bound a wait by a timer without a runtime dependency.
pub async fn race<T>(first: impl Future<Output = T>, second: impl Future<Output = T>) -> T {
    let mut first = std::pin::pin!(first);
    let mut second = std::pin::pin!(second);
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(value) = first.as_mut().poll(cx) {
            return Poll::Ready(value);
        }
        second.as_mut().poll(cx)
    })
    .await
}

/// Awaits every future concurrently; outputs in input order.
///
/// Used for acks=all, so the durable waits of all partitions of one hop overlap
/// (and share the log's group commit) instead of running one after another.
pub async fn join_all<T>(futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    join_all_started(futures, || {}).await
}

/// As [`join_all`], calling `started` once every future has been polled once, in order: for
/// futures that do their ordered part (e.g. taking log offsets) before their first await.
pub async fn join_all_started<T>(
    futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>,
    started: impl FnOnce(),
) -> Vec<T> {
    let mut started = Some(started);
    let mut futures: Vec<Option<Pin<Box<dyn Future<Output = T> + '_>>>> =
        futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = std::iter::repeat_with(|| None)
        .take(futures.len())
        .collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(f) = future {
                match f.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *future = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if let Some(started) = started.take() {
            started();
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Resolves when the first of `futures` completes (at once when there are none);
/// the others are dropped.
pub async fn first_of(mut futures: Vec<Pin<Box<dyn Future<Output = ()> + '_>>>) {
    if futures.is_empty() {
        return;
    }
    std::future::poll_fn(|cx| {
        for future in futures.iter_mut() {
            if future.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}

/// A one-shot signal that may be fired from another shard's thread: the fetch
/// handler fires it once it has its answer, so the waits it parked on the other
/// shards end at once instead of at their timeout. (Shard wakers accept wake-ups
/// from foreign threads; see `ringlet_shard::bus`.)
#[derive(Default)]
pub struct CrossShardSignal {
    fired: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl CrossShardSignal {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        let wakers = match self.wakers.lock() {
            Ok(mut wakers) => std::mem::take(&mut *wakers),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for waker in wakers {
            waker.wake();
        }
    }

    pub fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Resolves once [`CrossShardSignal::fire`] was called (before or after).
    pub async fn fired(&self) {
        std::future::poll_fn(|cx| {
            if self.is_fired() {
                return Poll::Ready(());
            }
            let mut wakers = match self.wakers.lock() {
                Ok(wakers) => wakers,
                Err(poisoned) => poisoned.into_inner(),
            };
            // Checked again under the lock: `fire` sets the flag before taking it.
            if self.is_fired() {
                return Poll::Ready(());
            }
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct CountingWake(std::sync::atomic::AtomicUsize);
    impl Wake for CountingWake {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn poll_once<F: Future>(fut: Pin<&mut F>, wake: &Arc<CountingWake>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::clone(wake));
        fut.poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn append_wakes_a_registered_waiter_exactly_once() {
        let partition = AppendWaiters::default();
        let waiter = FetchWaiter::new();
        partition.register(&waiter);
        let wake = Arc::new(CountingWake(Default::default()));
        let mut fut = std::pin::pin!(waiter.woken());
        assert!(poll_once(fut.as_mut(), &wake).is_pending());
        partition.wake_all();
        assert_eq!(wake.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(poll_once(fut.as_mut(), &wake).is_ready());
        assert_eq!(partition.registered(), 0, "wake_all consumes registrations");
    }

    #[test]
    fn one_waiter_watches_many_partitions_and_dead_ones_are_pruned() {
        let p1 = AppendWaiters::default();
        let p2 = AppendWaiters::default();
        let waiter = FetchWaiter::new();
        p1.register(&waiter);
        p2.register(&waiter);
        p2.wake_all();
        assert!(waiter.woken.get());
        drop(waiter);
        let other = FetchWaiter::new();
        p1.register(&other);
        assert_eq!(p1.registered(), 1, "the dropped waiter's entry was pruned");
    }

    #[test]
    fn join_all_keeps_input_order() {
        let wake = Arc::new(CountingWake(Default::default()));
        let waiter = FetchWaiter::new();
        let slow = {
            let waiter = Rc::clone(&waiter);
            async move {
                waiter.woken().await;
                "slow"
            }
        };
        let mut fut = std::pin::pin!(join_all(vec![Box::pin(slow), Box::pin(async { "fast" })]));
        assert!(poll_once(fut.as_mut(), &wake).is_pending());
        let partition = AppendWaiters::default();
        partition.register(&waiter);
        partition.wake_all();
        assert_eq!(
            poll_once(fut.as_mut(), &wake),
            Poll::Ready(vec!["slow", "fast"])
        );
    }

    #[test]
    fn cross_shard_signal_wakes_from_another_thread() {
        let signal = CrossShardSignal::new();
        let wake = Arc::new(CountingWake(Default::default()));
        let mut fut = std::pin::pin!(signal.fired());
        assert!(poll_once(fut.as_mut(), &wake).is_pending());
        let remote = Arc::clone(&signal);
        std::thread::spawn(move || remote.fire())
            .join()
            .expect("thread");
        assert_eq!(wake.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(poll_once(fut.as_mut(), &wake).is_ready());
    }

    #[test]
    fn race_returns_the_ready_side() {
        let wake = Arc::new(CountingWake(Default::default()));
        let waiter = FetchWaiter::new();
        let mut fut = std::pin::pin!(race(
            async {
                waiter.woken().await;
                1
            },
            async { 2 }
        ));
        assert_eq!(poll_once(fut.as_mut(), &wake), Poll::Ready(2));
    }
}
