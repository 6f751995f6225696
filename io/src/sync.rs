//! Runtime-independent single-threaded async primitives: a one-shot channel and a fair lock.
//!
//! Both are `!Send` and live on one shard. They are tiny on purpose so the log does not depend
//! on a runtime's channel types.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    sender_gone: bool,
}

pub struct OneshotSender<T> {
    slot: Rc<RefCell<Slot<T>>>,
}

pub struct OneshotReceiver<T> {
    slot: Rc<RefCell<Slot<T>>>,
}

pub fn oneshot<T>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        waker: None,
        sender_gone: false,
    }));
    (
        OneshotSender { slot: slot.clone() },
        OneshotReceiver { slot },
    )
}

impl<T> OneshotSender<T> {
    pub fn send(self, value: T) {
        self.slot.borrow_mut().value = Some(value);
        // Drop wakes the receiver.
    }
}

impl<T> Drop for OneshotSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = self.slot.borrow_mut();
            slot.sender_gone = true;
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for OneshotReceiver<T> {
    /// `None` if the sender was dropped without sending.
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = self.slot.borrow_mut();
        if let Some(value) = slot.value.take() {
            return Poll::Ready(Some(value));
        }
        if slot.sender_gone {
            return Poll::Ready(None);
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[derive(Default)]
struct LockState {
    next_ticket: u64,
    serving: u64,
    abandoned: BTreeSet<u64>,
    wakers: BTreeMap<u64, Waker>,
}

/// A FIFO async mutex without data: holders are served in the order they asked.
#[derive(Default)]
pub struct AsyncLock {
    state: Rc<RefCell<LockState>>,
}

pub struct LockGuard {
    state: Rc<RefCell<LockState>>,
}

pub struct Acquire {
    state: Rc<RefCell<LockState>>,
    ticket: u64,
    acquired: bool,
}

impl AsyncLock {
    pub fn acquire(&self) -> Acquire {
        let ticket = {
            let mut state = self.state.borrow_mut();
            state.next_ticket += 1;
            state.next_ticket - 1
        };
        Acquire {
            state: self.state.clone(),
            ticket,
            acquired: false,
        }
    }
}

impl Future for Acquire {
    type Output = LockGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard> {
        let mut state = self.state.borrow_mut();
        if state.serving == self.ticket {
            drop(state);
            self.acquired = true;
            return Poll::Ready(LockGuard {
                state: self.state.clone(),
            });
        }
        state.wakers.insert(self.ticket, cx.waker().clone());
        Poll::Pending
    }
}

fn pass_on(state: &Rc<RefCell<LockState>>) {
    let waker = {
        let mut state = state.borrow_mut();
        state.serving += 1;
        loop {
            let serving = state.serving;
            if !state.abandoned.remove(&serving) {
                break;
            }
            state.serving += 1;
        }
        let serving = state.serving;
        state.wakers.remove(&serving)
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if self.acquired {
            return;
        }
        let my_turn = {
            let mut state = self.state.borrow_mut();
            state.wakers.remove(&self.ticket);
            if state.serving == self.ticket {
                true
            } else {
                state.abandoned.insert(self.ticket);
                false
            }
        };
        if my_turn {
            pass_on(&self.state);
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        pass_on(&self.state);
    }
}
