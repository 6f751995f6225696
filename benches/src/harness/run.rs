//! One run: fresh topics, consumer threads attached first, producer threads on the schedule,
//! `/proc` sampling of the broker over the measured window, then the drain (consumers read
//! until every group has every acknowledged message) and the assembled `RunResult`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::admin::create_topics;
use super::clock::RunClock;
use super::consumer::{run_consumer, ConsumerJob, ConsumerTally, GroupProgress, ProduceDone};
use super::json::{ConsumedCounts, ProducedCounts, RunResult, SCHEMA_VERSION};
use super::proc_stats::ProcTracker;
use super::producer::{run_producer, ProducerJob, ProducerTally};
use super::progress::Progress;
use super::stats::Throughput;
use super::workload::Workload;
use super::HarnessError;

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
    clock: RunClock,
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
                clock: shared.clock,
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
) -> Result<Vec<JoinHandle<Result<ProducerTally, HarnessError>>>, HarnessError> {
    (0..workload.producers)
        .map(|index| {
            let job = ProducerJob {
                index,
                bootstrap: options.bootstrap.clone(),
                workload: workload.clone(),
                topics: topics.to_vec(),
                clock: shared.clock,
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

/// Runs `workload` (rate already resolved) against one broker.
pub fn run(workload: &Workload, options: &RunOptions) -> Result<RunResult, HarnessError> {
    let topics = topic_names(workload);
    create_topics(
        &options.bootstrap,
        &topics,
        workload.partitions_per_topic,
        options.replication_factor,
    )?;
    let started_unix_s = unix_now().as_secs();
    let shared = Shared {
        clock: RunClock::start(),
        abort: Arc::new(AtomicBool::new(false)),
        live_acked: Arc::new(AtomicU64::new(0)),
        produce: Arc::new(ProduceDone::default()),
        groups: (0..workload.consumer_groups)
            .map(|_| Arc::new(GroupProgress::default()))
            .collect(),
    };
    let consumers = spawn_consumers(workload, options, &topics, &shared)?;
    let producers = spawn_producers(workload, options, &topics, &shared)?;
    let window_s = workload.duration_s as f64;
    let (broker_process, bench_process) = watch_window(workload, options, &shared, &producers);
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
    let window = (
        workload.warmup_s as usize,
        (workload.warmup_s + workload.duration_s) as usize,
    );
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
        produce_throughput: Throughput::over(&produced.acked_per_second, window.0, window.1),
        consume_throughput: Throughput::over(&consumed.received_per_second, window.0, window.1),
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
            errors: consumed.errors,
            malformed: consumed.malformed,
            first_error: consumed.first_error,
        },
        produce_per_second: produced.acked_per_second,
        consume_per_second: consumed.received_per_second,
        broker_process,
        bench_process,
    })
}

/// Samples `/proc` and draws progress until the producers are done; the CPU window runs from
/// the end of the warm-up to the end of the measured duration.
fn watch_window(
    workload: &Workload,
    options: &RunOptions,
    shared: &Shared,
    producers: &[JoinHandle<Result<ProducerTally, HarnessError>>],
) -> (
    Option<super::proc_stats::ProcUsage>,
    Option<super::proc_stats::ProcUsage>,
) {
    let warmup_ns = workload.warmup_s * 1_000_000_000;
    let end_ns = warmup_ns + workload.duration_s * 1_000_000_000;
    let mut broker = options.broker_pid.map(ProcTracker::new);
    let mut bench = ProcTracker::new(std::process::id());
    let mut progress = Progress::new(
        &format!("{} {}", options.broker, workload.name),
        workload.warmup_s,
        workload.warmup_s + workload.duration_s,
    );
    let (mut window_started, mut window_closed, mut usage) = (false, false, (None, None));
    let window_s = workload.duration_s as f64;
    loop {
        let now_ns = shared.clock.now_ns();
        if !window_started && now_ns >= warmup_ns {
            window_started = true;
            broker.iter_mut().for_each(ProcTracker::start_window);
            bench.start_window();
        } else if window_started && !window_closed && now_ns >= end_ns {
            window_closed = true;
            usage = (
                broker.as_mut().and_then(|t| t.finish(window_s)),
                bench.finish(window_s),
            );
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
    if !window_closed {
        // Producers ended before the window closed (an abort): measure what there was.
        usage = (
            broker.as_mut().and_then(|t| t.finish(window_s)),
            bench.finish(window_s),
        );
    }
    usage
}
