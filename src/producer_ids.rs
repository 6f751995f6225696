//! Durable producer-id allocation (InitProducerId), owned by shard 0.
//!
//! Ids are handed out from blocks of [`BLOCK_SIZE`]. Before the first id of a block is
//! handed out, the block's end is written to `data_dir/meta/producer_id_block` (temp file,
//! fsync, rename, fsync of the directory), so after any restart, clean or kill -9,
//! allocation resumes at the stored end and no id is ever handed out twice. A crash wastes
//! at most the rest of one block, as Kafka's block allocation does.
//!
//! Only shard 0 allocates; other shards reach it with one bus hop ([`next_producer_id`]).
//! The allocation itself has no await, so concurrent callers on shard 0 cannot interleave.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::BrokerError;
use crate::state::ShardState;

/// Ids reserved per durable write.
pub const BLOCK_SIZE: i64 = 1000;
/// The file under `data_dir/meta/` holding the end of the last reserved block.
pub const BLOCK_FILE: &str = "producer_id_block";
/// The shard that owns the allocator.
pub const ALLOCATOR_SHARD: usize = 0;

/// The next producer id, unique for the life of the data directory.
pub async fn next_producer_id(state: &Rc<ShardState>) -> Result<i64, BrokerError> {
    if state.shard_id == ALLOCATOR_SHARD {
        return state.partitions.producer_ids().allocate();
    }
    state
        .bus
        .invoke_on(ALLOCATOR_SHARD, |owner: Rc<ShardState>| async move {
            owner.partitions.producer_ids().allocate()
        })
        .await?
}

/// Shard 0's allocator state: `[next, block_end)` is the unused rest of the current block.
#[derive(Debug)]
pub struct ProducerIdAllocator {
    meta_dir: PathBuf,
    next: Cell<i64>,
    block_end: Cell<i64>,
}

impl ProducerIdAllocator {
    /// An allocator persisting under `meta_dir`; nothing is read until the first allocation.
    pub fn new(meta_dir: impl Into<PathBuf>) -> Self {
        Self {
            meta_dir: meta_dir.into(),
            next: Cell::new(0),
            block_end: Cell::new(0),
        }
    }

    /// One fresh id; reserves (durably) a new block when the current one is used up.
    pub fn allocate(&self) -> Result<i64, BrokerError> {
        if self.next.get() >= self.block_end.get() {
            self.reserve_block()?;
        }
        let id = self.next.get();
        self.next.set(id + 1);
        Ok(id)
    }

    fn reserve_block(&self) -> Result<(), BrokerError> {
        let stored_end = read_block_end(&self.meta_dir)?;
        let start = stored_end.max(self.block_end.get());
        let end = start
            .checked_add(BLOCK_SIZE)
            .ok_or_else(|| BrokerError::internal("producer id space exhausted (i64 overflow)"))?;
        replace_file_durably(&self.meta_dir, BLOCK_FILE, end.to_string().as_bytes())?;
        tracing::info!(start, end, "reserved a producer id block");
        self.next.set(start);
        self.block_end.set(end);
        Ok(())
    }
}

/// The stored end of the last reserved block; 0 when nothing was ever reserved.
fn read_block_end(meta_dir: &Path) -> Result<i64, BrokerError> {
    let path = meta_dir.join(BLOCK_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<i64>().map_err(|err| {
            BrokerError::Metadata(format!(
                "{} does not hold a producer id: {err}",
                path.display()
            ))
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(BrokerError::Metadata(format!(
            "read {}: {err}",
            path.display()
        ))),
    }
}

/// Atomically replaces `dir/name` with `contents`: temp file, fsync, rename, fsync of `dir`.
/// Small metadata files only (blocking I/O on the shard thread).
pub(crate) fn replace_file_durably(
    dir: &Path,
    name: &str,
    contents: &[u8],
) -> Result<(), BrokerError> {
    let fail = |op: &str, path: &Path, err: std::io::Error| {
        BrokerError::Storage(format!("{op} {}: {err}", path.display()))
    };
    fs::create_dir_all(dir).map_err(|err| fail("create", dir, err))?;
    let path = dir.join(name);
    let temp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&temp).map_err(|err| fail("create", &temp, err))?;
    file.write_all(contents)
        .map_err(|err| fail("write", &temp, err))?;
    file.sync_all().map_err(|err| fail("fsync", &temp, err))?;
    drop(file);
    fs::rename(&temp, &path).map_err(|err| fail("rename", &path, err))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|err| fail("fsync directory", dir, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_reopen_and_skip_the_unused_block_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ProducerIdAllocator::new(dir.path());
        let a: Vec<i64> = (0..3)
            .map(|_| first.allocate().expect("allocate"))
            .collect();
        assert_eq!(a, vec![0, 1, 2]);
        // A restart (or kill -9) loses the rest of the block, never reuses an id.
        let second = ProducerIdAllocator::new(dir.path());
        assert_eq!(second.allocate().expect("allocate"), BLOCK_SIZE);
        for _ in 1..BLOCK_SIZE {
            second.allocate().expect("allocate");
        }
        assert_eq!(second.allocate().expect("allocate"), 2 * BLOCK_SIZE);
        let stored = read_block_end(dir.path()).expect("read");
        assert_eq!(stored, 3 * BLOCK_SIZE);
    }

    #[test]
    fn a_garbled_block_file_is_an_error_not_a_reuse() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(BLOCK_FILE), b"not a number").expect("write");
        let allocator = ProducerIdAllocator::new(dir.path());
        assert!(allocator.allocate().is_err());
    }
}
