//! The partition checkpoint file: log start offset, the leader-epoch cache, and an opaque
//! slot for the Raft state that replication adds later.
//!
//! Replaced atomically (temp file, fdatasync, rename, directory fsync), so a crash leaves
//! either the old or the new version. Encoding: magic, version, log_start_offset, epoch count,
//! (epoch, start_offset) pairs, raft blob length + bytes, then a CRC32C of everything before.

use crate::rt;
use std::io;
use std::path::Path;

pub const CHECKPOINT_FILE: &str = "checkpoint";
const MAGIC: u32 = 0x524c_4350; // "RLCP"
const VERSION: u16 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub log_start_offset: i64,
    /// (leader epoch, first offset written in that epoch), epochs strictly increasing.
    pub epochs: Vec<(i32, i64)>,
    /// Reserved for replication (Raft hard state); stored and returned untouched.
    pub raft_state: Vec<u8>,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.epochs.len() * 12 + self.raft_state.len());
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.log_start_offset.to_be_bytes());
        out.extend_from_slice(&(self.epochs.len() as u32).to_be_bytes());
        for (epoch, start) in &self.epochs {
            out.extend_from_slice(&epoch.to_be_bytes());
            out.extend_from_slice(&start.to_be_bytes());
        }
        out.extend_from_slice(&(self.raft_state.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.raft_state);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes a checkpoint; trailing block padding is ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.u32()? != MAGIC || reader.u16()? != VERSION {
            return Err("bad magic or version".into());
        }
        let log_start_offset = reader.i64()?;
        let epoch_count = reader.u32()? as usize;
        if epoch_count > bytes.len() / 12 {
            return Err("epoch count larger than file".into());
        }
        let mut epochs = Vec::with_capacity(epoch_count);
        for _ in 0..epoch_count {
            let epoch = reader.u32()? as i32;
            epochs.push((epoch, reader.i64()?));
        }
        let raft_len = reader.u32()? as usize;
        let raft_state = reader.take(raft_len)?.to_vec();
        let covered = reader.at;
        let crc = reader.u32()?;
        if crc32c::crc32c(&bytes[..covered]) != crc {
            return Err("CRC mismatch".into());
        }
        Ok(Self {
            log_start_offset,
            epochs,
            raft_state,
        })
    }

    pub async fn load(dir: &Path) -> io::Result<Option<Result<Self, String>>> {
        let bytes = rt::read_small_file(&dir.join(CHECKPOINT_FILE)).await?;
        Ok(bytes.map(|b| Self::decode(&b)))
    }

    pub async fn store(&self, dir: &Path) -> io::Result<()> {
        rt::write_file_atomic(&dir.join(CHECKPOINT_FILE), &self.encode()).await
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_padding_and_corruption() {
        let cp = Checkpoint {
            log_start_offset: 77,
            epochs: vec![(0, 0), (3, 50)],
            raft_state: b"term".to_vec(),
        };
        let mut bytes = cp.encode();
        bytes.resize(4096, 0);
        assert_eq!(Checkpoint::decode(&bytes), Ok(cp));
        for at in 0..40 {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(Checkpoint::decode(&bad).is_err(), "flip at {at}");
        }
    }
}
