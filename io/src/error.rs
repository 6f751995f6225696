//! The crate's one error type.

use ringlet_protocol::record_batch::BatchError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid record batch #{batch_index} in append: {source}")]
    InvalidBatch {
        batch_index: usize,
        #[source]
        source: BatchError,
    },
    #[error("record batch of {size_bytes} bytes exceeds max_batch_bytes {max_bytes}")]
    BatchTooLarge { size_bytes: usize, max_bytes: usize },
    #[error("append carried no record batch")]
    EmptyAppend,
    #[error("offset {offset} out of range: log holds [{log_start}, {log_end})")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("offset {offset} is not a batch boundary")]
    NotBatchBoundary { offset: i64 },
    #[error("{op} failed on {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("append of offsets from {base_offset} aborted: {reason}")]
    AppendAborted { base_offset: i64, reason: String },
    #[error("log {} has failed ({reason}); reopen it to recover", dir.display())]
    Failed { dir: PathBuf, reason: String },
    #[error("log {} is closed", dir.display())]
    Closed { dir: PathBuf },
    #[error("corrupt {what} {}: {detail}", path.display())]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("cannot raise RLIMIT_MEMLOCK: {0}")]
    Memlock(#[source] std::io::Error),
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True when the underlying cause is a full disk (ENOSPC or EDQUOT): the append can be
    /// retried once space frees up.
    pub fn is_disk_full(&self) -> bool {
        match self {
            LogError::Io { source, .. } => is_disk_full_io(source),
            LogError::AppendAborted { reason, .. } => reason.contains("disk full"),
            _ => false,
        }
    }
}

pub(crate) fn is_disk_full_io(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || err.kind() == std::io::ErrorKind::StorageFull
}
