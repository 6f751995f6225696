//! The accepting side: one local task per inbound broker connection.
//!
//! Per connection the reader hands `Raft` frames to the handler one at a time in arrival
//! order (Raft copes with reordering, but in-order delivery avoids needless rejections and
//! retransmits), and starts a task per `Request`, so a slow call (a snapshot, a controller
//! write) does not hold up the heartbeats behind it. Answers are written in completion order
//! through the connection's [`Outbox`]; the caller matches them by correlation id.
//!
//! Dropping the server task closes its listener and every connection it accepted (they
//! watch a latch the accept loop sets when it is dropped), so a stopped server does not
//! leave half-alive links behind.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, ReadHalf};
use ringlet_shard::net::{accept, TcpListener, TcpStream};
use ringlet_shard::sync::Latch;
use ringlet_shard::task::{sleep, spawn_local, Task};

use crate::rpc::error::RpcError;
use crate::rpc::frame::{decode, frame_len, Frame, FrameKind};
use crate::rpc::outbox::Outbox;

/// What a handler returns: `Some(payload)` answers a `Request`; `None` sends nothing (and
/// is what Raft frames return, their result being ignored).
pub type HandlerFuture = Pin<Box<dyn Future<Output = Option<Bytes>>>>;

/// Serves every frame of every connection of one server.
pub type Handler = Rc<dyn Fn(Frame) -> HandlerFuture>;

pub(crate) const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Requests one connection may have running at once; the reader stops reading above it,
/// which pushes back on the peer through TCP instead of growing without bound.
const MAX_REQUESTS_IN_FLIGHT: usize = 1024;

/// A failing `accept` (EMFILE, ENOBUFS) fails again at once: pause instead of spinning.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Serves `listener` until the returned task is dropped or cancelled. The caller binds
/// (`ringlet_shard::net::bind`) so that a bad address fails start-up, not a task.
pub fn spawn_server(listener: TcpListener, handler: Handler, max_frame_bytes: usize) -> Task<()> {
    spawn_local(async move {
        let stopped = StopOnDrop(Latch::new());
        loop {
            let stream = match accept(&listener).await {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "rpc accept failed");
                    sleep(ACCEPT_RETRY_DELAY).await;
                    continue;
                }
            };
            let conn = serve_connection(stream, handler.clone(), max_frame_bytes);
            let stop = stopped.0.clone();
            spawn_local(async move {
                future::or(conn, stop.wait()).await;
            })
            .detach();
        }
    })
}

/// Sets its latch when dropped: the accept loop's way of ending its connections.
struct StopOnDrop(Latch);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

async fn serve_connection(stream: TcpStream, handler: Handler, max_frame_bytes: usize) {
    let peer = match stream.peer_addr() {
        Ok(peer) => peer,
        Err(err) => {
            tracing::debug!(error = %err, "rpc connection gone before it was served");
            return;
        }
    };
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %err, "set_nodelay failed");
    }
    tracing::debug!(%peer, "rpc connection opened");
    let (reader, writer) = futures_lite::io::split(stream);
    let conn = Rc::new(Connection {
        peer,
        // Frame lengths are u32 on the wire.
        max_frame_bytes: max_frame_bytes.min(u32::MAX as usize),
        outbox: Outbox::default(),
        handler,
        in_flight: InFlight::default(),
    });
    // Request tasks outlive neither the connection nor the server: they watch this latch.
    let closed = StopOnDrop(Latch::new());
    let end = future::or(read_loop(&conn, reader, &closed.0), async {
        Some(conn.outbox.write_to(writer).await)
    })
    .await;
    match end {
        None => tracing::debug!(%peer, "rpc connection closed by the peer"),
        Some(err) if err.is_protocol_violation() => {
            tracing::warn!(%peer, reason = %err, "closing rpc connection");
        }
        Some(err) => tracing::debug!(%peer, reason = %err, "rpc connection failed"),
    }
}

struct Connection {
    peer: SocketAddr,
    max_frame_bytes: usize,
    outbox: Outbox,
    handler: Handler,
    in_flight: InFlight,
}

/// Reads until EOF (`None`) or an error.
async fn read_loop(
    conn: &Rc<Connection>,
    mut reader: ReadHalf<TcpStream>,
    closed: &Latch,
) -> Option<RpcError> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        loop {
            let frame = match decode(&mut buf, conn.max_frame_bytes) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => return Some(err),
            };
            match frame.kind {
                FrameKind::Raft => {
                    let _ = (conn.handler)(frame).await;
                }
                FrameKind::Request => {
                    conn.in_flight.wait_below(MAX_REQUESTS_IN_FLIGHT).await;
                    start_request(conn, frame, closed.clone());
                }
                FrameKind::Response => {
                    return Some(RpcError::BadFrame("response frame sent to a server".into()));
                }
            }
        }
        match reader.read(&mut chunk).await {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(err) => return Some(RpcError::Io(err)),
        }
    }
}

fn start_request(conn: &Rc<Connection>, frame: Frame, closed: Latch) {
    let correlation = frame.correlation;
    let answer = (conn.handler)(frame);
    let slot = Slot::enter(conn);
    spawn_local(async move {
        let answered = future::or(answer, async {
            closed.wait().await;
            None
        });
        if let Some(payload) = answered.await {
            if !closed.is_set() {
                respond(&slot.0, correlation, payload);
            }
        }
    })
    .detach();
}

/// Queues an answer. One the peer would refuse (over the frame limit, which both sides
/// share) is dropped instead: sent, it would close the link and fail every other call.
fn respond(conn: &Connection, correlation: u64, payload: Bytes) {
    let len_bytes = frame_len(payload.len());
    if len_bytes > conn.max_frame_bytes {
        tracing::warn!(
            peer = %conn.peer,
            correlation,
            len_bytes,
            max_bytes = conn.max_frame_bytes,
            "rpc response over the frame limit dropped"
        );
        return;
    }
    conn.outbox.push(&Frame::response(correlation, payload));
}

/// Counts running requests; the reader waits for a free slot.
#[derive(Default)]
struct InFlight {
    count: Cell<usize>,
    reader: RefCell<Option<Waker>>,
}

impl InFlight {
    async fn wait_below(&self, max: usize) {
        poll_fn(|cx| {
            if self.count.get() < max {
                return Poll::Ready(());
            }
            *self.reader.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

/// One running request of a connection; frees its slot when dropped.
struct Slot(Rc<Connection>);

impl Slot {
    fn enter(conn: &Rc<Connection>) -> Self {
        let in_flight = &conn.in_flight;
        in_flight.count.set(in_flight.count.get() + 1);
        Self(conn.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let in_flight = &self.0.in_flight;
        in_flight.count.set(in_flight.count.get() - 1);
        if let Some(waker) = in_flight.reader.borrow_mut().take() {
            waker.wake();
        }
    }
}
