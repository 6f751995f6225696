//! Run the deterministic Raft simulator.
//!
//! `cargo run -p ringlet-raft --example sim -- --seed N [--count K] [--quick]`
//! runs seeds N..N+K (long runs unless `--quick`), prints one line per seed
//! and `FAIL seed <n>: <reason>` for each failure; exits non-zero if any failed.

use ringlet_raft::sim::{run_seed, SimConfig};

struct Args {
    seed: u64,
    count: u64,
    quick: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seed: 0,
        count: 1,
        quick: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let raw = it.next().ok_or(format!("{name} needs a value"))?;
            raw.parse().map_err(|e| format!("{name} {raw}: {e}"))
        };
        match flag.as_str() {
            "--seed" => args.seed = value("--seed")?,
            "--count" => args.count = value("--count")?,
            "--quick" => args.quick = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("sim: {e}\nusage: sim --seed N [--count K] [--quick]");
            std::process::exit(2);
        }
    };
    // Invariant failures are reported per seed; keep the default panic output quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = 0;
    for seed in args.seed..args.seed + args.count {
        let cfg = if args.quick {
            SimConfig::quick(seed)
        } else {
            SimConfig::long(seed)
        };
        let shape = format!("nodes={} groups={}", cfg.nodes, cfg.groups);
        match run_seed(cfg) {
            Ok(r) => println!(
                "ok seed {seed} {shape} ticks={} committed={} crashes={} snapshots={} conf_changes={} frames={} bytes={} recover_ticks={} trace={:016x}",
                r.ticks,
                r.committed_entries,
                r.crashes,
                r.snapshots_installed,
                r.conf_changes_applied,
                r.frames_sent,
                r.frame_bytes,
                r.ticks_to_recover,
                r.trace_hash
            ),
            Err(e) => {
                failed += 1;
                println!("FAIL {e}");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} seeds failed", args.count);
        std::process::exit(1);
    }
}
