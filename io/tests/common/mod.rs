//! Shared test helpers: a one-executor runtime, real Kafka record batches, a seeded RNG.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::future::Future;

/// Runs `future` on a fresh glommio executor with a small I/O arena, after raising
/// RLIMIT_MEMLOCK so parallel test threads do not exhaust it.
pub fn run<T: 'static>(future: impl Future<Output = T> + 'static) -> T {
    if let Err(err) = ringlet_io::raise_memlock_limit() {
        eprintln!("warning: {err}");
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let executor = glommio::LocalExecutorBuilder::default()
        .io_memory(1 << 20)
        .make()
        .expect("glommio executor");
    executor.run(future)
}

/// splitmix64: tiny, seeded, good enough to drive randomized tests reproducibly.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Seed from `TEST_SEED` or the clock; printed so a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {seed} (rerun with TEST_SEED={seed})");
    seed
}

/// A real v2 record batch from the kafka-protocol encoder: `records` records with values of
/// `value_bytes` bytes derived from `tag`, timestamps `timestamp_ms + i`.
pub fn batch(records: usize, value_bytes: usize, timestamp_ms: i64, tag: u64) -> BytesMut {
    batch_with(records, value_bytes, timestamp_ms, tag, Compression::None)
}

pub fn batch_with(
    records: usize,
    value_bytes: usize,
    timestamp_ms: i64,
    tag: u64,
    compression: Compression,
) -> BytesMut {
    let records: Vec<Record> = (0..records)
        .map(|i| {
            let mut value = vec![0u8; value_bytes];
            let mut x = tag.wrapping_mul(31).wrapping_add(i as u64);
            for byte in value.iter_mut() {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *byte = (x >> 56) as u8;
            }
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: timestamp_ms + i as i64,
                key: Some(Bytes::from(format!("k{tag}-{i}"))),
                value: Some(Bytes::from(value)),
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
    buf
}

/// Splits stored bytes into (base_offset, last_offset, batch bytes).
pub fn batches_of(data: &[u8]) -> Vec<(i64, i64, Vec<u8>)> {
    use ringlet_protocol::record_batch as rb;
    let ranges = rb::split_batches(data).expect("stored data splits into batches");
    ranges
        .into_iter()
        .map(|range| {
            let header = rb::validate_batch(&data[range.clone()]).expect("stored batch valid");
            (
                header.base_offset,
                header.last_offset(),
                data[range].to_vec(),
            )
        })
        .collect()
}

/// The batch as the log stores it: base offset and leader epoch stamped.
pub fn stamped(mut batch: BytesMut, base_offset: i64, epoch: i32) -> Vec<u8> {
    ringlet_protocol::record_batch::set_base_offset(&mut batch, base_offset);
    ringlet_protocol::record_batch::set_partition_leader_epoch(&mut batch, epoch);
    batch.to_vec()
}

/// Reads the whole log from `from` by following `next_offset` (one read stops at a segment end).
pub async fn read_all(log: &ringlet_io::PartitionLog, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20).await.expect("read");
        assert!(
            read.next_offset > offset,
            "read made no progress at {offset}"
        );
        out.extend_from_slice(&read.data);
        offset = read.next_offset;
    }
    out
}
