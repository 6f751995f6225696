//! The broker-to-broker frame (sans-io): `u32 BE length of the rest | u8 kind | u64 BE
//! correlation id | payload`. "Not enough bytes yet" is `Ok(None)`, never an error.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::rpc::error::RpcError;

/// Bytes of the length prefix.
pub const LENGTH_BYTES: usize = 4;
/// Bytes the length counts besides the payload: kind + correlation id.
pub const HEADER_BYTES: usize = 1 + 8;

/// What a frame carries; the value is the byte on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A Raft message batch: fire-and-forget, no response (Raft retransmits what is lost).
    Raft = 1,
    /// A call that wants a `Response` with the same correlation id.
    Request = 2,
    /// The answer to a `Request`.
    Response = 3,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Raft),
            2 => Some(Self::Request),
            3 => Some(Self::Response),
            _ => None,
        }
    }
}

/// One decoded frame. `correlation` is 0 for Raft frames (unused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub correlation: u64,
    pub payload: Bytes,
}

impl Frame {
    pub fn raft(payload: Bytes) -> Self {
        Self {
            kind: FrameKind::Raft,
            correlation: 0,
            payload,
        }
    }

    pub fn request(correlation: u64, payload: Bytes) -> Self {
        Self {
            kind: FrameKind::Request,
            correlation,
            payload,
        }
    }

    pub fn response(correlation: u64, payload: Bytes) -> Self {
        Self {
            kind: FrameKind::Response,
            correlation,
            payload,
        }
    }
}

/// The value of the length prefix for a payload of `payload_bytes` (what `max_frame_bytes`
/// limits).
pub fn frame_len(payload_bytes: usize) -> usize {
    HEADER_BYTES.saturating_add(payload_bytes)
}

/// Appends `frame` to `out`. The caller keeps frames under its `max_frame_bytes`, which
/// never exceeds `u32::MAX`; a longer frame is a programming error.
pub fn encode_into(frame: &Frame, out: &mut BytesMut) {
    let Ok(len) = u32::try_from(frame_len(frame.payload.len())) else {
        panic!("rpc frame longer than u32::MAX: the caller must check its size");
    };
    out.reserve(LENGTH_BYTES + len as usize);
    out.put_u32(len);
    out.put_u8(frame.kind as u8);
    out.put_u64(frame.correlation);
    out.put_slice(&frame.payload);
}

/// `frame` as one buffer.
pub fn encode(frame: &Frame) -> Bytes {
    let mut out = BytesMut::new();
    encode_into(frame, &mut out);
    out.freeze()
}

/// Takes one frame off the front of `buf`. The payload shares `buf`'s memory (no copy).
/// Errors (the connection must close): a length under the header or over
/// `max_frame_bytes`, an unknown kind. Both are checked as soon as their bytes are there,
/// so a bad peer is refused before it sends the rest.
pub fn decode(buf: &mut BytesMut, max_frame_bytes: usize) -> Result<Option<Frame>, RpcError> {
    if buf.len() < LENGTH_BYTES {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len < HEADER_BYTES {
        return Err(RpcError::BadFrame(format!(
            "length {len} is under the {HEADER_BYTES}-byte header"
        )));
    }
    if len > max_frame_bytes {
        return Err(RpcError::FrameTooLarge {
            len_bytes: len,
            max_bytes: max_frame_bytes,
        });
    }
    if buf.len() > LENGTH_BYTES {
        let byte = buf[LENGTH_BYTES];
        if FrameKind::from_byte(byte).is_none() {
            return Err(RpcError::BadFrame(format!("unknown frame kind {byte}")));
        }
    }
    let total = LENGTH_BYTES + len;
    if buf.len() < total {
        // The frame is legal: make room once instead of growing per read.
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    frame.advance(LENGTH_BYTES);
    let kind_byte = frame.get_u8();
    let correlation = frame.get_u64();
    let kind = FrameKind::from_byte(kind_byte)
        .ok_or_else(|| RpcError::BadFrame(format!("unknown frame kind {kind_byte}")))?;
    Ok(Some(Frame {
        kind,
        correlation,
        payload: frame.freeze(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn samples() -> Vec<Frame> {
        vec![
            Frame::raft(Bytes::from_static(b"append entries")),
            Frame::request(7, Bytes::from_static(b"fetch metadata")),
            Frame::response(u64::MAX, Bytes::new()),
        ]
    }

    #[test]
    fn round_trip() {
        for frame in samples() {
            let wire = encode(&frame);
            assert_eq!(wire.len(), LENGTH_BYTES + frame_len(frame.payload.len()));
            let mut buf = BytesMut::from(&wire[..]);
            assert_eq!(decode(&mut buf, MAX).unwrap(), Some(frame));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn wire_layout_is_big_endian() {
        let wire = encode(&Frame::request(0x0102, Bytes::from_static(b"x")));
        assert_eq!(&wire[..], &[0, 0, 0, 10, 2, 0, 0, 0, 0, 0, 0, 1, 2, b'x']);
    }

    #[test]
    fn truncation_at_every_byte_is_not_enough_yet() {
        for frame in samples() {
            let wire = encode(&frame);
            for cut in 0..wire.len() {
                let mut buf = BytesMut::from(&wire[..cut]);
                assert_eq!(decode(&mut buf, MAX).unwrap(), None, "cut at {cut}");
                assert_eq!(&buf[..], &wire[..cut], "nothing consumed at cut {cut}");
            }
        }
    }

    #[test]
    fn oversized_frame_is_refused_from_its_length_alone() {
        let wire = encode(&Frame::raft(Bytes::from(vec![0u8; MAX])));
        let mut buf = BytesMut::from(&wire[..LENGTH_BYTES]);
        match decode(&mut buf, MAX) {
            Err(RpcError::FrameTooLarge {
                len_bytes,
                max_bytes,
            }) => {
                assert_eq!(len_bytes, MAX + HEADER_BYTES);
                assert_eq!(max_bytes, MAX);
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        let mut at_limit = BytesMut::from(&encode(&Frame::raft(vec![1u8; MAX - 9].into()))[..]);
        assert!(decode(&mut at_limit, MAX).unwrap().is_some());
    }

    #[test]
    fn short_length_and_unknown_kind_are_errors() {
        let mut short = BytesMut::from(&[0u8, 0, 0, 8][..]);
        assert!(matches!(
            decode(&mut short, MAX),
            Err(RpcError::BadFrame(_))
        ));
        for kind in [0u8, 4, 255] {
            let mut wire = BytesMut::from(&encode(&Frame::raft(Bytes::new()))[..]);
            wire[LENGTH_BYTES] = kind;
            // Refused as soon as the kind byte is there, and on the whole frame.
            let mut partial = BytesMut::from(&wire[..LENGTH_BYTES + 1]);
            assert!(matches!(
                decode(&mut partial, MAX),
                Err(RpcError::BadFrame(_))
            ));
            assert!(matches!(decode(&mut wire, MAX), Err(RpcError::BadFrame(_))));
        }
    }

    #[test]
    fn several_frames_in_one_buffer() {
        let mut buf = BytesMut::new();
        for frame in samples() {
            encode_into(&frame, &mut buf);
        }
        let tail = encode(&Frame::request(9, Bytes::from_static(b"half")));
        buf.extend_from_slice(&tail[..6]);
        for frame in samples() {
            assert_eq!(decode(&mut buf, MAX).unwrap(), Some(frame));
        }
        assert_eq!(decode(&mut buf, MAX).unwrap(), None);
        buf.extend_from_slice(&tail[6..]);
        let last = decode(&mut buf, MAX).unwrap().unwrap();
        assert_eq!((last.correlation, &last.payload[..]), (9, &b"half"[..]));
        assert!(buf.is_empty());
    }
}
