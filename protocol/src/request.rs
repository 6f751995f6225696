//! Request decoding: header first, version gate second, body last.
//!
//! The order matters. The first eight bytes of every request header (API key, API version,
//! correlation id) have the same layout in every header version, so they are read before
//! anything else. That is enough to answer an unknown key or an unsupported version the way
//! Kafka does, without trusting the rest of the frame.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, StrBytes};

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub body: RequestKind,
}

/// Why a frame could not become a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("request header truncated: {0} bytes")]
    HeaderTruncated(usize),
    #[error("unknown api key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    #[error("{api_key:?} v{api_version} is not supported (correlation id {correlation_id})")]
    UnsupportedVersion {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
    },
    #[error(
        "malformed {api_key:?} v{api_version} request (correlation id {correlation_id}): {reason}"
    )]
    Malformed {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        reason: String,
    },
}

impl DecodeError {
    /// The correlation id, where the header got far enough to carry one.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            DecodeError::HeaderTruncated(_) => None,
            DecodeError::UnknownApiKey { correlation_id, .. }
            | DecodeError::UnsupportedVersion { correlation_id, .. }
            | DecodeError::Malformed { correlation_id, .. } => Some(*correlation_id),
        }
    }
}

/// The fixed prefix shared by all request header versions.
const FIXED_HEADER_BYTES: usize = 8;

/// Decodes one frame (as returned by [`crate::frame::decode_frame`]).
///
/// `supported` is the broker's registry: the `(min, max)` versions it serves for a key, or
/// `None` for a key it does not serve (which is then reported as unknown, as Kafka does for
/// keys it has no handler for).
pub fn decode_request(
    frame: Bytes,
    supported: impl Fn(ApiKey) -> Option<(i16, i16)>,
) -> Result<Request, DecodeError> {
    if frame.len() < FIXED_HEADER_BYTES {
        return Err(DecodeError::HeaderTruncated(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|()| DecodeError::UnknownApiKey {
        api_key: raw_key,
        correlation_id,
    })?;
    let Some((min, max)) = supported(api_key) else {
        return Err(DecodeError::UnknownApiKey {
            api_key: raw_key,
            correlation_id,
        });
    };
    if api_version < min || api_version > max {
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            api_version,
            correlation_id,
        });
    }
    let malformed = |reason: String| DecodeError::Malformed {
        api_key,
        api_version,
        correlation_id,
        reason,
    };
    let mut buf = frame;
    let header =
        decode_header(&mut buf, api_key.request_header_version(api_version)).map_err(malformed)?;
    let body = decode_body(api_key, &mut buf, api_version).map_err(malformed)?;
    Ok(Request {
        header,
        api_key,
        api_version,
        correlation_id,
        body,
    })
}

fn decode_header(buf: &mut Bytes, header_version: i16) -> Result<RequestHeader, String> {
    if header_version == 0 {
        // Header v0 (only ControlledShutdown v0) has no client id; the crate decodes v1+.
        let fixed = buf.split_to(FIXED_HEADER_BYTES);
        return Ok(RequestHeader::default()
            .with_request_api_key(i16::from_be_bytes([fixed[0], fixed[1]]))
            .with_request_api_version(i16::from_be_bytes([fixed[2], fixed[3]]))
            .with_correlation_id(i32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]))
            .with_client_id(None::<StrBytes>));
    }
    guarded(|| RequestHeader::decode(buf, header_version).map_err(|e| format!("header: {e:#}")))
}

fn decode_body(api_key: ApiKey, buf: &mut Bytes, api_version: i16) -> Result<RequestKind, String> {
    guarded(|| RequestKind::decode(api_key, buf, api_version).map_err(|e| format!("{e:#}")))
}

/// Runs a decoder of the `kafka-protocol` crate, turning a panic inside it into an error.
///
/// The crate's decoders are written to return errors, but they are generated code we do not
/// own; one bad frame must cost one connection, never the broker.
fn guarded<T>(decode: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .unwrap_or_else(|_| Err("decoder panicked".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::Encodable;

    fn encode_request(key: ApiKey, version: i16, correlation_id: i32, body: &RequestKind) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    fn all_versions(key: ApiKey) -> Option<(i16, i16)> {
        let range = key.valid_versions();
        Some((range.min, range.max))
    }

    #[test]
    fn round_trips_metadata_across_header_versions() {
        for version in [1i16, 4, 9, 12] {
            let body = RequestKind::Metadata(MetadataRequest::default());
            let frame = encode_request(ApiKey::Metadata, version, 77, &body);
            let request = decode_request(frame, all_versions).unwrap();
            assert_eq!(request.api_key, ApiKey::Metadata);
            assert_eq!(request.api_version, version);
            assert_eq!(request.correlation_id, 77);
            assert_eq!(request.header.client_id.as_deref(), Some("test"));
            assert_eq!(request.body, body);
        }
    }

    #[test]
    fn version_gate_runs_before_the_body_is_read() {
        let mut frame = encode_request(
            ApiKey::ApiVersions,
            3,
            5,
            &RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
        .to_vec();
        frame.truncate(FIXED_HEADER_BYTES); // the body is gone, yet the answer is about the version
        let err = decode_request(Bytes::from(frame), |_| Some((0, 2))).unwrap_err();
        assert_eq!(
            err,
            DecodeError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                api_version: 3,
                correlation_id: 5
            }
        );
    }

    #[test]
    fn unknown_and_unserved_keys_carry_the_correlation_id() {
        let mut frame = vec![0x7f, 0x00, 0, 0];
        frame.extend_from_slice(&42i32.to_be_bytes());
        let err = decode_request(Bytes::from(frame), all_versions).unwrap_err();
        assert_eq!(err.correlation_id(), Some(42));
        assert!(matches!(
            err,
            DecodeError::UnknownApiKey {
                api_key: 0x7f00,
                ..
            }
        ));

        let frame = encode_request(
            ApiKey::Metadata,
            1,
            9,
            &RequestKind::Metadata(MetadataRequest::default()),
        );
        let err = decode_request(frame, |_| None).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::UnknownApiKey {
                api_key: 3,
                correlation_id: 9
            }
        ));
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let frame = encode_request(
            ApiKey::Metadata,
            12,
            1,
            &RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
        );
        for cut in 0..frame.len() {
            let result = decode_request(frame.slice(..cut), all_versions);
            assert!(result.is_err(), "prefix of {cut} bytes decoded");
        }
    }
}
