//! Wire encoding of the per-node-pair batch: every message from one node to
//! another in one tick, for every group, in one frame.
//!
//! Layout (all integers LEB128 varints unless noted):
//! ```text
//! u8 version | from | to
//! n_light_heartbeats | group id deltas (ascending)
//! n_light_responses  | group id deltas (ascending)
//! n_full | { group | u8 tag | term | body }*
//! ```
//! An idle group costs one delta-encoded varint per direction per heartbeat:
//! usually one byte. Light messages carry no term: the receiver's group fills
//! in its own (see [`MessageBody::HeartbeatLight`]). Append entries carry no
//! index: they are contiguous after `prev_index`. Decoding never panics and
//! never allocates more than the input can justify.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{RaftError, Result};
use crate::message::{
    ConfState, Entry, EntryKind, GroupId, Message, MessageBody, NodeId, Snapshot, SnapshotMeta,
};

const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMessage {
    pub group: GroupId,
    pub msg: Message,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub from: NodeId,
    pub to: NodeId,
    pub messages: Vec<GroupMessage>,
}

pub fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_group_deltas(out: &mut BytesMut, mut groups: Vec<GroupId>) {
    groups.sort_unstable();
    put_varint(out, groups.len() as u64);
    let mut prev = 0;
    for g in groups {
        put_varint(out, g - prev);
        prev = g;
    }
}

pub fn encode(batch: &Batch) -> Bytes {
    let mut out = BytesMut::with_capacity(16 + batch.messages.len() * 2);
    out.put_u8(VERSION);
    put_varint(&mut out, batch.from);
    put_varint(&mut out, batch.to);
    let pick = |light: fn(&MessageBody) -> bool| -> Vec<GroupId> {
        batch
            .messages
            .iter()
            .filter(|gm| light(&gm.msg.body))
            .map(|gm| gm.group)
            .collect()
    };
    put_group_deltas(&mut out, pick(|b| matches!(b, MessageBody::HeartbeatLight)));
    put_group_deltas(
        &mut out,
        pick(|b| matches!(b, MessageBody::HeartbeatLightResponse)),
    );
    let full: Vec<&GroupMessage> = batch
        .messages
        .iter()
        .filter(|gm| {
            !matches!(
                gm.msg.body,
                MessageBody::HeartbeatLight | MessageBody::HeartbeatLightResponse
            )
        })
        .collect();
    put_varint(&mut out, full.len() as u64);
    for gm in full {
        put_varint(&mut out, gm.group);
        encode_body(&mut out, gm.msg.term, &gm.msg.body);
    }
    out.freeze()
}

fn flags(bits: &[bool]) -> u8 {
    bits.iter()
        .enumerate()
        .fold(0u8, |acc, (i, b)| acc | (u8::from(*b) << i))
}

fn encode_body(out: &mut BytesMut, term: u64, body: &MessageBody) {
    let v = |out: &mut BytesMut, x: u64| put_varint(out, x);
    match body {
        MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit,
        } => {
            out.put_u8(1);
            v(out, term);
            for x in [*prev_index, *prev_term, *commit, entries.len() as u64] {
                v(out, x);
            }
            encode_entries(out, *prev_index, entries);
        }
        MessageBody::AppendResponse {
            reject,
            index,
            hint_index,
            hint_term,
            commit,
        } => {
            out.put_u8(2);
            v(out, term);
            out.put_u8(flags(&[*reject]));
            for x in [*index, *hint_index, *hint_term, *commit] {
                v(out, x);
            }
        }
        MessageBody::Vote {
            pre_vote,
            transfer,
            last_index,
            last_term,
        } => {
            out.put_u8(3);
            v(out, term);
            out.put_u8(flags(&[*pre_vote, *transfer]));
            v(out, *last_index);
            v(out, *last_term);
        }
        MessageBody::VoteResponse { pre_vote, reject } => {
            out.put_u8(4);
            v(out, term);
            out.put_u8(flags(&[*pre_vote, *reject]));
        }
        MessageBody::Heartbeat { commit } => {
            out.put_u8(5);
            v(out, term);
            v(out, *commit);
        }
        MessageBody::HeartbeatResponse { commit, need_full } => {
            out.put_u8(6);
            v(out, term);
            out.put_u8(flags(&[*need_full]));
            v(out, *commit);
        }
        MessageBody::TimeoutNow => {
            out.put_u8(7);
            v(out, term);
        }
        MessageBody::InstallSnapshot { snapshot } => {
            out.put_u8(8);
            v(out, term);
            encode_snapshot(out, snapshot);
        }
        MessageBody::HeartbeatLight | MessageBody::HeartbeatLightResponse => {
            unreachable!("light messages are encoded in the id lists")
        }
    }
}

fn encode_entries(out: &mut BytesMut, prev_index: u64, entries: &[Entry]) {
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e.index,
            prev_index + 1 + i as u64,
            "raft invariant: append entries are contiguous"
        );
        put_varint(out, e.term);
        out.put_u8(match e.kind {
            EntryKind::Normal => 0,
            EntryKind::ConfChange => 1,
        });
        put_varint(out, e.data.len() as u64);
        out.put_slice(&e.data);
    }
}

fn encode_snapshot(out: &mut BytesMut, snapshot: &Snapshot) {
    let meta = &snapshot.meta;
    put_varint(out, meta.index);
    put_varint(out, meta.term);
    for ids in [&meta.conf.voters, &meta.conf.learners] {
        put_varint(out, ids.len() as u64);
        for id in ids.iter() {
            put_varint(out, *id);
        }
    }
    put_varint(out, snapshot.data.len() as u64);
    out.put_slice(&snapshot.data);
}

struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn err(&self, reason: &'static str) -> RaftError {
        RaftError::Wire {
            offset: self.pos,
            reason,
        }
    }

    fn u8(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(self.err("varint overflows u64"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    /// A count of items that each take at least one byte: bounded by what is left.
    fn count(&mut self) -> Result<usize> {
        let n = self.varint()?;
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(self.err("count exceeds remaining bytes"));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<Bytes> {
        let n = self.count()?;
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    fn ids(&mut self) -> Result<Vec<u64>> {
        let n = self.count()?;
        (0..n).map(|_| self.varint()).collect()
    }

    fn group_deltas(&mut self) -> Result<Vec<GroupId>> {
        let n = self.count()?;
        let mut prev = 0u64;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            prev = prev
                .checked_add(self.varint()?)
                .ok_or_else(|| self.err("group id overflow"))?;
            out.push(prev);
        }
        Ok(out)
    }

    fn flags(&mut self) -> Result<[bool; 2]> {
        let f = self.u8()?;
        if f > 3 {
            return Err(self.err("unknown flag bits"));
        }
        Ok([f & 1 != 0, f & 2 != 0])
    }
}

pub fn decode(buf: Bytes) -> Result<Batch> {
    let mut r = Reader { buf, pos: 0 };
    if r.u8()? != VERSION {
        return Err(r.err("unknown batch version"));
    }
    let from = r.varint()?;
    let to = r.varint()?;
    let mut messages = Vec::new();
    let light = |group, body| GroupMessage {
        group,
        msg: Message {
            from,
            to,
            term: 0,
            body,
        },
    };
    for g in r.group_deltas()? {
        messages.push(light(g, MessageBody::HeartbeatLight));
    }
    for g in r.group_deltas()? {
        messages.push(light(g, MessageBody::HeartbeatLightResponse));
    }
    let n_full = r.count()?;
    for _ in 0..n_full {
        let group = r.varint()?;
        let tag = r.u8()?;
        let term = r.varint()?;
        let body = decode_body(&mut r, tag)?;
        messages.push(GroupMessage {
            group,
            msg: Message {
                from,
                to,
                term,
                body,
            },
        });
    }
    if r.pos != r.buf.len() {
        return Err(r.err("trailing bytes"));
    }
    Ok(Batch { from, to, messages })
}

fn decode_body(r: &mut Reader, tag: u8) -> Result<MessageBody> {
    Ok(match tag {
        1 => {
            let (prev_index, prev_term, commit) = (r.varint()?, r.varint()?, r.varint()?);
            let entries = decode_entries(r, prev_index)?;
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            }
        }
        2 => {
            let [reject, _] = r.flags()?;
            let (index, hint_index, hint_term, commit) =
                (r.varint()?, r.varint()?, r.varint()?, r.varint()?);
            MessageBody::AppendResponse {
                reject,
                index,
                hint_index,
                hint_term,
                commit,
            }
        }
        3 => {
            let [pre_vote, transfer] = r.flags()?;
            MessageBody::Vote {
                pre_vote,
                transfer,
                last_index: r.varint()?,
                last_term: r.varint()?,
            }
        }
        4 => {
            let [pre_vote, reject] = r.flags()?;
            MessageBody::VoteResponse { pre_vote, reject }
        }
        5 => MessageBody::Heartbeat {
            commit: r.varint()?,
        },
        6 => {
            let [need_full, _] = r.flags()?;
            MessageBody::HeartbeatResponse {
                need_full,
                commit: r.varint()?,
            }
        }
        7 => MessageBody::TimeoutNow,
        8 => {
            let snapshot = decode_snapshot(r)?;
            MessageBody::InstallSnapshot { snapshot }
        }
        _ => return Err(r.err("unknown message tag")),
    })
}

fn decode_entries(r: &mut Reader, prev_index: u64) -> Result<Vec<Entry>> {
    let n = r.count()?;
    let mut entries = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let term = r.varint()?;
        let kind = match r.u8()? {
            0 => EntryKind::Normal,
            1 => EntryKind::ConfChange,
            _ => return Err(r.err("unknown entry kind")),
        };
        let index = prev_index
            .checked_add(1 + i)
            .ok_or_else(|| r.err("index overflow"))?;
        let data = r.bytes()?;
        entries.push(Entry {
            term,
            index,
            kind,
            data,
        });
    }
    Ok(entries)
}

fn decode_snapshot(r: &mut Reader) -> Result<Snapshot> {
    let (index, term) = (r.varint()?, r.varint()?);
    let conf = ConfState {
        voters: r.ids()?,
        learners: r.ids()?,
    };
    let data = r.bytes()?;
    Ok(Snapshot {
        meta: SnapshotMeta { index, term, conf },
        data,
    })
}

#[cfg(test)]
mod tests;
