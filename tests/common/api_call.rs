//! One typed request/response over a fresh connection: the request and response structs are
//! kafka-protocol's, encoded and decoded at the version given, so a test can drive any API at
//! the version a given client would send.

use std::net::SocketAddr;

use bytes::Bytes;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Request};

use super::wire::{connect, read_reaction, request_frame, send, Reaction};

/// Sends `request` at `version` to `addr` and decodes the answer (panics if the broker closes
/// the connection or answers something undecodable: both are failures of the API under test).
pub fn call<R: Request>(addr: SocketAddr, version: i16, request: &R) -> R::Response {
    let key = ApiKey::try_from(R::KEY).expect("a known API key");
    let what = format!("{key:?} v{version} to {addr}");
    let mut stream = connect(addr);
    send(&mut stream, &request_frame(request, R::KEY, version, 7));
    let Reaction::Answered(body) = read_reaction(&mut stream, &what) else {
        panic!("{what}: the broker closed the connection instead of answering");
    };
    let mut bytes = Bytes::from(body);
    let header = ResponseHeader::decode(&mut bytes, key.response_header_version(version))
        .unwrap_or_else(|err| panic!("{what}: bad response header: {err}"));
    assert_eq!(header.correlation_id, 7, "{what}: correlation id");
    R::Response::decode(&mut bytes, version)
        .unwrap_or_else(|err| panic!("{what}: undecodable response: {err}"))
}

/// `(api_key, min_version, max_version)` of every API `addr` serves, from ApiVersions v3.
pub fn api_versions(addr: SocketAddr) -> Vec<(i16, i16, i16)> {
    let request = ApiVersionsRequest::default()
        .with_client_software_name("ringlet-tests".into())
        .with_client_software_version("1".into());
    let response = call(addr, 3, &request);
    assert_eq!(response.error_code, 0, "ApiVersions from {addr}");
    response
        .api_keys
        .iter()
        .map(|api| (api.api_key, api.min_version, api.max_version))
        .collect()
}
