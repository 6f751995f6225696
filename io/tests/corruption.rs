//! Corruption test: flip bytes in, cut, and append garbage to segment files of a real log,
//! then reopen. Recovery must keep exactly the valid prefix and never panic. Seeded; the seed
//! is printed (rerun with TEST_SEED=...).

mod common;

use common::{batch, read_all, run, seed, stamped, Rng};
use ringlet_io::{LogConfig, LogError, PartitionLog};
use std::path::{Path, PathBuf};

const TRIALS: usize = 60;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

/// One stored batch and where it sits on disk.
#[derive(Clone)]
struct Placed {
    base: i64,
    last: i64,
    segment: i64,
    position: u64,
    bytes: Vec<u8>,
}

async fn build_pristine(dir: PathBuf, rng_seed: u64) -> Vec<Placed> {
    let mut rng = Rng::new(rng_seed);
    let log = PartitionLog::open(&dir, config()).await.expect("open");
    let mut stored = Vec::new();
    for tag in 0..60u64 {
        let raw = batch(
            1 + rng.below(5) as usize,
            rng.below(1200) as usize,
            tag as i64,
            tag,
        );
        let info = log.append(raw.clone(), 4, None).await.expect("append");
        stored.push((
            info.base_offset,
            info.last_offset,
            stamped(raw, info.base_offset, 4),
        ));
    }
    log.close().await.expect("close");
    let mut segments: Vec<i64> = std::fs::read_dir(&dir)
        .expect("ls")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    segments.sort_unstable();
    let mut placed = Vec::new();
    let mut position = 0u64;
    let mut current = segments[0];
    for (base, last, bytes) in stored {
        let segment = *segments
            .iter()
            .rev()
            .find(|s| **s <= base)
            .expect("segment");
        if segment != current {
            current = segment;
            position = 0;
        }
        placed.push(Placed {
            base,
            last,
            segment,
            position,
            bytes: bytes.clone(),
        });
        position += bytes.len() as u64;
    }
    assert!(
        segments.len() >= 3,
        "need closed segments and an active one"
    );
    placed
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("ls") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn segment_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

enum Damage {
    /// Flip one byte at this file position of the segment (not in the leader-epoch field:
    /// Kafka's CRC does not cover bytes 12..16, so a flip there is undetectable by design).
    Flip { segment: i64, position: u64 },
    /// Cut the segment file to this length.
    Cut { segment: i64, length: u64 },
    /// Append bytes after the last batch (zeros = padding, random = torn write).
    Garbage {
        segment: i64,
        zeros: bool,
        length: usize,
    },
}

fn damage(dir: &Path, damage: &Damage, rng: &mut Rng) {
    match damage {
        Damage::Flip { segment, position } => {
            let path = segment_path(dir, *segment);
            let mut bytes = std::fs::read(&path).expect("read segment");
            bytes[*position as usize] ^= 1 << rng.below(8);
            std::fs::write(&path, bytes).expect("write segment");
        }
        Damage::Cut { segment, length } => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(segment_path(dir, *segment));
            file.expect("open").set_len(*length).expect("cut");
        }
        Damage::Garbage {
            segment,
            zeros,
            length,
        } => {
            let path = segment_path(dir, *segment);
            let mut bytes = std::fs::read(&path).expect("read segment");
            bytes.extend((0..*length).map(|_| if *zeros { 0 } else { rng.below(256) as u8 }));
            std::fs::write(&path, bytes).expect("write segment");
        }
    }
}

/// Offset the log must end at after recovery, given the damage to the last segment.
fn expected_end(placed: &[Placed], damage: &Damage) -> i64 {
    let first_bad = match damage {
        Damage::Flip { segment, position } => placed
            .iter()
            .position(|p| p.segment == *segment && p.position + p.bytes.len() as u64 > *position),
        Damage::Cut { segment, length } => placed
            .iter()
            .position(|p| p.segment == *segment && p.position + p.bytes.len() as u64 > *length),
        Damage::Garbage { .. } => None,
    };
    match first_bad {
        Some(i) => placed[i].base,
        None => placed.last().map_or(0, |p| p.last + 1),
    }
}

fn random_damage(placed: &[Placed], last_segment: i64, rng: &mut Rng) -> Damage {
    let in_last: Vec<&Placed> = placed
        .iter()
        .filter(|p| p.segment == last_segment)
        .collect();
    let target = in_last[rng.below(in_last.len() as u64) as usize];
    match rng.below(3) {
        0 => {
            let mut offset = rng.below(target.bytes.len() as u64);
            if (12..16).contains(&offset) {
                offset = 17; // the CRC field instead of the uncovered leader epoch
            }
            Damage::Flip {
                segment: last_segment,
                position: target.position + offset,
            }
        }
        1 => Damage::Cut {
            segment: last_segment,
            length: target.position + rng.below(target.bytes.len() as u64),
        },
        _ => Damage::Garbage {
            segment: last_segment,
            zeros: rng.chance(50),
            length: 1 + rng.below(9000) as usize,
        },
    }
}

#[test]
fn damaged_tail_recovers_to_the_valid_prefix() {
    let seed = seed("corruption");
    let root = tempfile::tempdir().expect("tempdir");
    let pristine = root.path().join("pristine");
    let placed = run(build_pristine(pristine.clone(), seed));
    let last_segment = placed.last().expect("batches").segment;
    let mut rng = Rng::new(seed ^ 0x5eed);
    for trial in 0..TRIALS {
        let dir = root.path().join(format!("trial-{trial}"));
        copy_dir(&pristine, &dir);
        let hurt = random_damage(&placed, last_segment, &mut rng);
        damage(&dir, &hurt, &mut rng);
        let want_end = expected_end(&placed, &hurt);
        let want: Vec<u8> = placed
            .iter()
            .filter(|p| p.last < want_end)
            .flat_map(|p| p.bytes.clone())
            .collect();
        run(async move {
            for reopen in 0..2 {
                let log = PartitionLog::open(&dir, config())
                    .await
                    .expect("recovery never fails on damage");
                assert_eq!(
                    log.log_end_offset(),
                    want_end,
                    "trial {trial} reopen {reopen}"
                );
                assert!(
                    read_all(&log, 0).await == want,
                    "trial {trial}: valid prefix differs"
                );
                let extra = log
                    .append(batch(1, 10, 1, 9_999), 4, None)
                    .await
                    .expect("append after recovery");
                assert_eq!(extra.base_offset, want_end, "offsets continue densely");
                log.truncate_suffix(want_end)
                    .await
                    .expect("undo extra append");
                log.close().await.expect("close");
            }
        });
    }
}

#[test]
fn torn_closed_segment_without_index_cuts_later_segments() {
    let seed = seed("corruption-closed");
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("log");
    let placed = run(build_pristine(dir.clone(), seed));
    let first_segment = placed[0].segment;
    let victim = placed
        .iter()
        .filter(|p| p.segment == first_segment)
        .nth(1)
        .expect("2nd batch")
        .clone();
    // Removing the index forces a scan of the closed segment, which then finds the damage.
    std::fs::remove_file(dir.join(format!("{first_segment:020}.index"))).expect("rm index");
    damage(
        &dir,
        &Damage::Flip {
            segment: first_segment,
            position: victim.position + 30,
        },
        &mut Rng::new(seed),
    );
    run(async move {
        let log = PartitionLog::open(&dir, config()).await.expect("open");
        assert_eq!(
            log.log_end_offset(),
            victim.base,
            "log ends before the damaged batch"
        );
        assert_eq!(log.segment_count(), 1, "later segments were removed");
        log.append(batch(1, 10, 1, 1), 4, None)
            .await
            .expect("append continues");
    });
}

#[test]
fn damage_in_an_indexed_closed_segment_is_reported_on_read_not_served() {
    let seed = seed("corruption-read");
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("log");
    let placed = run(build_pristine(dir.clone(), seed));
    let first_segment = placed[0].segment;
    let victim = placed
        .iter()
        .find(|p| p.segment == first_segment)
        .expect("batch")
        .clone();
    damage(
        &dir,
        &Damage::Flip {
            segment: first_segment,
            position: victim.position + 40,
        },
        &mut Rng::new(seed),
    );
    run(async move {
        // Closed segments with intact indexes are not rescanned on open (as in Kafka after a
        // clean roll), so the damage shows up when the batch is read: an error, not garbage.
        let log = PartitionLog::open(&dir, config()).await.expect("open");
        match log.read(victim.base, 1).await {
            Err(LogError::Corrupt { .. }) => {}
            Ok(read) => panic!("served {} bytes of a corrupt batch", read.data.len()),
            Err(other) => panic!("unexpected error {other}"),
        }
        let later = placed
            .iter()
            .find(|p| p.segment != first_segment)
            .expect("later batch");
        let read = log
            .read(later.base, 1)
            .await
            .expect("other segments still readable");
        assert!(read.data == later.bytes);
    });
}
