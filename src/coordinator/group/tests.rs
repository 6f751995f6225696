//! Protocol rules of the classic group machine, driven with explicit times.

use bytes::Bytes;

use super::membership::{LeaveInput, SyncInput};
use super::*;

const GROUP: &str = "g";

fn config(delay_ms: i32) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: delay_ms,
        ..GroupConfig::default()
    }
}

fn join_input(member_id: &str, fresh: &str) -> JoinInput {
    JoinInput {
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
        require_known_member_id: true,
        fresh_member_id: fresh.into(),
    }
}

fn join_reply(effects: &Effects, token: ReplyToken) -> Option<JoinOutcome> {
    effects.replies.iter().find_map(|(t, r)| match r {
        Reply::Join(outcome) if *t == token => Some(outcome.clone()),
        _ => None,
    })
}

fn sync_reply(effects: &Effects, token: ReplyToken) -> Option<SyncOutcome> {
    effects.replies.iter().find_map(|(t, r)| match r {
        Reply::Sync(outcome) if *t == token => Some(outcome.clone()),
        _ => None,
    })
}

/// Two-step join of a new dynamic member: MEMBER_ID_REQUIRED, then the real join.
fn join_new(set: &mut GroupSet, name: &str, token: ReplyToken, now_ms: i64) -> Effects {
    let first = set.join(GROUP, join_input("", name), token, now_ms);
    let outcome = join_reply(&first, token).expect("immediate reply");
    assert_eq!(outcome.error, Some(GroupError::MemberIdRequired));
    assert_eq!(outcome.member_id, name);
    set.join(GROUP, join_input(name, "unused"), token + 1000, now_ms)
}

/// A SyncGroup as the coordinator service runs it: its records are written, then the
/// completions of those writes join its effects.
fn sync(
    set: &mut GroupSet,
    member: &str,
    generation: i32,
    assignments: &[(&str, &str)],
    token: ReplyToken,
    now_ms: i64,
) -> Effects {
    let effects = sync_unwritten(set, member, generation, assignments, token, now_ms);
    written(set, effects, now_ms)
}

/// `effects` after their records are durable (what `GroupCoordinator::complete` does).
fn written(set: &mut GroupSet, mut effects: Effects, now_ms: i64) -> Effects {
    for record in effects.records.clone() {
        if let GroupRecord::Metadata {
            group_id,
            value: Some(snapshot),
        } = record
        {
            let done = set.metadata_written(&group_id, snapshot.generation_id, now_ms);
            effects.replies.extend(done.replies);
        }
    }
    effects
}

/// A SyncGroup whose records are not written yet.
fn sync_unwritten(
    set: &mut GroupSet,
    member: &str,
    generation: i32,
    assignments: &[(&str, &str)],
    token: ReplyToken,
    now_ms: i64,
) -> Effects {
    let input = SyncInput {
        member_id: member.into(),
        generation_id: generation,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::copy_from_slice(a.as_bytes())))
            .collect(),
        ..SyncInput::default()
    };
    set.sync(GROUP, input, token, now_ms)
}

/// A stable group of `a` (leader) and `b`, generation 1, at time 0.
fn stable_pair() -> GroupSet {
    let mut set = GroupSet::new(config(0));
    let effects = join_new(&mut set, "a", 1, 0);
    assert!(
        join_reply(&effects, 1001).is_some(),
        "alone: the join completes at once"
    );
    assert_eq!(set.get(GROUP).unwrap().generation_id(), 1);
    let effects = sync(&mut set, "a", 1, &[("a", "A1")], 2, 0);
    let synced = sync_reply(&effects, 2).expect("the leader's sync completes at once");
    assert_eq!(synced.error, None);
    assert_eq!(&synced.assignment[..], b"A1");
    // b joins: a must rejoin, then both get generation 2.
    let effects = join_new(&mut set, "b", 10, 0);
    assert!(
        join_reply(&effects, 1010).is_none(),
        "b waits for a to rejoin"
    );
    assert_eq!(
        set.heartbeat(GROUP, "a", None, 1, 0),
        Err(GroupError::RebalanceInProgress)
    );
    let effects = set.join(GROUP, join_input("a", "x"), 3, 0);
    let a = join_reply(&effects, 3).unwrap();
    let b = join_reply(&effects, 1010).unwrap();
    assert_eq!((a.generation_id, b.generation_id), (2, 2));
    assert_eq!(a.leader, "a");
    assert_eq!(a.members.len(), 2, "the leader gets every member");
    assert!(b.members.is_empty());
    let effects = sync(&mut set, "b", 2, &[], 11, 0);
    assert!(
        sync_reply(&effects, 11).is_none(),
        "b waits for the leader's assignment"
    );
    let effects = sync(&mut set, "a", 2, &[("a", "A"), ("b", "B")], 4, 0);
    assert_eq!(
        sync_reply(&effects, 4).unwrap().assignment,
        Bytes::from_static(b"A")
    );
    assert_eq!(
        sync_reply(&effects, 11).unwrap().assignment,
        Bytes::from_static(b"B")
    );
    assert!(
        matches!(effects.records[..], [GroupRecord::Metadata { .. }]),
        "persisted"
    );
    assert_eq!(set.get(GROUP).unwrap().state(), GroupState::Stable);
    set
}

#[test]
fn full_rebalance_relays_the_leaders_assignment() {
    let set = stable_pair();
    let group = set.get(GROUP).unwrap();
    assert_eq!(group.generation_id(), 2);
    assert_eq!(group.protocol_name(), Some("range"));
}

#[test]
fn member_id_required_then_pending_member_expires() {
    let mut set = GroupSet::new(config(0));
    let effects = set.join(GROUP, join_input("", "m1"), 1, 0);
    assert_eq!(
        join_reply(&effects, 1).unwrap().error,
        Some(GroupError::MemberIdRequired)
    );
    assert_eq!(set.get(GROUP).unwrap().state(), GroupState::Empty);
    let _ = set.tick(20_000);
    let effects = set.join(GROUP, join_input("m1", "x"), 2, 20_000);
    assert_eq!(
        join_reply(&effects, 2).unwrap().error,
        Some(GroupError::UnknownMemberId)
    );
}

#[test]
fn old_clients_join_without_member_id_round_trip() {
    let mut set = GroupSet::new(config(0));
    let mut input = join_input("", "m1");
    input.require_known_member_id = false;
    let effects = set.join(GROUP, input, 1, 0);
    let outcome = join_reply(&effects, 1).unwrap();
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.member_id, "m1");
}

#[test]
fn generation_and_member_fencing() {
    let mut set = stable_pair();
    assert_eq!(set.heartbeat(GROUP, "a", None, 2, 0), Ok(()));
    assert_eq!(
        set.heartbeat(GROUP, "a", None, 1, 0),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        set.heartbeat(GROUP, "zz", None, 2, 0),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        set.heartbeat("nope", "a", None, 2, 0),
        Err(GroupError::UnknownMemberId)
    );
    let effects = sync(&mut set, "b", 1, &[], 7, 0);
    assert_eq!(
        sync_reply(&effects, 7).unwrap().error,
        Some(GroupError::IllegalGeneration)
    );
    let commit = CommitInput {
        member_id: "a".into(),
        generation_id: 1,
        items: vec![item("t", 0, 5)],
        ..CommitInput::default()
    };
    assert_eq!(
        set.validate_commit(GROUP, &commit, 0),
        vec![Err(GroupError::IllegalGeneration)]
    );
    let commit = CommitInput {
        member_id: "".into(),
        generation_id: -1,
        items: vec![item("t", 0, 5)],
        ..CommitInput::default()
    };
    assert_eq!(
        set.validate_commit(GROUP, &commit, 0),
        vec![Err(GroupError::UnknownMemberId)],
        "a simple commit into an active group"
    );
}

fn item(topic: &str, partition: i32, offset: i64) -> OffsetCommitItem {
    OffsetCommitItem {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch: -1,
        metadata: "meta".into(),
    }
}

#[test]
fn session_timeout_removes_a_silent_member_and_rebalances() {
    let mut set = stable_pair();
    assert_eq!(set.heartbeat(GROUP, "a", None, 2, 9_000), Ok(()));
    // b's last heartbeat was at 0 with a 10 s session.
    let _ = set.tick(10_000);
    let group = set.get(GROUP).unwrap();
    assert_eq!(group.members().len(), 1);
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert_eq!(
        set.heartbeat(GROUP, "a", None, 2, 10_000),
        Err(GroupError::RebalanceInProgress)
    );
    let effects = set.join(GROUP, join_input("a", "x"), 5, 10_001);
    let outcome = join_reply(&effects, 5).unwrap();
    assert_eq!(outcome.generation_id, 3);
    assert_eq!(outcome.members.len(), 1);
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let mut set = stable_pair();
    let effects = set.join(GROUP, join_input("a", "x"), 5, 1_000);
    assert!(
        join_reply(&effects, 5).is_none(),
        "the leader's rejoin starts a rebalance"
    );
    // b keeps heartbeating but never rejoins.
    for now in (2_000..31_000).step_by(2_000) {
        let _ = set.heartbeat(GROUP, "b", None, 2, now);
        assert!(set.tick(now).replies.is_empty());
    }
    let effects = set.tick(31_000);
    let outcome = join_reply(&effects, 5).expect("join completes at the rebalance timeout");
    assert_eq!(outcome.members.len(), 1);
    assert_eq!(
        set.heartbeat(GROUP, "b", None, 3, 31_000),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn leader_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let mut set = GroupSet::new(config(0));
    let _ = join_new(&mut set, "a", 1, 0);
    let _ = join_new(&mut set, "b", 2, 0);
    let effects = set.join(GROUP, join_input("a", "x"), 3, 0);
    assert!(join_reply(&effects, 3).is_some());
    let effects = sync(&mut set, "b", 2, &[], 4, 0);
    assert!(effects.replies.is_empty());
    let effects = set.tick(30_000);
    assert_eq!(
        sync_reply(&effects, 4).unwrap().error,
        Some(GroupError::RebalanceInProgress)
    );
    assert_eq!(
        set.get(GROUP).unwrap().state(),
        GroupState::PreparingRebalance
    );
}

#[test]
fn leave_triggers_rebalance_and_batched_leave_reports_each_member() {
    let mut set = stable_pair();
    let leaves = [
        LeaveInput {
            member_id: "b".into(),
            group_instance_id: None,
        },
        LeaveInput {
            member_id: "nobody".into(),
            group_instance_id: None,
        },
    ];
    let (results, _) = set.leave(GROUP, &leaves, 100);
    assert_eq!(results, vec![Ok(()), Err(GroupError::UnknownMemberId)]);
    assert_eq!(
        set.get(GROUP).unwrap().state(),
        GroupState::PreparingRebalance
    );
    let (results, _) = set.leave(GROUP, &leaves[..1], 100);
    assert_eq!(results, vec![Err(GroupError::UnknownMemberId)]);
    let (results, _) = set.leave(
        GROUP,
        &[LeaveInput {
            member_id: "a".into(),
            group_instance_id: None,
        }],
        200,
    );
    assert_eq!(results, vec![Ok(())]);
    let group = set.get(GROUP).unwrap();
    assert_eq!(group.state(), GroupState::Empty, "last member left");
    assert_eq!(group.generation_id(), 3);
}

#[test]
fn invalid_session_timeout_and_protocol_mismatch() {
    let mut set = stable_pair();
    let mut input = join_input("", "c");
    input.session_timeout_ms = 1_000;
    let effects = set.join(GROUP, input, 1, 0);
    assert_eq!(
        join_reply(&effects, 1).unwrap().error,
        Some(GroupError::InvalidSessionTimeout)
    );
    let mut input = join_input("", "c");
    input.protocols = vec![("roundrobin".into(), Bytes::new())];
    let effects = set.join(GROUP, input, 2, 0);
    assert_eq!(
        join_reply(&effects, 2).unwrap().error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    let mut input = join_input("", "c");
    input.protocol_type = "connect".into();
    let effects = set.join(GROUP, input, 3, 0);
    assert_eq!(
        join_reply(&effects, 3).unwrap().error,
        Some(GroupError::InconsistentGroupProtocol)
    );
}

#[test]
fn initial_rebalance_delay_waits_for_more_members() {
    let mut set = GroupSet::new(config(3_000));
    let effects = join_new(&mut set, "a", 1, 0);
    assert!(effects.replies.is_empty(), "the first join is delayed");
    let _ = join_new(&mut set, "b", 2, 1_000);
    assert!(set.tick(2_999).replies.is_empty());
    // The delay ends at 3000; b arrived during it, so it is extended once more.
    assert!(set.tick(3_000).replies.is_empty());
    let effects = set.tick(6_000);
    let a = join_reply(&effects, 1001).unwrap();
    let b = join_reply(&effects, 1002).unwrap();
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
    assert_eq!(a.members.len(), 2);
}

fn static_input(member_id: &str, fresh: &str, instance: &str) -> JoinInput {
    let mut input = join_input(member_id, fresh);
    input.group_instance_id = Some(instance.into());
    input
}

#[test]
fn static_member_rejoin_keeps_assignment_without_rebalance() {
    let mut set = GroupSet::new(config(0));
    let effects = set.join(GROUP, static_input("", "s1", "i1"), 1, 0);
    assert_eq!(
        join_reply(&effects, 1).unwrap().member_id,
        "s1",
        "static members skip MEMBER_ID_REQUIRED"
    );
    let effects = set.join(GROUP, static_input("", "s2", "i2"), 2, 0);
    assert!(effects.replies.is_empty());
    let effects = set.join(GROUP, static_input("s1", "x", "i1"), 3, 0);
    assert_eq!(join_reply(&effects, 3).unwrap().generation_id, 2);
    let _ = sync(&mut set, "s2", 2, &[], 4, 0);
    let _ = sync(&mut set, "s1", 2, &[("s1", "P1"), ("s2", "P2")], 5, 0);
    assert_eq!(set.get(GROUP).unwrap().state(), GroupState::Stable);
    // i2 restarts: new member id, same instance, no rebalance.
    let effects = set.join(GROUP, static_input("", "s2b", "i2"), 6, 5_000);
    let outcome = join_reply(&effects, 6).unwrap();
    assert_eq!(
        (
            outcome.member_id.as_str(),
            outcome.generation_id,
            outcome.error
        ),
        ("s2b", 2, None)
    );
    let group = set.get(GROUP).unwrap();
    assert_eq!(group.state(), GroupState::Stable);
    let effects = sync(&mut set, "s2b", 2, &[], 7, 5_000);
    assert_eq!(
        sync_reply(&effects, 7).unwrap().assignment,
        Bytes::from_static(b"P2")
    );
    // The old incarnation is fenced.
    assert_eq!(
        set.heartbeat(GROUP, "s2", Some("i2"), 2, 5_000),
        Err(GroupError::FencedInstanceId)
    );
    assert_eq!(set.heartbeat(GROUP, "s1", Some("i1"), 2, 5_000), Ok(()));
}

#[test]
fn offsets_commit_apply_fetch_expire() {
    let mut set = GroupSet::new(GroupConfig {
        offsets_retention_ms: 60_000,
        ..config(0)
    });
    let commit = CommitInput {
        member_id: "".into(),
        generation_id: -1,
        items: vec![
            item("t", 0, 5),
            OffsetCommitItem {
                metadata: "x".repeat(5000),
                ..item("t", 1, 1)
            },
        ],
        ..CommitInput::default()
    };
    let results = set.validate_commit(GROUP, &commit, 1_000);
    assert_eq!(results[1], Err(GroupError::OffsetMetadataTooLarge));
    assert!(
        set.get(GROUP).unwrap().committed("t", 0).is_none(),
        "not visible before durable"
    );
    let record = results[0].clone().unwrap();
    set.apply(record, 1_000);
    assert_eq!(set.get(GROUP).unwrap().committed("t", 0).unwrap().offset, 5);
    assert!(set.expire_offsets(60_999).is_empty());
    let tombstones = set.expire_offsets(61_000);
    assert_eq!(tombstones.len(), 1);
    for record in tombstones {
        set.apply(record, 61_000);
    }
    assert!(!set.get(GROUP).unwrap().has_offsets());
    let removed = set.collect_empty();
    assert_eq!(
        removed,
        vec![GroupRecord::Metadata {
            group_id: GROUP.into(),
            value: None
        }]
    );
    assert!(set.get(GROUP).is_none());
}

#[test]
fn offsets_of_active_groups_do_not_expire() {
    let mut set = stable_pair();
    let commit = CommitInput {
        member_id: "a".into(),
        generation_id: 2,
        items: vec![item("t", 0, 5)],
        ..CommitInput::default()
    };
    let record = set.validate_commit(GROUP, &commit, 0).remove(0).unwrap();
    set.apply(record, 0);
    let _ = set.heartbeat(GROUP, "a", None, 2, i64::MAX / 4);
    let _ = set.heartbeat(GROUP, "b", None, 2, i64::MAX / 4);
    assert!(set.expire_offsets(i64::MAX / 4 + 1).is_empty());
}

#[test]
fn delete_groups_only_when_empty_and_restore_from_records() {
    let mut set = stable_pair();
    assert_eq!(set.delete(GROUP), Err(GroupError::NonEmptyGroup));
    assert_eq!(set.delete("nope"), Err(GroupError::GroupIdNotFound));
    let snapshot = set.get(GROUP).unwrap().snapshot();
    // A broker restart: a new set rebuilt from the records.
    let mut restored = GroupSet::new(config(0));
    restored.apply(
        GroupRecord::Metadata {
            group_id: GROUP.into(),
            value: Some(snapshot),
        },
        500,
    );
    let group = restored.get(GROUP).unwrap();
    assert_eq!(
        (group.state(), group.generation_id(), group.members().len()),
        (GroupState::Stable, 2, 2)
    );
    let effects = sync(&mut restored, "b", 2, &[], 1, 500);
    assert_eq!(
        sync_reply(&effects, 1).unwrap().assignment,
        Bytes::from_static(b"B")
    );
    let (_, _) = restored.leave(
        GROUP,
        &[
            LeaveInput {
                member_id: "a".into(),
                group_instance_id: None,
            },
            LeaveInput {
                member_id: "b".into(),
                group_instance_id: None,
            },
        ],
        600,
    );
    assert_eq!(restored.get(GROUP).unwrap().state(), GroupState::Empty);
    let tombstones = restored.delete(GROUP).unwrap();
    assert!(matches!(
        tombstones.last(),
        Some(GroupRecord::Metadata { value: None, .. })
    ));
    assert_eq!(restored.get(GROUP).unwrap().state(), GroupState::Dead);
    restored.forget(GROUP);
    assert!(restored.get(GROUP).is_none());
}

#[test]
fn state_names_parse_case_insensitively() {
    assert_eq!(GroupState::parse("stable"), Some(GroupState::Stable));
    assert_eq!(
        GroupState::parse("CompletingRebalance"),
        Some(GroupState::CompletingRebalance)
    );
    assert_eq!(GroupState::parse("nope"), None);
}

#[test]
fn a_metadata_write_failure_voids_the_assignment_and_rebalances() {
    let mut set = stable_pair();
    let group = set.get(GROUP).unwrap();
    assert_eq!(group.state(), GroupState::Stable);
    let generation = group.generation_id();
    // A stale generation's failure changes nothing.
    let effects = set.metadata_write_failed(GROUP, generation - 1, 5);
    assert!(effects.replies.is_empty());
    assert_eq!(set.get(GROUP).unwrap().state(), GroupState::Stable);
    let _ = set.metadata_write_failed(GROUP, generation, 5);
    let group = set.get(GROUP).unwrap();
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert!(group.members().iter().all(|m| m.assignment.is_empty()));
    assert_eq!(
        set.heartbeat(GROUP, "a", None, generation, 6),
        Err(GroupError::RebalanceInProgress),
        "members learn to rejoin from their heartbeat"
    );
    // Unknown groups are ignored.
    assert!(set.metadata_write_failed("other", 1, 5).replies.is_empty());
}

/// Generation 3 of `a` (leader) and `b`, CompletingRebalance: both rejoined, nobody synced.
fn completing_pair() -> GroupSet {
    let mut set = stable_pair();
    // The leader rejoining a stable group starts a rebalance; b follows.
    let effects = set.join(GROUP, join_input("a", "x"), 20, 0);
    assert!(join_reply(&effects, 20).is_none(), "a waits for b");
    let effects = set.join(GROUP, join_input("b", "x"), 21, 0);
    assert_eq!(join_reply(&effects, 21).unwrap().generation_id, 3);
    assert_eq!(
        set.get(GROUP).unwrap().state(),
        GroupState::CompletingRebalance
    );
    set
}

#[test]
fn a_follower_syncing_while_the_assignment_is_written_waits_for_the_write() {
    let mut set = completing_pair();
    let generation = set.get(GROUP).unwrap().generation_id();
    let leader = sync_unwritten(&mut set, "a", generation, &[("a", "A"), ("b", "B")], 1, 10);
    assert!(
        leader.replies.is_empty(),
        "the leader is answered once its assignment is durable"
    );
    assert!(matches!(leader.records[..], [GroupRecord::Metadata { .. }]));
    assert_eq!(
        set.get(GROUP).unwrap().state(),
        GroupState::CompletingRebalance,
        "not Stable while the write is pending"
    );
    let follower = sync_unwritten(&mut set, "b", generation, &[], 2, 11);
    assert!(
        follower.replies.is_empty(),
        "a follower arriving during the write is parked, not answered"
    );
    assert_eq!(
        set.metadata_written(GROUP, generation - 1, 12),
        Effects::default(),
        "an older generation's write completes nothing"
    );
    let done = set.metadata_written(GROUP, generation, 12);
    assert_eq!(
        sync_reply(&done, 1).unwrap().assignment,
        Bytes::from_static(b"A")
    );
    assert_eq!(
        sync_reply(&done, 2).unwrap().assignment,
        Bytes::from_static(b"B")
    );
    assert_eq!(set.get(GROUP).unwrap().state(), GroupState::Stable);
}

#[test]
fn a_failed_assignment_write_answers_every_waiting_member_with_an_error() {
    let mut set = completing_pair();
    let generation = set.get(GROUP).unwrap().generation_id();
    let _ = sync_unwritten(&mut set, "a", generation, &[("a", "A"), ("b", "B")], 1, 10);
    let _ = sync_unwritten(&mut set, "b", generation, &[], 2, 11);
    let failed = set.metadata_write_failed(GROUP, generation, 12);
    for token in [1, 2] {
        assert_eq!(
            sync_reply(&failed, token).unwrap().error,
            Some(GroupError::CoordinatorNotAvailable)
        );
    }
    let group = set.get(GROUP).unwrap();
    assert_eq!(
        group.state(),
        GroupState::PreparingRebalance,
        "everyone rejoins"
    );
    assert!(group.members().iter().all(|m| m.assignment.is_empty()));
    assert!(
        set.metadata_written(GROUP, generation, 13)
            .replies
            .is_empty(),
        "nothing left to complete"
    );
}

#[test]
fn unloading_answers_parked_joins_and_syncs_not_coordinator() {
    let mut set = completing_pair();
    let generation = set.get(GROUP).unwrap().generation_id();
    // b waits in SyncGroup for the leader's assignment.
    let parked_sync = sync_unwritten(&mut set, "b", generation, &[], 1, 10);
    assert!(parked_sync.replies.is_empty());
    // Another group's member waits in JoinGroup (the initial delay is running).
    let mut delayed = GroupSet::new(config(60_000));
    let _ = delayed.join("other", join_input("", "z"), 2, 0);
    let effects = delayed.join("other", join_input("z", "unused"), 3, 0);
    assert!(join_reply(&effects, 3).is_none());
    let unloaded = set.unload(20);
    assert_eq!(
        sync_reply(&unloaded, 1).unwrap().error,
        Some(GroupError::NotCoordinator)
    );
    assert_eq!(set.get(GROUP).unwrap().state(), GroupState::Dead);
    let unloaded = delayed.unload(20);
    let join = join_reply(&unloaded, 3).unwrap();
    assert_eq!(join.error, Some(GroupError::NotCoordinator));
    assert_eq!(GroupError::NotCoordinator.code(), 16);
}
