//! One panic policy (issue #19): a panic on any shard ends the whole broker at once, with the
//! panic and its backtrace in the log, so that a supervisor restarts it; only a request
//! handler's panic is contained (its connection closes) and the broker serves on.
//!
//! The broker runs with `RINGLET_TEST_PANIC_ON=SITE` (`src/server/panic_trigger.rs`): SIGUSR1
//! then makes shard 1 panic at SITE. Before the policy, a panicking bus job or detached task
//! unwound its executor thread and left the process running, half dead.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::{wait_for, Broker};

/// "At once": the hook aborts before anything unwinds; this only allows for a loaded machine.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
const SIGABRT: i32 = 6;

fn broker_panicking_in(site: &str) -> Broker {
    let broker = Broker::start_with_env(&[("RINGLET_TEST_PANIC_ON", site)]);
    // It serves before the panic.
    common::api_call::api_versions(broker.addr());
    broker
}

/// Fires the trigger and checks that the process aborted at once and logged `message` with a
/// backtrace through the trigger's code.
fn assert_panic_ends_the_broker(site: &str, message: &str) {
    let mut broker = broker_panicking_in(site);
    broker.signal("USR1");
    let status = broker.wait_for_exit(EXIT_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "{site}: the broker still runs {EXIT_TIMEOUT:?} after the panic\n{}",
            broker.log_tail(60)
        )
    });
    let log = broker.log_text();
    assert_eq!(
        status.signal(),
        Some(SIGABRT),
        "{site}: exit {status}\n{}",
        broker.log_tail(60)
    );
    assert!(
        log.contains("panic: the broker stops at once") && log.contains(message),
        "{site}: the panic is not logged\n{}",
        broker.log_tail(60)
    );
    let backtrace = log
        .split_once("stack backtrace:")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("{site}: no backtrace\n{}", broker.log_tail(60)));
    assert!(
        backtrace.contains("panic_trigger"),
        "{site}: the backtrace does not reach the panicking code\n{}",
        broker.log_tail(60)
    );
}

#[test]
fn a_panicking_bus_job_ends_the_process_with_its_backtrace() {
    assert_panic_ends_the_broker(
        "bus-job",
        "RINGLET_TEST_PANIC_ON=bus-job: a bus job panicked on shard 1",
    );
}

#[test]
fn a_panicking_detached_task_ends_the_process_with_its_backtrace() {
    assert_panic_ends_the_broker(
        "detached-task",
        "RINGLET_TEST_PANIC_ON=detached-task: a detached task panicked on shard 1",
    );
}

#[test]
fn a_handler_panic_is_contained_and_the_broker_serves_on() {
    let mut broker = broker_panicking_in("handler");
    broker.signal("USR1");
    wait_for("the contained panic in the log", EXIT_TIMEOUT, || {
        let log = broker.log_text();
        log.contains("the handler's panic was contained")
            .then_some(())
    });
    let log = broker.log_text();
    assert!(
        log.contains("panic in a request handler or decoder, contained"),
        "the hook did not log the contained panic\n{}",
        broker.log_tail(40)
    );
    assert!(!log.contains("the broker stops at once"));
    broker.assert_alive("after a contained handler panic");
    // Shard 1 still serves: a topic whose partitions land on both shards is created and
    // listed through every shard's connections.
    let topic = common::unique_topic("after-handler-panic");
    common::kafka::create_topic(&broker.bootstrap(), &topic, 4);
    for _ in 0..4 {
        common::api_call::api_versions(broker.addr());
    }
    broker.assert_alive("after serving again");
}
