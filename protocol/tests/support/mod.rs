//! Helpers shared by the protocol codec tests: a seeded PRNG (the crate is pure and has no
//! dev-dependencies, so no proptest), request framing, and the fixture directory.
#![allow(dead_code)] // each test binary uses a different part

pub mod generate;

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use ringlet_protocol::kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use ringlet_protocol::kafka_protocol::protocol::{Encodable, StrBytes};

/// xorshift64*: small, seeded, reproducible. Every failure message prints the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    pub fn i32(&mut self) -> i32 {
        self.next_u64() as i32
    }

    pub fn i64(&mut self) -> i64 {
        self.next_u64() as i64
    }

    pub fn i16(&mut self) -> i16 {
        self.next_u64() as i16
    }

    pub fn i8(&mut self) -> i8 {
        self.next_u64() as i8
    }

    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A count in 0..=max, biased towards small values (empty collections matter).
    pub fn count(&mut self, max: u64) -> usize {
        if self.chance(4) {
            0
        } else {
            self.below(max + 1) as usize
        }
    }

    /// A legal-looking name of 1..=max_len chars, sometimes multi-byte UTF-8.
    pub fn name(&mut self, max_len: u64) -> StrBytes {
        const CHARS: &[char] = &['a', 'z', 'K', '0', '9', '.', '_', '-', 'é', '∑'];
        let len = 1 + self.below(max_len) as usize;
        let text: String = (0..len)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize])
            .collect();
        StrBytes::from_string(text)
    }

    pub fn bytes(&mut self, max_len: u64) -> Bytes {
        let len = self.count(max_len);
        Bytes::from((0..len).map(|_| self.next_u64() as u8).collect::<Vec<u8>>())
    }
}

/// Every version the kafka-protocol crate knows, for the version gate of `decode_request`.
pub fn every_version(key: ApiKey) -> Option<(i16, i16)> {
    let range = key.valid_versions();
    Some((range.min, range.max))
}

/// Header for a request, as a client would send it.
pub fn request_header(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<StrBytes>,
) -> RequestHeader {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = client_id;
    header
}

/// Header + body, without the length prefix (what `decode_frame` hands to `decode_request`).
pub fn encode_request_payload(header: &RequestHeader, body: &RequestKind) -> Result<Bytes, String> {
    let key =
        ApiKey::try_from(header.request_api_key).map_err(|()| "unknown api key".to_string())?;
    let version = header.request_api_version;
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .map_err(|e| format!("header: {e:#}"))?;
    body.encode(&mut buf, version)
        .map_err(|e| format!("body: {e:#}"))?;
    Ok(buf.freeze())
}

/// Length prefix + payload, as on the wire.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// protocol/tests/fixtures: request frames captured from real clients.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every fixture: (file name, bytes as captured, length prefix included).
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixtures_dir())
        .expect("protocol/tests/fixtures exists")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).expect("read fixture");
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}
