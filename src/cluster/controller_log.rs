//! The durable Raft log of the metadata controller (Raft group 0), in
//! `data_dir/meta/controller/`.
//!
//! The controller log is small (one entry per admin operation or broker registration), so the
//! whole log also lives in memory and reads never touch the disk. On disk:
//!
//! - `entries.log`: append-only records, each `u32 length | u32 crc32c | u64 term | u64 index
//!   | u8 kind | data` (big-endian; `length` counts the bytes after the CRC, the CRC covers
//!   them). A suffix rewrite truncates the file at the first replaced record and appends;
//!   every [`Storage::append`] ends with one `fdatasync`, before it returns.
//! - `hard_state`: term, vote and commit plus a CRC, replaced atomically (temp file, fsync,
//!   rename, fsync directory). It is written only when the term or the vote changes: those
//!   are the promises a vote or an append acknowledgement rests on. Commit changes are
//!   written too, so a restarted broker applies its own log up to its last known commit
//!   before serving (commits are rare: one per metadata command).
//! - `initial_conf`: the membership the group started with (the "snapshot" at index 0, term
//!   0), written once when the directory is created, so a restart with a different `voters`
//!   argument cannot change the group's history. Later changes are ConfChange log entries.
//!
//! On open, a torn or corrupt tail of `entries.log` (short record, bad length, CRC mismatch,
//! an index out of sequence) is cut with a warning, keeping the valid prefix: a crash during
//! an append loses at most the unacknowledged entries of that append.
//!
//! The log is never compacted yet, so [`Storage::install_snapshot`] returns an error: no
//! controller ever has a snapshot to send. Plain blocking `std::fs` is used on purpose: the
//! controller runs on shard 0 and its writes are small and rare (as `topic_store.rs`), so an
//! `fdatasync` stalling that executor for a moment is an acceptable price for simplicity.
//! After any failed write or sync the log refuses further appends: what reached the disk is
//! then unknown (the page cache may have dropped the dirty pages), and only a restart, which
//! re-reads the file, can tell.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ringlet_raft::storage::limit_size;
use ringlet_raft::{ConfState, Entry, HardState, RaftError, Snapshot, SnapshotMeta, Storage};

use crate::error::BrokerError;

mod format;

use format::{decode_conf, decode_hard_state, encode_conf, encode_hard_state, scan};

const LOG_FILE: &str = "entries.log";
const HARD_STATE_FILE: &str = "hard_state";
const CONF_FILE: &str = "initial_conf";

/// Raft group 0's storage: see the module docs.
#[derive(Debug)]
pub struct ControllerLog {
    dir: PathBuf,
    /// `entries.log`, opened for appending.
    file: File,
    /// `entries[i].index == first_index() + i`.
    entries: Vec<Entry>,
    /// `positions[i]`: where `entries[i]`'s record starts in the file.
    positions: Vec<u64>,
    /// The file length: where the next record goes.
    end: u64,
    hard_state: HardState,
    snapshot: Snapshot,
    /// Set by a failed write or sync; appends are refused from then on.
    failed: Option<String>,
}

impl ControllerLog {
    /// Opens (or, on a fresh directory, creates with membership `voters`) the log in `dir`.
    pub fn open(dir: &Path, voters: &[u64]) -> Result<Self, BrokerError> {
        fs::create_dir_all(dir).map_err(|err| io_error("create", dir, err))?;
        let conf = load_or_create_conf(dir, voters)?;
        let hard_state = match read_checked(&dir.join(HARD_STATE_FILE))? {
            Some(payload) => decode_hard_state(&payload).ok_or_else(|| corrupt(HARD_STATE_FILE))?,
            None => HardState::default(),
        };
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index: 0,
                term: 0,
                conf,
            },
            data: Default::default(),
        };
        let mut log = Self::open_entries(dir, snapshot)?;
        log.hard_state = hard_state;
        if log.hard_state.commit > log.last_index() {
            // The tail holding committed entries was cut: this node forgets them and the
            // leader re-sends them (a commit past the log would break Raft's invariants).
            tracing::warn!(
                commit = log.hard_state.commit,
                last_index = log.last_index(),
                "controller log is shorter than its stored commit; lowering the commit"
            );
            log.hard_state.commit = log.last_index();
        }
        Ok(log)
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads `entries.log`, cutting a torn or corrupt tail.
    fn open_entries(dir: &Path, snapshot: Snapshot) -> Result<Self, BrokerError> {
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|err| io_error("open", &path, err))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|err| io_error("read", &path, err))?;
        let scanned = scan(&bytes, snapshot.meta.index + 1);
        if let Some(problem) = &scanned.problem {
            tracing::warn!(
                path = %path.display(),
                valid_bytes = scanned.valid_len,
                file_bytes = bytes.len(),
                kept_entries = scanned.entries.len(),
                "controller log has a torn or corrupt tail ({problem}); truncating it"
            );
            file.set_len(scanned.valid_len)
                .and_then(|()| file.sync_all())
                .map_err(|err| io_error("truncate", &path, err))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            entries: scanned.entries,
            positions: scanned.positions,
            end: scanned.valid_len,
            hard_state: HardState::default(),
            snapshot,
            failed: None,
        })
    }

    /// Checks that `entries` can be appended: contiguous, no gap, not below the snapshot.
    fn check_append(&self, entries: &[Entry]) -> ringlet_raft::Result<()> {
        if let Some(reason) = &self.failed {
            return Err(RaftError::Storage(format!(
                "controller log failed earlier ({reason}); restart to recover"
            )));
        }
        let first = entries[0].index;
        if first < self.first_index() || first > self.last_index() + 1 {
            return Err(RaftError::Storage(format!(
                "append at {first} leaves a gap or rewrites the snapshot (log is {}..={})",
                self.first_index(),
                self.last_index()
            )));
        }
        if entries
            .iter()
            .zip(first..)
            .any(|(e, index)| e.index != index)
        {
            return Err(RaftError::Storage(format!(
                "appended entries from {first} are not contiguous"
            )));
        }
        Ok(())
    }

    /// Truncates the file at `keep` entries and appends `buf`, then fdatasyncs.
    fn write_suffix(&mut self, keep: usize, buf: &[u8]) -> std::io::Result<()> {
        let cut = self.positions.get(keep).copied().unwrap_or(self.end);
        if cut < self.end {
            self.file.set_len(cut)?;
        }
        // Append mode writes at the (possibly just truncated) end of the file.
        self.file.write_all(buf)?;
        self.file.sync_data()
    }
}

impl Storage for ControllerLog {
    fn hard_state(&self) -> HardState {
        self.hard_state
    }

    fn snapshot(&self) -> Snapshot {
        self.snapshot.clone()
    }

    fn first_index(&self) -> u64 {
        self.snapshot.meta.index + 1
    }

    fn last_index(&self) -> u64 {
        self.snapshot.meta.index + self.entries.len() as u64
    }

    fn term(&self, index: u64) -> ringlet_raft::Result<u64> {
        let snap_index = self.snapshot.meta.index;
        if index == snap_index {
            return Ok(self.snapshot.meta.term);
        }
        if index < snap_index {
            return Err(RaftError::Compacted {
                index,
                first_index: self.first_index(),
            });
        }
        if index > self.last_index() {
            return Err(RaftError::Unavailable {
                index,
                last_index: self.last_index(),
            });
        }
        Ok(self.entries[(index - snap_index - 1) as usize].term)
    }

    fn entries(&self, lo: u64, hi: u64, max_bytes: u64) -> ringlet_raft::Result<Vec<Entry>> {
        ringlet_raft::storage::check_range(self.first_index(), self.last_index(), lo, hi)?;
        if lo >= hi {
            return Ok(Vec::new());
        }
        let base = self.first_index();
        let mut out = self.entries[(lo - base) as usize..(hi - base) as usize].to_vec();
        limit_size(&mut out, max_bytes);
        Ok(out)
    }

    fn append(&mut self, entries: &[Entry]) -> ringlet_raft::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.check_append(entries)?;
        let keep = (entries[0].index - self.first_index()) as usize;
        let start = self.positions.get(keep).copied().unwrap_or(self.end);
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(entries.len());
        for entry in entries {
            positions.push(start + buf.len() as u64);
            format::encode_record(entry, &mut buf)?;
        }
        if let Err(err) = self.write_suffix(keep, &buf) {
            let reason = format!("append to {}: {err}", self.dir.join(LOG_FILE).display());
            self.failed = Some(reason.clone());
            return Err(RaftError::Storage(reason));
        }
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
        self.positions.truncate(keep);
        self.positions.extend(positions);
        self.end = start + buf.len() as u64;
        Ok(())
    }

    fn set_hard_state(&mut self, hard_state: HardState) -> ringlet_raft::Result<()> {
        let promise_changed =
            hard_state.term != self.hard_state.term || hard_state.vote != self.hard_state.vote;
        // The commit is written too (metadata commits are rare): a restarted broker then
        // rebuilds its topic and broker tables from its own log before it serves clients,
        // instead of answering UNKNOWN_TOPIC until a leader tells it the commit again.
        let commit_changed = hard_state.commit != self.hard_state.commit;
        if promise_changed || commit_changed {
            write_atomic(&self.dir, HARD_STATE_FILE, &encode_hard_state(&hard_state))
                .map_err(|err| RaftError::Storage(format!("write controller hard state: {err}")))?;
        }
        self.hard_state = hard_state;
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> ringlet_raft::Result<()> {
        Err(RaftError::Storage(format!(
            "controller log snapshots are not implemented (the log is never compacted); \
             refusing a snapshot at index {}",
            snapshot.meta.index
        )))
    }
}

/// The stored initial membership; on a fresh directory, `voters`, stored first.
fn load_or_create_conf(dir: &Path, voters: &[u64]) -> Result<ConfState, BrokerError> {
    let path = dir.join(CONF_FILE);
    if let Some(payload) = read_checked(&path)? {
        return decode_conf(&payload).ok_or_else(|| corrupt(CONF_FILE));
    }
    let conf = ConfState::with_voters(voters);
    write_atomic(dir, CONF_FILE, &encode_conf(&conf))
        .map_err(|err| io_error("write", &path, err))?;
    Ok(conf)
}

/// A small file's payload (everything before its trailing CRC32C), or `None` if absent.
/// These files are replaced atomically, so a bad CRC is real corruption: an error, never
/// silently reset (forgetting a vote could elect two leaders in one term).
fn read_checked(path: &Path) -> Result<Option<Vec<u8>>, BrokerError> {
    let mut bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error("read", path, err)),
    };
    let Some(split) = bytes.len().checked_sub(4) else {
        return Err(corrupt(&path.display().to_string()));
    };
    let crc = u32::from_be_bytes(bytes[split..].try_into().expect("4 bytes"));
    bytes.truncate(split);
    if crc32c::crc32c(&bytes) != crc {
        return Err(corrupt(&path.display().to_string()));
    }
    Ok(Some(bytes))
}

/// Replaces `dir/name` with `payload` plus its CRC32C: temp file, fsync, rename, fsync dir.
fn write_atomic(dir: &Path, name: &str, payload: &[u8]) -> std::io::Result<()> {
    let temp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&temp)?;
    file.write_all(payload)?;
    file.write_all(&crc32c::crc32c(payload).to_be_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

fn corrupt(what: &str) -> BrokerError {
    BrokerError::Storage(format!("controller {what} is corrupt"))
}

fn io_error(op: &str, path: &Path, err: std::io::Error) -> BrokerError {
    BrokerError::Storage(format!("{op} {}: {err}", path.display()))
}

#[cfg(test)]
mod tests;
