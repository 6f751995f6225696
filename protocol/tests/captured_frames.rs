//! Request frames captured from real clients (kcat / librdkafka, kafka-python, kafkajs) talking
//! to a broker, stored byte for byte in protocol/tests/fixtures (recorded with
//! tests/tools/capture_proxy.py; file names are <client>-<api key>-<api>-v<version>.bin).
//! Each must frame, decode to the API and version its name says, and re-encode to the exact
//! bytes the client sent; produce payloads must hold valid record batches (CRC32C included).

mod support;

use bytes::BytesMut;
use ringlet_protocol::frame::decode_frame;
use ringlet_protocol::kafka_protocol::messages::{ApiKey, RequestKind};
use ringlet_protocol::record_batch::{split_batches, validate_batch};
use ringlet_protocol::request::decode_request;
use support::{encode_request_payload, every_version, fixtures};

/// (api key, version) from "<client>-<key>-<name>-v<version>.bin".
fn parse_name(name: &str) -> (i16, i16) {
    let stem = name.trim_end_matches(".bin");
    let parts: Vec<&str> = stem.split('-').collect();
    let key = parts[1].parse().expect("api key in the fixture name");
    let version = parts[parts.len() - 1]
        .trim_start_matches('v')
        .parse()
        .expect("version in the fixture name");
    (key, version)
}

#[test]
fn fixtures_cover_the_requests_every_client_starts_with() {
    let names: Vec<String> = fixtures().into_iter().map(|(name, _)| name).collect();
    for (key, what) in [
        (ApiKey::ApiVersions, "ApiVersions"),
        (ApiKey::Metadata, "Metadata"),
        (ApiKey::Produce, "Produce"),
    ] {
        assert!(
            names.iter().any(|n| parse_name(n).0 == key as i16),
            "no captured {what} request among {names:?}"
        );
    }
}

#[test]
fn captured_frames_decode_and_re_encode_byte_for_byte() {
    for (name, wire) in fixtures() {
        let (key, version) = parse_name(&name);
        let mut buf = BytesMut::from(&wire[..]);
        let frame = decode_frame(&mut buf, 100 << 20)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: not a whole frame"));
        assert!(buf.is_empty(), "{name}: exactly one frame");
        let request =
            decode_request(frame.clone(), every_version).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (request.api_key as i16, request.api_version),
            (key, version),
            "{name}"
        );
        assert!(
            request.header.client_id.is_some(),
            "{name}: real clients send a client id"
        );
        let again = encode_request_payload(&request.header, &request.body).expect("re-encode");
        assert_eq!(
            again, frame,
            "{name}: re-encoding reproduces the client's bytes"
        );
        check_semantics(&name, &request.body);
        println!(
            "{name}: {:?} v{version}, {} bytes, round trip exact",
            request.api_key,
            wire.len()
        );
    }
}

fn check_semantics(name: &str, body: &RequestKind) {
    match body {
        RequestKind::Produce(produce) => {
            let mut batches = 0;
            for topic in &produce.topic_data {
                for partition in &topic.partition_data {
                    let records = partition.records.as_ref().expect("produce carries records");
                    for range in split_batches(records).unwrap_or_else(|e| panic!("{name}: {e}")) {
                        let header = validate_batch(&records[range])
                            .unwrap_or_else(|e| panic!("{name}: {e}"));
                        assert!(header.records_count > 0, "{name}: batch has records");
                        batches += 1;
                    }
                }
            }
            assert!(batches > 0, "{name}: produce request has record batches");
        }
        RequestKind::ApiVersions(api_versions) if request_is_flexible(name) => {
            assert!(
                !api_versions.client_software_name.is_empty(),
                "{name}: client software name"
            );
        }
        _ => {}
    }
}

fn request_is_flexible(name: &str) -> bool {
    parse_name(name).1 >= 3
}
