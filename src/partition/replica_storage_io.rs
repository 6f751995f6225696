//! The I/O of a [`ReplicaStorage`]: open (rebuild the view from the log), the writes the
//! driver does for a Ready, read-backs of evicted payloads, and the replica state file.
//!
//! The state file ([`STATE_FILE`], next to the log: `dir` is the caller's choice, normally
//! the partition directory) holds term, vote, commit and the [`Anchor`], with a CRC32C,
//! and is replaced atomically and durably (temp file, fsync, rename, fsync of the
//! directory). Raft needs term and vote durable before any message of the same Ready
//! leaves; the commit index in it is a lower bound, only a hint on restart.
//!
//! It is written with blocking `std::fs` calls on the shard thread (as the producer-id
//! block and producer snapshots are): `ringlet_io` does not export its async file helper,
//! and the broker crate does not name glommio. Term and vote change rarely.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use ringlet_io::log::{AppendInfo, PartitionLog};
use ringlet_io::LogError;
use ringlet_protocol::record_batch::{parse_header, split_batches};
use ringlet_raft::{Entry, HardState};

use super::producer_state_recovery::ProducerBatch;
use super::replica_storage::{Anchor, BatchMeta, PlanError, ReplicaStorage};
use super::replica_storage_batch::{decode_stored, entry_batch, is_raft_only, log_start_target};
use super::replica_storage_sidecar::{self as sidecar, RaftOnlyEntry};

/// Term, vote, commit and anchor.
pub const STATE_FILE: &str = "raft_state";
const STATE_MAGIC: &[u8; 4] = b"RRS1";
/// Bytes read per step when rebuilding the view on open.
const SCAN_READ_BYTES: usize = 1 << 20;

/// The Raft term of a stored batch. Batches written before replication carry epoch 0 (or
/// -1 from old writers): both are term 0, below every elected leader's term.
pub(super) fn term_of_epoch(epoch: i32) -> u64 {
    u64::try_from(epoch).unwrap_or(0)
}

/// The partition leader epoch to stamp for `term`.
fn epoch_of_term(term: u64) -> i32 {
    i32::try_from(term).expect("raft invariant: term fits the Kafka leader epoch (i32)")
}

/// One Ready's entries as log appends and a sidecar rewrite (from
/// [`ReplicaStorage::write_plan`]).
#[derive(Debug)]
pub struct EntryWrites {
    /// The Raft index of the first entry written, if any.
    first_index: Option<u64>,
    /// Where the first entry starts: the log is cut there first unless it ends there.
    base_offset: i64,
    appends: Vec<PlannedAppend>,
    /// Raft's own entries after this write, when it changes them (the sidecar's content).
    sidecar: Option<Vec<RaftOnlyEntry>>,
}

/// One append call: a run of entries of one term (one leader epoch).
#[derive(Debug)]
struct PlannedAppend {
    first_index: u64,
    bytes: BytesMut,
    epoch: i32,
    base_offset: i64,
    last_offset: i64,
}

/// What a replica's write puts in its log besides data, for the state kept beside the log.
#[derive(Debug, Default)]
pub struct WrittenBatches {
    /// The batches with a producer id, at the offsets the log gives them.
    pub producer_batches: Vec<ProducerBatch>,
    /// The log-start commands (DeleteRecords): `(Raft index, requested offset)`.
    pub log_start_commands: Vec<(u64, i64)>,
}

impl EntryWrites {
    /// One pass over the batches of these writes (a replica's hot path).
    pub fn written_batches(&self) -> WrittenBatches {
        let mut written = WrittenBatches::default();
        for run in &self.appends {
            let Ok(ranges) = split_batches(&run.bytes) else {
                continue;
            };
            let mut offset = run.base_offset;
            for range in ranges {
                let batch = &run.bytes[range];
                let Ok(header) = parse_header(batch) else {
                    continue;
                };
                if let Some(producer) = ProducerBatch::of(&header, batch, offset) {
                    written.producer_batches.push(producer);
                }
                offset += i64::from(header.last_offset_delta) + 1;
            }
        }
        let first = self.first_index.unwrap_or(u64::MAX);
        let own = self.sidecar.iter().flatten().filter(|e| e.index >= first);
        written.log_start_commands = own
            .filter_map(|e| Some((e.index, log_start_of(&e.data)?)))
            .collect();
        written
    }

    /// The Raft index of the first entry written, if any.
    pub fn first_index(&self) -> Option<u64> {
        self.first_index
    }

    /// Whether [`ReplicaStorage::write`] will cut `log` first (it does not end where these
    /// writes start).
    pub fn cuts(&self, log: &PartitionLog) -> bool {
        self.first_index.is_some() && log.next_offset() != self.base_offset
    }
}

impl ReplicaStorage {
    /// Opens the replica view of `log`: the state from `state_dir` (absent: a fresh
    /// replica) and one meta per batch from a scan of the log from the anchor. `voters` is
    /// the group's initial membership; later changes are replayed from the log by
    /// `RawNode::new`. First finishes a log-start move a crash interrupted
    /// (`replica_storage_moves`).
    pub async fn open(
        log: &PartitionLog,
        state_dir: &Path,
        voters: &[u64],
    ) -> Result<ReplicaStorage, LogError> {
        let (anchor, hard_state) =
            super::replica_storage_moves::finish_interrupted_moves(log, state_dir).await?;
        let log_start = log.log_start_offset();
        if log_start != anchor.base_offset {
            return Err(corrupt(
                log.dir(),
                format!(
                    "log starts at offset {log_start} but raft index {} is at offset {}",
                    anchor.first_index, anchor.base_offset
                ),
            ));
        }
        let mut storage = ReplicaStorage::new(anchor, hard_state, voters);
        let mut own = sidecar::load(state_dir)?;
        own.retain(|e| e.index >= anchor.first_index);
        let kept = own.len();
        scan_log(log, &mut storage, own).await?;
        let merged = storage.raft_only_from(anchor.first_index);
        if merged.len() != kept {
            // Entries after the recovered log end (the batches before them were lost in a
            // crash): gone from the Raft log, so from the file too, before a later batch
            // could land at their position.
            sidecar::store(state_dir, &merged)?;
        }
        Ok(storage)
    }

    /// What writing `entries` (a Ready's) means for the log, computed from the view as it
    /// is (call before `storage_mut().append(entries)`). Pure: no borrow is held while
    /// [`ReplicaStorage::write`] awaits.
    pub fn write_plan(&self, entries: &[Entry]) -> Result<EntryWrites, LogError> {
        let metas = match self.plan(entries) {
            Ok(metas) => metas,
            Err(PlanError::Gap(reason)) => panic!("raft invariant: {reason}"),
            Err(PlanError::NotABatch { position, source }) => {
                return Err(LogError::InvalidBatch {
                    batch_index: position,
                    source,
                })
            }
        };
        let mut appends: Vec<PlannedAppend> = Vec::new();
        let mut own = Vec::new();
        for (entry, meta) in entries.iter().zip(&metas) {
            if is_raft_only(entry) {
                own.push(RaftOnlyEntry {
                    index: entry.index,
                    term: entry.term,
                    position: meta.base_offset,
                    kind: entry.kind,
                    data: entry.data.clone(),
                });
                continue;
            }
            let epoch = epoch_of_term(entry.term);
            match appends.last_mut() {
                Some(run) if run.epoch == epoch => {
                    run.bytes.extend_from_slice(&entry_batch(entry));
                    run.last_offset = meta.last_offset;
                }
                _ => appends.push(PlannedAppend {
                    first_index: entry.index,
                    bytes: entry_batch(entry),
                    epoch,
                    base_offset: meta.base_offset,
                    last_offset: meta.last_offset,
                }),
            }
        }
        let base_offset = metas.first().map_or(self.next_offset(), |m| m.base_offset);
        let first_index = entries.first().map(|e| e.index);
        let sidecar = first_index
            .filter(|first| self.sidecar_needs_rewrite(*first, !own.is_empty()))
            .map(|first| {
                let mut all = self.raft_only_before(first);
                all.extend(own);
                all
            });
        Ok(EntryWrites {
            first_index,
            base_offset,
            appends,
            sidecar,
        })
    }

    /// Performs `writes` and waits until they are durable. Cuts the log at the first
    /// entry's base offset unless it ends there: a follower replacing a conflicting
    /// suffix, or the retry of a write that failed halfway (its batches may be in the
    /// log although the view never got them). Then rewrites the sidecar in `state_dir`
    /// (Raft's own entries) when it changes, before any batch that follows them is
    /// appended (see `replica_storage_sidecar`). One append per run of equal terms.
    ///
    /// The log assigns offsets at its end, which by Log Matching is where the leader put
    /// the same batches; that they match the view's prediction is asserted.
    pub async fn write(
        log: &PartitionLog,
        state_dir: &Path,
        writes: EntryWrites,
    ) -> Result<Vec<AppendInfo>, LogError> {
        if writes.first_index.is_none() {
            return Ok(Vec::new());
        }
        if log.next_offset() != writes.base_offset {
            log.truncate_suffix(writes.base_offset).await?;
        }
        if let Some(entries) = &writes.sidecar {
            sidecar::store(state_dir, entries)?;
        }
        let Some(last_offset) = writes.appends.last().map(|a| a.last_offset) else {
            return Ok(Vec::new());
        };
        let mut infos = Vec::with_capacity(writes.appends.len());
        for run in writes.appends {
            let info = log.append(run.bytes, run.epoch, None).await?;
            assert!(
                (info.base_offset, info.last_offset) == (run.base_offset, run.last_offset),
                "raft invariant: entries from {} landed at offsets {}..={}, expected {}..={}",
                run.first_index,
                info.base_offset,
                info.last_offset,
                run.base_offset,
                run.last_offset
            );
            infos.push(info);
        }
        log.wait_durable(last_offset).await?;
        Ok(infos)
    }

    /// [`ReplicaStorage::write_plan`] then [`ReplicaStorage::write`].
    pub async fn write_entries(
        log: &PartitionLog,
        state_dir: &Path,
        storage: &ReplicaStorage,
        entries: &[Entry],
    ) -> Result<Vec<AppendInfo>, LogError> {
        let writes = storage.write_plan(entries)?;
        Self::write(log, state_dir, writes).await
    }

    /// Reads `count` stored batches from `offset` (a batch start, from
    /// [`ReplicaStorage::read_back_plan`]), at most about `max_bytes` but at least one,
    /// for [`ReplicaStorage::insert_loaded`]. Stops early at the log end.
    pub async fn read_back(
        log: &PartitionLog,
        offset: i64,
        count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, LogError> {
        let (mut offset, mut total) = (offset, 0usize);
        let mut out = Vec::new();
        while out.len() < count && offset < log.log_end_offset() {
            let read = log
                .read(offset, max_bytes.saturating_sub(total).max(1))
                .await?;
            let ranges = split_batches(&read.data).map_err(|err| corrupt(log.dir(), err))?;
            if ranges.is_empty() {
                break;
            }
            for range in ranges {
                let size = range.len();
                if out.len() >= count || (!out.is_empty() && total + size > max_bytes) {
                    return Ok(out);
                }
                let batch = read.data.slice(range);
                let header = parse_header(&batch).map_err(|err| corrupt(log.dir(), err))?;
                if header.base_offset != offset {
                    return Ok(out); // the log changed under us: the caller retries later
                }
                out.push(batch);
                (offset, total) = (header.last_offset() + 1, total + size);
            }
        }
        Ok(out)
    }

    /// Replaces the state file durably with `hs` (keeping its anchor). Call it when term
    /// or vote changed, before sending that Ready's messages; the caller decides: a
    /// commit-only change needs no write, the commit index being only a hint on restart
    /// (Raft recovers it from the leader).
    pub async fn write_hard_state(dir: &Path, hs: HardState) -> Result<(), LogError> {
        let (anchor, _) = load_state(dir)?;
        write_state(dir, STATE_FILE, anchor, hs)
    }
}

/// Appends a meta for every batch from the anchor to the log end, with Raft's own entries
/// (`own`, from the sidecar, in index order) merged in before the batch at their position.
/// The tail's payloads stay in the cache (it evicts the older ones), so a restarted leader
/// starts warm. Entries of `own` past the log end are left out.
async fn scan_log(
    log: &PartitionLog,
    storage: &mut ReplicaStorage,
    own: Vec<RaftOnlyEntry>,
) -> Result<(), LogError> {
    let mut own = own.into_iter().peekable();
    let mut offset = storage.anchor().base_offset;
    let mut last_term = storage.anchor().prev_term;
    let log_end = log.log_end_offset();
    while offset < log_end {
        let read = log.read(offset, SCAN_READ_BYTES).await?;
        let ranges = split_batches(&read.data).map_err(|err| corrupt(log.dir(), err))?;
        if ranges.is_empty() {
            break;
        }
        for range in ranges {
            let batch = read.data.slice(range);
            let header = parse_header(&batch).map_err(|err| corrupt(log.dir(), err))?;
            last_term = merge_raft_only(log, storage, &mut own, offset, last_term)?;
            let term = term_of_epoch(header.partition_leader_epoch);
            if header.base_offset != offset || term < last_term {
                return Err(corrupt(
                    log.dir(),
                    format!(
                        "batch at {} (epoch {}) after offset {offset} (term {last_term}): \
                         not a dense log of non-decreasing epochs",
                        header.base_offset, header.partition_leader_epoch
                    ),
                ));
            }
            let meta = BatchMeta {
                term,
                base_offset: header.base_offset,
                last_offset: header.last_offset(),
            };
            if let Some(offset) = log_start_target(&header, &batch) {
                let index = ringlet_raft::Storage::last_index(storage) + 1;
                storage.scanned_log_start_commands.push((index, offset));
            }
            let (kind, data) = decode_stored(&batch);
            storage.push_stored(meta, kind, data);
            (offset, last_term) = (meta.last_offset + 1, term);
        }
    }
    merge_raft_only(log, storage, &mut own, offset, last_term)?;
    Ok(())
}

/// Pushes the entries of `own` positioned at `offset` (the next batch, or the log end);
/// the term of the last entry pushed. An entry positioned before `offset`, or whose index
/// is not the next one, means the sidecar does not belong to this log.
fn merge_raft_only(
    log: &PartitionLog,
    storage: &mut ReplicaStorage,
    own: &mut std::iter::Peekable<std::vec::IntoIter<RaftOnlyEntry>>,
    offset: i64,
    mut last_term: u64,
) -> Result<u64, LogError> {
    while let Some(entry) = own.next_if(|e| e.position <= offset) {
        let expected = ringlet_raft::Storage::last_index(storage) + 1;
        if entry.position != offset || entry.index != expected || entry.term < last_term {
            return Err(corrupt(
                log.dir(),
                format!(
                    "raft entry {} (term {}) at offset {} does not fit the log: next is \
                     index {expected} at offset {offset} (term {last_term})",
                    entry.index, entry.term, entry.position
                ),
            ));
        }
        if let Some(target) = log_start_of(&entry.data) {
            storage
                .scanned_log_start_commands
                .push((entry.index, target));
        }
        last_term = entry.term;
        storage.push_raft_only(entry);
    }
    Ok(last_term)
}

/// The offset a log-start command entry asks for, else `None`.
fn log_start_of(data: &[u8]) -> Option<i64> {
    let header = parse_header(data).ok()?;
    log_start_target(&header, data)
}

/// The anchor and hard state in `dir` (defaults when there is no state file).
pub(super) fn load_state(dir: &Path) -> Result<(Anchor, HardState), LogError> {
    Ok(load_state_file(dir, STATE_FILE)?.unwrap_or_default())
}

/// The anchor and hard state in `dir/name`, if that file exists.
pub(super) fn load_state_file(
    dir: &Path,
    name: &str,
) -> Result<Option<(Anchor, HardState)>, LogError> {
    let path = dir.join(name);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let state = decode_state(&bytes).map_err(|detail| LogError::Corrupt {
        what: "raft state file",
        path: path.clone(),
        detail,
    })?;
    Ok(Some(state))
}

/// Replaces `dir/name` durably with `anchor` and `hs`.
pub(super) fn write_state(
    dir: &Path,
    name: &str,
    anchor: Anchor,
    hs: HardState,
) -> Result<(), LogError> {
    replace_file_durably(dir, name, &encode_state(anchor, hs))
}

pub(super) fn encode_state(anchor: Anchor, hs: HardState) -> Vec<u8> {
    let mut out = STATE_MAGIC.to_vec();
    for value in [hs.term, hs.vote_word(), hs.commit, anchor.first_index] {
        out.extend_from_slice(&value.to_be_bytes());
    }
    out.extend_from_slice(&anchor.base_offset.to_be_bytes());
    out.extend_from_slice(&anchor.prev_term.to_be_bytes());
    seal(&mut out);
    out
}

pub(super) fn decode_state(bytes: &[u8]) -> Result<(Anchor, HardState), String> {
    let body = unseal(bytes, STATE_MAGIC, 48).ok_or("bad length, magic or checksum")?;
    let field = |i: usize| u64::from_be_bytes(body[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let hs = HardState {
        term: field(0),
        vote: HardState::vote_from_word(field(1)),
        commit: field(2),
    };
    let anchor = Anchor {
        first_index: field(3),
        base_offset: field(4) as i64,
        prev_term: field(5),
    };
    if anchor.first_index == 0 || anchor.base_offset < 0 {
        return Err(format!("invalid anchor {anchor:?}"));
    }
    Ok((anchor, hs))
}

/// Appends the CRC32C of everything before it.
fn seal(bytes: &mut Vec<u8>) {
    let crc = crc32c::crc32c(bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
}

/// The `body_len` bytes between `magic` and a matching checksum.
fn unseal<'a>(bytes: &'a [u8], magic: &[u8; 4], body_len: usize) -> Option<&'a [u8]> {
    if bytes.len() != 4 + body_len + 4 || &bytes[..4] != magic {
        return None;
    }
    let (sealed, crc) = bytes.split_at(4 + body_len);
    (crc32c::crc32c(sealed).to_be_bytes() == crc).then_some(&sealed[4..])
}

pub(super) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, LogError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io_error("read raft state", path, source)),
    }
}

/// Replaces `dir/name` atomically and durably: temp file, fsync, rename, fsync of `dir`.
pub(super) fn replace_file_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), LogError> {
    use std::io::Write;
    let path = dir.join(name);
    // A leftover temp file is harmless: the log's open removes `*.tmp` files.
    let temp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&temp).map_err(|e| io_error("create", &temp, e))?;
    file.write_all(bytes)
        .map_err(|e| io_error("write", &temp, e))?;
    file.sync_all().map_err(|e| io_error("fsync", &temp, e))?;
    drop(file);
    std::fs::rename(&temp, &path).map_err(|e| io_error("rename", &path, e))?;
    sync_dir(dir)
}

/// Removes `dir/name` durably: unlink, fsync of `dir`.
pub(super) fn remove_file_durably(dir: &Path, name: &str) -> Result<(), LogError> {
    let path = dir.join(name);
    std::fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    let dir_file = std::fs::File::open(dir).map_err(|e| io_error("open", dir, e))?;
    dir_file
        .sync_all()
        .map_err(|e| io_error("fsync directory", dir, e))
}

fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> LogError {
    LogError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn corrupt(dir: &Path, detail: impl ToString) -> LogError {
    LogError::Corrupt {
        what: "replicated partition log",
        path: dir.to_owned(),
        detail: detail.to_string(),
    }
}
