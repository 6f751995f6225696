//! Partition placement: which shard owns a partition. A pure function of the partition's
//! identity (a topic key and a partition index) and the shard count, so every shard computes
//! the same answer without coordination.
//!
//! Partitions of one topic are spread round-robin across shards, starting at a shard chosen
//! by a stable hash of the topic key (so many single-partition topics also spread out). The
//! hash is FNV-1a: stable across processes and releases, unlike `std`'s randomised hasher.
//!
//! Staleness (a topic deleted and re-created under the same name maps to the same shards) is
//! handled by the caller: work carries the topic's revision and the owner rejects a mismatch.

/// Index of a shard, `0..shard_count`.
pub type ShardId = usize;

/// The shard that owns `partition` of the topic identified by `topic_key`.
pub fn shard_for(topic_key: &[u8], partition: i32, shard_count: usize) -> ShardId {
    assert!(shard_count > 0, "a runtime has at least one shard");
    let start = fnv1a_64(topic_key) % shard_count as u64;
    // Negative partitions never reach here from valid requests; map them deterministically
    // anyway instead of panicking on external input.
    let index = u64::from(partition.unsigned_abs());
    ((start + index % shard_count as u64) % shard_count as u64) as ShardId
}

/// FNV-1a, 64 bit.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_shard_owns_everything() {
        for partition in 0..100 {
            assert_eq!(shard_for(b"orders", partition, 1), 0);
        }
    }

    #[test]
    fn partitions_of_a_topic_spread_evenly() {
        let shards = 4;
        let mut counts = vec![0usize; shards];
        for partition in 0..40 {
            counts[shard_for(b"orders", partition, shards)] += 1;
        }
        assert_eq!(counts, vec![10; shards]);
    }

    #[test]
    fn consecutive_partitions_land_on_different_shards() {
        for shards in 2..8 {
            for partition in 0..50 {
                assert_ne!(
                    shard_for(b"t", partition, shards),
                    shard_for(b"t", partition + 1, shards)
                );
            }
        }
    }

    #[test]
    fn placement_is_stable() {
        // FNV-1a reference value: placement must not change across releases, or partitions
        // would move between shards on upgrade.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let first = shard_for(b"payments", 3, 7);
        assert_eq!(first, shard_for(b"payments", 3, 7));
    }

    #[test]
    fn single_partition_topics_spread_across_shards() {
        let shards = 4;
        let mut used = vec![false; shards];
        for topic in 0..64 {
            used[shard_for(format!("topic-{topic}").as_bytes(), 0, shards)] = true;
        }
        assert!(used.iter().all(|u| *u), "{used:?}");
    }

    #[test]
    fn negative_partition_does_not_panic() {
        assert!(shard_for(b"t", i32::MIN, 3) < 3);
    }
}
