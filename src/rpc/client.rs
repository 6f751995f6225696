//! The calling side: [`PeerLink`], one outbound connection to one peer broker, and
//! [`Peers`], the shard's registry of them.
//!
//! A link's background task connects (retrying with backoff while the peer is down), writes
//! the link's [`Outbox`] and completes calls from the `Response` frames it reads. When a
//! connection ends, everything tied to it ends with it: queued frames are dropped (Raft
//! retransmits) and pending calls fail with `Disconnected` (the caller decides whether a
//! retry is safe; the transport cannot know whether the peer acted on the request).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, ReadHalf};
use ringlet_shard::net::TcpStream;
use ringlet_shard::sync::Latch;
use ringlet_shard::task::local_channel::{self, LocalSender};
use ringlet_shard::task::{sleep, spawn_local, timeout, Task};

use crate::rpc::error::RpcError;
use crate::rpc::frame::{decode, frame_len, Frame, FrameKind};
use crate::rpc::outbox::Outbox;
use crate::rpc::server::READ_CHUNK_BYTES;

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A peer that is down but not refusing (packets dropped) would otherwise hold a connect
/// for the kernel's SYN retries, about two minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Above either bound the peer is not keeping up: drop Raft frames, refuse calls.
const QUEUE_BYTES_MAX: usize = 64 << 20;
const QUEUE_FRAMES_MAX: usize = 4096;

/// One outbound connection to one peer, shard-local. Dropping the last `Rc` (or
/// [`PeerLink::close`]) stops its task and closes the connection.
pub struct PeerLink {
    shared: Rc<Shared>,
    task: RefCell<Option<Task<()>>>,
}

/// What the link task and the callers share.
struct Shared {
    addr: Cell<SocketAddr>,
    max_frame_bytes: usize,
    outbox: Outbox,
    connected: Cell<bool>,
    closed: Cell<bool>,
    /// Set (and replaced by a fresh one) when the link connects or closes: wakes the calls
    /// that wait for a connection.
    up: RefCell<Latch>,
    /// Set (and replaced) by `set_addr`: makes the task drop its connection or its backoff.
    repoint: RefCell<Latch>,
    next_correlation: Cell<u64>,
    /// Calls sent on the current connection, by correlation id. Dropping a sender fails
    /// its call with `Disconnected`.
    pending: RefCell<HashMap<u64, LocalSender<Bytes>>>,
}

impl PeerLink {
    /// A link to `addr`; connects in the background. Must run on a shard.
    pub fn new(addr: SocketAddr, max_frame_bytes: usize) -> Rc<Self> {
        let shared = Rc::new(Shared {
            addr: Cell::new(addr),
            // Frame lengths are u32 on the wire.
            max_frame_bytes: max_frame_bytes.min(u32::MAX as usize),
            outbox: Outbox::default(),
            connected: Cell::new(false),
            closed: Cell::new(false),
            up: RefCell::new(Latch::new()),
            repoint: RefCell::new(Latch::new()),
            next_correlation: Cell::new(1),
            pending: RefCell::new(HashMap::new()),
        });
        let task = spawn_local(run_link(shared.clone()));
        Rc::new(Self {
            shared,
            task: RefCell::new(Some(task)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr.get()
    }

    pub fn is_connected(&self) -> bool {
        self.shared.connected.get()
    }

    /// Queues a Raft frame without waiting. `false`: dropped, because the link is down,
    /// its queue is over its bound, or the frame is over the size limit.
    pub fn send_raft(&self, payload: Bytes) -> bool {
        let shared = &self.shared;
        if !shared.connected.get()
            || shared.queue_full()
            || frame_len(payload.len()) > shared.max_frame_bytes
        {
            return false;
        }
        shared.outbox.push(&Frame::raft(payload));
        true
    }

    /// Sends a request and waits for its response. A call made while the link is down
    /// waits for it to connect, all within `timeout`.
    pub async fn call(&self, payload: Bytes, timeout_after: Duration) -> Result<Bytes, RpcError> {
        let peer = self.addr();
        let len_bytes = frame_len(payload.len());
        if len_bytes > self.shared.max_frame_bytes {
            return Err(RpcError::FrameTooLarge {
                len_bytes,
                max_bytes: self.shared.max_frame_bytes,
            });
        }
        timeout(timeout_after, self.call_untimed(payload))
            .await
            .unwrap_or(Err(RpcError::TimedOut {
                peer,
                after: timeout_after,
            }))
    }

    async fn call_untimed(&self, payload: Bytes) -> Result<Bytes, RpcError> {
        let shared = &self.shared;
        shared.wait_connected().await?;
        // From here to the push nothing awaits, so the connection cannot change under us.
        let peer = shared.addr.get();
        if shared.queue_full() {
            return Err(RpcError::QueueFull { peer });
        }
        let correlation = shared.next_correlation.get();
        shared.next_correlation.set(correlation.wrapping_add(1));
        let (tx, rx) = local_channel::bounded(1);
        shared.pending.borrow_mut().insert(correlation, tx);
        // A timed-out (dropped) call must not leave its entry behind.
        let _forget = Forget(shared, correlation);
        shared.outbox.push(&Frame::request(correlation, payload));
        rx.recv().await.ok_or(RpcError::Disconnected { peer })
    }

    /// Points the link at a new address; the current connection (and its pending calls)
    /// is dropped and the link connects to `addr` at once.
    pub fn set_addr(&self, addr: SocketAddr) {
        if self.shared.addr.replace(addr) != addr {
            self.shared.repoint.replace(Latch::new()).set();
        }
    }

    /// Stops the link: its task and connection end, pending and waiting calls fail.
    pub fn close(&self) {
        // Dropping the task cancels it; its connection is dropped with it.
        drop(self.task.borrow_mut().take());
        self.shared.closed.set(true);
        self.shared.on_disconnected();
        self.shared.up.replace(Latch::new()).set();
    }
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.close();
    }
}

/// Removes a call's pending entry when the call ends, however it ends.
struct Forget<'a>(&'a Shared, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.pending.borrow_mut().remove(&self.1);
    }
}

impl Shared {
    fn queue_full(&self) -> bool {
        self.outbox.queued_bytes() >= QUEUE_BYTES_MAX
            || self.outbox.queued_frames() >= QUEUE_FRAMES_MAX
    }

    async fn wait_connected(&self) -> Result<(), RpcError> {
        loop {
            if self.closed.get() {
                return Err(RpcError::Closed {
                    peer: self.addr.get(),
                });
            }
            if self.connected.get() {
                return Ok(());
            }
            let up = self.up.borrow().clone();
            up.wait().await;
        }
    }

    fn on_connected(&self) {
        self.connected.set(true);
        self.up.replace(Latch::new()).set();
    }

    /// Ends everything tied to the connection that just ended.
    fn on_disconnected(&self) {
        self.connected.set(false);
        self.outbox.clear();
        // Take the map first: a woken call's `Forget` borrows it again.
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        drop(pending);
    }

    /// Completes the call `correlation` (absent: it timed out, nothing to do).
    fn complete(&self, correlation: u64, payload: Bytes) {
        let sender = self.pending.borrow_mut().remove(&correlation);
        match sender {
            Some(sender) => {
                let _ = sender.try_send(payload);
            }
            None => tracing::trace!(peer = %self.addr.get(), correlation, "late rpc response"),
        }
    }
}

/// The link's life: connect, serve the connection until it ends or is repointed, back off,
/// again. Ends only when the link's task is dropped.
async fn run_link(shared: Rc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let repoint = shared.repoint.borrow().clone();
        let addr = shared.addr.get();
        let attempt = async {
            let delay = match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).await {
                Ok(stream) => {
                    backoff = BACKOFF_MIN;
                    let err = serve(&shared, stream, addr).await;
                    shared.on_disconnected();
                    log_end(addr, &err);
                    // A peer that accepts and closes at once must not make us spin.
                    BACKOFF_MIN
                }
                Err(err) => {
                    tracing::debug!(peer = %addr, error = %err, "rpc connect failed");
                    let delay = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    delay
                }
            };
            sleep(delay).await;
        };
        // A repoint cuts the connection or the backoff short.
        future::or(attempt, repoint.wait()).await;
        // Cut mid-connection: the connection was dropped without its cleanup.
        shared.on_disconnected();
    }
}

fn log_end(peer: SocketAddr, err: &RpcError) {
    if err.is_protocol_violation() {
        tracing::warn!(%peer, reason = %err, "closing rpc link");
    } else {
        tracing::debug!(%peer, reason = %err, "rpc link lost");
    }
}

/// Serves one connection until it fails; returns why.
async fn serve(shared: &Shared, stream: TcpStream, peer: SocketAddr) -> RpcError {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %err, "set_nodelay failed");
    }
    tracing::debug!(%peer, "rpc link connected");
    let (reader, writer) = futures_lite::io::split(stream);
    shared.on_connected();
    future::or(
        read_responses(shared, reader),
        shared.outbox.write_to(writer),
    )
    .await
}

async fn read_responses(shared: &Shared, mut reader: ReadHalf<TcpStream>) -> RpcError {
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        loop {
            match decode(&mut buf, shared.max_frame_bytes) {
                Ok(Some(frame)) if frame.kind == FrameKind::Response => {
                    shared.complete(frame.correlation, frame.payload);
                }
                Ok(Some(frame)) => {
                    return RpcError::BadFrame(format!("{:?} frame sent to a client", frame.kind))
                }
                Ok(None) => break,
                Err(err) => return err,
            }
        }
        match reader.read(&mut chunk).await {
            Ok(0) => {
                return RpcError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(err) => return RpcError::Io(err),
        }
    }
}

/// The shard's links by node id: one link per peer per shard.
pub struct Peers {
    max_frame_bytes: usize,
    links: RefCell<HashMap<u64, Rc<PeerLink>>>,
}

impl Peers {
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes,
            links: RefCell::new(HashMap::new()),
        }
    }

    /// The link to `node`, created on first use and repointed when its address changed.
    pub fn link(&self, node: u64, addr: SocketAddr) -> Rc<PeerLink> {
        let mut links = self.links.borrow_mut();
        let link = links
            .entry(node)
            .or_insert_with(|| PeerLink::new(addr, self.max_frame_bytes));
        link.set_addr(addr);
        link.clone()
    }

    pub fn get(&self, node: u64) -> Option<Rc<PeerLink>> {
        self.links.borrow().get(&node).cloned()
    }

    /// Forgets `node` and closes its link (even if someone still holds it: the node left).
    pub fn remove(&self, node: u64) -> bool {
        let Some(link) = self.links.borrow_mut().remove(&node) else {
            return false;
        };
        link.close();
        true
    }
}
