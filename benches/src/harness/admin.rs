//! Topic setup through the Kafka admin API: every run creates fresh topics (unique names), so
//! consumers can read from the beginning and count exactly what this run produced.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

use super::HarnessError;

/// Deadline for topic creation and for every partition to show a leader.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a future to completion on this thread. rdkafka's admin futures only wait on a channel
/// that librdkafka's own thread completes, so no async runtime is needed.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct ThreadWaker(Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    config
}

/// Creates `names` with `partitions` partitions each (replication factor 1 unless told) and
/// waits until metadata shows every partition led.
pub fn create_topics(
    bootstrap: &str,
    names: &[String],
    partitions: i32,
    replication: i32,
) -> Result<(), HarnessError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .create()
        .map_err(|err| HarnessError::client("creating admin client", err))?;
    let options = AdminOptions::new().operation_timeout(Some(TOPIC_READY_TIMEOUT));
    let new_topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let results = block_on(admin.create_topics(&new_topics, &options))
        .map_err(|err| HarnessError::client("CreateTopics", err))?;
    for result in results {
        if let Err((name, code)) = result {
            return Err(HarnessError::client(
                "CreateTopics",
                format!("topic {name}: {code:?}"),
            ));
        }
    }
    for name in names {
        wait_for_leaders(bootstrap, name, partitions)?;
    }
    Ok(())
}

fn wait_for_leaders(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), HarnessError> {
    let client: BaseProducer = client_config(bootstrap)
        .create()
        .map_err(|err| HarnessError::client("creating metadata client", err))?;
    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    loop {
        let ready = client
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map(|metadata| {
                metadata.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions()
                            .iter()
                            .all(|p| p.leader() >= 0 && p.error().is_none())
                })
            })
            .unwrap_or(false);
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(HarnessError::client(
                "waiting for partition leaders",
                format!("{topic} not fully led after {TOPIC_READY_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Deletes `names` (the run's topics), so the next run starts from the same broker state.
pub fn delete_topics(bootstrap: &str, names: &[String]) -> Result<(), HarnessError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .create()
        .map_err(|err| HarnessError::client("creating admin client", err))?;
    let options = AdminOptions::new().operation_timeout(Some(TOPIC_READY_TIMEOUT));
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = block_on(admin.delete_topics(&refs, &options))
        .map_err(|err| HarnessError::client("DeleteTopics", err))?;
    for result in results {
        if let Err((name, code)) = result {
            return Err(HarnessError::client(
                "DeleteTopics",
                format!("topic {name}: {code:?}"),
            ));
        }
    }
    Ok(())
}
