//! Property-style round trips (seeded, reproducible): random requests of several types at every
//! version the kafka-protocol crate knows are encoded as a client would, framed, cut into
//! arbitrary chunks as a socket would deliver them, and must come back out of
//! `decode_frame` + `decode_request` equal to what went in, re-encoding to the same bytes.

mod support;

use bytes::{Bytes, BytesMut};
use ringlet_protocol::frame::decode_frame;
use ringlet_protocol::kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use ringlet_protocol::request::decode_request;
use support::generate::{random_request, COVERED};
use support::{encode_request_payload, every_version, framed, request_header, Rng};

const CASES_PER_VERSION: u64 = 200;
const MAX_FRAME_BYTES: usize = 1 << 20;

struct Case {
    seed: u64,
    header: RequestHeader,
    body: RequestKind,
    payload: Bytes,
}

fn random_case(key: ApiKey, version: i16, seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let body = random_request(key, version, &mut rng);
    let client_id = if rng.chance(5) {
        None
    } else {
        Some(rng.name(24))
    };
    let header = request_header(key, version, rng.i32(), client_id);
    let payload = encode_request_payload(&header, &body).unwrap_or_else(|e| {
        panic!("seed {seed}: {key:?} v{version} generator produced an unencodable request: {e}")
    });
    Case {
        seed,
        header,
        body,
        payload,
    }
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for key in COVERED {
        let range = key.valid_versions();
        for version in range.min..=range.max {
            for n in 0..CASES_PER_VERSION {
                let seed = ((key as u64) << 40) | ((version as u64) << 20) | n;
                cases.push(random_case(key, version, seed));
            }
        }
    }
    cases
}

fn assert_decodes_to(case: &Case, frame: Bytes) {
    let what = format!(
        "seed {}: {:?} v{}",
        case.seed,
        ApiKey::try_from(case.header.request_api_key),
        case.header.request_api_version
    );
    let request = decode_request(frame, every_version).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        request.api_key as i16, case.header.request_api_key,
        "{what}: api key"
    );
    assert_eq!(
        request.api_version, case.header.request_api_version,
        "{what}: version"
    );
    assert_eq!(
        request.correlation_id, case.header.correlation_id,
        "{what}: correlation id"
    );
    assert_eq!(request.header, case.header, "{what}: header");
    assert_eq!(request.body, case.body, "{what}: body");
    let again = encode_request_payload(&request.header, &request.body).expect("re-encode");
    assert_eq!(
        again, case.payload,
        "{what}: re-encoding gives the same bytes"
    );
}

#[test]
fn every_covered_request_type_and_version_round_trips() {
    let cases = all_cases();
    for case in &cases {
        let mut buf = BytesMut::from(&framed(&case.payload)[..]);
        let frame = decode_frame(&mut buf, MAX_FRAME_BYTES)
            .expect("frame within the limit")
            .expect("a whole frame is there");
        assert!(
            buf.is_empty(),
            "seed {}: decode_frame consumed exactly one frame",
            case.seed
        );
        assert_eq!(frame, case.payload, "seed {}: frame payload", case.seed);
        assert_decodes_to(case, frame);
    }
    let versions: usize = COVERED
        .iter()
        .map(|k| (k.valid_versions().max - k.valid_versions().min + 1) as usize)
        .sum();
    println!(
        "{} requests round-tripped over {versions} (type, version) pairs",
        cases.len()
    );
}

/// Pipelined requests arriving in arbitrary chunks come out whole and in order.
#[test]
fn pipelined_frames_split_at_random_points_decode_in_order() {
    let cases = all_cases();
    for round in 0..20u64 {
        let mut rng = Rng::new(0xC0FFEE + round);
        let picked: Vec<&Case> = (0..30)
            .map(|_| &cases[rng.below(cases.len() as u64) as usize])
            .collect();
        let stream: Vec<u8> = picked.iter().flat_map(|c| framed(&c.payload)).collect();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let chunk = 1 + rng.below(64.min((stream.len() - at) as u64)) as usize;
            buf.extend_from_slice(&stream[at..at + chunk]);
            at += chunk;
            while let Some(frame) = decode_frame(&mut buf, MAX_FRAME_BYTES).expect("valid frames") {
                decoded.push(frame);
            }
        }
        assert!(buf.is_empty(), "round {round}: leftover bytes");
        assert_eq!(decoded.len(), picked.len(), "round {round}: frame count");
        for (frame, case) in decoded.into_iter().zip(picked) {
            assert_decodes_to(case, frame);
        }
    }
}
