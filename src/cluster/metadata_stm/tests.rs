//! Unit tests of [`super::MetadataState`] and [`super::MetadataCommand`] (a file of their own
//! to keep the state machine short).

use super::*;

fn broker(node_id: i32) -> MetadataCommand {
    MetadataCommand::RegisterBroker(BrokerRegistration {
        node_id,
        host: format!("broker-{node_id}"),
        port: 9092,
        rpc_host: format!("broker-{node_id}"),
        rpc_port: 9093,
        rack: None,
    })
}

fn topic_id(n: u8) -> String {
    Uuid::from_bytes([n; 16]).to_string()
}

fn create(name: &str, replicas: Vec<Vec<i32>>) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name: name.to_string(),
        topic_id: topic_id(name.bytes().fold(0, u8::wrapping_add)),
        configs: TopicConfigs::new(),
        replicas,
    }
}

/// Applies `commands` at indexes 1, 2, ... and returns each outcome.
fn feed(state: &mut MetadataState, commands: &[MetadataCommand]) -> Vec<Result<(), BrokerError>> {
    let base = state.applied_index();
    commands
        .iter()
        .enumerate()
        .map(|(i, command)| state.apply(base + 1 + i as u64, command))
        .collect()
}

fn three_brokers() -> MetadataState {
    let mut state = MetadataState::default();
    for outcome in feed(&mut state, &[broker(1), broker(2), broker(3)]) {
        outcome.unwrap();
    }
    state
}

#[test]
fn register_replaces_a_registration() {
    let mut state = three_brokers();
    let mut moved = BrokerRegistration {
        node_id: 2,
        host: "new-host".into(),
        port: 19092,
        rpc_host: "new-host".into(),
        rpc_port: 19093,
        rack: Some("r1".into()),
    };
    state
        .apply(4, &MetadataCommand::RegisterBroker(moved.clone()))
        .unwrap();
    assert_eq!(state.brokers().len(), 3);
    assert_eq!(state.brokers().get(2), Some(&moved));
    assert_eq!(state.brokers().racks()[1], (2, Some("r1".to_string())));
    moved.node_id = -1;
    let negative = state.apply(5, &MetadataCommand::RegisterBroker(moved));
    assert!(matches!(negative, Err(BrokerError::InvalidRequest(_))));
    assert_eq!(state.brokers().ids(), vec![1, 2, 3]);
}

#[test]
fn create_assigns_fresh_groups_at_the_command_index() {
    let mut state = three_brokers();
    state
        .apply(
            7,
            &create("orders", vec![vec![1, 2], vec![2, 3], vec![3, 1]]),
        )
        .unwrap();
    let topics = state.topics();
    let meta = topics.get("orders").unwrap();
    assert_eq!(meta.partitions, 3);
    assert_eq!(meta.created_revision, 7);
    assert_eq!(topics.revision(), 7);
    assert_eq!(topics.assignment("orders", 1).unwrap().replicas, vec![2, 3]);
    assert_eq!(topics.group(3), Some(("orders", 2)));
    assert_eq!(state.next_group(), 4);
    assert_eq!(state.applied_index(), 7);
    let load = state.preferred_leader_load();
    assert_eq!(load, BTreeMap::from([(1, 1), (2, 1), (3, 1)]));
}

#[test]
fn delete_then_recreate_never_reuses_groups() {
    let mut state = three_brokers();
    let outcomes = feed(
        &mut state,
        &[
            create("t", vec![vec![1]]),
            MetadataCommand::DeleteTopic { name: "t".into() },
            create("t", vec![vec![2]]),
        ],
    );
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let topics = state.topics();
    assert!(
        topics.group(1).is_none(),
        "the deleted topic's group is gone"
    );
    assert_eq!(topics.group(2), Some(("t", 0)));
    assert_eq!(topics.get("t").unwrap().created_revision, 6);
    let missing = state.apply(7, &MetadataCommand::DeleteTopic { name: "x".into() });
    assert!(matches!(missing, Err(BrokerError::UnknownTopicOrPartition)));
}

#[test]
fn partitions_are_added_with_new_groups() {
    let mut state = three_brokers();
    state.apply(4, &create("t", vec![vec![1, 2]])).unwrap();
    let grow = MetadataCommand::CreatePartitions {
        name: "t".into(),
        new_replicas: vec![vec![2, 3], vec![3, 1]],
    };
    state.apply(5, &grow).unwrap();
    let topics = state.topics();
    assert_eq!(topics.get("t").unwrap().partitions, 3);
    assert_eq!(topics.group(3), Some(("t", 2)));
    assert_eq!(topics.revision(), 5);
    let wrong_rf = MetadataCommand::CreatePartitions {
        name: "t".into(),
        new_replicas: vec![vec![1]],
    };
    let outcome = state.apply(6, &wrong_rf);
    assert!(matches!(
        outcome,
        Err(BrokerError::InvalidReplicaAssignment(_))
    ));
    let nothing = MetadataCommand::CreatePartitions {
        name: "t".into(),
        new_replicas: vec![],
    };
    assert!(matches!(
        state.apply(7, &nothing),
        Err(BrokerError::InvalidPartitions(_))
    ));
    let unknown = MetadataCommand::CreatePartitions {
        name: "u".into(),
        new_replicas: vec![vec![1, 2]],
    };
    assert!(matches!(
        state.apply(8, &unknown),
        Err(BrokerError::UnknownTopicOrPartition)
    ));
}

#[test]
fn configs_are_replaced() {
    let mut state = three_brokers();
    state.apply(4, &create("t", vec![vec![1]])).unwrap();
    let configs = TopicConfigs::from([("retention.ms".to_string(), "1000".to_string())]);
    let alter = MetadataCommand::AlterConfigs {
        name: "t".into(),
        configs: configs.clone(),
    };
    state.apply(5, &alter).unwrap();
    assert_eq!(state.topics().get("t").unwrap().configs, configs);
    let unknown = MetadataCommand::AlterConfigs {
        name: "u".into(),
        configs,
    };
    assert!(matches!(
        state.apply(6, &unknown),
        Err(BrokerError::UnknownTopicOrPartition)
    ));
}

#[test]
fn failed_commands_change_nothing_but_the_applied_index() {
    let mut state = three_brokers();
    state.apply(4, &create("t", vec![vec![1, 2]])).unwrap();
    let bad = [
        (create("t", vec![vec![1]]), "exists"),
        (create("u", vec![vec![]]), "empty list"),
        (create("u", vec![vec![1, 9]]), "unknown broker"),
        (create("u", vec![vec![2, 2]]), "repeated broker"),
        (
            create("u", vec![vec![1, 2], vec![3]]),
            "mixed replication factors",
        ),
        (create("u", vec![]), "no partitions"),
        (
            MetadataCommand::CreateTopic {
                name: "u".into(),
                topic_id: "not-a-uuid".into(),
                configs: TopicConfigs::new(),
                replicas: vec![vec![1]],
            },
            "bad id",
        ),
    ];
    for (i, (command, why)) in bad.iter().enumerate() {
        let before = state.clone();
        let index = 5 + i as u64;
        let outcome = state.apply(index, command);
        assert!(outcome.is_err(), "{why}: {outcome:?}");
        assert_eq!(state.applied_index(), index);
        assert_eq!(state.topics(), before.topics(), "{why}");
        assert_eq!(state.brokers(), before.brokers(), "{why}");
        assert_eq!(state.next_group(), before.next_group(), "{why}");
    }
    let exists = state.apply(20, &bad[0].0).unwrap_err();
    assert!(matches!(exists, BrokerError::TopicAlreadyExists(_)));
    for (command, _) in &bad[1..5] {
        let err = state.apply(state.applied_index() + 1, command).unwrap_err();
        assert!(
            matches!(err, BrokerError::InvalidReplicaAssignment(_)),
            "{err:?}"
        );
    }
}

#[test]
fn the_same_log_gives_the_same_state() {
    let log = [
        broker(1),
        broker(2),
        create("a", vec![vec![1, 2], vec![2, 1]]),
        create("b", vec![vec![2, 1]]),
        create("a", vec![vec![1, 2]]),
        MetadataCommand::CreatePartitions {
            name: "b".into(),
            new_replicas: vec![vec![1, 2]],
        },
        MetadataCommand::DeleteTopic { name: "a".into() },
        broker(3),
    ];
    let mut first = MetadataState::default();
    let mut second = MetadataState::default();
    let first_outcomes: Vec<_> = feed(&mut first, &log).iter().map(Result::is_ok).collect();
    first.skip(20);
    let second_outcomes: Vec<_> = feed(&mut second, &log).iter().map(Result::is_ok).collect();
    second.skip(20);
    assert_eq!(first_outcomes, second_outcomes);
    assert_eq!(first, second);
    assert_eq!(first.applied_index(), 20);
    assert_eq!(first.next_group(), 5);
}

#[test]
#[should_panic(expected = "applied after")]
fn applying_out_of_order_is_a_bug() {
    let mut state = three_brokers();
    let _ = state.apply(3, &broker(4));
}

#[test]
fn commands_round_trip() {
    let commands = [
        broker(1),
        create("t", vec![vec![1, 2, 3]]),
        MetadataCommand::DeleteTopic { name: "t".into() },
        MetadataCommand::CreatePartitions {
            name: "t".into(),
            new_replicas: vec![vec![3, 1]],
        },
        MetadataCommand::AlterConfigs {
            name: "t".into(),
            configs: TopicConfigs::from([("cleanup.policy".into(), "compact".into())]),
        },
    ];
    for command in commands {
        assert_eq!(MetadataCommand::decode(&command.encode()).unwrap(), command);
    }
}

#[test]
fn garbage_does_not_decode() {
    let valid = create("t", vec![vec![1]]).encode();
    for garbage in [
        &b""[..],
        b"\xff\x00",
        b"{}",
        b"{\"Nope\":{}}",
        &valid[..valid.len() - 1],
    ] {
        let outcome = MetadataCommand::decode(garbage);
        assert!(
            matches!(outcome, Err(BrokerError::Metadata(_))),
            "{garbage:?}"
        );
    }
}
