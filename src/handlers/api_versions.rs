//! ApiVersions (API key 18), v0-v4: the versions of every API in the registry.
//!
//! Generated from `handlers::REGISTRY`, the same table dispatch uses, so the answer cannot
//! drift from what is served. A request at a version above 4 never reaches this handler: the
//! connection answers it with Kafka's v0 fallback (UNSUPPORTED_VERSION + the ranges).
//! v3+ requests carry the client's software name/version, which Kafka validates.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use crate::handlers::REGISTRY;
use crate::server::RequestContext;

pub const API_KEY: ApiKey = ApiKey::ApiVersions;
pub const MIN_VERSION: i16 = 0;
pub const MAX_VERSION: i16 = 4;

pub async fn handle(ctx: &RequestContext, request: ApiVersionsRequest) -> ApiVersionsResponse {
    build_response(ctx.api_version, &request)
}

/// The response for a request at `api_version`.
pub fn build_response(api_version: i16, request: &ApiVersionsRequest) -> ApiVersionsResponse {
    let api_keys = REGISTRY
        .iter()
        .map(|entry| {
            ApiVersion::default()
                .with_api_key(entry.api_key as i16)
                .with_min_version(entry.min_version)
                .with_max_version(entry.max_version)
        })
        .collect();
    let mut response = ApiVersionsResponse::default()
        .with_api_keys(api_keys)
        .with_finalized_features_epoch(-1);
    if api_version >= 3
        && !(is_valid_software_field(&request.client_software_name)
            && is_valid_software_field(&request.client_software_version))
    {
        response.error_code = ResponseError::InvalidRequest.code();
    }
    response
}

/// Kafka's rule for client software name and version: `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn is_valid_software_field(value: &str) -> bool {
    let bytes = value.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn request(name: &str, version: &str) -> ApiVersionsRequest {
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_string(name.into()))
            .with_client_software_version(StrBytes::from_string(version.into()))
    }

    #[test]
    fn lists_exactly_the_registry() {
        let response = build_response(3, &request("librdkafka", "2.12.0"));
        assert_eq!(response.error_code, 0);
        let listed: Vec<(i16, i16, i16)> = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        let registry: Vec<(i16, i16, i16)> = REGISTRY
            .iter()
            .map(|e| (e.api_key as i16, e.min_version, e.max_version))
            .collect();
        assert_eq!(listed, registry);
        assert!(response.finalized_features.is_empty());
    }

    #[test]
    fn invalid_software_name_is_invalid_request_from_v3() {
        let bad = request("bad name!", "1.0");
        assert_eq!(build_response(3, &bad).error_code, 42);
        assert_eq!(
            build_response(2, &bad).error_code,
            0,
            "v2 has no such fields"
        );
        assert!(is_valid_software_field("apache-kafka-java"));
        assert!(!is_valid_software_field("-x"));
        assert!(!is_valid_software_field(""));
    }

    #[test]
    fn encodes_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let mut buf = BytesMut::new();
            build_response(version, &request("kcat", "1.7.1"))
                .encode(&mut buf, version)
                .expect("encodes");
        }
    }
}
