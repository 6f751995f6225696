//! Truncation at every byte: for captured client frames and generated requests, every strict
//! prefix of the wire bytes is "need more" for the framer (and leaves the buffer untouched), and
//! every strict prefix of a frame's payload is an error from `decode_request`, never a success,
//! never a panic (not even one caught inside the decoder's guard).

mod support;

use bytes::{Bytes, BytesMut};
use ringlet_protocol::frame::decode_frame;
use ringlet_protocol::request::{decode_request, DecodeError};
use support::generate::{random_request, COVERED};
use support::{encode_request_payload, every_version, fixtures, framed, request_header, Rng};

const MAX_FRAME_BYTES: usize = 1 << 20;

fn check_every_prefix(what: &str, wire: &[u8]) {
    for cut in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..cut]);
        assert_eq!(
            decode_frame(&mut buf, MAX_FRAME_BYTES),
            Ok(None),
            "{what}: framer on {cut} bytes"
        );
        assert_eq!(
            buf.len(),
            cut,
            "{what}: an incomplete frame is not consumed"
        );
    }
    let payload = Bytes::copy_from_slice(&wire[4..]);
    for cut in 0..payload.len() {
        match decode_request(payload.slice(..cut), every_version) {
            Ok(request) => panic!(
                "{what}: a {cut}-byte prefix of a {}-byte request decoded as {:?} v{}",
                payload.len(),
                request.api_key,
                request.api_version
            ),
            Err(DecodeError::Malformed { reason, .. }) if reason.contains("panicked") => {
                panic!("{what}: the decoder panicked on a {cut}-byte prefix")
            }
            Err(_) => {}
        }
    }
}

#[test]
fn every_prefix_of_a_captured_client_frame_is_incomplete_or_an_error() {
    let fixtures = fixtures();
    assert!(
        !fixtures.is_empty(),
        "no fixtures in protocol/tests/fixtures"
    );
    for (name, wire) in &fixtures {
        check_every_prefix(name, wire);
    }
    println!(
        "{} captured frames: every prefix rejected cleanly",
        fixtures.len()
    );
}

#[test]
fn every_prefix_of_generated_requests_is_incomplete_or_an_error() {
    let mut checked = 0;
    for key in COVERED {
        let range = key.valid_versions();
        for version in range.min..=range.max {
            for n in 0..3u64 {
                let seed = 0x7A11 ^ ((key as u64) << 24) ^ ((version as u64) << 8) ^ n;
                let mut rng = Rng::new(seed);
                let body = random_request(key, version, &mut rng);
                let header = request_header(key, version, rng.i32(), Some(rng.name(10)));
                let payload = encode_request_payload(&header, &body).expect("encodable");
                check_every_prefix(
                    &format!("seed {seed}: {key:?} v{version}"),
                    &framed(&payload),
                );
                checked += 1;
            }
        }
    }
    println!("{checked} generated requests: every prefix rejected cleanly");
}
