//! Issue 3, test 7: bad input over a raw TcpStream. Each case runs against its own broker while a
//! real client (rdkafka producing with acks=all and an assigned consumer reading in parallel)
//! keeps working. For every case the broker must answer or close that one connection (a hang
//! fails the test), the concurrent client must finish with every message acknowledged and read
//! back intact, a fresh connection must still get a valid ApiVersions answer, and the broker
//! process must still be alive.

mod common;

use std::net::Shutdown;

use bytes::Bytes;
use common::traffic::Traffic;
use common::wire::{self, correlation_id, read_reaction, request_frame, send, Reaction};
use common::Broker;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};
use kafka_protocol::protocol::{Decodable, StrBytes};

const API_VERSIONS_KEY: i16 = 18;
const METADATA_KEY: i16 = 3;
const CREATE_TOPICS_KEY: i16 = 19;
const UNSUPPORTED_VERSION: i16 = 35;

/// Runs `case` against a fresh broker with concurrent real-client traffic, then checks that the
/// traffic completed intact, the broker still serves ApiVersions, and it is alive.
fn with_concurrent_client(case_name: &str, case: impl FnOnce(&Broker)) {
    let mut broker = Broker::start();
    let traffic = Traffic::start(&broker.bootstrap());
    traffic.wait_for_round(); // the client is demonstrably working before the bad input
    case(&broker);
    broker.assert_alive(&format!("after {case_name}"));
    traffic.wait_for_round(); // ... and keeps working after it
    let summary = traffic.finish();
    println!("{case_name}: concurrent client unaffected ({summary})");
    assert_api_versions_served(&broker);
    broker.assert_alive(&format!("at the end of {case_name}"));
}

fn api_versions_request() -> ApiVersionsRequest {
    let mut request = ApiVersionsRequest::default();
    request.client_software_name = StrBytes::from_static_str("ringlet-tests");
    request.client_software_version = StrBytes::from_static_str("1.0");
    request
}

fn assert_api_versions_served(broker: &Broker) {
    let mut stream = wire::connect(broker.addr());
    send(
        &mut stream,
        &request_frame(&api_versions_request(), API_VERSIONS_KEY, 3, 7),
    );
    match read_reaction(&mut stream, "ApiVersions v3 after bad input") {
        Reaction::Answered(frame) => {
            assert_eq!(correlation_id(&frame), 7, "ApiVersions correlation id");
            let mut body = Bytes::from(frame).slice(4..); // ApiVersions responses use header v0
            let response =
                ApiVersionsResponse::decode(&mut body, 3).expect("decode ApiVersions v3");
            assert_eq!(response.error_code, 0, "ApiVersions v3 error code");
            assert!(
                !response.api_keys.is_empty(),
                "ApiVersions lists the served APIs"
            );
        }
        Reaction::Closed { partial } => {
            panic!("a valid ApiVersions v3 request got its connection closed ({partial} bytes)")
        }
    }
}

/// The broker must close this connection (a reply is not possible for these inputs).
fn assert_closed(reaction: Reaction, what: &str) {
    match reaction {
        Reaction::Closed { .. } => println!("{what}: connection closed"),
        Reaction::Answered(frame) => panic!(
            "{what}: expected the broker to close the connection, got a {}-byte response",
            frame.len()
        ),
    }
}

/// Either a response to `correlation` or a closed connection is acceptable.
fn assert_answered_or_closed(reaction: Reaction, correlation: i32, what: &str) {
    match reaction {
        Reaction::Closed { partial } => println!("{what}: connection closed ({partial} bytes)"),
        Reaction::Answered(frame) => {
            assert_eq!(
                correlation_id(&frame),
                correlation,
                "{what}: response correlation id"
            );
            println!("{what}: answered ({} bytes)", frame.len());
        }
    }
}

#[test]
fn garbage_bytes_are_rejected() {
    with_concurrent_client("garbage bytes", |broker| {
        // An HTTP request: "GET " read as a length prefix is ~1.2 GB, far over any limit.
        let mut stream = wire::connect(broker.addr());
        send(&mut stream, b"GET / HTTP/1.1\r\nHost: ringlet\r\n\r\n");
        assert_closed(read_reaction(&mut stream, "HTTP request"), "HTTP request");

        // A small well-framed payload of noise: api key -1, nonsense after it.
        let mut stream = wire::connect(broker.addr());
        let noise: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(97) ^ 0xff) as u8)
            .collect();
        let mut payload = vec![0xff, 0xff, 0x7f, 0x01, 0x00, 0x00, 0x00, 0x2a];
        payload.extend(noise);
        send(&mut stream, &wire::frame(&payload));
        assert_answered_or_closed(read_reaction(&mut stream, "noise frame"), 42, "noise frame");

        // A frame too short to hold a request header.
        let mut stream = wire::connect(broker.addr());
        send(&mut stream, &wire::frame(&[0x00, 0x12]));
        assert_closed(read_reaction(&mut stream, "2-byte frame"), "2-byte frame");
    });
}

#[test]
fn frame_larger_than_the_limit_is_rejected() {
    with_concurrent_client("oversized frame", |broker| {
        let mut stream = wire::connect(broker.addr());
        let mut bytes = i32::MAX.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 64]);
        send(&mut stream, &bytes);
        assert_closed(
            read_reaction(&mut stream, "2 GiB frame"),
            "2 GiB length prefix",
        );

        let mut stream = wire::connect(broker.addr());
        send(&mut stream, &(-16i32).to_be_bytes());
        assert_closed(
            read_reaction(&mut stream, "negative length"),
            "negative length prefix",
        );
    });
}

#[test]
fn truncated_frame_then_close_is_handled() {
    with_concurrent_client("truncated frame", |broker| {
        let frame = request_frame(&api_versions_request(), API_VERSIONS_KEY, 3, 11);
        for cut in [2, 4, 9, frame.len() - 1] {
            let mut stream = wire::connect(broker.addr());
            send(&mut stream, &frame[..cut]);
            stream.shutdown(Shutdown::Write).expect("half-close");
            let what = format!("frame cut at {cut} of {} bytes, then EOF", frame.len());
            assert_closed(read_reaction(&mut stream, &what), &what);
        }
    });
}

#[test]
fn unknown_api_key_is_rejected() {
    with_concurrent_client("unknown api key", |broker| {
        for api_key in [9999i16, 1000, -7] {
            let mut stream = wire::connect(broker.addr());
            let mut payload = Vec::new();
            payload.extend_from_slice(&api_key.to_be_bytes());
            payload.extend_from_slice(&0i16.to_be_bytes()); // version
            payload.extend_from_slice(&77i32.to_be_bytes()); // correlation id
            payload.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
            let what = format!("unknown api key {api_key}");
            send(&mut stream, &wire::frame(&payload));
            assert_answered_or_closed(read_reaction(&mut stream, &what), 77, &what);
        }
    });
}

#[test]
fn unsupported_api_versions_version_gets_v0_fallback() {
    with_concurrent_client("unsupported ApiVersions version", |broker| {
        for version in [127i16, 4_000] {
            let mut stream = wire::connect(broker.addr());
            // A body at v3 layout under a version the broker does not serve (header v2, like a
            // newer client would send).
            let mut frame = request_frame(&api_versions_request(), API_VERSIONS_KEY, 3, 4242);
            frame[6..8].copy_from_slice(&version.to_be_bytes());
            send(&mut stream, &frame);
            let what = format!("ApiVersions v{version}");
            let response = match read_reaction(&mut stream, &what) {
                Reaction::Answered(frame) => frame,
                Reaction::Closed { partial } => {
                    panic!("{what}: expected a v0 fallback response, connection closed ({partial} bytes)")
                }
            };
            assert_eq!(correlation_id(&response), 4242, "{what}: correlation id");
            let mut body = Bytes::from(response).slice(4..);
            let fallback =
                ApiVersionsResponse::decode(&mut body, 0).expect("decode as ApiVersions v0");
            assert_eq!(
                fallback.error_code, UNSUPPORTED_VERSION,
                "{what}: error code"
            );
            let own = fallback
                .api_keys
                .iter()
                .find(|k| k.api_key == API_VERSIONS_KEY)
                .unwrap_or_else(|| panic!("{what}: fallback lists ApiVersions' own range"));
            assert!(
                own.min_version == 0 && own.max_version >= 3,
                "{what}: ApiVersions range {}..={}",
                own.min_version,
                own.max_version
            );
            assert!(
                body.is_empty(),
                "{what}: v0 body has no trailing bytes ({} left)",
                body.len()
            );
            println!(
                "{what}: v0 fallback with error 35 and {} API ranges",
                fallback.api_keys.len()
            );
        }
    });
}

/// kafka-protocol decodes an array by `Vec::with_capacity(n)` with n from the wire; a small
/// frame claiming 2^31 elements must not abort the broker (allocation failure).
#[test]
fn huge_array_count_in_a_small_frame_does_not_kill_the_broker() {
    with_concurrent_client("huge array count", |broker| {
        // Metadata v1 (header v1): topics array count i32::MAX, no elements follow.
        let mut payload = Vec::new();
        payload.extend_from_slice(&METADATA_KEY.to_be_bytes());
        payload.extend_from_slice(&1i16.to_be_bytes());
        payload.extend_from_slice(&91i32.to_be_bytes());
        payload.extend_from_slice(&(-1i16).to_be_bytes());
        payload.extend_from_slice(&i32::MAX.to_be_bytes());
        let mut stream = wire::connect(broker.addr());
        send(&mut stream, &wire::frame(&payload));
        assert_answered_or_closed(
            read_reaction(&mut stream, "Metadata v1 huge"),
            91,
            "Metadata v1, 2^31 topics",
        );

        // CreateTopics v5 (flexible, header v2): compact array count u32::MAX as a varint.
        let mut payload = Vec::new();
        payload.extend_from_slice(&CREATE_TOPICS_KEY.to_be_bytes());
        payload.extend_from_slice(&5i16.to_be_bytes());
        payload.extend_from_slice(&92i32.to_be_bytes());
        payload.extend_from_slice(&(-1i16).to_be_bytes()); // client id (nullable string)
        payload.push(0); // header tagged fields
        payload.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // topics: 2^32 - 2 elements
        let mut stream = wire::connect(broker.addr());
        send(&mut stream, &wire::frame(&payload));
        assert_answered_or_closed(
            read_reaction(&mut stream, "CreateTopics v5 huge"),
            92,
            "CreateTopics v5, 2^32 topics",
        );

        // And a Metadata request that is fine, on the same broker, afterwards.
        let mut stream = wire::connect(broker.addr());
        send(
            &mut stream,
            &request_frame(&MetadataRequest::default(), METADATA_KEY, 1, 93),
        );
        match read_reaction(&mut stream, "valid Metadata v1") {
            Reaction::Answered(frame) => assert_eq!(correlation_id(&frame), 93),
            Reaction::Closed { .. } => panic!("valid Metadata v1 request: connection closed"),
        }
    });
}
