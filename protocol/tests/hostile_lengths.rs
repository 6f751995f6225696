//! Length fields read off the wire must not be trusted for allocation. A 20-byte frame that
//! claims an array of two billion elements has to come back as an error, not make the process
//! try to reserve tens of gigabytes (which aborts: allocation failure is not a catchable panic).
//! Found by scripts/fuzz-protocol.sh within seconds (a 15-byte Metadata v0 request); kept here
//! as a regression test. Its own test binary, so an abort cannot take other tests down with it.

mod support;

use bytes::Bytes;
use ringlet_protocol::kafka_protocol::messages::ApiKey;
use ringlet_protocol::request::decode_request;
use support::every_version;

/// Header v1 (api key, version, correlation id, null client id) followed by `body`.
fn request_v1_header(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut frame = Vec::new();
    frame.extend_from_slice(&(key as i16).to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes());
    frame.extend_from_slice(body);
    Bytes::from(frame)
}

/// Header v2: as v1 plus an empty tagged-field section.
fn request_v2_header(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut with_tags = vec![0u8];
    with_tags.extend_from_slice(body);
    request_v1_header(key, version, &with_tags)
}

fn assert_rejected(what: &str, frame: Bytes) {
    let len = frame.len();
    match decode_request(frame, every_version) {
        Ok(request) => panic!(
            "{what}: a {len}-byte frame decoded as {:?}",
            request.api_key
        ),
        Err(err) => println!("{what}: rejected ({err})"),
    }
}

#[test]
fn the_fuzzer_crash_input_is_rejected() {
    // fuzz/artifacts crash-930fbcb3...: Metadata v0, null client id, topics count 0x51ffff08.
    let crash = [
        0x00, 0x03, 0x00, 0x00, 0xff, 0xff, 0x70, 0xff, 0xff, 0xff, 0x51, 0xff, 0xff, 0x08, 0x02,
    ];
    assert_rejected("fuzzer crash input", Bytes::copy_from_slice(&crash));
}

#[test]
fn huge_array_counts_in_small_frames_are_rejected() {
    let huge_i32 = i32::MAX.to_be_bytes();
    assert_rejected(
        "Metadata v1, 2^31 topics",
        request_v1_header(ApiKey::Metadata, 1, &huge_i32),
    );

    let mut produce = Vec::new();
    produce.extend_from_slice(&(-1i16).to_be_bytes()); // null transactional id
    produce.extend_from_slice(&(-1i16).to_be_bytes()); // acks
    produce.extend_from_slice(&30_000i32.to_be_bytes()); // timeout
    produce.extend_from_slice(&huge_i32); // topic_data count
    assert_rejected(
        "Produce v3, 2^31 topics",
        request_v1_header(ApiKey::Produce, 3, &produce),
    );

    // Flexible versions: compact array count as an unsigned varint (2^32 - 2 elements).
    let huge_varint = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut create = huge_varint.to_vec();
    create.extend_from_slice(&[0; 8]);
    assert_rejected(
        "CreateTopics v5, 2^32 topics",
        request_v2_header(ApiKey::CreateTopics, 5, &create),
    );

    let mut list_offsets = (-1i32).to_be_bytes().to_vec(); // replica id
    list_offsets.push(0); // isolation level
    list_offsets.extend_from_slice(&huge_varint);
    assert_rejected(
        "ListOffsets v6, 2^32 topics",
        request_v2_header(ApiKey::ListOffsets, 6, &list_offsets),
    );
}
