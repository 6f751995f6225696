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
//!
//! In a cluster any broker answers InitProducerId, and a producer's id is checked on every
//! partition it writes, so two brokers must never hand out the same id. Each node allocates
//! from its own range of [`NODE_RANGE`] ids (node N: `N * NODE_RANGE ..`), which needs no
//! round trip to the controller (Kafka's controller hands out blocks instead, KIP-730).

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
/// Producer ids per node id: 2^31, so that every i32 node id has a range within i64.
pub const NODE_RANGE: i64 = 1 << 31;
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
    /// This node's ids: `range_start..range_end`.
    range_start: i64,
    range_end: i64,
}

impl ProducerIdAllocator {
    /// Node 0's allocator persisting under `meta_dir`; nothing is read until the first
    /// allocation.
    pub fn new(meta_dir: impl Into<PathBuf>) -> Self {
        Self::for_node(meta_dir, 0)
    }

    /// The allocator of node `node_id` (a negative id is treated as node 0).
    pub fn for_node(meta_dir: impl Into<PathBuf>, node_id: i32) -> Self {
        let range_start = i64::from(node_id.max(0)) * NODE_RANGE;
        Self {
            meta_dir: meta_dir.into(),
            next: Cell::new(range_start),
            block_end: Cell::new(range_start),
            range_start,
            range_end: range_start + NODE_RANGE,
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
        // A stored end outside this range (a data directory from before the node ranges,
        // or of another node id) is ignored: only this range is this node's.
        let range = self.range_start..self.range_end;
        let stored_end = Some(stored_end).filter(|end| range.contains(end));
        let start = stored_end
            .unwrap_or(self.range_start)
            .max(self.block_end.get());
        let end = start + BLOCK_SIZE;
        if end > self.range_end {
            return Err(BrokerError::internal(format!(
                "this node's producer ids ({}..{}) are used up",
                self.range_start, self.range_end
            )));
        }
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
    fn nodes_allocate_from_disjoint_ranges_and_leave_an_old_block_file_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A block file written before node ranges (node 0's range).
        fs::write(dir.path().join(BLOCK_FILE), b"3000").expect("write");
        let node_two = ProducerIdAllocator::for_node(dir.path(), 2);
        assert_eq!(node_two.allocate().expect("allocate"), 2 * NODE_RANGE);
        let reopened = ProducerIdAllocator::for_node(dir.path(), 2);
        assert_eq!(
            reopened.allocate().expect("allocate"),
            2 * NODE_RANGE + BLOCK_SIZE
        );
        let other = tempfile::tempdir().expect("tempdir");
        let node_three = ProducerIdAllocator::for_node(other.path(), 3);
        assert_eq!(node_three.allocate().expect("allocate"), 3 * NODE_RANGE);
        let last_node = ProducerIdAllocator::for_node(other.path(), i32::MAX);
        let id = last_node
            .allocate()
            .expect("the highest node id has a range too");
        assert_eq!(id, i64::from(i32::MAX) * NODE_RANGE);
    }

    #[test]
    fn a_garbled_block_file_is_an_error_not_a_reuse() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(BLOCK_FILE), b"not a number").expect("write");
        let allocator = ProducerIdAllocator::new(dir.path());
        assert!(allocator.allocate().is_err());
    }
}
