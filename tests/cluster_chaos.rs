//! Issue #6, scenario 6: rounds of random faults against a 3-broker cluster under load, then
//! acknowledged-versus-consumed. A producer thread writes numbered messages with acks=all to an
//! RF=3 topic the whole time; each round picks a node and a fault (SIGKILL and restart, or
//! SIGSTOP for a while and SIGCONT), then waits for the cluster to heal (every partition led,
//! full ISR). At the end every acknowledged message must be read back at its offset; losses
//! fail the run, duplicates (a retried write whose first attempt also landed: the producer is
//! not idempotent) are printed.
//!
//! `scripts/chaos.sh --rounds N [--seed S]` runs this with more rounds; a failing seed replays the
//! same fault sequence (the timing of the faults against the load does not replay exactly).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::Cluster;
use common::kafka::{
    consume_to_high_watermarks, create_replicated_topic, recording_producer, send_with_retry,
};
use common::unique_topic;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};

const PARTITIONS: i32 = 3;
/// Rounds when `CHAOS_ROUNDS` is not set (the CI run; the script asks for more).
const DEFAULT_ROUNDS: u64 = 2;

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillAndRestart,
    Pause,
}

/// splitmix64: a seeded sequence, so a printed seed replays the same faults.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_faults_lose_no_acknowledged_write() {
    let rounds = env_u64("CHAOS_ROUNDS", DEFAULT_ROUNDS);
    let seed = env_u64("CHAOS_SEED", std::process::id() as u64);
    eprintln!("chaos: {rounds} rounds, seed {seed} (replay with CHAOS_SEED={seed})");
    let mut random = Seeded(seed);
    let mut cluster = Cluster::start(3);
    let topic = unique_topic("chaos");
    create_replicated_topic(&cluster.bootstrap(), &topic, PARTITIONS, 3);
    heal(&mut cluster, &topic);

    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_load(cluster.bootstrap(), topic.clone(), stop.clone());
    for round in 0..rounds {
        let fault = if random.below(2) == 0 {
            Fault::KillAndRestart
        } else {
            Fault::Pause
        };
        let ids = cluster.ids();
        let node = ids[random.below(ids.len() as u64) as usize];
        let hold = Duration::from_millis(500 + random.below(3000));
        eprintln!("chaos round {round}: {fault:?} node {node} for {hold:?}");
        match fault {
            Fault::KillAndRestart => {
                cluster.kill(node);
                std::thread::sleep(hold); // the fault's length, not synchronisation
                cluster.start_node(node);
            }
            Fault::Pause => {
                cluster.pause(node, true);
                std::thread::sleep(hold);
                cluster.pause(node, false);
            }
        }
        heal(&mut cluster, &topic);
    }
    stop.store(true, Ordering::SeqCst);
    let acked = load.join().expect("the load thread panicked");
    let report = compare(&cluster.bootstrap(), &topic, &acked);
    eprintln!(
        "chaos: {} acknowledged, {} lost, {} duplicated",
        report.acknowledged,
        report.lost.len(),
        report.duplicated
    );
    assert!(report.acknowledged > 0, "nothing was acknowledged");
    assert!(
        report.lost.is_empty(),
        "acknowledged messages lost (seed {seed}): {:?}\n{}",
        &report.lost[..report.lost.len().min(20)],
        cluster.log_tails(40)
    );
}

/// Waits until every partition has a live leader and all three replicas in sync.
fn heal(cluster: &mut Cluster, topic: &str) {
    for partition in 0..PARTITIONS {
        cluster.wait_for_partition(topic, partition, |isr| isr.len() == 3);
    }
}

/// Produces numbered messages until `stop`; returns (partition, offset) -> index of every
/// acknowledged one.
fn spawn_load(
    bootstrap: String,
    topic: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<HashMap<(i32, i64), usize>> {
    std::thread::spawn(move || {
        let settings = [
            ("max.in.flight.requests.per.connection", "1"),
            ("message.timeout.ms", "120000"),
            ("linger.ms", "5"),
        ];
        let (producer, context) = recording_producer(&bootstrap, &settings);
        let mut index = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let payload = index.to_string();
            let record = BaseRecord::with_opaque_to(&topic, index).payload(payload.as_bytes());
            send_with_retry(&producer, record);
            index += 1;
            // A steady trickle rather than a flood: the faults, not the queue, are the test.
            producer.poll(Duration::from_millis(2));
        }
        producer
            .flush(Duration::from_secs(300))
            .expect("every delivery report within the deadline");
        context
            .snapshot()
            .into_iter()
            .filter_map(|delivery| delivery.outcome.ok().map(|at| (at, delivery.index)))
            .collect()
    })
}

struct Report {
    acknowledged: usize,
    lost: Vec<(i32, i64, usize)>,
    duplicated: usize,
}

fn compare(bootstrap: &str, topic: &str, acked: &HashMap<(i32, i64), usize>) -> Report {
    let consumed = consume_to_high_watermarks(bootstrap, topic, PARTITIONS);
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    let mut at: HashMap<(i32, i64), String> = HashMap::new();
    for message in consumed.values().flatten() {
        let payload = String::from_utf8_lossy(message.payload().unwrap_or_default()).to_string();
        *copies.entry(payload.clone()).or_default() += 1;
        at.insert((message.partition(), message.offset()), payload);
    }
    let mut lost: Vec<(i32, i64, usize)> = acked
        .iter()
        .filter(|(position, index)| at.get(position) != Some(&index.to_string()))
        .map(|((partition, offset), index)| (*partition, *offset, *index))
        .collect();
    lost.sort_unstable();
    Report {
        acknowledged: acked.len(),
        lost,
        duplicated: copies.values().filter(|count| **count > 1).count(),
    }
}
