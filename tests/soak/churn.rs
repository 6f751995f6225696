//! Churn: many short connections (a request answered, a request abandoned, half a frame, a
//! connection closed at once), and topics created, written, read and deleted in a loop.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use kafka_protocol::protocol::StrBytes;

use crate::common::cluster::CLUSTER_TIMEOUT;
use crate::common::kafka::{
    consume_to_high_watermarks, flush_and_check_all_acked, recording_producer, send_with_retry,
};
use crate::common::seeded::Seeded;
use crate::common::unique_topic;
use crate::common::wire::{correlation_id, read_reaction, request_frame, Reaction};
use crate::run::Run;

const API_VERSIONS: i16 = 18;
const METADATA: i16 = 3;
const CONNECTIONS_PER_SECOND: u64 = 20;
const TOPIC_MESSAGES: usize = 100;
const TOPIC_PARTITIONS: i32 = 3;
const BETWEEN_TOPICS: Duration = Duration::from_secs(10);

pub fn connections(run: &Run) {
    let brokers: Vec<SocketAddr> = run
        .bootstrap
        .split(',')
        .map(|address| address.parse().expect("a bootstrap address"))
        .collect();
    let mut random = Seeded::new(run.seed ^ 0x636f_6e6e);
    let mut correlation = 0i32;
    while run.pause(Duration::from_millis(1000 / CONNECTIONS_PER_SECOND)) {
        let broker = brokers[random.below(brokers.len() as u64) as usize];
        // A broker this soak killed refuses connections for a while; that is no finding.
        let Ok(mut stream) = TcpStream::connect_timeout(&broker, Duration::from_secs(2)) else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        correlation = correlation.wrapping_add(1);
        run.count("connections", 1);
        match random.below(4) {
            0 => answered(run, &mut stream, correlation),
            1 => {
                let frame = request_frame(&MetadataRequest::default(), METADATA, 12, correlation);
                let _ = stream.write_all(&frame);
            }
            2 => {
                let frame = api_versions(correlation);
                let _ = stream.write_all(&frame[..frame.len() / 2]);
            }
            _ => {}
        }
    }
}

fn api_versions(correlation: i32) -> Vec<u8> {
    let mut request = ApiVersionsRequest::default();
    request.client_software_name = StrBytes::from_static_str("ringlet-soak");
    request.client_software_version = StrBytes::from_static_str("1");
    request_frame(&request, API_VERSIONS, 3, correlation)
}

/// ApiVersions must be answered on its own correlation id (unless the broker was just killed).
fn answered(run: &Run, stream: &mut TcpStream, correlation: i32) {
    if stream.write_all(&api_versions(correlation)).is_err() {
        return;
    }
    match read_reaction(stream, "ApiVersions on a churned connection") {
        Reaction::Answered(response) => {
            if correlation_id(&response) != correlation {
                run.finding(format!(
                    "ApiVersions answered with correlation id {} for {correlation}",
                    correlation_id(&response)
                ));
            }
        }
        Reaction::Closed { partial } => {
            run.count("connections closed unanswered", 1);
            if run.replication == 1 {
                run.finding(format!("an undisturbed broker closed a connection after {partial} bytes of an ApiVersions answer"));
            }
        }
    }
}

/// CreateTopics, asked again while it fails with INVALID_REPLICATION_FACTOR: while the soak
/// holds a node down, fewer brokers live than the replication factor asks, and Kafka refuses
/// the topic then as Ringlet does; an application asks again.
fn create_while_a_broker_may_be_down(run: &Run, topic: &str) {
    let deadline = Instant::now() + CLUSTER_TIMEOUT;
    loop {
        match crate::topics::create(
            &run.bootstrap,
            topic,
            TOPIC_PARTITIONS,
            run.replication,
            &[],
        ) {
            Ok(()) => return,
            Err(err) if err.contains("InvalidReplicationFactor") && Instant::now() < deadline => {
                run.count("topic creations refused while a node was down", 1);
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(err) => panic!("create: {err}"),
        }
    }
}

/// Creates a topic, writes to it with acks=all, reads it back and deletes it, over and over.
pub fn topics(run: &Run) {
    let mut cycle = 0u64;
    while run.pause(BETWEEN_TOPICS) {
        let topic = unique_topic(&format!("soak-{}-churn", run.label));
        run.guarded(&format!("topic churn {topic}"), || one_topic(run, &topic));
        cycle += 1;
        run.count("topics created and deleted", 1);
    }
    run.say(format!("topic churn: {cycle} topics"));
}

fn one_topic(run: &Run, topic: &str) {
    create_while_a_broker_may_be_down(run, topic);
    let (producer, context) = recording_producer(&run.bootstrap, &[]);
    for index in 0..TOPIC_MESSAGES {
        let payload = index.to_string();
        send_with_retry(
            &producer,
            rdkafka::producer::BaseRecord::with_opaque_to(topic, index).payload(payload.as_bytes()),
        );
    }
    flush_and_check_all_acked(&producer, &context, TOPIC_MESSAGES);
    let stored = consume_to_high_watermarks(&run.bootstrap, topic, TOPIC_PARTITIONS);
    let read: usize = stored.values().map(Vec::len).sum();
    assert_eq!(read, TOPIC_MESSAGES, "messages read back from {topic}");
    crate::topics::delete(&run.bootstrap, topic).unwrap_or_else(|err| panic!("delete: {err}"));
}
