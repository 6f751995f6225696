//! The soak's long-lived topics, one set per topology, created before the load starts.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::common::kafka::{base_config, block_on, wait_for_partitions, CLIENT_TIMEOUT};
use crate::run::Run;

pub const FIXED_PARTITIONS: i32 = 6;
pub const IDEMPOTENT_PARTITIONS: i32 = 6;
pub const TRANSACTIONAL_PARTITIONS: i32 = 4;
pub const BULK_PARTITIONS: i32 = 4;
/// The max-rate topic keeps at most this much per partition (retention by size), so hours
/// of bursts fit the disk and retention runs all the time.
const BULK_RETENTION_BYTES: &str = "8388608";
const BULK_SEGMENT_BYTES: &str = "1048576";

fn name(run: &Run, what: &str) -> String {
    format!("soak-{}-{what}-{}", run.label, std::process::id())
}

pub fn fixed(run: &Run) -> String {
    name(run, "fixed")
}

pub fn idempotent(run: &Run) -> String {
    name(run, "idempotent")
}

pub fn transactional(run: &Run) -> String {
    name(run, "transactional")
}

pub fn bulk(run: &Run) -> String {
    name(run, "bulk")
}

/// Creates every long-lived topic; returns them with their partition counts.
pub fn create_all(run: &Run) -> Vec<(String, i32)> {
    let topics = vec![
        (fixed(run), FIXED_PARTITIONS, vec![]),
        (idempotent(run), IDEMPOTENT_PARTITIONS, vec![]),
        (transactional(run), TRANSACTIONAL_PARTITIONS, vec![]),
        (
            bulk(run),
            BULK_PARTITIONS,
            vec![
                ("retention.bytes", BULK_RETENTION_BYTES),
                ("segment.bytes", BULK_SEGMENT_BYTES),
            ],
        ),
    ];
    for (topic, partitions, configs) in &topics {
        create(&run.bootstrap, topic, *partitions, run.replication, configs)
            .unwrap_or_else(|err| panic!("create {topic}: {err}"));
    }
    topics
        .into_iter()
        .map(|(topic, partitions, _)| (topic, partitions))
        .collect()
}

/// CreateTopics with `configs`, then waits until every partition is led.
pub fn create(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&str, &str)],
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap)
        .create()
        .map_err(|err| err.to_string())?;
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let results =
        block_on(admin.create_topics([&new_topic], &options)).map_err(|err| err.to_string())?;
    for result in results {
        result.map_err(|(name, code)| format!("CreateTopics {name}: {code:?}"))?;
    }
    wait_for_partitions(bootstrap, topic, partitions);
    Ok(())
}

/// DeleteTopics.
pub fn delete(bootstrap: &str, topic: &str) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = base_config(bootstrap)
        .create()
        .map_err(|err| err.to_string())?;
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
    let results =
        block_on(admin.delete_topics(&[topic], &options)).map_err(|err| err.to_string())?;
    for result in results {
        result.map_err(|(name, code)| format!("DeleteTopics {name}: {code:?}"))?;
    }
    Ok(())
}
