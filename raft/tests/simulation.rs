//! The deterministic simulator over many seeds: safety on every step,
//! liveness after the faults heal, and replay from the seed.

use ringlet_raft::sim::{run_seed, SimConfig};

const SEEDS: u64 = 1_000;

#[test]
fn simulation_1000_seeds_keep_safety_and_recover_liveness() {
    let threads = 2;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut committed = 0;
                for seed in (t..SEEDS).step_by(threads as usize) {
                    match run_seed(SimConfig::quick(seed)) {
                        Ok(report) => committed += report.committed_entries,
                        Err(e) => failures.push(e),
                    }
                }
                (failures, committed)
            })
        })
        .collect();
    let mut failures = Vec::new();
    let mut committed = 0;
    for h in handles {
        let (f, c) = h.join().expect("simulation thread");
        failures.extend(f);
        committed += c;
    }
    assert!(
        failures.is_empty(),
        "{} of {SEEDS} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The workload really ran: on average far more than the liveness probes committed.
    assert!(
        committed > SEEDS * 50,
        "only {committed} entries committed over {SEEDS} seeds"
    );
}

#[test]
fn simulation_same_seed_gives_the_same_trace() {
    for seed in [3, 42, 977] {
        let a = run_seed(SimConfig::quick(seed)).unwrap_or_else(|e| panic!("{e}"));
        let b = run_seed(SimConfig::quick(seed)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a, b, "seed {seed} replayed differently");
    }
    let a = run_seed(SimConfig::quick(5)).unwrap_or_else(|e| panic!("{e}"));
    let b = run_seed(SimConfig::quick(6)).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(
        a.trace_hash, b.trace_hash,
        "the trace hash must depend on what happened"
    );
}

#[test]
fn simulation_faults_actually_happen() {
    let report = run_seed(SimConfig {
        crash_ppm: 5_000,
        drop_ppm: 150_000,
        ..SimConfig::quick(11)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.crashes > 0,
        "seed 11 never crashed a node: {report:?}"
    );
    assert!(
        report.committed_entries > 20,
        "seed 11 committed too little: {report:?}"
    );
}
