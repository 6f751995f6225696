//! Opening a partition directory and recovering it after a crash.
//!
//! Closed segments are trusted when their index files are intact and cover the segment's exact
//! size (they are written only after the segment was fdatasync'ed at roll); otherwise they are
//! scanned batch by batch. The last segment is always scanned. The first invalid byte ends the
//! log: the file is cut there (with a warning saying how much was cut) and later segments are
//! removed. Zero bytes after the last batch are O_DIRECT block padding, not corruption.

use super::admin::remove_segment_files;
use super::cache::BatchCache;
use super::checkpoint::Checkpoint;
use super::read::STORED_BATCH_MAX_BYTES;
use super::scan::{scan_segment, ScanEnd, ScanResult};
use super::segment::{self, SegmentIndex, SegmentMeta};
use super::writer::{create_empty_segment, read_tail};
use super::{ActiveSegment, Inner, LogConfig, LogError, PartitionLog, State};
use crate::rt::{self, DirectFile};
use crate::sync::AsyncLock;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::rc::Rc;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> LogError + 'a {
    move |err| LogError::io(op, path.to_owned(), err)
}

impl PartitionLog {
    /// Opens (creating if missing) and recovers the log in `dir`.
    pub async fn open(dir: &Path, config: LogConfig) -> Result<Rc<Self>, LogError> {
        let config = config.sanitized();
        std::fs::create_dir_all(dir).map_err(io_err("create log directory", dir))?;
        rt::prime_device(dir)
            .await
            .map_err(io_err("probe DMA support", dir))?;
        let checkpoint = load_checkpoint(dir).await?;
        let mut bases = list_segments(dir)?;
        let mut log_start = checkpoint.log_start_offset;
        if let Some(first) = bases.first() {
            log_start = log_start.max(*first);
        }
        while bases.len() >= 2 && bases[1] <= log_start {
            // Left behind by a crash between a log-start checkpoint and the unlink.
            remove_segment_files(dir, bases.remove(0)).await?;
        }
        let mut segments = BTreeMap::new();
        let mut recovered_last = None;
        let mut expected_base = bases.first().copied();
        for (i, base) in bases.iter().copied().enumerate() {
            if expected_base != Some(base) {
                tracing::warn!(dir = %dir.display(), "segment {base} does not continue offset {expected_base:?}; dropping it and later segments");
                drop_segments(dir, &bases[i..]).await?;
                break;
            }
            if i + 1 < bases.len() {
                if let Some(meta) = recover_closed(dir, base, &config).await? {
                    expected_base = Some(meta.end_offset);
                    segments.insert(base, meta);
                    continue;
                }
            }
            // The last segment, or a closed one that turned out to be torn: it becomes active.
            recovered_last = Some(recover_active(dir, base, &config).await?);
            drop_segments(dir, &bases[i + 1..]).await?;
            break;
        }
        let (active_meta, active, scanned_epochs) = match recovered_last {
            Some(found) if found.0.end_offset >= log_start => found,
            stale => {
                if stale.is_some() {
                    tracing::warn!(dir = %dir.display(), "log start {log_start} is past the recovered data; restarting the log there");
                }
                let all: Vec<i64> = segments
                    .keys()
                    .copied()
                    .chain(stale.map(|s| s.0.base_offset))
                    .collect();
                drop_segments(dir, &all).await?;
                segments.clear();
                start_empty(dir, log_start).await?
            }
        };
        let end_offset = active_meta.end_offset;
        segments.insert(active_meta.base_offset, active_meta);
        let mut epochs = checkpoint.epochs.clone();
        epochs.retain(|(_, start)| *start < end_offset);
        for (epoch, start) in scanned_epochs {
            if epochs.last().is_none_or(|(last, _)| epoch > *last) {
                epochs.push((epoch, start));
            }
        }
        let state = State {
            config,
            segments,
            active,
            log_start,
            next_offset: end_offset,
            visible_end: end_offset,
            durable_end: end_offset,
            pending: VecDeque::new(),
            flush_scheduled: false,
            sync_running: false,
            sync_waiters: Vec::new(),
            generation: 0,
            cache: BatchCache::default(),
            epochs,
            raft_state: checkpoint.raft_state.clone(),
            closed_indexes: VecDeque::new(),
            failed: None,
            closed: false,
            stats: Default::default(),
        };
        let fresh = state.checkpoint();
        if fresh != checkpoint {
            fresh
                .store(dir)
                .await
                .map_err(io_err("write checkpoint", dir))?;
        }
        let inner = Rc::new(Inner {
            dir: dir.to_owned(),
            state: RefCell::new(state),
            io_lock: AsyncLock::default(),
        });
        Ok(Rc::new(PartitionLog { inner }))
    }
}

async fn load_checkpoint(dir: &Path) -> Result<Checkpoint, LogError> {
    match Checkpoint::load(dir)
        .await
        .map_err(io_err("read checkpoint", dir))?
    {
        None => Ok(Checkpoint::default()),
        Some(Ok(checkpoint)) => Ok(checkpoint),
        Some(Err(problem)) => {
            tracing::warn!(dir = %dir.display(), "checkpoint unreadable ({problem}); log start falls back to the first segment and the epoch cache to the last segment's batches");
            Ok(Checkpoint::default())
        }
    }
}

/// Base offsets of the `.log` files, ascending; removes leftover temp files.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let entries = std::fs::read_dir(dir).map_err(io_err("list log directory", dir))?;
    let mut bases = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list log directory", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") {
            std::fs::remove_file(entry.path()).map_err(io_err("remove temp file", dir))?;
        } else if let Some(base) = segment::parse_log_name(&name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

async fn drop_segments(dir: &Path, bases: &[i64]) -> Result<(), LogError> {
    for base in bases.iter().rev() {
        remove_segment_files(dir, *base).await?;
    }
    Ok(())
}

/// A closed segment's summary from its index files, or by a scan that also rewrites them.
/// `None` when the segment is torn and has to become the last one.
async fn recover_closed(
    dir: &Path,
    base: i64,
    config: &LogConfig,
) -> Result<Option<SegmentMeta>, LogError> {
    let path = segment::log_path(dir, base);
    let size = std::fs::metadata(&path)
        .map_err(io_err("stat segment", &path))?
        .len();
    let offsets = rt::read_small_file(&segment::index_path(dir, base)).await;
    let times = rt::read_small_file(&segment::time_index_path(dir, base)).await;
    let problem = match (offsets, times) {
        (Ok(Some(offsets)), Ok(Some(times))) => {
            match segment::decode_index_files(&offsets, &times, base, size) {
                Ok((meta, _)) if meta.end_offset > base => return Ok(Some(meta)),
                Ok(_) => "index describes an empty segment".to_owned(),
                Err(problem) => problem,
            }
        }
        _ => "index files missing or unreadable".to_owned(),
    };
    tracing::info!(segment = %path.display(), "rebuilding index: {problem}");
    let file = DirectFile::open_read(&path)
        .await
        .map_err(io_err("open segment", &path))?;
    let interval = config.index_interval_bytes;
    let scanned = scan_segment(&file, base, interval, STORED_BATCH_MAX_BYTES)
        .await
        .map_err(io_err("scan segment", &path))?;
    if scanned.end != ScanEnd::Clean || scanned.meta.is_empty() {
        return Ok(None);
    }
    let (offset_bytes, time_bytes) = segment::encode_index_files(&scanned.meta, &scanned.index);
    let index_path = segment::index_path(dir, base);
    rt::write_file_atomic(&index_path, &offset_bytes)
        .await
        .map_err(io_err("write index", &index_path))?;
    let time_path = segment::time_index_path(dir, base);
    rt::write_file_atomic(&time_path, &time_bytes)
        .await
        .map_err(io_err("write time index", &time_path))?;
    Ok(Some(scanned.meta))
}

type Recovered = (SegmentMeta, ActiveSegment, Vec<(i32, i64)>);

/// Scans the segment that becomes active, cuts it at the first invalid byte, makes the result
/// durable, and loads its tail block and in-memory index.
async fn recover_active(dir: &Path, base: i64, config: &LogConfig) -> Result<Recovered, LogError> {
    let path = segment::log_path(dir, base);
    let file = DirectFile::open_rw(&path)
        .await
        .map_err(io_err("open segment", &path))?;
    let interval = config.index_interval_bytes;
    let ScanResult {
        meta,
        index,
        end,
        epochs,
        file_bytes,
    } = scan_segment(&file, base, interval, STORED_BATCH_MAX_BYTES)
        .await
        .map_err(io_err("scan segment", &path))?;
    let cut_bytes = file_bytes - meta.size_bytes;
    match &end {
        ScanEnd::Invalid(why) => tracing::warn!(
            segment = %path.display(),
            "recovery cut {cut_bytes} bytes after the last valid batch at byte {} (offset {}): {why}",
            meta.size_bytes,
            meta.end_offset
        ),
        ScanEnd::Padding => {
            tracing::debug!(segment = %path.display(), "dropped {cut_bytes} bytes of block padding")
        }
        ScanEnd::Clean => {}
    }
    if cut_bytes > 0 {
        file.truncate(meta.size_bytes)
            .await
            .map_err(io_err("truncate segment", &path))?;
    }
    file.fdatasync().await.map_err(io_err("fdatasync", &path))?;
    for stale in [
        segment::index_path(dir, base),
        segment::time_index_path(dir, base),
    ] {
        rt::remove_file(&stale)
            .await
            .map_err(io_err("remove index", &stale))?;
    }
    let tail = read_tail(&file, meta.size_bytes)
        .await
        .map_err(io_err("read tail", &path))?;
    let mut meta = meta;
    meta.first_append_ms = (!meta.is_empty()).then_some(meta.max_timestamp.max(0));
    let active = ActiveSegment {
        file: Rc::new(file),
        base_offset: base,
        tail,
        index,
    };
    Ok((meta, active, epochs))
}

async fn start_empty(dir: &Path, base: i64) -> Result<Recovered, LogError> {
    let path = segment::log_path(dir, base);
    let file = create_empty_segment(&path)
        .await
        .map_err(|f| f.to_error())?;
    let active = ActiveSegment {
        file: Rc::new(file),
        base_offset: base,
        tail: Vec::new(),
        index: SegmentIndex::default(),
    };
    Ok((SegmentMeta::empty(base), active, Vec::new()))
}
