//! Log replication, commitment and membership tests, named after the
//! sections of Ongaro's thesis they check.

use bytes::Bytes;
use ringlet_raft::sim::cluster::Cluster;
use ringlet_raft::{
    ConfChange, ConfState, Config, Entry, HardState, MemStorage, Message, MessageBody, RaftError,
    Role, Storage,
};

fn entries_of(c: &Cluster, id: u64) -> Vec<(u64, u64)> {
    let n = c.node(id);
    n.log_entries(n.first_index(), n.last_index() + 1)
        .unwrap()
        .iter()
        .map(|e| (e.index, e.term))
        .collect()
}

fn storage_with(voters: &[u64], terms: &[u64], hard_term: u64, commit: u64) -> MemStorage {
    let mut s = MemStorage::new_with_voters(voters);
    let entries: Vec<Entry> = terms
        .iter()
        .enumerate()
        .map(|(i, t)| Entry::normal(*t, i as u64 + 1, Bytes::from_static(b"e")))
        .collect();
    s.append(&entries).unwrap();
    s.set_hard_state(HardState {
        term: hard_term,
        vote: None,
        commit,
    })
    .unwrap();
    s
}

/// Log Matching (thesis 3.5): after a leader change, a follower's divergent
/// uncommitted suffix is replaced by the leader's log.
#[test]
fn s3_5_log_matching_follower_suffix_is_overwritten() {
    let mut c = Cluster::new(&[1, 2, 3], 11);
    c.campaign(1);
    c.propose(1, b"committed").unwrap();
    c.isolate(1);
    for _ in 0..3 {
        c.node_mut(1).propose(Bytes::from_static(b"lost")).unwrap();
        c.stabilize();
    }
    c.tick(60);
    let leader = *c
        .leaders()
        .iter()
        .find(|id| **id != 1)
        .expect("2 or 3 leads");
    c.propose(leader, b"new").unwrap();
    c.heal();
    c.tick(30);
    assert_eq!(entries_of(&c, 1), entries_of(&c, 2));
    assert_eq!(entries_of(&c, 3), entries_of(&c, 2));
    let data = c.applied_data(1);
    assert_eq!(
        data,
        vec![Bytes::from_static(b"committed"), Bytes::from_static(b"new")]
    );
}

/// Fast backtracking (thesis 3.5: "the protocol can be optimized to reduce
/// the number of rejected AppendEntries RPCs"): one rejection per conflicting
/// term, not one per entry.
#[test]
fn s3_5_fast_backtracking_rejects_once_per_conflicting_term() {
    let mut c = Cluster::new(&[1, 2, 3], 12);
    // Node 3 holds a long suffix of term 2 that no one else has.
    let mut terms = vec![1u64; 5];
    terms.extend(vec![2u64; 50]);
    c.crash(3);
    c.crashed.insert(3, storage_with(&[1, 2, 3], &terms, 2, 5));
    c.restart(3);
    for id in [1, 2] {
        c.crash(id);
        c.crashed
            .insert(id, storage_with(&[1, 2, 3], &[1, 1, 1, 1, 1, 3, 3], 3, 5));
        c.restart(id);
    }
    c.campaign(1);
    c.tick(10);
    assert_eq!(entries_of(&c, 3), entries_of(&c, 1));
    let rejects = c
        .delivered
        .iter()
        .filter(|m| {
            m.from == 3 && matches!(m.body, MessageBody::AppendResponse { reject: true, .. })
        })
        .count();
    assert!(
        rejects <= 2,
        "{rejects} rejections for one conflicting term of 50 entries"
    );
}

/// Committing entries from previous terms (thesis 3.6.2, Figure 3.7): a new
/// leader does not commit an old-term entry by counting replicas; it commits
/// it together with an entry of its own term.
#[test]
fn s3_6_2_commit_rule_only_counts_current_term_entries() {
    let mut c = Cluster::with_config(&[1, 2, 3], 13, |id| Config {
        pre_vote: false,
        ..Config::new(id)
    });
    c.crash(1);
    c.crashed.insert(1, storage_with(&[1, 2, 3], &[1, 2], 2, 1));
    c.restart(1);
    for id in [2, 3] {
        c.crash(id);
        c.crashed.insert(id, storage_with(&[1, 2, 3], &[1], 2, 1));
        c.restart(id);
    }
    c.node_mut(1).hup();
    // Deliver only the votes, by hand, so the appends do not reach anyone.
    c.cut.insert((1, 2));
    c.cut.insert((1, 3));
    c.stabilize();
    c.in_flight.clear();
    let term = c.node(1).term();
    for from in [2, 3] {
        let grant = MessageBody::VoteResponse {
            pre_vote: false,
            reject: false,
        };
        c.node_mut(1)
            .step(Message {
                from,
                to: 1,
                term,
                body: grant,
            })
            .unwrap();
    }
    assert_eq!(c.node(1).role(), Role::Leader);
    c.stabilize();
    assert_eq!(
        c.node(1).last_index(),
        3,
        "the no-op of term {term} is at index 3"
    );
    // Node 2 acknowledges index 2 (term 2): a majority holds it, yet it must not commit.
    let ack = |index| MessageBody::AppendResponse {
        reject: false,
        index,
        hint_index: 0,
        hint_term: 0,
        commit: 1,
    };
    c.node_mut(1)
        .step(Message {
            from: 2,
            to: 1,
            term,
            body: ack(2),
        })
        .unwrap();
    assert_eq!(
        c.node(1).commit_index(),
        1,
        "old-term entry committed by counting"
    );
    c.node_mut(1)
        .step(Message {
            from: 2,
            to: 1,
            term,
            body: ack(3),
        })
        .unwrap();
    assert_eq!(
        c.node(1).commit_index(),
        3,
        "the current-term entry commits both"
    );
}

/// State Machine Safety (thesis 3.6.3): committed entries survive leader
/// crashes and restarts; every node applies the same sequence.
#[test]
fn s3_6_3_state_machine_safety_across_crashes() {
    let mut c = Cluster::new(&[1, 2, 3], 14);
    c.campaign(1);
    c.propose(1, b"a").unwrap();
    c.propose(1, b"b").unwrap();
    c.crash(1);
    c.tick(40);
    let leader = c.leaders()[0];
    c.propose(leader, b"c").unwrap();
    c.restart(1);
    c.tick(40);
    let want: Vec<Bytes> = [&b"a"[..], b"b", b"c"]
        .iter()
        .map(|s| Bytes::copy_from_slice(s))
        .collect();
    for id in [1, 2, 3] {
        assert_eq!(c.applied_data(id), want, "node {id}");
    }
}

/// Flow control: a far-behind follower in Replicate state never has more
/// than `max_inflight_appends` appends outstanding.
#[test]
fn s3_5_flow_control_bounds_inflight_appends() {
    let mut c = Cluster::with_config(&[1, 2, 3], 15, |id| Config {
        max_inflight_appends: 4,
        ..Config::new(id)
    });
    c.campaign(1);
    c.cut.insert((2, 1)); // node 2 receives but its acknowledgements are lost
    let before = c.delivered.len();
    for _ in 0..50 {
        c.propose(1, b"x").unwrap();
    }
    let pr = c.node(1).progress(2).unwrap();
    assert!(
        pr.inflight.len() <= 4,
        "{} appends in flight",
        pr.inflight.len()
    );
    let with_entries = c.delivered[before..]
        .iter()
        .filter(|m| {
            m.to == 2
                && matches!(&m.body, MessageBody::Append { entries, .. } if !entries.is_empty())
        })
        .count();
    assert_eq!(
        with_entries, 4,
        "appends carrying entries to an unresponsive follower"
    );
    let to_3 = c.delivered[before..]
        .iter()
        .filter(|m| m.to == 3 && matches!(m.body, MessageBody::Append { .. }));
    assert!(
        to_3.count() >= 50,
        "the responsive follower is not held back"
    );
    c.heal();
    c.tick(10);
    assert_eq!(c.node(2).last_index(), c.node(1).last_index());
}

/// Catching up new servers (thesis 4.2.1): a learner replicates without
/// voting and may only be promoted once it has caught up.
#[test]
fn s4_2_1_membership_learner_catches_up_before_promotion() {
    let mut c = Cluster::new(&[1, 2, 3], 16);
    c.campaign(1);
    c.propose(1, b"a").unwrap();
    c.add_empty_node(
        4,
        ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
        },
    );
    c.isolate(4);
    c.node_mut(1)
        .propose_conf_change(ConfChange::AddLearner(4))
        .unwrap();
    c.stabilize();
    assert!(c.node(1).conf_state().is_learner(4));
    let early = c
        .node_mut(1)
        .propose_conf_change(ConfChange::PromoteLearner(4));
    assert!(
        matches!(early, Err(RaftError::ConfChangeRejected { .. })),
        "{early:?}"
    );
    c.heal();
    c.tick(5);
    assert_eq!(c.applied_data(4), vec![Bytes::from_static(b"a")]);
    c.node_mut(1)
        .propose_conf_change(ConfChange::PromoteLearner(4))
        .unwrap();
    c.stabilize();
    for id in 1..=4 {
        assert!(
            c.node(id).conf_state().is_voter(4),
            "node {id} sees 4 as a voter"
        );
    }
    // With four voters, two nodes down leave no quorum.
    c.crash(2);
    c.crash(3);
    let index = c.propose(1, b"b").unwrap();
    assert!(c.node(1).commit_index() < index);
}

/// A learner's acknowledgement does not count towards a quorum.
#[test]
fn s4_2_1_learners_do_not_count_towards_commit() {
    let mut c = Cluster::new(&[1, 2, 3], 17);
    c.campaign(1);
    c.add_empty_node(
        4,
        ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
        },
    );
    c.node_mut(1)
        .propose_conf_change(ConfChange::AddLearner(4))
        .unwrap();
    c.stabilize();
    c.isolate(2);
    c.isolate(3);
    c.cut.retain(|link| *link != (1, 4) && *link != (4, 1));
    let index = c.propose(1, b"x").unwrap();
    assert_eq!(c.node(4).last_index(), index, "the learner has the entry");
    assert!(
        c.node(1).commit_index() < index,
        "leader + learner is not a quorum of 3 voters"
    );
}

/// One server at a time (thesis 4.1): a second change waits for the first to commit.
#[test]
fn s4_1_membership_one_change_at_a_time() {
    let mut c = Cluster::new(&[1, 2, 3], 18);
    c.campaign(1);
    c.isolate(2);
    c.isolate(3);
    c.node_mut(1)
        .propose_conf_change(ConfChange::AddLearner(4))
        .unwrap();
    let second = c.node_mut(1).propose_conf_change(ConfChange::AddLearner(5));
    assert!(
        matches!(second, Err(RaftError::ConfChangeRejected { .. })),
        "{second:?}"
    );
}

/// Removing the leader (thesis 4.2.2): it steps down once the change commits
/// and the rest elect a new leader.
#[test]
fn s4_2_2_membership_removed_leader_steps_down() {
    let mut c = Cluster::new(&[1, 2, 3], 19);
    c.campaign(1);
    c.node_mut(1)
        .propose_conf_change(ConfChange::RemoveNode(1))
        .unwrap();
    c.stabilize();
    assert_ne!(c.node(1).role(), Role::Leader);
    c.tick(60);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0], 1);
    assert_eq!(c.node(leaders[0]).conf_state().voters.len(), 2);
}

/// Log compaction (thesis 5): a follower that needs entries below the
/// leader's log start is moved past it with InstallSnapshot, then catches up.
#[test]
fn s5_snapshot_moves_a_lagging_followers_log_start() {
    let mut c = Cluster::new(&[1, 2, 3], 20);
    c.campaign(1);
    c.crash(3);
    for _ in 0..10 {
        c.propose(1, b"x").unwrap();
    }
    let compact_to = c.node(1).commit_index() - 2;
    let conf = c.node(1).conf_state().clone();
    c.node_mut(1)
        .storage_mut()
        .compact(compact_to, conf, Bytes::from_static(b"state"))
        .unwrap();
    c.restart(3);
    c.tick(10);
    assert!(c
        .delivered
        .iter()
        .any(|m| matches!(m.body, MessageBody::InstallSnapshot { .. })));
    assert_eq!(c.node(3).first_index(), compact_to + 1);
    assert_eq!(c.node(3).last_index(), c.node(1).last_index());
    assert_eq!(c.node(3).commit_index(), c.node(1).commit_index());
    assert_eq!(
        c.node(3).storage().snapshot().data,
        Bytes::from_static(b"state")
    );
}

/// AppendEntries receiver rule 5 (thesis Figure 3.1): the follower's commit
/// index is min(leaderCommit, index of the last new entry), so a stale suffix
/// beyond the entries just matched is never committed.
#[test]
fn s3_5_follower_commit_is_capped_at_the_last_new_entry() {
    let mut c = Cluster::new(&[1, 2, 3], 21);
    c.crash(2);
    c.crashed
        .insert(2, storage_with(&[1, 2, 3], &[1, 1, 2], 2, 1));
    c.restart(2);
    let entries = vec![Entry::normal(1, 2, Bytes::from_static(b"e"))];
    let body = MessageBody::Append {
        prev_index: 1,
        prev_term: 1,
        entries,
        commit: 3,
    };
    c.node_mut(2)
        .step(Message {
            from: 1,
            to: 2,
            term: 3,
            body,
        })
        .unwrap();
    assert_eq!(c.node(2).commit_index(), 2, "index 3 (term 2) may be stale");
    assert_eq!(
        c.node(2).last_index(),
        3,
        "a matching append does not truncate"
    );
}
