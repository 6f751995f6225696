//! Shard-local wake-ups and one-shot replies (single thread, no locks), for the drivers that
//! serialise all work on one state machine (the Raft loops): a [`Notify`] the loop sleeps on
//! and the [`oneshot`] a caller awaits for its answer.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A wake-up flag: [`Notify::notify`] sets it (waking a waiter), [`Notify::notified`]
/// completes once it is set and clears it. Notifications while nobody waits are kept (one).
#[derive(Clone, Default)]
pub struct Notify {
    inner: Rc<NotifyInner>,
}

#[derive(Default)]
struct NotifyInner {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn notify(&self) {
        self.inner.set.set(true);
        if let Some(waker) = self.inner.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Completes when notified (at once if a notification is pending). One waiter at a time.
    pub fn notified(&self) -> impl Future<Output = ()> + '_ {
        Notified { inner: &self.inner }
    }
}

struct Notified<'a> {
    inner: &'a NotifyInner,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.set.replace(false) {
            return Poll::Ready(());
        }
        *self.inner.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A one-shot channel on one shard.
pub fn oneshot<T>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    let slot = Rc::new(Slot {
        value: RefCell::new(None),
        closed: Cell::new(false),
        waker: RefCell::new(None),
    });
    (
        OneshotSender { slot: slot.clone() },
        OneshotReceiver { slot },
    )
}

struct Slot<T> {
    value: RefCell<Option<T>>,
    /// The sender is gone (with or without a value).
    closed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

pub struct OneshotSender<T> {
    slot: Rc<Slot<T>>,
}

impl<T> OneshotSender<T> {
    pub fn send(self, value: T) {
        *self.slot.value.borrow_mut() = Some(value);
        // Drop wakes the receiver.
    }
}

impl<T> Drop for OneshotSender<T> {
    fn drop(&mut self) {
        self.slot.closed.set(true);
        if let Some(waker) = self.slot.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// Completes with the value, or `None` when the sender was dropped without sending.
pub struct OneshotReceiver<T> {
    slot: Rc<Slot<T>>,
}

impl<T> Future for OneshotReceiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(value) = self.slot.value.borrow_mut().take() {
            return Poll::Ready(Some(value));
        }
        if self.slot.closed.get() {
            return Poll::Ready(None);
        }
        *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_keeps_one_pending_wakeup_and_oneshots_deliver_or_close() {
        futures_lite::future::block_on(async {
            let notify = Notify::new();
            notify.notify();
            notify.notify();
            notify.notified().await;
            let (tx, rx) = oneshot();
            tx.send(7);
            assert_eq!(rx.await, Some(7));
            let (tx, rx) = oneshot::<u8>();
            drop(tx);
            assert_eq!(rx.await, None);
        });
    }
}
