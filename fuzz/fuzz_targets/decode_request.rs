//! Fuzz target: the broker's request path on arbitrary bytes from a socket.
//!
//! The input is treated twice: as a byte stream cut into frames by `decode_frame` (each frame then
//! decoded as a request), and as one frame body handed straight to `decode_request`. Every API key
//! and version the kafka-protocol crate knows is accepted by the version gate, so the body
//! decoders of all of them are reached. Any panic or abort (including an allocation failure from
//! a huge array length read off the wire) is a crash.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use ringlet_protocol::frame::decode_frame;
use ringlet_protocol::kafka_protocol::messages::ApiKey;
use ringlet_protocol::request::decode_request;

/// The broker's default socket.request.max.bytes (100 MiB).
const MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

fn every_version(key: ApiKey) -> Option<(i16, i16)> {
    let range = key.valid_versions();
    Some((range.min, range.max))
}

fuzz_target!(|data: &[u8]| {
    let mut stream = BytesMut::from(data);
    while let Ok(Some(frame)) = decode_frame(&mut stream, MAX_FRAME_BYTES) {
        let _ = decode_request(frame, every_version);
    }
    let _ = decode_request(Bytes::copy_from_slice(data), every_version);
});
