//! The runtime on real pinned executors: cross-shard calls, broadcast, calls from a plain
//! thread, init failure, ordered stop.

use std::cell::Cell;
use std::rc::Rc;

use ringlet_shard::runtime::{Runtime, RuntimeConfig};
use ringlet_shard::{Bus, BusError, ShardError};

struct Shard {
    id: usize,
    bus: Bus<Shard>,
    counter: Cell<u64>,
}

fn config(shards: usize) -> RuntimeConfig {
    ringlet_shard::memlock::raise_memlock_limit(shards).expect("memlock");
    RuntimeConfig {
        shards,
        inbox_capacity: 4,
        thread_name: "test".into(),
        io_memory_bytes: 256 * 1024,
    }
}

fn start(shards: usize) -> Runtime<Shard> {
    Runtime::start(config(shards), |ctx| async move {
        Ok::<_, String>(Rc::new(Shard {
            id: ctx.shard_id,
            bus: ctx.bus,
            counter: Cell::new(0),
        }))
    })
    .expect("runtime starts")
}

#[test]
fn calls_run_on_the_target_shard() {
    let runtime = start(3);
    let handle = runtime.handle();
    for target in 0..3 {
        let ran_on = handle
            .invoke_on_blocking(target, |shard: Rc<Shard>| async move { shard.id })
            .unwrap();
        assert_eq!(ran_on, target);
    }
    // From shard 0, hop to every shard (including itself) and back; the inbox capacity (4)
    // is far below the number of calls, so back-pressure is exercised.
    let total = handle
        .invoke_on_blocking(0, |shard: Rc<Shard>| async move {
            let mut seen = Vec::new();
            for round in 0..50u64 {
                let target = (round % 3) as usize;
                let id = shard
                    .bus
                    .invoke_on(target, move |other: Rc<Shard>| async move {
                        other.counter.set(other.counter.get() + 1);
                        other.id
                    })
                    .await
                    .unwrap();
                seen.push(id);
            }
            let all = shard
                .bus
                .invoke_on_all(|other: Rc<Shard>| async move { other.counter.get() })
                .await
                .unwrap();
            (seen, all)
        })
        .unwrap();
    let (seen, counters) = total;
    assert_eq!(seen, (0..50).map(|r| r % 3).collect::<Vec<_>>());
    assert_eq!(counters.iter().sum::<u64>(), 50);
    assert_eq!(counters, vec![17, 17, 16]);
    runtime.stop().unwrap();
}

#[test]
fn broadcast_from_a_plain_thread_and_errors() {
    let runtime = start(2);
    let handle = runtime.handle();
    let ids: Vec<usize> = handle
        .invoke_on_all_blocking(|shard: Rc<Shard>| async move { shard.id })
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, vec![0, 1]);
    assert_eq!(
        handle.invoke_on_blocking(5, |shard: Rc<Shard>| async move { shard.id }),
        Err(BusError::NoSuchShard {
            shard: 5,
            shard_count: 2
        })
    );
    runtime.stop().unwrap();
    assert_eq!(
        handle.invoke_on_blocking(0, |shard: Rc<Shard>| async move { shard.id }),
        Err(BusError::ShardStopped(0)),
        "a stopped runtime refuses calls instead of hanging"
    );
}

#[test]
fn more_shards_than_cpus_is_allowed() {
    let shards = ringlet_shard::runtime::default_shard_count() + 2;
    let runtime = start(shards);
    let ids: Vec<usize> = runtime
        .handle()
        .invoke_on_all_blocking(|shard: Rc<Shard>| async move { shard.id })
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, (0..shards).collect::<Vec<_>>());
    runtime.stop().unwrap();
}

#[test]
fn a_failing_init_fails_start() {
    let outcome = Runtime::<Shard>::start(config(2), |ctx| async move {
        if ctx.shard_id == 1 {
            return Err("disk on fire".to_string());
        }
        Ok(Rc::new(Shard {
            id: ctx.shard_id,
            bus: ctx.bus,
            counter: Cell::new(0),
        }))
    });
    match outcome {
        Err(ShardError::Init { shard, reason }) => {
            assert_eq!(shard, 1);
            assert!(reason.contains("disk on fire"));
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("start must fail"),
    }
}
