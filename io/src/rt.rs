//! The only place that names glommio: O_DIRECT files, detached tasks, task queues, timers.
//!
//! The log talks to [`DirectFile`] and a handful of free functions, so replacing the runtime
//! means rewriting this file. Everything here runs on the calling shard's own io_uring.

use glommio::io::{DmaBuffer, DmaFile, OpenOptions};
use glommio::{GlommioError, Latency, Shares, TaskQueueHandle};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// O_DIRECT alignment we write with: one 4 KiB block (covers 512 B and 4 KiB sector disks).
pub const BLOCK_BYTES: u64 = 4096;

pub fn align_down(value: u64) -> u64 {
    value & !(BLOCK_BYTES - 1)
}

pub fn align_up(value: u64) -> u64 {
    align_down(value + BLOCK_BYTES - 1)
}

/// glommio wraps errors with context but drops the OS error code on the way to `io::Error`;
/// we keep the original so ENOSPC stays recognisable.
fn to_io<T>(err: GlommioError<T>) -> io::Error {
    match err {
        GlommioError::IoError(source) => source,
        GlommioError::EnhancedIoError { source, .. } => source,
        other => other.into(),
    }
}

/// A block-aligned buffer that can be handed to an O_DIRECT write.
pub struct AlignedBuf {
    inner: DmaBuffer,
}

impl AlignedBuf {
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.inner.as_bytes_mut()
    }
}

thread_local! {
    static PRIMED_DEVICES: std::cell::RefCell<std::collections::HashSet<u64>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// glommio decides once per block device whether to use the IOPOLL ring by reading 512 bytes
/// at offset 0 of the first DMA file opened there. If that file is empty the read ends at EOF
/// without reaching the driver, the probe "succeeds", and every later read on a device without
/// poll queues (virtio, most cloud disks) fails with EOPNOTSUPP. So before the first open on a
/// device we let glommio probe a file that has a real block of data.
pub async fn prime_device(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let device = std::fs::metadata(dir)?.dev();
    if PRIMED_DEVICES.with(|set| set.borrow().contains(&device)) {
        return Ok(());
    }
    let probe = dir.join(".dma-probe.tmp");
    std::fs::write(&probe, vec![0u8; BLOCK_BYTES as usize])?;
    let opened = DmaFile::open(&probe).await.map_err(to_io);
    let removed = std::fs::remove_file(&probe);
    opened?;
    removed?;
    PRIMED_DEVICES.with(|set| set.borrow_mut().insert(device));
    Ok(())
}

/// An O_DIRECT file driven by this shard's io_uring.
pub struct DirectFile {
    file: DmaFile,
    path: PathBuf,
}

impl DirectFile {
    /// Opens read-write, creating the file if it is missing; never truncates.
    pub async fn open_rw(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .dma_open(path)
            .await
            .map_err(to_io)?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    pub async fn open_read(path: &Path) -> io::Result<Self> {
        let file = DmaFile::open(path).await.map_err(to_io)?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An aligned buffer of at least `len` bytes, rounded up to whole blocks. Bytes past `len`
    /// (the block padding) are zeroed; the caller fills `..len`.
    pub fn alloc(&self, len: usize) -> AlignedBuf {
        let size = align_up(len as u64).max(BLOCK_BYTES) as usize;
        let mut inner = self.file.alloc_dma_buffer(size);
        inner.as_bytes_mut()[len..].fill(0);
        AlignedBuf { inner }
    }

    /// Writes the whole buffer at block-aligned `pos`. A short write is an error: the caller
    /// treats the bytes as not written and rewrites the same range next time.
    pub async fn write_aligned(&self, pos: u64, buf: AlignedBuf) -> io::Result<()> {
        assert_eq!(pos % BLOCK_BYTES, 0, "unaligned O_DIRECT write at {pos}");
        let len = buf.inner.len();
        let written = self.file.write_at(buf.inner, pos).await.map_err(to_io)?;
        if written != len {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {len} bytes at {pos}"),
            ));
        }
        Ok(())
    }

    /// Reads up to `len` bytes at any `pos` (glommio widens to aligned I/O). Fewer bytes come
    /// back at end of file.
    pub async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let result = self.file.read_at(pos, len).await.map_err(to_io)?;
        Ok(result.to_vec())
    }

    pub async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(to_io)
    }

    pub async fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.truncate(len).await.map_err(to_io)
    }

    pub async fn size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(to_io)
    }
}

pub async fn remove_file(path: &Path) -> io::Result<()> {
    match glommio::io::remove(path).await.map_err(to_io) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

pub async fn rename(from: &Path, to: &Path) -> io::Result<()> {
    glommio::io::rename(from, to).await.map_err(to_io)
}

/// fsync of a directory, so that created, renamed and removed names survive a crash.
///
/// glommio 0.9's `Directory::open` passes the path to openat with dirfd -1 rather than
/// AT_FDCWD, so a relative path (the default `./data`) fails with EBADF; its file opens
/// canonicalise relative paths, its directory open does not. We hand it an absolute path.
/// Pinned by `io/tests/relative_paths.rs`.
pub async fn sync_dir(path: &Path) -> io::Result<()> {
    let path = if path.as_os_str().is_empty() {
        std::env::current_dir()?
    } else {
        std::path::absolute(path)?
    };
    let dir = glommio::io::Directory::open(&path).await.map_err(to_io)?;
    dir.sync().await.map_err(to_io)?;
    dir.close().await.map_err(to_io)
}

/// Replaces `path` with `bytes` atomically: write a temp file, fdatasync, rename, sync the dir.
/// The file is padded to whole blocks; callers encode their own length.
pub async fn write_file_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    remove_file(&tmp).await?;
    let file = DirectFile::open_rw(&tmp).await?;
    let mut buf = file.alloc(bytes.len());
    buf.as_mut_slice()[..bytes.len()].copy_from_slice(bytes);
    file.write_aligned(0, buf).await?;
    file.fdatasync().await?;
    drop(file);
    rename(&tmp, path).await?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    sync_dir(dir).await
}

/// Whole contents of a small file, or `None` if it does not exist.
pub async fn read_small_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match DirectFile::open_read(path).await {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let size = file.size().await?;
    file.read_at(0, size as usize).await.map(Some)
}

/// Removes a directory tree. Blocking syscalls, acceptable for the rare DeleteTopics path.
pub fn remove_dir_all(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Runs `future` to completion on this shard even if nobody awaits it.
pub fn spawn_detached(future: impl Future<Output = ()> + 'static) {
    glommio::spawn_local(future).detach();
}

/// A background task queue with few shares, so its work yields to the latency-sensitive queues.
pub struct LowPriorityQueue {
    handle: TaskQueueHandle,
}

impl LowPriorityQueue {
    pub fn new(name: &str, shares: usize) -> Self {
        let handle = glommio::executor().create_task_queue(
            Shares::Static(shares),
            Latency::NotImportant,
            name,
        );
        Self { handle }
    }

    pub fn spawn(&self, future: impl Future<Output = ()> + 'static) -> io::Result<()> {
        glommio::spawn_local_into(future, self.handle)
            .map(|task| {
                task.detach();
            })
            .map_err(to_io)
    }
}

pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await
}

/// Lets other tasks (appends) run during long background work.
pub async fn yield_now() {
    glommio::yield_if_needed().await
}

/// Wall-clock milliseconds since the Unix epoch (Kafka timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
