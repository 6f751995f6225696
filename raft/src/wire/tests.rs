use super::*;
use crate::rng::SplitMix64;

fn msg(term: u64, body: MessageBody) -> Message {
    Message {
        from: 3,
        to: 7,
        term,
        body,
    }
}

fn every_kind() -> Batch {
    let entries = vec![
        Entry::normal(4, 11, Bytes::from_static(b"batch-a")),
        Entry {
            term: 5,
            index: 12,
            kind: EntryKind::ConfChange,
            data: Bytes::from_static(b"cc"),
        },
    ];
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            index: 90,
            term: 4,
            conf: ConfState {
                voters: vec![1, 3, 7],
                learners: vec![9],
            },
        },
        data: Bytes::from_static(b"state"),
    };
    let bodies = vec![
        (
            5,
            MessageBody::Append {
                prev_index: 10,
                prev_term: 4,
                entries,
                commit: 9,
            },
        ),
        (
            5,
            MessageBody::AppendResponse {
                reject: true,
                index: 10,
                hint_index: 8,
                hint_term: 3,
                commit: 7,
            },
        ),
        (
            6,
            MessageBody::Vote {
                pre_vote: true,
                transfer: false,
                last_index: 12,
                last_term: 5,
            },
        ),
        (
            6,
            MessageBody::VoteResponse {
                pre_vote: false,
                reject: true,
            },
        ),
        (5, MessageBody::Heartbeat { commit: 1 << 40 }),
        (
            5,
            MessageBody::HeartbeatResponse {
                commit: 3,
                need_full: true,
            },
        ),
        (5, MessageBody::TimeoutNow),
        (5, MessageBody::InstallSnapshot { snapshot }),
    ];
    let mut messages: Vec<GroupMessage> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, (t, b))| GroupMessage {
            group: 100 + i as u64,
            msg: msg(t, b),
        })
        .collect();
    // Light messages decode with term 0, ahead of the full ones, ascending.
    messages.insert(
        0,
        GroupMessage {
            group: 2,
            msg: msg(0, MessageBody::HeartbeatLight),
        },
    );
    messages.insert(
        1,
        GroupMessage {
            group: 5,
            msg: msg(0, MessageBody::HeartbeatLight),
        },
    );
    messages.insert(
        2,
        GroupMessage {
            group: 4,
            msg: msg(0, MessageBody::HeartbeatLightResponse),
        },
    );
    Batch {
        from: 3,
        to: 7,
        messages,
    }
}

#[test]
fn every_message_kind_round_trips() {
    let batch = every_kind();
    let decoded = decode(encode(&batch)).expect("decode");
    assert_eq!(decoded, batch);
}

#[test]
fn truncation_at_every_byte_is_an_error_not_a_panic() {
    let bytes = encode(&every_kind());
    for cut in 0..bytes.len() {
        assert!(
            decode(bytes.slice(..cut)).is_err(),
            "prefix of {cut} bytes decoded"
        );
    }
}

#[test]
fn random_corruption_never_panics() {
    let bytes = encode(&every_kind()).to_vec();
    let mut rng = SplitMix64::new(0xC0FFEE);
    for _ in 0..20_000 {
        let mut copy = bytes.clone();
        for _ in 0..rng.gen_range(1, 4) {
            let i = rng.gen_range(0, copy.len() as u64) as usize;
            copy[i] = rng.next_u64() as u8;
        }
        let _ = decode(Bytes::from(copy));
    }
}

#[test]
fn idle_groups_cost_about_one_byte_each() {
    let messages = (1..=10_000)
        .map(|g| GroupMessage {
            group: g,
            msg: msg(0, MessageBody::HeartbeatLight),
        })
        .collect();
    let bytes = encode(&Batch {
        from: 1,
        to: 2,
        messages,
    });
    assert!(
        bytes.len() <= 10_000 + 16,
        "10,000 light heartbeats took {} bytes",
        bytes.len()
    );
}

#[test]
fn varint_overflow_is_rejected() {
    let mut bad = vec![VERSION];
    bad.extend_from_slice(&[0xff; 10]);
    bad.push(0x01);
    assert!(decode(Bytes::from(bad)).is_err());
}
