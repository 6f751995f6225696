//! One run: fresh topics, consumer threads attached first (in group mode the run waits until
//! every group has a stable assignment), producer threads on the schedule, `/proc` sampling
//! of the broker over the measured window, then the drain (librdkafka delivers what it still
//! queues; consumers read until every group has every acknowledged message), the assembled
//! `RunResult`, and the run's topics deleted so the next run starts from the same broker
//! state.
//!
//! Throughput accounting: producers stop sending when the window ends, and everything they
//! sent is acknowledged by the end of the drain. Produce throughput is the acknowledgements
//! that arrived from the window's start to the last acknowledgement, over that time (and
//! consume throughput likewise with receipts). Counting only the acknowledgements inside the
//! window understated runs whose clients queue a lot (50 producers): most of the window's
//! messages were acknowledged after it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::admin::{create_topics, delete_topics};
use super::clock::RunClock;
use super::consumer::{run_consumer, ConsumerJob, ConsumerTally, GroupProgress, ProduceDone};
use super::json::{ConsumedCounts, ProducedCounts, RunResult, SCHEMA_VERSION};
use super::proc_stats::{sample, ProcTracker};
use super::producer::{run_producer, ProducerJob, ProducerTally};
use super::progress::Progress;
use super::stats::Throughput;
use super::workload::{ConsumerMode, Rate, Workload};
use super::HarnessError;

/// How long consumer groups may take to join and get every partition assigned.
const GROUP_STABLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A fixed rate counts as sustained when produce and per-group consume throughput reach this
/// fraction of the offered rate.
const SUSTAINED_FRACTION: f64 = 0.95;

/// How often the main thread samples `/proc` and redraws the progress line.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

pub struct RunOptions {
    pub bootstrap: String,
    /// Label of the broker in results and reports.
    pub broker: String,
    /// Broker process to sample from `/proc` (None: not on this machine / unknown).
    pub broker_pid: Option<u32>,
    pub iteration: u32,
    pub replication_factor: i32,
    pub show_progress: bool,
    /// Delete the run's topics afterwards (default): otherwise every run leaves its
    /// partitions, with their caches, in the broker, and later runs measure a fuller broker.
    pub delete_topics: bool,
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// Topic names unique to this run, so reads from the beginning see only this run's messages.
pub fn topic_names(workload: &Workload) -> Vec<String> {
    let stamp = unix_now().as_millis();
    let safe: String = workload
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    (0..workload.topics)
        .map(|i| format!("bench-{safe}-{stamp}-{i}"))
        .collect()
}

struct Shared {
    /// Set once the producers start (consumers attach before).
    clock: Arc<OnceLock<RunClock>>,
    abort: Arc<AtomicBool>,
    live_acked: Arc<AtomicU64>,
    produce: Arc<ProduceDone>,
    groups: Vec<Arc<GroupProgress>>,
}

fn spawn_consumers(
    workload: &Workload,
    options: &RunOptions,
    topics: &[String],
    shared: &Shared,
) -> Result<Vec<JoinHandle<Result<ConsumerTally, HarnessError>>>, HarnessError> {
    let stamp = unix_now().as_millis();
    let mut handles = Vec::new();
    for (group_index, group) in shared.groups.iter().enumerate() {
        for member in 0..workload.consumers_per_group {
            let job = ConsumerJob {
                group_index: group_index as u32,
                member,
                group_id: format!("bench-{}-{stamp}-g{group_index}", workload.name),
                bootstrap: options.bootstrap.clone(),
                workload: workload.clone(),
                topics: topics.to_vec(),
                clock: shared.clock.clone(),
                group: group.clone(),
                produce: shared.produce.clone(),
                abort: shared.abort.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("consumer-{group_index}-{member}"))
                .spawn(move || run_consumer(job))
                .map_err(|source| HarnessError::Io {
                    context: "spawning a consumer thread".into(),
                    source,
                })?;
            handles.push(handle);
        }
    }
    Ok(handles)
}

fn spawn_producers(
    workload: &Workload,
    options: &RunOptions,
    topics: &[String],
    shared: &Shared,
    clock: RunClock,
) -> Result<Vec<JoinHandle<Result<ProducerTally, HarnessError>>>, HarnessError> {
    (0..workload.producers)
        .map(|index| {
            let job = ProducerJob {
                index,
                bootstrap: options.bootstrap.clone(),
                workload: workload.clone(),
                topics: topics.to_vec(),
                clock,
                abort: shared.abort.clone(),
                live_acked: shared.live_acked.clone(),
            };
            std::thread::Builder::new()
                .name(format!("producer-{index}"))
                .spawn(move || run_producer(job))
                .map_err(|source| HarnessError::Io {
                    context: "spawning a producer thread".into(),
                    source,
                })
        })
        .collect()
}

/// Joins threads, merging their tallies; the first error wins (and aborts the others).
fn join_all<T: Default>(
    handles: Vec<JoinHandle<Result<T, HarnessError>>>,
    abort: &AtomicBool,
    mut merge: impl FnMut(&mut T, T),
) -> Result<T, HarnessError> {
    let mut total = T::default();
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(tally)) => merge(&mut total, tally),
            Ok(Err(err)) => {
                abort.store(true, Ordering::Relaxed);
                first_error.get_or_insert(err);
            }
            Err(_) => {
                abort.store(true, Ordering::Relaxed);
                first_error.get_or_insert(HarnessError::Invalid("a client thread panicked".into()));
            }
        }
    }
    first_error.map_or(Ok(total), Err)
}

/// Runs `workload` (rate already resolved) against one broker: fresh topics, the run, then
/// the topics deleted again (unless `options.delete_topics` is false).
pub fn run(workload: &Workload, options: &RunOptions) -> Result<RunResult, HarnessError> {
    let load_before = read_loadavg();
    let rss_before = options.broker_pid.and_then(sample).map(|s| s.rss_bytes);
    let topics = topic_names(workload);
    create_topics(
        &options.bootstrap,
        &topics,
        workload.partitions_per_topic,
        options.replication_factor,
    )?;
    let outcome = run_on_topics(workload, options, &topics);
    let mut rss_after = None;
    if options.delete_topics {
        match delete_topics(&options.bootstrap, &topics) {
            Ok(()) => {
                // Deletion completes on the owning shards after the reply: let it settle.
                std::thread::sleep(Duration::from_secs(2));
                rss_after = options.broker_pid.and_then(sample).map(|s| s.rss_bytes);
            }
            Err(err) => eprintln!("ringlet-bench: could not delete the run's topics: {err}"),
        }
    }
    let mut result = outcome?;
    result.load_before = load_before;
    result.load_after = read_loadavg();
    result.broker_rss_before_bytes = rss_before;
    result.broker_rss_after_delete_bytes = rss_after;
    Ok(result)
}

/// The 1, 5 and 15 minute load averages.
pub fn read_loadavg() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// Group mode: waits until every group has all its members assigned and every partition
/// covered, on two samples in a row (an eager rebalance revokes before it assigns). Returns
/// how long that took; None in assign mode.
fn wait_for_stable_groups(
    workload: &Workload,
    shared: &Shared,
    consumers: &[JoinHandle<Result<ConsumerTally, HarnessError>>],
) -> Result<Option<f64>, HarnessError> {
    if workload.consumer_mode != ConsumerMode::Group || shared.groups.is_empty() {
        return Ok(None);
    }
    let started = Instant::now();
    let partitions = workload.total_partitions();
    let stable = || {
        shared
            .groups
            .iter()
            .all(|g| g.is_stable(workload.consumers_per_group, partitions))
    };
    let mut stable_samples = 0;
    while stable_samples < 2 {
        if consumers.iter().any(JoinHandle::is_finished) {
            // A consumer ended before the run started: its error surfaces when it is joined.
            return Ok(Some(started.elapsed().as_secs_f64()));
        }
        if started.elapsed() > GROUP_STABLE_TIMEOUT {
            shared.abort.store(true, Ordering::Relaxed);
            return Err(HarnessError::Invalid(format!(
                "consumer groups not stable after {GROUP_STABLE_TIMEOUT:?}"
            )));
        }
        stable_samples = if stable() { stable_samples + 1 } else { 0 };
        std::thread::sleep(SAMPLE_INTERVAL);
    }
    Ok(Some(started.elapsed().as_secs_f64()))
}

/// Throughput from the window's start to the last event (at least to the window's end), and
/// how far past the window's end that last event came.
fn drained_throughput(
    messages: u64,
    bytes: u64,
    last_event_ns: u64,
    workload: &Workload,
) -> (Throughput, f64) {
    let warmup_ns = workload.warmup_s * 1_000_000_000;
    let end_ns = warmup_ns + workload.duration_s * 1_000_000_000;
    let until_ns = last_event_ns.max(end_ns);
    let seconds = (until_ns - warmup_ns) as f64 / 1e9;
    let throughput = Throughput {
        messages_per_s: messages as f64 / seconds,
        mb_per_s: bytes as f64 / seconds / 1e6,
    };
    (throughput, (until_ns - end_ns) as f64 / 1e9)
}

fn run_on_topics(
    workload: &Workload,
    options: &RunOptions,
    topics: &[String],
) -> Result<RunResult, HarnessError> {
    let started_unix_s = unix_now().as_secs();
    let shared = Shared {
        clock: Arc::new(OnceLock::new()),
        abort: Arc::new(AtomicBool::new(false)),
        live_acked: Arc::new(AtomicU64::new(0)),
        produce: Arc::new(ProduceDone::default()),
        groups: (0..workload.consumer_groups)
            .map(|_| Arc::new(GroupProgress::default()))
            .collect(),
    };
    let consumers = spawn_consumers(workload, options, topics, &shared)?;
    let group_join_s = match wait_for_stable_groups(workload, &shared, &consumers) {
        Ok(seconds) => seconds,
        Err(err) => {
            let _ = join_all(consumers, &shared.abort, |a, b| a.merge(&b));
            return Err(err);
        }
    };
    let clock = *shared.clock.get_or_init(RunClock::start);
    let producers = spawn_producers(workload, options, topics, &shared, clock)?;
    let window_s = workload.duration_s as f64;
    let (broker_process, bench_process) =
        watch_window(workload, options, &shared, clock, &producers);
    let produced = join_all(producers, &shared.abort, |a, b| a.merge(&b))?;
    shared
        .produce
        .acked
        .store(produced.acked, Ordering::Release);
    shared.produce.done.store(true, Ordering::Release);
    let consumed = join_all(consumers, &shared.abort, |a, b| a.merge(&b))?;
    let per_group: Vec<u64> = shared
        .groups
        .iter()
        .map(|g| g.consumed.load(Ordering::Acquire))
        .collect();
    let assignments_per_group = match workload.consumer_mode {
        ConsumerMode::Group => shared
            .groups
            .iter()
            .map(|g| g.assignments.load(Ordering::Acquire))
            .collect(),
        ConsumerMode::Assign => Vec::new(),
    };
    let (produce_throughput, produce_drain_s) = drained_throughput(
        produced.acked_after_warmup,
        produced.acked_bytes_after_warmup,
        produced.last_ack_ns,
        workload,
    );
    let (consume_throughput, consume_drain_s) = drained_throughput(
        consumed.received_after_warmup,
        consumed.received_bytes_after_warmup,
        consumed.last_receipt_ns,
        workload,
    );
    let offered = match workload.rate {
        Rate::Fixed { messages_per_s } => Some(messages_per_s),
        Rate::Max | Rate::FractionOfMax { .. } => None,
    };
    let groups = f64::from(workload.consumer_groups.max(1));
    let sustained = offered.map(|rate| {
        produce_throughput.messages_per_s >= SUSTAINED_FRACTION * rate
            && (workload.consumer_groups == 0
                || consume_throughput.messages_per_s / groups >= SUSTAINED_FRACTION * rate)
    });
    Ok(RunResult {
        schema_version: SCHEMA_VERSION,
        broker: options.broker.clone(),
        bootstrap: options.bootstrap.clone(),
        iteration: options.iteration,
        started_unix_s,
        workload: workload.clone(),
        window_s,
        counts_match: produced.failed == 0
            && produced.acked == produced.sent
            && per_group.iter().all(|&c| c == produced.acked),
        produce_throughput,
        consume_throughput,
        produce_latency: produced.latency.summary(),
        end_to_end_latency: consumed.latency.summary(),
        produced: ProducedCounts {
            sent: produced.sent,
            acked: produced.acked,
            failed: produced.failed,
            queue_full_waits: produced.queue_full_waits,
            retries: produced.retries,
            request_errors: produced.request_errors,
            first_error: produced.first_error,
        },
        consumed: ConsumedCounts {
            per_group,
            assignments_per_group,
            errors: consumed.errors,
            malformed: consumed.malformed,
            first_error: consumed.first_error,
        },
        produce_per_second: produced.acked_per_second,
        consume_per_second: consumed.received_per_second,
        broker_process,
        bench_process,
        produce_drain_s,
        consume_drain_s,
        offered_messages_per_s: offered,
        sustained,
        rate_probe: None,
        group_join_s,
        load_before: None,
        load_after: None,
        broker_rss_before_bytes: None,
        broker_rss_after_delete_bytes: None,
    })
}

/// Samples `/proc` and draws progress until the producers are done. The CPU window runs from
/// the end of the warm-up to the producers' end (their last acknowledgement), the same span
/// the produce throughput is measured over, so MB/s per broker core compares like with like.
fn watch_window(
    workload: &Workload,
    options: &RunOptions,
    shared: &Shared,
    clock: RunClock,
    producers: &[JoinHandle<Result<ProducerTally, HarnessError>>],
) -> (
    Option<super::proc_stats::ProcUsage>,
    Option<super::proc_stats::ProcUsage>,
) {
    let warmup_ns = workload.warmup_s * 1_000_000_000;
    let mut broker = options.broker_pid.map(ProcTracker::new);
    let mut bench = ProcTracker::new(std::process::id());
    let mut progress = Progress::new(
        &format!("{} {}", options.broker, workload.name),
        workload.warmup_s,
        workload.warmup_s + workload.duration_s,
    );
    let mut window_started = false;
    loop {
        let now_ns = clock.now_ns();
        if !window_started && now_ns >= warmup_ns {
            window_started = true;
            broker.iter_mut().for_each(ProcTracker::start_window);
            bench.start_window();
        } else {
            broker.iter_mut().for_each(ProcTracker::tick);
        }
        if options.show_progress {
            let consumed = shared
                .groups
                .first()
                .map_or(0, |g| g.consumed.load(Ordering::Relaxed));
            progress.update(
                now_ns / 1_000_000_000,
                shared.live_acked.load(Ordering::Relaxed),
                consumed,
            );
        }
        if producers.iter().all(JoinHandle::is_finished) {
            break;
        }
        std::thread::sleep(SAMPLE_INTERVAL);
    }
    if options.show_progress {
        progress.finish();
    }
    // An abort can end the producers inside the warm-up: then there is no window to measure.
    let window_s = clock.now_ns().saturating_sub(warmup_ns) as f64 / 1e9;
    (
        broker.as_mut().and_then(|t| t.finish(window_s)),
        bench.finish(window_s),
    )
}
