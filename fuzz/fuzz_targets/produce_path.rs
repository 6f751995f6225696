//! Fuzz target: the produce path end to end, as far as it is pure. One produced partition's
//! records go through every check the broker makes before it appends (framing and CRC, the
//! record count against the records present, the topic's rules: compaction keys and
//! recompression), are stamped as the log stamps them (base offset, leader epoch, maybe
//! LogAppendTime), and are then read back by every reader of stored batches: Fetch's split and
//! CRC check, ListOffsets by time (record timestamps) and MAX_TIMESTAMP, and the coordinators'
//! log load (kafka-protocol's `RecordBatchDecoder`). OffsetForLeaderEpoch reads no stored
//! record: it answers from the log's epoch cache, which is fed by the leader epoch the log
//! stamps into each batch header (and recovery reads back from there), so the target checks
//! that the stamped epoch reads back. Any panic, abort or allocation beyond
//! the bytes present is a crash, and so is an accepted batch that reads back as other than
//! the records it declared.
//!
//! The first input byte picks the topic's rules; the rest is the partition's records.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringlet::config::topic_config::CompressionType;
use ringlet::partition::produce_rules::{
    apply_topic_rules, TopicRules, DECOMPRESSED_BATCH_BYTES_MAX,
};
use ringlet::partition::records_check::check_produced_records;
use ringlet::partition::records_count::check_record_count;
use ringlet_protocol::kafka_protocol::records::RecordBatchDecoder;
use ringlet_protocol::record_batch::{
    record_timestamps, set_base_offset, set_log_append_time, set_partition_leader_epoch,
    split_batches, validate_batch, BatchCompression,
};
use ringlet_protocol::records::offset_of_max_timestamp;

const CODECS: [CompressionType; 6] = [
    CompressionType::Producer,
    CompressionType::Uncompressed,
    CompressionType::Gzip,
    CompressionType::Snappy,
    CompressionType::Lz4,
    CompressionType::Zstd,
];
const MAX_MESSAGE_BYTES: usize = 1 << 20;
const STAMPED_EPOCH: i32 = 7;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, records)) = data.split_first() else {
        return;
    };
    let rules = TopicRules {
        topic: "fuzz",
        partition: 0,
        compression: CODECS[usize::from(selector & 0x07) % CODECS.len()],
        compacted: selector & 0x80 != 0,
        max_message_bytes: MAX_MESSAGE_BYTES,
    };
    let fixed;
    let records = if selector & 0x20 != 0 {
        fixed = with_consistent_framing(records);
        &fixed[..]
    } else {
        records
    };
    let Ok(header) = check_produced_records(records, MAX_MESSAGE_BYTES) else {
        return;
    };
    if check_record_count(records, &header, rules.topic, rules.partition).is_err() {
        return;
    }
    let mut stored = match apply_topic_rules(records, &header, &rules) {
        Ok(Some(repacked)) => repacked,
        Ok(None) => records.to_vec(),
        Err(_) => return,
    };
    set_base_offset(&mut stored, 1_000);
    set_partition_leader_epoch(&mut stored, STAMPED_EPOCH);
    if selector & 0x40 != 0 {
        set_log_append_time(&mut stored, 1_700_000_000_000);
    }
    read_back(&stored, header.records_count);
});

/// `records` with its batch length and CRC made to agree with its bytes (magic 2 layout), so
/// that the fuzzer's mutations reach the record checks behind the CRC.
fn with_consistent_framing(records: &[u8]) -> Vec<u8> {
    let mut fixed = records.to_vec();
    if fixed.len() < 61 {
        return fixed;
    }
    let batch_length = (fixed.len() - 12) as i32;
    fixed[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&fixed[21..]);
    fixed[17..21].copy_from_slice(&crc.to_be_bytes());
    fixed
}

/// Every reader of a stored batch, on what the log would store.
fn read_back(stored: &[u8], declared: i32) {
    let ranges = split_batches(stored).expect("a stored batch splits into batches");
    assert_eq!(ranges.len(), 1, "one produced batch is stored as one");
    let header = validate_batch(stored).expect("a stored batch passes its CRC");
    assert_eq!(header.records_count, declared);
    assert_eq!(
        header.partition_leader_epoch, STAMPED_EPOCH,
        "OffsetForLeaderEpoch's source"
    );
    let timestamps = record_timestamps(stored).expect("ListOffsets by time reads it");
    if let Some(timestamps) = timestamps {
        assert_eq!(
            timestamps.len(),
            declared as usize,
            "uncompressed: the records present"
        );
    }
    let max = offset_of_max_timestamp(stored, DECOMPRESSED_BATCH_BYTES_MAX);
    // A compressed batch the topic rules left alone was never decompressed (its count is only
    // bounded), so only uncompressed ones must read back whole here.
    if header.compression() == BatchCompression::None {
        max.expect("MAX_TIMESTAMP reads an uncompressed batch");
        // The coordinators decode only what the broker wrote to its internal topics (clients
        // may not produce there), so a client batch it refuses is no finding; one it reads
        // must be the records declared.
        let mut bytes = Bytes::copy_from_slice(stored);
        if let Ok(sets) = RecordBatchDecoder::decode_all(&mut bytes) {
            let decoded: usize = sets.iter().map(|set| set.records.len()).sum();
            assert_eq!(decoded, declared as usize, "decoded records");
        }
    }
}
