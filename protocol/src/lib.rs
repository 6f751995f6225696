//! Sans-io Kafka wire layer.
//!
//! Everything here is pure: bytes in, typed values out, and back. No sockets, no async, no
//! clocks. The message structs come from the `kafka-protocol` crate (re-exported as
//! [`kafka_protocol`] so every caller uses the same version); this crate adds what a broker
//! needs around them:
//!
//! - [`frame`]: the 4-byte length-prefixed framing, with "not enough bytes yet" as `Ok(None)`
//!   and a size limit checked before any allocation.
//! - [`request`]: header parsing and a version gate *before* body decoding, so an unknown API
//!   key or an unsupported version is reported with the correlation id needed to answer it.
//! - [`response`]: response header selection (v0/v1 by API and version) and framing, plus the
//!   ApiVersions fallback Kafka sends for an ApiVersions request it cannot parse.
//! - [`record_batch`]: a zero-copy view of record batches (magic 2): header fields, CRC32C
//!   check, offset rebasing without re-encoding.
//! - [`records`]: the records inside a batch, walked in place; re-packing a batch under another
//!   codec; the record carrying a batch's max timestamp.
//! - [`compression`]: the batch codecs, decompressing within a caller's size bound.

pub use kafka_protocol;

pub mod compression;
pub mod errors;
pub mod frame;
pub mod record_batch;
pub mod records;
pub mod request;
pub mod response;

pub use errors::ResponseError;
pub use frame::{decode_frame, FrameError};
pub use request::{decode_request, DecodeError, Request};
pub use response::{api_versions_fallback, encode_response, EncodeError};
