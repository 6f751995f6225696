//! Response encoding: the right header version for the API and version, then the body, framed.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use crate::errors::ResponseError;

/// A response the `kafka-protocol` crate refused to encode (a field the requested version
/// cannot carry, for example). A broker bug, never a client's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {api_key:?} v{api_version} response: {reason}")]
pub struct EncodeError {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub reason: String,
}

/// Encodes a whole response frame: length prefix, response header, body.
pub fn encode_response(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // length, patched below
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api_key.response_header_version(api_version))
        .map_err(|e| EncodeError {
            api_key,
            api_version,
            reason: format!("header: {e:#}"),
        })?;
    body.encode(&mut buf, api_version)
        .map_err(|e| EncodeError {
            api_key,
            api_version,
            reason: format!("{e:#}"),
        })?;
    let length = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf.freeze())
}

/// The answer Kafka gives to an ApiVersions request at a version it does not support: a v0
/// response with UNSUPPORTED_VERSION and the versions it does support, so the client can retry
/// with a version both sides know (KIP-511).
pub fn api_versions_fallback(correlation_id: i32, ranges: &[(ApiKey, i16, i16)]) -> Bytes {
    let api_keys = ranges
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys);
    encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ResponseKind::ApiVersions(body),
    )
    .expect("an ApiVersions v0 response with plain fields always encodes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::{MetadataResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn api_versions_uses_header_v0_even_when_flexible() {
        let frame = encode_response(
            ApiKey::ApiVersions,
            3,
            11,
            &ResponseKind::ApiVersions(ApiVersionsResponse::default()),
        )
        .unwrap();
        let mut body = frame.slice(4..);
        assert_eq!(body.get_i32(), 11);
        let decoded = ApiVersionsResponse::decode(&mut body, 3).unwrap();
        assert_eq!(decoded, ApiVersionsResponse::default());
    }

    #[test]
    fn flexible_responses_get_header_v1() {
        let frame = encode_response(
            ApiKey::Metadata,
            12,
            3,
            &ResponseKind::Metadata(MetadataResponse::default()),
        )
        .unwrap();
        assert_eq!(
            i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len() - 4
        );
        let mut body = frame.slice(4..);
        let header = ResponseHeader::decode(&mut body, 1).unwrap();
        assert_eq!(header.correlation_id, 3);
        assert_eq!(
            MetadataResponse::decode(&mut body, 12).unwrap(),
            MetadataResponse::default()
        );
    }

    #[test]
    fn fallback_is_a_v0_unsupported_version_answer() {
        let frame =
            api_versions_fallback(8, &[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12)]);
        let mut body = frame.slice(4..);
        assert_eq!(body.get_i32(), 8);
        let decoded = ApiVersionsResponse::decode(&mut body, 0).unwrap();
        assert_eq!(decoded.error_code, 35);
        assert_eq!(decoded.api_keys.len(), 2);
        assert_eq!(decoded.api_keys[1].max_version, 12);
    }
}
