//! Leader election tests, named after the sections of Ongaro's thesis
//! ("Consensus: Bridging Theory and Practice", 2014) they check.

use ringlet_raft::sim::cluster::Cluster;
use ringlet_raft::{Config, Message, MessageBody, Role};

fn no_pre_vote(id: u64) -> Config {
    Config {
        pre_vote: false,
        check_quorum: false,
        ..Config::new(id)
    }
}

#[test]
fn s3_4_leader_election_candidate_with_majority_wins() {
    let mut c = Cluster::new(&[1, 2, 3], 1);
    c.campaign(1);
    assert_eq!(c.leaders(), vec![1]);
    for id in [2, 3] {
        assert_eq!(c.node(id).role(), Role::Follower);
        assert_eq!(c.node(id).leader(), Some(1));
        assert_eq!(c.node(id).term(), c.node(1).term());
    }
}

#[test]
fn s3_4_leader_election_candidate_without_majority_does_not_win() {
    let mut c = Cluster::with_config(&[1, 2, 3, 4, 5], 2, no_pre_vote);
    c.isolate(1);
    c.cut.remove(&(1, 2));
    c.cut.remove(&(2, 1));
    c.campaign(1);
    assert_eq!(
        c.node(1).role(),
        Role::Candidate,
        "two votes of five are not a majority"
    );
}

/// Election Safety (thesis 3.6.3, Figure 3.2): at most one leader per term,
/// even when every node times out at once, over many seeds.
#[test]
fn s3_6_3_election_safety_at_most_one_leader_per_term() {
    for seed in 0..200 {
        let mut c = Cluster::with_config(&[1, 2, 3, 4, 5], seed, no_pre_vote);
        let mut leader_of_term = std::collections::BTreeMap::new();
        for _ in 0..10 {
            for id in 1..=5 {
                c.node_mut(id).hup();
            }
            c.stabilize();
            for id in c.leaders() {
                let term = c.node(id).term();
                let previous = leader_of_term.insert(term, id);
                assert!(
                    previous.is_none() || previous == Some(id),
                    "seed {seed}: two leaders in term {term}"
                );
            }
        }
    }
}

/// Randomized timeouts (thesis 3.4) resolve split votes: ticking alone elects a leader.
#[test]
fn s3_4_randomized_timeouts_elect_a_leader_by_ticking() {
    for seed in 0..50 {
        let mut c = Cluster::new(&[1, 2, 3, 4, 5], seed);
        c.tick(100);
        assert_eq!(
            c.leaders().len(),
            1,
            "seed {seed}: no single leader after 100 ticks"
        );
    }
}

/// Election restriction (thesis 3.6.1): a candidate whose log is less
/// up-to-date than a voter's is refused, so it cannot miss committed entries.
#[test]
fn s3_6_1_leader_completeness_election_restriction_stale_log_cannot_win() {
    let mut c = Cluster::with_config(&[1, 2, 3], 3, no_pre_vote);
    c.campaign(1);
    c.isolate(3);
    c.propose(1, b"x").unwrap();
    c.heal();
    c.isolate(1);
    c.campaign(3);
    assert_ne!(
        c.node(3).role(),
        Role::Leader,
        "node 3 lacks a committed entry"
    );
    c.campaign(2);
    assert_eq!(c.node(2).role(), Role::Leader);
}

/// Pre-vote (thesis 9.6): a partitioned node does not inflate its term, so
/// it cannot disrupt the leader when it comes back.
#[test]
fn s9_6_pre_vote_partitioned_node_does_not_raise_term() {
    let mut c = Cluster::new(&[1, 2, 3], 4);
    c.campaign(1);
    let term = c.node(1).term();
    c.isolate(3);
    c.tick(200);
    assert_eq!(
        c.node(3).term(),
        term,
        "pre-vote keeps the isolated node's term"
    );
    c.heal();
    c.tick(20);
    assert_eq!(c.leaders(), vec![1]);
    assert_eq!(
        c.node(1).term(),
        term,
        "rejoining did not force an election"
    );
}

#[test]
fn s9_6_without_pre_vote_partitioned_node_raises_term() {
    let mut c = Cluster::with_config(&[1, 2, 3], 4, no_pre_vote);
    c.campaign(1);
    let term = c.node(1).term();
    c.isolate(3);
    c.tick(200);
    assert!(
        c.node(3).term() > term,
        "the baseline: without pre-vote the term runs away"
    );
}

/// Check-quorum (thesis 6.2): a leader that cannot reach a majority for an
/// election timeout steps down.
#[test]
fn s6_2_check_quorum_isolated_leader_steps_down() {
    let mut c = Cluster::new(&[1, 2, 3], 5);
    c.campaign(1);
    c.isolate(1);
    c.tick(25);
    assert_ne!(c.node(1).role(), Role::Leader);
    c.tick(50);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0], 1);
}

/// Disruptive servers (thesis 4.2.3): a follower hearing from its leader
/// ignores vote requests, even of a higher term.
#[test]
fn s4_2_3_leader_lease_ignores_vote_requests() {
    let mut c = Cluster::new(&[1, 2, 3], 6);
    c.campaign(1);
    let term = c.node(2).term();
    let last_index = c.node(2).last_index();
    let vote = MessageBody::Vote {
        pre_vote: false,
        transfer: false,
        last_index,
        last_term: term,
    };
    c.node_mut(2)
        .step(Message {
            from: 3,
            to: 2,
            term: term + 5,
            body: vote,
        })
        .unwrap();
    assert_eq!(c.node(2).term(), term);
    assert_eq!(c.node(2).leader(), Some(1));
}

/// Leadership transfer (thesis 3.10).
#[test]
fn s3_10_leadership_transfer_to_up_to_date_follower() {
    let mut c = Cluster::new(&[1, 2, 3], 7);
    c.campaign(1);
    let term = c.node(1).term();
    c.node_mut(1).transfer_leadership(2);
    c.stabilize();
    assert_eq!(c.leaders(), vec![2]);
    assert_eq!(c.node(2).term(), term + 1);
}

#[test]
fn s3_10_leadership_transfer_catches_up_a_lagging_target_first() {
    let mut c = Cluster::new(&[1, 2, 3], 8);
    c.campaign(1);
    c.isolate(3);
    for _ in 0..5 {
        c.propose(1, b"v").unwrap();
    }
    c.heal();
    c.node_mut(1).transfer_leadership(3);
    assert!(
        c.node_mut(1)
            .propose(bytes::Bytes::from_static(b"paused"))
            .is_err(),
        "proposals pause"
    );
    c.stabilize();
    assert_eq!(c.leaders(), vec![3]);
    assert_eq!(c.applied_data(3).len(), 5);
}

/// A new group's preferred replica campaigns at once (`campaign_now`) while the other
/// replicas hold their first election off (`delay_election`): it becomes the first leader,
/// in the first term, even when its peers drop its first requests (their replicas do not
/// exist yet) for a few ticks. Over many seeds, so no timer can beat it.
#[test]
fn s3_4_a_new_groups_preferred_replica_wins_the_first_election() {
    for seed in 0..200 {
        let mut c = Cluster::new(&[1, 2, 3], seed);
        let election_ticks = Config::new(1).election_ticks;
        for id in [2, 3] {
            c.node_mut(id).delay_election(2 * election_ticks);
        }
        c.isolate(1);
        c.node_mut(1).campaign_now();
        c.stabilize();
        assert_eq!(c.node(1).role(), Role::PreCandidate, "seed {seed}");
        let late_ticks = seed as usize % 5;
        c.tick(late_ticks);
        c.heal();
        c.tick(1);
        assert_eq!(
            c.leaders(),
            vec![1],
            "seed {seed}: the preferred replica leads one tick after its peers answer"
        );
        assert_eq!(c.node(1).term(), 1, "seed {seed}: the first term");
        c.tick(10 * election_ticks as usize);
        assert_eq!(c.leaders(), vec![1], "seed {seed}: and keeps leading");
        assert_eq!(c.node(1).term(), 1, "seed {seed}");
    }
}

/// Without those calls the first leader is whichever timer fires first: the baseline.
#[test]
fn s3_4_without_campaign_now_any_replica_may_lead_first() {
    let first_leaders: std::collections::BTreeSet<u64> = (0..50)
        .map(|seed| {
            let mut c = Cluster::new(&[1, 2, 3], seed);
            let mut ticks = 0;
            while c.leaders().is_empty() && ticks < 1_000 {
                c.tick(1);
                ticks += 1;
            }
            c.leaders()[0]
        })
        .collect();
    assert!(first_leaders.len() > 1, "{first_leaders:?}");
}

/// A replica that campaigns eagerly without knowing of the leader that was elected
/// meanwhile (it was cut off) cannot disrupt it: pre-vote is refused within the leader's
/// lease, and it stops once it hears the leader.
#[test]
fn s9_6_campaign_now_does_not_disrupt_an_existing_leader() {
    let mut c = Cluster::new(&[1, 2, 3], 9);
    c.isolate(1);
    c.campaign(2);
    let term = c.node(2).term();
    c.heal();
    c.node_mut(1).campaign_now();
    c.stabilize();
    c.tick(30);
    assert_eq!(c.leaders(), vec![2]);
    assert_eq!(c.node(2).term(), term);
    assert_eq!(c.node(1).leader(), Some(2));
}

/// Node id 0 is a node (Kafka's broker ids start at 0): it campaigns, wins and leads, a
/// vote for it is not "no vote", and it votes for others in a later term.
#[test]
fn node_zero_campaigns_leads_and_votes() {
    let mut c = Cluster::with_config(&[0, 1, 2], 7, no_pre_vote);
    c.campaign(0);
    assert_eq!(c.leaders(), vec![0]);
    for id in [1, 2] {
        assert_eq!(c.node(id).leader(), Some(0), "node {id} follows node 0");
        assert_eq!(
            c.node(id).hard_state().vote,
            Some(0),
            "node {id} voted for 0"
        );
    }
    assert_eq!(
        c.node(0).hard_state().vote,
        Some(0),
        "node 0 voted for itself"
    );
    c.campaign(1);
    assert_eq!(c.leaders(), vec![1]);
    assert_eq!(c.node(0).leader(), Some(1));
    assert_eq!(c.node(0).hard_state().vote, Some(1), "node 0 voted for 1");
}
