//! Fuzz target: record-batch parsing of produce payloads (header view, CRC check, splitting a
//! records blob into batches, per-record timestamps). Never a panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringlet_protocol::record_batch::{
    parse_header, record_timestamps, split_batches, validate_batch,
};

fuzz_target!(|data: &[u8]| {
    let _ = parse_header(data);
    let _ = validate_batch(data);
    let _ = record_timestamps(data);
    if let Ok(ranges) = split_batches(data) {
        for range in ranges {
            let batch = &data[range];
            let _ = validate_batch(batch);
            let _ = record_timestamps(batch);
        }
    }
});
