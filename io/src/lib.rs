//! Storage and kernel-facing code: the durable segmented partition log.
//!
//! [`log::PartitionLog`] is one Kafka partition's log on glommio DMA files (O_DIRECT, driven by
//! the owning shard's io_uring). See [`log`] for the model: dense offsets assigned in call
//! order, one O_DIRECT write per group of queued appends, group-committed `fdatasync`, CRC-checked
//! recovery that cuts torn tails, sparse offset and time indexes, and retention by whole
//! segments.
//!
//! Only the internal `rt` module names glommio; the internal `sync` module holds the
//! runtime-independent primitives (one-shot channel, FIFO async lock) the log uses.
//!
//! # Memory of an idle partition
//!
//! One open file (the active segment; closed segments are opened per cold read), the batch
//! cache (`<= cache_bytes_max`, 1 MiB by default), the active segment's in-memory indexes
//! (8 bytes per offset-index entry plus 16 bytes per time-index entry, one entry at most every
//! `index_interval_bytes`: at most 768 KiB for a full 128 MiB segment at 4 KiB, typically a third
//! of that), up to two closed segments' indexes cached for cold reads (same bound each), a
//! tail block under 4 KiB, and about 100 bytes per segment. With the defaults that is at most
//! about 3.3 MiB, and [`log::PartitionLog::memory_bytes`] reports the current figure.
//!
//! The batch caches of all logs on one shard also share a budget (256 MiB by default,
//! `RINGLET_LOG_CACHE_BYTES_PER_SHARD` or [`log::set_shard_cache_budget_bytes`]): without it
//! the cache alone grows by 1 MiB per busy partition (1,000 partitions: about 1 GiB).

pub mod error;
pub mod log;
mod memlock;
pub(crate) mod rt;
pub(crate) mod sync;

pub use error::LogError;
pub use log::{AppendInfo, LogConfig, LogStats, PartitionLog, ReadBatches, RetentionRunner};
pub use memlock::raise_memlock_limit;
