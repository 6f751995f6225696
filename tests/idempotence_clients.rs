//! Test 1 of issue #8: an idempotent librdkafka producer whose connections are cut
//! mid-request by a proxy (so it retries requests the broker may already have written) and
//! whose broker is killed with SIGKILL and restarted mid-run. Everything is consumed back
//! and checked by content: every message exactly once, in order per partition.

mod common;
mod idempotence_support;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::kafka::{consume_from_beginning, create_topic, recording_producer, send_with_retry};
use common::{free_port, unique_topic, wait_for, BROKER_START_TIMEOUT};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};

const PARTITIONS: i32 = 4;
const MESSAGES: usize = 20_000;

/// A TCP proxy in front of the broker. While `cutting` is on, each connection is cut after a
/// pseudo-random number of client bytes, in the middle of forwarding a chunk, so the broker
/// sees a truncated request and earlier pipelined requests lose their responses.
struct CuttingProxy {
    port: u16,
    target: Arc<Mutex<SocketAddr>>,
    cutting: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    fn start(target: SocketAddr) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let proxy = CuttingProxy {
            port,
            target: Arc::new(Mutex::new(target)),
            cutting: Arc::new(AtomicBool::new(false)),
            cuts: Arc::new(AtomicUsize::new(0)),
        };
        let (target, cutting, cuts) = (
            proxy.target.clone(),
            proxy.cutting.clone(),
            proxy.cuts.clone(),
        );
        let seed = Arc::new(AtomicU64::new(0x2545_f491_4f6c_dd1d));
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let target = *target.lock().expect("target lock");
                let Ok(server) = TcpStream::connect(target) else {
                    continue; // broker down: the client sees a closed connection and retries
                };
                let budget = if cutting.load(Ordering::SeqCst) {
                    // xorshift: a different cut point per connection, reproducible per run.
                    let mut x = seed.load(Ordering::SeqCst);
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    seed.store(x, Ordering::SeqCst);
                    Some(80 * 1024 + (x % (256 * 1024)) as usize)
                } else {
                    None
                };
                pump_pair(client, server, budget, cuts.clone());
            }
        });
        proxy
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Forwards both directions; client->broker stops mid-chunk once `budget` bytes went through.
fn pump_pair(client: TcpStream, server: TcpStream, budget: Option<usize>, cuts: Arc<AtomicUsize>) {
    let (c2, s2) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    thread::spawn(move || pump(s2, c2, None, None));
    thread::spawn(move || pump(client, server, budget, Some(cuts)));
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    budget: Option<usize>,
    cuts: Option<Arc<AtomicUsize>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut forwarded = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(budget) = budget {
            if forwarded + n > budget {
                // Half of this chunk: a request cut in the middle.
                let _ = to.write_all(&buf[..n / 2]);
                if let Some(cuts) = &cuts {
                    cuts.fetch_add(1, Ordering::SeqCst);
                }
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        forwarded += n;
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// The broker process, advertising the proxy so clients always go through it.
struct ProxiedBroker {
    child: Child,
    addr: SocketAddr,
}

impl ProxiedBroker {
    fn start(data_dir: &Path, log_path: &Path, advertise_port: u16) -> ProxiedBroker {
        let port = free_port();
        let log = File::create(log_path).expect("broker log");
        let child = Command::new(env!("CARGO_BIN_EXE_ringlet"))
            .arg("start")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--advertise", &format!("127.0.0.1:{advertise_port}")])
            .args(["--shards", "2"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn ringlet");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for("broker accepting", BROKER_START_TIMEOUT, || {
            TcpStream::connect(addr).ok().map(|_| ())
        });
        ProxiedBroker { child, addr }
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProxiedBroker {
    fn drop(&mut self) {
        self.kill_9();
    }
}

#[test]
fn idempotent_producer_through_cut_connections_and_a_kill_9_restart_writes_each_message_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let proxy = CuttingProxy::start(SocketAddr::from(([127, 0, 0, 1], 1)));
    let mut broker = ProxiedBroker::start(&data_dir, &dir.path().join("broker-1.log"), proxy.port);
    *proxy.target.lock().expect("target") = broker.addr;
    let topic = unique_topic("idem-cut");
    create_topic(&proxy.bootstrap(), &topic, PARTITIONS);

    proxy.cutting.store(true, Ordering::SeqCst);
    let (producer, context) = recording_producer(
        &proxy.bootstrap(),
        &[
            ("enable.idempotence", "true"),
            ("retry.backoff.ms", "50"),
            ("request.timeout.ms", "20000"),
            // Small batches: a produce request (one batch per partition) is well below the
            // smallest cut budget, so every connection completes some requests before its cut.
            ("batch.size", "16384"),
        ],
    );
    let value = |i: usize| format!("m-{i:06}-{}", "x".repeat(64));
    for i in 0..MESSAGES {
        let payload = value(i);
        let key = i.to_string();
        let partition = (i % PARTITIONS as usize) as i32;
        send_with_retry(
            &producer,
            BaseRecord::with_opaque_to(&topic, i)
                .partition(partition)
                .key(key.as_bytes())
                .payload(payload.as_bytes()),
        );
        producer.poll(Duration::ZERO);
        if i == MESSAGES / 2 {
            // Wait until some of the first half is acknowledged, then crash the broker.
            wait_for("first acknowledgements", Duration::from_secs(120), || {
                producer.poll(Duration::from_millis(50));
                (context.snapshot().len() > MESSAGES / 8).then_some(())
            });
            broker.kill_9();
            broker = ProxiedBroker::start(&data_dir, &dir.path().join("broker-2.log"), proxy.port);
            *proxy.target.lock().expect("target") = broker.addr;
        }
    }
    producer.flush(Duration::from_secs(600)).expect("flush");
    let deliveries = context.snapshot();
    let failed: Vec<_> = deliveries.iter().filter(|d| d.outcome.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed deliveries, first {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(deliveries.len(), MESSAGES);
    let cuts = proxy.cuts.load(Ordering::SeqCst);
    assert!(
        cuts > 0,
        "the proxy cut no connection: the test proved nothing"
    );
    proxy.cutting.store(false, Ordering::SeqCst);

    let consumed = consume_from_beginning(&proxy.bootstrap(), &topic, PARTITIONS, MESSAGES);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (partition, messages) in &consumed {
        let mut previous: Option<usize> = None;
        for message in messages {
            let payload =
                String::from_utf8(message.payload().expect("payload").to_vec()).expect("utf8");
            let index: usize = payload[2..8].parse().expect("message index");
            assert_eq!(payload, value(index), "content of message {index}");
            assert_eq!(
                index % PARTITIONS as usize,
                *partition as usize,
                "partition of {index}"
            );
            assert!(
                previous.is_none_or(|p| p < index),
                "order in partition {partition}: {previous:?} then {index}"
            );
            previous = Some(index);
            *seen.entry(payload).or_default() += 1;
        }
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "duplicates: {:?}",
        duplicates.iter().take(5).collect::<Vec<_>>()
    );
    let missing: Vec<usize> = (0..MESSAGES)
        .filter(|i| !seen.contains_key(&value(*i)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} missing, first {:?}",
        missing.len(),
        missing.first()
    );
    // Nothing beyond them either: the logs hold exactly MESSAGES records.
    assert_eq!(seen.len(), MESSAGES);
    let consumer = common::kafka::assigned_consumer(&proxy.bootstrap());
    let stored: i64 = (0..PARTITIONS)
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p, Duration::from_secs(60))
                .expect("watermarks");
            high - low
        })
        .sum();
    assert_eq!(stored, MESSAGES as i64, "records stored in the partitions");
    eprintln!("proxy cut {cuts} connections mid-request; {MESSAGES} messages exactly once");
}
