//! Which `__consumer_offsets` partition, and so which shard, coordinates a group.
//!
//! Kafka's rule: `Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`, with
//! Java's `String.hashCode` over UTF-16 code units. Using the same rule keeps the mapping of
//! a group to its partition identical to Kafka's. The owning shard is the partition's owner
//! (the placement every shard computes).

use ringlet_shard::ShardId;

use crate::cluster::partition_shard;

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Java's `String.hashCode`.
pub fn java_string_hash(value: &str) -> i32 {
    value.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Kafka's `Utils.abs`: `Integer.MIN_VALUE` maps to 0.
pub fn kafka_abs(value: i32) -> i32 {
    if value == i32::MIN {
        0
    } else {
        value.abs()
    }
}

/// The `__consumer_offsets` partition of `group_id`.
pub fn offsets_partition(group_id: &str, partitions: i32) -> i32 {
    assert!(
        partitions > 0,
        "the offsets topic has at least one partition"
    );
    kafka_abs(java_string_hash(group_id)) % partitions
}

/// The shard coordinating the groups of offsets partition `partition`.
pub fn coordinator_shard(partition: i32, shard_count: usize) -> ShardId {
    partition_shard(OFFSETS_TOPIC, partition, shard_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_java_hash_codes() {
        // Values computed by the JVM ("...".hashCode()).
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(offsets_partition("my-group", 50), 1_906_497_762 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(offsets_partition("polygenelubricants", 50), 0);
        assert_eq!(offsets_partition("hello", 50), 99_162_322 % 50);
        assert_eq!(kafka_abs(-5), 5);
    }

    #[test]
    fn every_group_maps_into_range() {
        for n in 0..1000 {
            let p = offsets_partition(&format!("group-{n}"), 50);
            assert!((0..50).contains(&p));
        }
    }
}
