//! The transaction APIs: every broker names the same transaction coordinator (the leader of
//! the id's `__transaction_state` partition); it serves the transaction and any other broker
//! answers NOT_COORDINATOR. TxnOffsetCommit goes to the group's coordinator. ListTransactions
//! lists the transactions the receiving broker coordinates.

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest,
    GroupId, InitProducerIdRequest, ListTransactionsRequest, ProducerId, TopicName,
    TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::ctx::{Ctx, GROUP_KEY, NOT_COORDINATOR, TOPIC, TXN_KEY};
use super::groups::coordinator;
use crate::common::api_call::call;

/// A transactional producer: `(transactional id, coordinator, producer id, epoch)`.
struct Txn {
    id: String,
    coordinator: i32,
    producer_id: i64,
    epoch: i16,
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

fn init_request(id: Option<&str>) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(id.map(txn_id))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

fn txn_producer(ctx: &mut Ctx, prefix: &str) -> Txn {
    let id = ctx.unique(prefix);
    txn_producer_named(ctx, id)
}

fn txn_producer_named(ctx: &Ctx, id: String) -> Txn {
    let coordinator = coordinator(ctx, TXN_KEY, &id);
    let init = call(ctx.addr(coordinator), 4, &init_request(Some(&id)));
    assert_eq!(init.error_code, 0, "InitProducerId {id} on its coordinator");
    Txn {
        id,
        coordinator,
        producer_id: init.producer_id.0,
        epoch: init.producer_epoch,
    }
}

/// AddPartitionsToTxn of matrix-0 for `txn` through `via`: every partition's error code.
fn add_partition(ctx: &Ctx, via: i32, version: i16, txn: &Txn) -> Vec<i16> {
    let topic = AddPartitionsToTxnTopic::default()
        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(vec![0]);
    let request = if version >= 4 {
        AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(txn_id(&txn.id))
                .with_producer_id(ProducerId(txn.producer_id))
                .with_producer_epoch(txn.epoch)
                .with_topics(vec![topic]),
        ])
    } else {
        AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id(&txn.id))
            .with_v3_and_below_producer_id(ProducerId(txn.producer_id))
            .with_v3_and_below_producer_epoch(txn.epoch)
            .with_v3_and_below_topics(vec![topic])
    };
    let response = call(ctx.addr(via), version, &request);
    if version >= 4 && response.error_code != 0 {
        return vec![response.error_code];
    }
    let topics = if version >= 4 {
        response
            .results_by_transaction
            .into_iter()
            .flat_map(|r| r.topic_results)
            .collect()
    } else {
        response.results_by_topic_v3_and_below
    };
    topics
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

/// Ends `txn` on its coordinator (abort), so no transaction is left open.
fn abort(ctx: &Ctx, txn: &Txn) {
    let code = end(ctx, txn.coordinator, 3, txn, false);
    assert_eq!(code, 0, "abort {} on its coordinator", txn.id);
}

fn end(ctx: &Ctx, via: i32, version: i16, txn: &Txn, committed: bool) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(txn_id(&txn.id))
        .with_producer_id(ProducerId(txn.producer_id))
        .with_producer_epoch(txn.epoch)
        .with_committed(committed);
    call(ctx.addr(via), version, &request).error_code
}

fn expected(via: i32, coordinator: i32) -> i16 {
    if via == coordinator {
        0
    } else {
        NOT_COORDINATOR
    }
}

pub fn init_producer_id(ctx: &mut Ctx, via: i32, version: i16) {
    let plain = call(ctx.addr(via), version, &init_request(None));
    assert_eq!(
        plain.error_code, 0,
        "idempotent InitProducerId through {via}"
    );
    assert!(plain.producer_id.0 >= 0);
    let id = ctx.unique("init");
    let coordinator = coordinator(ctx, TXN_KEY, &id);
    let init = call(ctx.addr(via), version, &init_request(Some(&id)));
    assert_eq!(
        init.error_code,
        expected(via, coordinator),
        "InitProducerId {id} through {via}"
    );
}

pub fn add_partitions_to_txn(ctx: &mut Ctx, via: i32, version: i16) {
    let txn = txn_producer(ctx, "add-partitions");
    let codes = add_partition(ctx, via, version, &txn);
    assert_eq!(
        codes,
        vec![expected(via, txn.coordinator)],
        "{} through {via}",
        txn.id
    );
    if via == txn.coordinator {
        abort(ctx, &txn);
    }
}

pub fn add_offsets_to_txn(ctx: &mut Ctx, via: i32, version: i16) {
    let txn = txn_producer(ctx, "add-offsets");
    let group = ctx.unique("txn-group");
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id(&txn.id))
        .with_producer_id(ProducerId(txn.producer_id))
        .with_producer_epoch(txn.epoch)
        .with_group_id(GroupId(StrBytes::from_string(group)));
    let code = call(ctx.addr(via), version, &request).error_code;
    assert_eq!(
        code,
        expected(via, txn.coordinator),
        "{} through {via}",
        txn.id
    );
    if via == txn.coordinator {
        abort(ctx, &txn);
    }
}

pub fn end_txn(ctx: &mut Ctx, via: i32, version: i16) {
    let txn = txn_producer(ctx, "end");
    assert_eq!(add_partition(ctx, txn.coordinator, 3, &txn), vec![0]);
    let code = end(ctx, via, version, &txn, true);
    assert_eq!(
        code,
        expected(via, txn.coordinator),
        "commit {} through {via}",
        txn.id
    );
    if via != txn.coordinator {
        abort(ctx, &txn);
    }
}

pub fn txn_offset_commit(ctx: &mut Ctx, via: i32, version: i16) {
    let txn = txn_producer(ctx, "txn-commit");
    let group = ctx.unique("txn-commit-group");
    let group_coordinator = coordinator(ctx, GROUP_KEY, &group);
    let add = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id(&txn.id))
        .with_producer_id(ProducerId(txn.producer_id))
        .with_producer_epoch(txn.epoch)
        .with_group_id(GroupId(StrBytes::from_string(group.clone())));
    assert_eq!(call(ctx.addr(txn.coordinator), 3, &add).error_code, 0);
    let mut request = TxnOffsetCommitRequest::default()
        .with_transactional_id(txn_id(&txn.id))
        .with_group_id(GroupId(StrBytes::from_string(group.clone())))
        .with_producer_id(ProducerId(txn.producer_id))
        .with_producer_epoch(txn.epoch)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(2)])]);
    if version >= 3 {
        request = request.with_generation_id(-1);
    }
    let response = call(ctx.addr(via), version, &request);
    let code = response.topics[0].partitions[0].error_code;
    assert_eq!(
        code,
        expected(via, group_coordinator),
        "TxnOffsetCommit {group} through {via}"
    );
    abort(ctx, &txn);
}

pub fn describe_transactions(ctx: &mut Ctx, via: i32, version: i16) {
    let txn = txn_producer(ctx, "described-txn");
    assert_eq!(add_partition(ctx, txn.coordinator, 3, &txn), vec![0]);
    let request =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(&txn.id)]);
    let response = call(ctx.addr(via), version, &request);
    let state = &response.transaction_states[0];
    assert_eq!(
        state.error_code,
        expected(via, txn.coordinator),
        "{} through {via}",
        txn.id
    );
    if via == txn.coordinator {
        assert_eq!(state.transaction_state.as_str(), "Ongoing");
        assert_eq!(state.producer_id.0, txn.producer_id);
        assert_eq!(state.topics[0].topic.as_str(), TOPIC);
    }
    abort(ctx, &txn);
}

pub fn list_transactions(ctx: &mut Ctx, via: i32, version: i16) {
    // A transaction this broker coordinates, if any transactional id maps to it.
    let mine = (0..200)
        .map(|i| format!("listed-txn-{via}-{i}"))
        .find(|id| coordinator(ctx, TXN_KEY, id) == via);
    if let Some(id) = &mine {
        txn_producer_named(ctx, id.clone());
    }
    let response = call(ctx.addr(via), version, &ListTransactionsRequest::default());
    assert_eq!(response.error_code, 0);
    let listed: Vec<String> = response
        .transaction_states
        .iter()
        .map(|t| t.transactional_id.to_string())
        .collect();
    for id in &listed {
        assert_eq!(
            coordinator(ctx, TXN_KEY, id),
            via,
            "broker {via} lists {id}, which another broker coordinates"
        );
    }
    if let Some(id) = mine {
        assert!(
            listed.contains(&id),
            "broker {via} does not list {id}: {listed:?}"
        );
    }
}
