//! The record-batch codecs (gzip, snappy, lz4, zstd) over a batch's records section, with a
//! bound on what decompression may produce.
//!
//! Compression goes through kafka-protocol's own compressors, so a batch the broker writes is
//! what a Kafka client library would write. Decompression does not: kafka-protocol's
//! decompressors grow their output without limit (and its snappy reader allocates whatever
//! length a block header claims), so a few kilobytes of crafted input could ask for gigabytes.
//! Here every codec streams into a buffer that grows only as real output appears and stops
//! with [`CodecError::TooLarge`] past the caller's limit. Pure: `std::io::Read` over slices only.

use std::io::Read;

use bytes::BytesMut;
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::record_batch::BatchCompression;

/// Why records could not be compressed or decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The decompressed records would exceed the caller's limit.
    #[error("decompressed records exceed {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
    /// The compressed bytes are not valid for their codec.
    #[error("invalid {codec} data: {detail}")]
    Corrupt { codec: &'static str, detail: String },
    /// Attribute bits naming no codec Kafka defines.
    #[error("unknown compression codec {0}")]
    Unknown(u8),
}

/// snappy-java's stream header, which Kafka's snappy batches start with.
const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// Decompresses a batch's records section, producing at most `max_bytes`.
pub fn decompress(
    codec: BatchCompression,
    input: &[u8],
    max_bytes: usize,
) -> Result<Vec<u8>, CodecError> {
    match codec {
        BatchCompression::None => bounded_copy(input, max_bytes),
        BatchCompression::Gzip => {
            // Java's GZIPInputStream reads concatenated members; so does MultiGzDecoder.
            read_bounded(flate2::read::MultiGzDecoder::new(input), "gzip", max_bytes)
        }
        BatchCompression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|err| corrupt("zstd", err))?;
            read_bounded(decoder, "zstd", max_bytes)
        }
        BatchCompression::Lz4 => {
            let decoder = lz4::Decoder::new(input).map_err(|err| corrupt("lz4", err))?;
            read_bounded(decoder, "lz4", max_bytes)
        }
        BatchCompression::Snappy => snappy_decompress(input, max_bytes),
        BatchCompression::Unknown(bits) => Err(CodecError::Unknown(bits)),
    }
}

/// Compresses uncompressed records with `codec`, as kafka-protocol's encoder would.
pub fn compress(codec: BatchCompression, records: &[u8]) -> Result<Vec<u8>, CodecError> {
    fn with<C: Compressor<BytesMut>>(
        name: &'static str,
        records: &[u8],
    ) -> Result<Vec<u8>, CodecError> {
        let mut out = BytesMut::with_capacity(records.len() / 2 + 64);
        C::compress(&mut out, |tmp| {
            bytes::BufMut::put_slice(tmp, records);
            Ok(())
        })
        .map_err(|err| corrupt(name, err))?;
        Ok(out.to_vec())
    }
    match codec {
        BatchCompression::None => Ok(records.to_vec()),
        BatchCompression::Gzip => with::<Gzip>("gzip", records),
        BatchCompression::Snappy => with::<Snappy>("snappy", records),
        BatchCompression::Lz4 => with::<Lz4>("lz4", records),
        BatchCompression::Zstd => with::<Zstd>("zstd", records),
        BatchCompression::Unknown(bits) => Err(CodecError::Unknown(bits)),
    }
}

fn corrupt(codec: &'static str, err: impl std::fmt::Display) -> CodecError {
    CodecError::Corrupt {
        codec,
        detail: err.to_string(),
    }
}

fn bounded_copy(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, CodecError> {
    if input.len() > max_bytes {
        return Err(CodecError::TooLarge { max_bytes });
    }
    Ok(input.to_vec())
}

/// Reads `reader` to its end, failing as soon as it yields more than `max_bytes`.
fn read_bounded(
    reader: impl Read,
    codec: &'static str,
    max_bytes: usize,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|err| corrupt(codec, err))?;
    if out.len() > max_bytes {
        return Err(CodecError::TooLarge { max_bytes });
    }
    Ok(out)
}

/// snappy-java framing (magic, then `u32` length + raw snappy block, repeated), or a single
/// raw snappy block when the magic is absent, as snappy-java's reader also accepts. Each
/// block's claimed length is checked against what is left of `max_bytes` before allocating.
fn snappy_decompress(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let Some(mut rest) = input.strip_prefix(&XERIAL_MAGIC[..]) else {
        snappy_block(input, &mut out, max_bytes)?;
        return Ok(out);
    };
    while !rest.is_empty() {
        let (length, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("snappy", "truncated block length"))?;
        let length = u32::from_be_bytes(*length) as usize;
        if length > tail.len() {
            return Err(corrupt("snappy", "block length past the end of the data"));
        }
        let (block, tail) = tail.split_at(length);
        snappy_block(block, &mut out, max_bytes)?;
        rest = tail;
    }
    Ok(out)
}

fn snappy_block(block: &[u8], out: &mut Vec<u8>, max_bytes: usize) -> Result<(), CodecError> {
    let length = snap::raw::decompress_len(block).map_err(|err| corrupt("snappy", err))?;
    let start = out.len();
    if length > max_bytes.saturating_sub(start) {
        return Err(CodecError::TooLarge { max_bytes });
    }
    out.resize(start + length, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|err| corrupt("snappy", err))?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [BatchCompression; 4] = [
        BatchCompression::Gzip,
        BatchCompression::Snappy,
        BatchCompression::Lz4,
        BatchCompression::Zstd,
    ];

    fn sample() -> Vec<u8> {
        (0..50_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let records = sample();
        for codec in CODECS {
            let packed = compress(codec, &records).expect("compress");
            assert_ne!(packed, records, "{codec:?}");
            let unpacked = decompress(codec, &packed, records.len()).expect("decompress");
            assert_eq!(unpacked, records, "{codec:?}");
        }
    }

    #[test]
    fn output_past_the_limit_is_refused_for_every_codec() {
        // A million zeros compress to a few hundred bytes: a small bomb.
        let zeros = vec![0u8; 1 << 20];
        for codec in CODECS {
            let packed = compress(codec, &zeros).expect("compress");
            assert!(packed.len() < 64 << 10, "{codec:?}: {}", packed.len());
            assert_eq!(
                decompress(codec, &packed, 1000),
                Err(CodecError::TooLarge { max_bytes: 1000 }),
                "{codec:?}"
            );
            assert_eq!(
                decompress(codec, &packed, 1 << 20).map(|v| v.len()),
                Ok(1 << 20)
            );
        }
        assert!(decompress(BatchCompression::None, &zeros, 10).is_err());
    }

    #[test]
    fn a_snappy_header_claiming_gigabytes_allocates_nothing() {
        // A raw snappy block whose varint length says 4 GiB - 1, followed by nothing.
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(
            decompress(BatchCompression::Snappy, &claim, 1 << 20),
            Err(CodecError::TooLarge { max_bytes: 1 << 20 })
        );
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&(claim.len() as u32).to_be_bytes());
        framed.extend_from_slice(&claim);
        assert!(decompress(BatchCompression::Snappy, &framed, 1 << 20).is_err());
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let records = sample();
        for codec in CODECS {
            let packed = compress(codec, &records).expect("compress");
            for len in [0, 1, 5, 17, packed.len() / 2] {
                let result = decompress(codec, &packed[..len], records.len());
                assert!(result.as_deref() != Ok(&records[..]), "{codec:?} at {len}");
            }
            // The lz4 crate accepts a frame missing its last end-mark byte; any answer is
            // fine as long as it is bounded.
            let _ = decompress(codec, &packed[..packed.len() - 1], records.len());
            // Whatever a codec makes of garbage, it answers within the limit.
            let _ = decompress(codec, b"definitely not compressed", 1 << 10);
        }
        assert_eq!(
            decompress(BatchCompression::Unknown(6), b"x", 10),
            Err(CodecError::Unknown(6))
        );
    }
}
