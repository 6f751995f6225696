//! Raw Kafka wire helpers for the bad-input tests: encode requests with kafka-protocol, read one
//! response frame from a plain TcpStream, and tell "answered" from "closed" from "hung".

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};

/// A broker that neither answers nor closes within this long is hung. Hang detector only.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the broker");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("set read timeout");
    stream.set_nodelay(true).expect("set TCP_NODELAY");
    stream
}

/// Request header for `api_key`/`api_version`.
pub fn header(api_key: i16, api_version: i16, correlation_id: i32) -> RequestHeader {
    let mut header = RequestHeader::default();
    header.request_api_key = api_key;
    header.request_api_version = api_version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("ringlet-bad-input-test"));
    header
}

/// A whole frame (4-byte length prefix + header + body) for request type `R` at `version`.
pub fn request_frame<R: Encodable + HeaderVersion>(
    body: &R,
    api_key: i16,
    version: i16,
    correlation_id: i32,
) -> Vec<u8> {
    let mut payload = BytesMut::new();
    header(api_key, version, correlation_id)
        .encode(&mut payload, R::header_version(version))
        .expect("encode request header");
    body.encode(&mut payload, version)
        .expect("encode request body");
    frame(&payload)
}

/// Prefixes `payload` with its big-endian i32 length.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut framed = BytesMut::with_capacity(payload.len() + 4);
    framed.put_i32(i32::try_from(payload.len()).expect("payload fits a frame"));
    framed.put_slice(payload);
    framed.to_vec()
}

/// What the broker did with a connection after we sent something.
#[derive(Debug)]
pub enum Reaction {
    /// A complete response frame (without its length prefix).
    Answered(Vec<u8>),
    /// EOF or reset before a complete frame; `partial` bytes came first.
    Closed { partial: usize },
}

/// Reads one response frame, or notices the close. Panics if nothing happens within
/// READ_TIMEOUT (a hang).
pub fn read_reaction(stream: &mut TcpStream, what: &str) -> Reaction {
    let mut length = [0u8; 4];
    match read_exact_or_close(stream, &mut length, what) {
        Ok(()) => {}
        Err(partial) => return Reaction::Closed { partial },
    }
    let size = i32::from_be_bytes(length);
    assert!(
        (0..=64 << 20).contains(&size),
        "{what}: broker sent a response frame with an absurd length {size}"
    );
    let mut body = vec![0u8; size as usize];
    match read_exact_or_close(stream, &mut body, what) {
        Ok(()) => Reaction::Answered(body),
        Err(partial) => Reaction::Closed {
            partial: partial + 4,
        },
    }
}

/// Ok when `buf` is filled; Err(bytes read) on EOF or connection reset.
fn read_exact_or_close(stream: &mut TcpStream, buf: &mut [u8], what: &str) -> Result<(), usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(filled),
            Ok(n) => filled += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) =>
            {
                return Err(filled)
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: the broker neither answered nor closed the connection within {READ_TIMEOUT:?}")
            }
            Err(err) => panic!("{what}: read failed: {err}"),
        }
    }
    Ok(())
}

/// Writes all of `bytes`, tolerating a broker that already closed the connection (it may close
/// as soon as it has seen a bad length prefix).
pub fn send(stream: &mut TcpStream, bytes: &[u8]) {
    match stream.write_all(bytes) {
        Ok(()) => {}
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
            ) => {}
        Err(err) => panic!("write to the broker failed: {err}"),
    }
}

/// Correlation id of a response frame (the first 4 bytes of every response header).
pub fn correlation_id(response: &[u8]) -> i32 {
    assert!(
        response.len() >= 4,
        "response shorter than its header: {response:?}"
    );
    i32::from_be_bytes([response[0], response[1], response[2], response[3]])
}

/// Sends one request on `stream` and decodes its response; panics if the broker closes instead.
pub fn call<Req, Resp>(
    stream: &mut TcpStream,
    api_key: kafka_protocol::messages::ApiKey,
    version: i16,
    request: &Req,
) -> Resp
where
    Req: Encodable + HeaderVersion,
    Resp: kafka_protocol::protocol::Decodable + HeaderVersion,
{
    use kafka_protocol::protocol::Decodable;
    send(stream, &request_frame(request, api_key as i16, version, 7));
    let body = match read_reaction(stream, &format!("{api_key:?} v{version}")) {
        Reaction::Answered(body) => body,
        Reaction::Closed { partial } => {
            panic!("{api_key:?} v{version}: connection closed after {partial} bytes")
        }
    };
    let mut bytes = bytes::Bytes::from(body);
    kafka_protocol::messages::ResponseHeader::decode(&mut bytes, Resp::header_version(version))
        .expect("response header");
    Resp::decode(&mut bytes, version).expect("response body")
}
