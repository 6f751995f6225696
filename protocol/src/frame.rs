//! Length-prefixed framing: every Kafka request and response is a big-endian `i32` size
//! followed by that many bytes.

use bytes::{Buf, Bytes, BytesMut};

/// Why a byte stream cannot be framed. Both end the connection: after a bad length prefix
/// there is no way to find the next frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("negative frame length {0}")]
    NegativeLength(i32),
}

const LENGTH_PREFIX_BYTES: usize = 4;

/// Takes one complete frame (without its length prefix) off the front of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole frame; the caller reads more and
/// calls again. The size is checked against `max_frame_bytes` as soon as the prefix is there,
/// so an oversized frame is refused before any of it is buffered.
pub fn decode_frame(
    buf: &mut BytesMut,
    max_frame_bytes: usize,
) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < LENGTH_PREFIX_BYTES {
        return Ok(None);
    }
    let declared = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if declared < 0 {
        return Err(FrameError::NegativeLength(declared));
    }
    let size = declared as usize;
    if size > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    if buf.len() < LENGTH_PREFIX_BYTES + size {
        buf.reserve(LENGTH_PREFIX_BYTES + size - buf.len());
        return Ok(None);
    }
    buf.advance(LENGTH_PREFIX_BYTES);
    Ok(Some(buf.split_to(size).freeze()))
}

/// Prepends the length prefix to an encoded message.
pub fn frame_bytes(body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(LENGTH_PREFIX_BYTES + body.len());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_prefix_and_partial_body_need_more_bytes() {
        let framed = frame_bytes(b"hello");
        for cut in 0..framed.len() {
            let mut buf = BytesMut::from(&framed[..cut]);
            assert_eq!(decode_frame(&mut buf, 100), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut, "an incomplete frame must not be consumed");
        }
    }

    #[test]
    fn two_frames_back_to_back_come_out_in_order() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&frame_bytes(b"one"));
        buf.extend_from_slice(&frame_bytes(b"second"));
        assert_eq!(
            decode_frame(&mut buf, 100).unwrap().unwrap(),
            Bytes::from_static(b"one")
        );
        assert_eq!(
            decode_frame(&mut buf, 100).unwrap().unwrap(),
            Bytes::from_static(b"second")
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_and_negative_lengths_are_refused_from_the_prefix_alone() {
        let mut buf = BytesMut::from(&(1000i32).to_be_bytes()[..]);
        assert_eq!(
            decode_frame(&mut buf, 999),
            Err(FrameError::TooLarge {
                size: 1000,
                max: 999
            })
        );
        let mut buf = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert_eq!(
            decode_frame(&mut buf, 999),
            Err(FrameError::NegativeLength(-5))
        );
    }

    #[test]
    fn empty_frame_is_a_frame() {
        let mut buf = BytesMut::from(&frame_bytes(b"")[..]);
        assert_eq!(decode_frame(&mut buf, 10), Ok(Some(Bytes::new())));
    }
}
