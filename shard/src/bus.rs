//! The cross-core bus: typed requests with one-shot replies between shards.
//!
//! Every shard has one bounded inbox (a `flume` MPMC channel used as MPSC). A request is a
//! `Send` closure; the target shard's pump spawns the future the closure builds as a local
//! task, so a slow call (a fetch long-poll) never blocks the calls queued behind it. The reply
//! travels back on a one-shot (`flume::bounded(1)`).
//!
//! Why flume and not glommio's `shared_channel`: glommio's channels are single-producer and
//! must be connected from inside an executor, which would need N*N connected pairs and would
//! exclude the plain `main` thread that drives shutdown. flume is already in the dependency
//! tree (glommio uses it), is runtime-agnostic, offers both async and blocking ends, and
//! glommio's wakers accept wake-ups from foreign threads.
//!
//! Back-pressure: `invoke_on` waits while the target inbox is full. The pump itself never
//! sends on the bus, so a full inbox cannot deadlock the pumps.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use crate::table::ShardId;

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;
type Job<S> = Box<dyn FnOnce(Rc<S>) -> LocalFuture + Send>;

/// What travels in a shard's inbox.
pub(crate) enum Envelope<S> {
    Call(Job<S>),
    /// Ends the pump (and with it the shard) after the calls queued before it were started.
    Stop,
}

/// Why a cross-shard call did not produce a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    #[error("no shard {shard} (there are {shard_count})")]
    NoSuchShard { shard: ShardId, shard_count: usize },
    #[error("shard {0} is stopped or not started")]
    ShardStopped(ShardId),
    #[error("shard {0} dropped the call before replying (shutdown or panic)")]
    Dropped(ShardId),
}

/// The senders of every shard's inbox. `Send + Clone`: shared by all shards and by the
/// threads outside the runtime.
pub(crate) struct Inboxes<S> {
    senders: Arc<[flume::Sender<Envelope<S>>]>,
}

impl<S> Clone for Inboxes<S> {
    fn clone(&self) -> Self {
        Self {
            senders: self.senders.clone(),
        }
    }
}

impl<S: 'static> Inboxes<S> {
    pub(crate) fn new(
        shard_count: usize,
        capacity: usize,
    ) -> (Self, Vec<flume::Receiver<Envelope<S>>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..shard_count).map(|_| flume::bounded(capacity)).unzip();
        let inboxes = Self {
            senders: senders.into(),
        };
        (inboxes, receivers)
    }

    fn count(&self) -> usize {
        self.senders.len()
    }

    fn sender(&self, shard: ShardId) -> Result<&flume::Sender<Envelope<S>>, BusError> {
        self.senders.get(shard).ok_or(BusError::NoSuchShard {
            shard,
            shard_count: self.senders.len(),
        })
    }

    /// Packs `f` into a job whose result goes to the returned one-shot receiver.
    fn job<F, Fut, R>(f: F) -> (Job<S>, flume::Receiver<R>)
    where
        F: FnOnce(Rc<S>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let (reply_tx, reply_rx) = flume::bounded(1);
        let job: Job<S> = Box::new(move |state: Rc<S>| {
            Box::pin(async move {
                let reply = f(state).await;
                // The caller may have gone away (cancelled); nothing to do then.
                let _ = reply_tx.send(reply);
            }) as LocalFuture
        });
        (job, reply_rx)
    }

    async fn call<F, Fut, R>(&self, shard: ShardId, f: F) -> Result<R, BusError>
    where
        F: FnOnce(Rc<S>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let sender = self.sender(shard)?;
        let (job, reply_rx) = Self::job(f);
        sender
            .send_async(Envelope::Call(job))
            .await
            .map_err(|_| BusError::ShardStopped(shard))?;
        reply_rx
            .recv_async()
            .await
            .map_err(|_| BusError::Dropped(shard))
    }

    fn call_blocking<F, Fut, R>(&self, shard: ShardId, f: F) -> Result<R, BusError>
    where
        F: FnOnce(Rc<S>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let sender = self.sender(shard)?;
        let (job, reply_rx) = Self::job(f);
        sender
            .send(Envelope::Call(job))
            .map_err(|_| BusError::ShardStopped(shard))?;
        reply_rx.recv().map_err(|_| BusError::Dropped(shard))
    }

    pub(crate) fn stop(&self, shard: ShardId) -> bool {
        self.senders
            .get(shard)
            .is_some_and(|sender| sender.send(Envelope::Stop).is_ok())
    }
}

/// One shard's end of the bus. Lives in the shard-local state; not `Send`. Cloning is cheap
/// and every clone addresses the same shard-local state.
pub struct Bus<S> {
    shard_id: ShardId,
    inboxes: Inboxes<S>,
    /// The local state, for calls addressed to this very shard (run inline, no hop).
    /// Weak because the state owns the bus; shared by the clones of this shard's bus.
    local: Rc<RefCell<Weak<S>>>,
}

impl<S> Clone for Bus<S> {
    fn clone(&self) -> Self {
        Self {
            shard_id: self.shard_id,
            inboxes: self.inboxes.clone(),
            local: self.local.clone(),
        }
    }
}

impl<S: 'static> Bus<S> {
    pub(crate) fn new(shard_id: ShardId, inboxes: Inboxes<S>) -> Self {
        Self {
            shard_id,
            inboxes,
            local: Rc::new(RefCell::new(Weak::new())),
        }
    }

    pub(crate) fn attach(&self, state: &Rc<S>) {
        *self.local.borrow_mut() = Rc::downgrade(state);
    }

    /// This shard's id.
    pub fn shard_id(&self) -> ShardId {
        self.shard_id
    }

    /// How many shards the runtime runs.
    pub fn shard_count(&self) -> usize {
        self.inboxes.count()
    }

    /// Runs `f` against the state of `shard` and returns its result. A call to the current
    /// shard runs inline; any other goes through that shard's bounded inbox (one hop).
    pub async fn invoke_on<F, Fut, R>(&self, shard: ShardId, f: F) -> Result<R, BusError>
    where
        F: FnOnce(Rc<S>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        if shard == self.shard_id {
            let state = self.local_state()?;
            // Inline, but shard work all the same: its panics are never caught.
            return Ok(crate::panic_mark::uncontained(f(state)).await);
        }
        self.inboxes.call(shard, f).await
    }

    /// Runs `f` on every shard concurrently; results in shard order. Fails with the first
    /// shard (in shard order) that did not reply.
    pub async fn invoke_on_all<F, Fut, R>(&self, f: F) -> Result<Vec<R>, BusError>
    where
        F: FnOnce(Rc<S>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let mut pending = Vec::with_capacity(self.shard_count());
        for shard in 0..self.shard_count() {
            let f = f.clone();
            if shard == self.shard_id {
                let state = self.local_state()?;
                pending.push(Pending::Local(crate::task::spawn_local(f(state))));
            } else {
                let (job, reply_rx) = Inboxes::<S>::job(f);
                self.inboxes
                    .sender(shard)?
                    .send_async(Envelope::Call(job))
                    .await
                    .map_err(|_| BusError::ShardStopped(shard))?;
                pending.push(Pending::Remote(shard, reply_rx));
            }
        }
        let mut results = Vec::with_capacity(pending.len());
        for waiting in pending {
            results.push(match waiting {
                Pending::Local(task) => task.await,
                Pending::Remote(shard, reply_rx) => reply_rx
                    .recv_async()
                    .await
                    .map_err(|_| BusError::Dropped(shard))?,
            });
        }
        Ok(results)
    }

    /// A handle usable from any thread (e.g. to hand to a helper thread).
    pub fn handle(&self) -> RuntimeHandle<S> {
        RuntimeHandle {
            inboxes: self.inboxes.clone(),
        }
    }

    fn local_state(&self) -> Result<Rc<S>, BusError> {
        self.local
            .borrow()
            .upgrade()
            .ok_or(BusError::ShardStopped(self.shard_id))
    }
}

enum Pending<R> {
    Local(crate::task::Task<R>),
    Remote(ShardId, flume::Receiver<R>),
}

/// Calls into the shards from a thread that is not a shard (blocking).
pub struct RuntimeHandle<S> {
    pub(crate) inboxes: Inboxes<S>,
}

impl<S> Clone for RuntimeHandle<S> {
    fn clone(&self) -> Self {
        Self {
            inboxes: self.inboxes.clone(),
        }
    }
}

impl<S: 'static> RuntimeHandle<S> {
    /// How many shards the runtime runs.
    pub fn shard_count(&self) -> usize {
        self.inboxes.count()
    }

    /// Runs `f` on `shard` and blocks the calling thread until it replies. Must not be
    /// called from a shard thread (it would block that shard's executor).
    pub fn invoke_on_blocking<F, Fut, R>(&self, shard: ShardId, f: F) -> Result<R, BusError>
    where
        F: FnOnce(Rc<S>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        self.inboxes.call_blocking(shard, f)
    }

    /// Runs `f` on all shards concurrently and blocks until every one replied; results in
    /// shard order.
    pub fn invoke_on_all_blocking<F, Fut, R>(&self, f: F) -> Vec<Result<R, BusError>>
    where
        F: FnOnce(Rc<S>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let mut pending = Vec::with_capacity(self.shard_count());
        for shard in 0..self.shard_count() {
            let (job, reply_rx) = Inboxes::<S>::job(f.clone());
            let sent = self
                .inboxes
                .sender(shard)
                .and_then(|s| {
                    s.send(Envelope::Call(job))
                        .map_err(|_| BusError::ShardStopped(shard))
                })
                .map(|()| reply_rx);
            pending.push((shard, sent));
        }
        pending
            .into_iter()
            .map(|(shard, sent)| sent?.recv().map_err(|_| BusError::Dropped(shard)))
            .collect()
    }
}

/// Runs a shard's inbox until `Stop` (or until every sender is gone).
pub(crate) async fn pump<S: 'static>(inbox: flume::Receiver<Envelope<S>>, state: Rc<S>) {
    while let Ok(envelope) = inbox.recv_async().await {
        match envelope {
            Envelope::Call(job) => crate::task::spawn_local(job(state.clone())).detach(),
            Envelope::Stop => break,
        }
    }
}
