//! The transport over real sockets on a real one-shard runtime (127.0.0.1).
//!
//! Each test body runs on the shard and returns `Err(reason)` instead of panicking there, so
//! a failure is reported by the test thread, and a hang is cut off by [`TEST_LIMIT`].

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use ringlet_shard::net::{bind, TcpStream};
use ringlet_shard::runtime::{Runtime, RuntimeConfig};
use ringlet_shard::task::{sleep, spawn_local, timeout, Task};

use super::*;

const MAX_FRAME_BYTES: usize = 1 << 20;
const TEST_LIMIT: Duration = Duration::from_secs(30);
/// Slack for "within its timeout" on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(250);
/// First payload byte of a request that gets no answer.
const SILENT: u8 = 255;

type TestResult = Result<(), String>;

fn on_shard<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = TestResult> + 'static,
{
    ringlet_shard::memlock::raise_memlock_limit(1).expect("memlock limit");
    let config = RuntimeConfig {
        shards: 1,
        inbox_capacity: 4,
        thread_name: "rpc-test".into(),
        io_memory_bytes: 256 * 1024,
    };
    let runtime =
        Runtime::start(config, |_| async { Ok::<_, String>(Rc::new(())) }).expect("runtime starts");
    let outcome = runtime
        .handle()
        .invoke_on_blocking(0, move |_: Rc<()>| async move {
            timeout(TEST_LIMIT, test())
                .await
                .unwrap_or(Err("test hung".into()))
        });
    runtime.stop().expect("runtime stops");
    if let Err(reason) = outcome.expect("test ran") {
        panic!("{reason}");
    }
}

fn ensure(ok: bool, what: impl std::fmt::Display) -> TestResult {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

/// A request payload: the server waits `delay_ms` (`SILENT`: never answers), then echoes.
fn request(delay_ms: u8, tag: &str) -> Bytes {
    let mut payload = vec![delay_ms];
    payload.extend_from_slice(tag.as_bytes());
    payload.into()
}

/// Records Raft payloads in `raft_log`; answers requests with their tag.
fn test_handler(raft_log: Rc<RefCell<Vec<Bytes>>>) -> Handler {
    Rc::new(move |frame: Frame| {
        let raft_log = raft_log.clone();
        Box::pin(async move {
            if frame.kind == FrameKind::Raft {
                raft_log.borrow_mut().push(frame.payload);
                return None;
            }
            let delay_ms = frame.payload.first().copied().unwrap_or(0);
            if delay_ms == SILENT {
                return None;
            }
            sleep(Duration::from_millis(u64::from(delay_ms))).await;
            Some(frame.payload.slice(1..))
        })
    })
}

fn start_server(addr: SocketAddr, raft_log: Rc<RefCell<Vec<Bytes>>>) -> Result<Task<()>, String> {
    let listener = bind(addr).map_err(|err| format!("bind {addr}: {err}"))?;
    Ok(spawn_server(
        listener,
        test_handler(raft_log),
        MAX_FRAME_BYTES,
    ))
}

/// A server on a free port of 127.0.0.1.
fn start_server_anywhere(
    raft_log: Rc<RefCell<Vec<Bytes>>>,
) -> Result<(Task<()>, SocketAddr), String> {
    let listener = bind(loopback(0)).map_err(|err| err.to_string())?;
    let addr = listener.local_addr().map_err(|err| err.to_string())?;
    Ok((
        spawn_server(listener, test_handler(raft_log), MAX_FRAME_BYTES),
        addr,
    ))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A port nothing listens on (bound and released at once).
fn dead_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind(loopback(0)).expect("probe bind");
    probe.local_addr().expect("probe addr")
}

async fn expect_answer(link: &PeerLink, payload: Bytes, tag: &str) -> TestResult {
    match link.call(payload, Duration::from_secs(5)).await {
        Ok(answer) => ensure(answer == tag.as_bytes(), format!("{tag}: got {answer:?}")),
        Err(err) => Err(format!("call {tag} failed: {err}")),
    }
}

#[test]
fn calls_get_their_own_answers_and_raft_frames_keep_their_order() {
    on_shard(|| async {
        let raft_log = Rc::new(RefCell::new(Vec::new()));
        let (_server, addr) = start_server_anywhere(raft_log.clone())?;
        let link = PeerLink::new(addr, MAX_FRAME_BYTES);
        ensure(
            !link.send_raft(Bytes::new()),
            "raft frame accepted while not connected",
        )?;
        expect_answer(&link, request(0, "hello"), "hello").await?;

        // Later calls answer first (shorter delays): each still gets its own answer.
        let calls: Vec<_> = (0..8u8)
            .map(|i| {
                let link = link.clone();
                spawn_local(async move {
                    let tag = format!("call-{i}");
                    expect_answer(&link, request(80 - i * 10, &tag), &tag).await
                })
            })
            .collect();
        for call in calls {
            call.await?;
        }

        for i in 0..500u32 {
            ensure(link.send_raft(i.to_be_bytes().to_vec().into()), "send_raft")?;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while raft_log.borrow().len() < 500 && Instant::now() < deadline {
            sleep(Duration::from_millis(5)).await;
        }
        let expected: Vec<Bytes> = (0..500u32)
            .map(|i| i.to_be_bytes().to_vec().into())
            .collect();
        ensure(
            *raft_log.borrow() == expected,
            "raft frames lost or reordered",
        )?;

        let started = Instant::now();
        let limit = Duration::from_millis(200);
        match link.call(request(SILENT, "silent"), limit).await {
            Err(RpcError::TimedOut { .. }) => {}
            other => return Err(format!("unanswered call: {other:?}")),
        }
        ensure(started.elapsed() < limit + SLACK, "timeout overran")?;
        match link
            .call(Bytes::from(vec![0; MAX_FRAME_BYTES]), limit)
            .await
        {
            Err(RpcError::FrameTooLarge { .. }) => Ok(()),
            other => Err(format!("oversized call: {other:?}")),
        }
    });
}

#[test]
fn a_call_to_a_dead_port_ends_within_its_timeout() {
    on_shard(|| async {
        let link = PeerLink::new(dead_port(), MAX_FRAME_BYTES);
        let limit = Duration::from_millis(300);
        let started = Instant::now();
        let outcome = link.call(request(0, "anyone"), limit).await;
        ensure(
            matches!(
                outcome,
                Err(RpcError::TimedOut { .. } | RpcError::Disconnected { .. })
            ),
            format!("call to a dead port: {outcome:?}"),
        )?;
        ensure(started.elapsed() < limit + SLACK, "timeout overran")?;
        ensure(!link.is_connected(), "connected to nothing")?;
        ensure(
            !link.send_raft(Bytes::new()),
            "raft frame accepted while down",
        )
    });
}

#[test]
fn the_link_reconnects_after_the_server_restarts() {
    on_shard(|| async {
        let raft_log = Rc::new(RefCell::new(Vec::new()));
        let (server, addr) = start_server_anywhere(raft_log.clone())?;
        let link = PeerLink::new(addr, MAX_FRAME_BYTES);
        expect_answer(&link, request(0, "before"), "before").await?;

        // A call in flight when the server goes away fails with Disconnected.
        let in_flight = {
            let link = link.clone();
            spawn_local(async move {
                link.call(request(200, "lost"), Duration::from_secs(5))
                    .await
            })
        };
        sleep(Duration::from_millis(50)).await;
        let _ = server.cancel().await;
        match in_flight.await {
            Err(RpcError::Disconnected { .. }) => {}
            other => return Err(format!("call pending across the stop: {other:?}")),
        }
        let down = link
            .call(request(0, "down"), Duration::from_millis(200))
            .await;
        ensure(
            down.is_err(),
            format!("call with the server down: {down:?}"),
        )?;

        let _server = start_server(addr, raft_log)?;
        // The link is backing off (up to 1 s): the call waits for it to reconnect.
        expect_answer(&link, request(0, "after"), "after").await
    });
}

#[test]
fn a_bad_frame_closes_only_its_connection() {
    on_shard(|| async {
        let (_server, addr) = start_server_anywhere(Rc::new(RefCell::new(Vec::new())))?;
        let mut raw = TcpStream::connect(addr)
            .await
            .map_err(|err| err.to_string())?;
        let mut bad = frame::encode(&Frame::raft(Bytes::from_static(b"x"))).to_vec();
        bad[frame::LENGTH_BYTES] = 9;
        raw.write_all(&bad).await.map_err(|err| err.to_string())?;
        let mut buf = [0u8; 16];
        let read = timeout(Duration::from_secs(5), raw.read(&mut buf)).await;
        ensure(
            matches!(read, Some(Ok(0)) | Some(Err(_))),
            format!("server kept a connection with a bad frame: {read:?}"),
        )?;
        let link = PeerLink::new(addr, MAX_FRAME_BYTES);
        expect_answer(&link, request(0, "still serving"), "still serving").await
    });
}

#[test]
fn peers_reuse_repoint_and_remove_links() {
    on_shard(|| async {
        let (_server, addr) = start_server_anywhere(Rc::new(RefCell::new(Vec::new())))?;
        let peers = Peers::new(MAX_FRAME_BYTES);
        let first = peers.link(1, dead_port());
        ensure(
            Rc::ptr_eq(&first, &peers.link(1, first.addr())),
            "link not reused",
        )?;
        let repointed = peers.link(1, addr);
        ensure(Rc::ptr_eq(&first, &repointed), "repoint made a new link")?;
        ensure(first.addr() == addr, "address not updated")?;
        expect_answer(&first, request(0, "repointed"), "repointed").await?;

        ensure(peers.remove(1), "remove found nothing")?;
        ensure(
            peers.get(1).is_none() && !peers.remove(1),
            "removed link still there",
        )?;
        match first.call(request(0, "gone"), Duration::from_secs(1)).await {
            Err(RpcError::Closed { .. }) => Ok(()),
            other => Err(format!("call on a removed link: {other:?}")),
        }
    });
}
