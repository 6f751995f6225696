//! Model-based test of the Raft log (unstable tail over storage) against a
//! plain `Vec` model, with persist and reboot steps: after a reboot only what
//! was persisted is left, and every read agrees with the model.

use bytes::Bytes;
use ringlet_raft::log::RaftLog;
use ringlet_raft::{Entry, HardState, MemStorage, SplitMix64, Storage};

struct Model {
    memory: Vec<u64>,
    disk: Vec<u64>,
    committed: u64,
}

fn check(seed: u64, step: usize, log: &RaftLog<MemStorage>, model: &Model) {
    assert_eq!(
        log.last_index(),
        model.memory.len() as u64,
        "seed {seed} step {step}: last index"
    );
    for (i, term) in model.memory.iter().enumerate() {
        let index = i as u64 + 1;
        assert_eq!(
            log.term(index).ok(),
            Some(*term),
            "seed {seed} step {step}: term of {index}"
        );
    }
    let all = log
        .entries(1, model.memory.len() as u64 + 1, u64::MAX)
        .unwrap();
    let terms: Vec<u64> = all.iter().map(|e| e.term).collect();
    assert_eq!(terms, model.memory, "seed {seed} step {step}: entries");
    assert!(
        all.iter().enumerate().all(|(i, e)| e.index == i as u64 + 1),
        "seed {seed} step {step}: indexes"
    );
}

fn run(seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let mut log = RaftLog::new(MemStorage::new_with_voters(&[1]));
    let mut model = Model {
        memory: Vec::new(),
        disk: Vec::new(),
        committed: 0,
    };
    let mut term = 1;
    for step in 0..400 {
        match rng.gen_range(0, 10) {
            0..=4 => {
                // Append (possibly replacing an uncommitted suffix) with a newer term.
                let lo = model.committed + 1;
                let at = rng.gen_range(lo, model.memory.len() as u64 + 2);
                term += rng.gen_range(0, 2);
                let n = rng.gen_range(1, 5);
                let entries: Vec<Entry> = (0..n)
                    .map(|k| Entry::normal(term, at + k, Bytes::from_static(b"b")))
                    .collect();
                log.append(&entries);
                model.memory.truncate((at - 1) as usize);
                model.memory.extend(std::iter::repeat_n(term, n as usize));
            }
            5..=6 => {
                // Persist the unstable tail and the commit index, as a Ready would.
                let unstable = log.unstable_entries().to_vec();
                let storage = log.storage_mut();
                storage.append(&unstable).unwrap();
                let commit = model.committed;
                storage
                    .set_hard_state(HardState {
                        term,
                        vote: None,
                        commit,
                    })
                    .unwrap();
                if let Some(last) = unstable.last() {
                    log.stable_to(last.index, last.term);
                }
                model.disk = model.memory.clone();
            }
            7..=8 => {
                // Commit some of what is persisted.
                let durable = model.disk.len().min(model.memory.len()) as u64;
                let up_to = rng.gen_range(model.committed, durable.max(model.committed) + 1);
                if up_to > model.committed
                    && model.disk[..up_to as usize] == model.memory[..up_to as usize]
                {
                    log.commit_to(up_to);
                    model.committed = up_to;
                }
            }
            _ => {
                // Reboot: only the storage survives.
                let storage = std::mem::take(log.storage_mut());
                log = RaftLog::new(storage);
                model.memory = model.disk.clone();
                model.committed = model.committed.min(log.committed_index());
            }
        }
        check(seed, step, &log, &model);
    }
}

#[test]
fn raft_log_matches_a_vec_model_across_reboots() {
    for seed in 0..300 {
        run(seed);
    }
}
