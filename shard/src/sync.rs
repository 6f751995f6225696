//! Shard-local synchronisation (single thread, no locks): a one-way [`Latch`] and a
//! [`Gauge`] whose owner can wait for it to drop to zero. Used for ordered shutdown.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Waiters(RefCell<Vec<Waker>>);

impl Waiters {
    fn register(&self, waker: &Waker) {
        let mut waiters = self.0.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }

    fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.0.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }
}

/// Starts unset; once [`Latch::set`], every current and future [`Latch::wait`] completes.
#[derive(Clone, Default)]
pub struct Latch {
    inner: Rc<(Cell<bool>, Waiters)>,
}

impl Latch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self) {
        self.inner.0.set(true);
        self.inner.1.wake_all();
    }

    pub fn is_set(&self) -> bool {
        self.inner.0.get()
    }

    /// Completes when the latch is set.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        Wait {
            ready: move || self.is_set(),
            waiters: &self.inner.1,
        }
    }
}

/// A count of live things (e.g. connections) that can be awaited to reach zero.
#[derive(Clone, Default)]
pub struct Gauge {
    inner: Rc<(Cell<usize>, Waiters)>,
}

/// Decrements its [`Gauge`] when dropped.
pub struct GaugeGuard {
    gauge: Gauge,
}

impl Gauge {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one more until the guard is dropped.
    pub fn enter(&self) -> GaugeGuard {
        self.inner.0.set(self.inner.0.get() + 1);
        GaugeGuard {
            gauge: self.clone(),
        }
    }

    pub fn value(&self) -> usize {
        self.inner.0.get()
    }

    /// Completes when the count is zero.
    pub fn wait_zero(&self) -> impl Future<Output = ()> + '_ {
        Wait {
            ready: move || self.value() == 0,
            waiters: &self.inner.1,
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        let count = self.gauge.inner.0.get();
        assert!(count > 0, "gauge underflow");
        self.gauge.inner.0.set(count - 1);
        if count == 1 {
            self.gauge.inner.1.wake_all();
        }
    }
}

struct Wait<'a, F> {
    ready: F,
    waiters: &'a Waiters,
}

impl<F: Fn() -> bool + Unpin> Future for Wait<'_, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if (self.ready)() {
            return Poll::Ready(());
        }
        self.waiters.register(cx.waker());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latch_and_gauge() {
        futures_lite::future::block_on(async {
            let latch = Latch::new();
            assert!(!latch.is_set());
            latch.set();
            latch.wait().await;
            let gauge = Gauge::new();
            let a = gauge.enter();
            let b = gauge.enter();
            assert_eq!(gauge.value(), 2);
            drop(a);
            drop(b);
            gauge.wait_zero().await;
        });
    }
}
