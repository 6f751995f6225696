//! One client connection, served wholly by the shard that accepted it.
//!
//! Two tasks: the reader decodes frames and starts a task per request at once (so a client
//! can pipeline: request N+1 is decoded and running while request N still waits for an
//! fsync); the writer takes those tasks in request order and writes each response when it
//! is ready, so responses leave strictly in request order as Kafka requires. Produce requests
//! also take a turn in [`ProduceOrder`], so their batches reach the logs in request order.
//! A bounded
//! channel between them caps the requests in flight (`max_in_flight_per_connection`).
//! A request without a response (Produce acks=0) is skipped in the order.
//!
//! Closing: a frame over `max_request_bytes`, an undecodable or unsupported request (other
//! than ApiVersions, which gets Kafka's v0 fallback answer), a handler failure, or EOF. The
//! reason is logged. On shutdown the reader stops taking new requests; what was started is
//! still answered.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use kafka_protocol::messages::ApiKey;
use ringlet_protocol::{api_versions_fallback, decode_frame, decode_request, DecodeError};
use ringlet_shard::net::TcpStream;
use ringlet_shard::sync::Latch;
use ringlet_shard::task::local_channel::{self, LocalReceiver, LocalSender};
use ringlet_shard::task::{spawn_local, Task};

use crate::handlers::registry;
use crate::server::dispatch::serve_request;
use crate::server::produce_order::ProduceOrder;
use crate::server::RequestContext;
use crate::state::ShardState;

const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A request in the response order: running, or answered already.
enum InFlight {
    Running(Task<Result<Option<Bytes>, String>>),
    Answered(Bytes),
}

/// Why the reader stopped.
enum ReadEnd {
    /// Client closed its side, or the broker is stopping: answer what was started.
    Clean(&'static str),
    /// Bad input or a failed handler: close now.
    Close(String),
}

/// Serves `stream` until it closes.
pub async fn serve(state: Rc<ShardState>, stream: TcpStream, peer: SocketAddr) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %err, "set_nodelay failed");
    }
    tracing::debug!(%peer, shard = state.shard_id, "connection opened");
    let (reader, writer) = futures_lite::io::split(stream);
    let (in_flight_tx, in_flight_rx) =
        local_channel::bounded(state.config.max_in_flight_per_connection);
    let writer_failed = Latch::new();
    let writer_task = spawn_local(write_loop(
        writer,
        in_flight_rx,
        peer,
        writer_failed.clone(),
    ));
    let end = read_loop(&state, reader, in_flight_tx, peer, &writer_failed).await;
    if let ReadEnd::Close(reason) = &end {
        tracing::warn!(%peer, %reason, "closing connection");
        // Unanswered requests are dropped (cancelled) with the writer.
        let _ = writer_task.cancel().await;
        return;
    }
    writer_task.await;
    if let ReadEnd::Clean(why) = end {
        tracing::debug!(%peer, why, "connection closed");
    }
}

async fn read_loop(
    state: &Rc<ShardState>,
    mut reader: ReadHalf<TcpStream>,
    in_flight: LocalSender<InFlight>,
    peer: SocketAddr,
    writer_failed: &Latch,
) -> ReadEnd {
    let max_frame_bytes = state.config.max_request_bytes;
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    let produce_order = ProduceOrder::new();
    loop {
        loop {
            let frame = match decode_frame(&mut buf, max_frame_bytes) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => return ReadEnd::Close(format!("bad frame: {err}")),
            };
            let item = match start_request(state, frame, peer, &produce_order) {
                Ok(item) => item,
                Err(reason) => return ReadEnd::Close(reason),
            };
            if in_flight.send(item).await.is_err() {
                return ReadEnd::Close("response writer stopped".into());
            }
        }
        let read = future::or(async { Some(reader.read(&mut chunk).await) }, async {
            future::or(state.server.stopping.wait(), writer_failed.wait()).await;
            None
        })
        .await;
        match read {
            None if writer_failed.is_set() => return ReadEnd::Close("write failed".into()),
            None => return ReadEnd::Clean("broker shutting down"),
            Some(Ok(0)) => return ReadEnd::Clean("client closed the connection"),
            Some(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Some(Err(err)) => return ReadEnd::Close(format!("read failed: {err}")),
        }
    }
}

/// Decodes a frame and starts serving it. `Err`: the connection must close.
fn start_request(
    state: &Rc<ShardState>,
    frame: Bytes,
    peer: SocketAddr,
    produce_order: &ProduceOrder,
) -> Result<InFlight, String> {
    // kafka-protocol's decoders run under a catch_unwind (`ringlet_protocol::request`): a
    // panic there refuses the frame, one of the two panics the process survives.
    let decoded =
        crate::panic_policy::contained_sync(|| decode_request(frame, registry::supported));
    match decoded {
        Ok(request) => {
            // Taken here, in the order frames arrive, before the request's task starts.
            let produce_turn =
                (request.api_key == ApiKey::Produce).then(|| produce_order.next_turn());
            let ctx = RequestContext {
                state: state.clone(),
                api_version: request.api_version,
                correlation_id: request.correlation_id,
                client_id: request.header.client_id.as_ref().map(|id| id.to_string()),
                peer,
                produce_turn,
            };
            let api_key = request.api_key;
            Ok(InFlight::Running(spawn_local(serve_request(
                ctx,
                api_key,
                request.body,
            ))))
        }
        // Kafka answers an ApiVersions it cannot parse at that version with a v0 response
        // listing what it supports, so the client can pick a version both know (KIP-511).
        Err(DecodeError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            correlation_id,
            ..
        }) => Ok(InFlight::Answered(api_versions_fallback(
            correlation_id,
            &registry::ranges(),
        ))),
        Err(err) => Err(err.to_string()),
    }
}

async fn write_loop(
    mut writer: WriteHalf<TcpStream>,
    in_flight: LocalReceiver<InFlight>,
    peer: SocketAddr,
    failed: Latch,
) {
    while let Some(item) = in_flight.recv().await {
        let bytes = match item {
            InFlight::Answered(bytes) => bytes,
            InFlight::Running(task) => match task.await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(reason) => {
                    tracing::warn!(%peer, %reason, "closing connection");
                    failed.set();
                    return;
                }
            },
        };
        if let Err(err) = writer.write_all(&bytes).await {
            tracing::debug!(%peer, error = %err, "write failed");
            failed.set();
            return;
        }
    }
    if let Err(err) = writer.close().await {
        tracing::debug!(%peer, error = %err, "close failed");
    }
}
