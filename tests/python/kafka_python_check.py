"""kafka-python against Ringlet: admin create topic, produce with acks=all, consume with
KafkaConsumer(group_id=None) + assign() + seek_to_beginning(), admin delete topic."""

import time

import checklib
from checklib import MESSAGES, PARTITIONS, check

kafka = checklib.require("kafka", "kafka-python")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

CLIENT = "kafka-python"
TIMEOUT_MS = checklib.WAIT_SECONDS * 1000


def create_topic(admin, topic):
    admin.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}},
                        timeout_ms=TIMEOUT_MS)  # raise_errors=True: a topic error raises
    def ready():
        topics = admin.describe_topics([topic])
        return any(t.get("name") == topic and t.get("error_code") == 0
                   and len(t.get("partitions", [])) == PARTITIONS for t in topics)
    checklib.wait_until(f"metadata for {topic}", ready)
    check(True, f"{CLIENT}: admin created {topic} with {PARTITIONS} partitions (seen in metadata)")


def produce(bootstrap, topic, base_ts):
    # kafka-python 3 turns idempotence on by default (InitProducerId, sequence numbers): kept on.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, delivery_timeout_ms=300000,
                             request_timeout_ms=120000, enable_idempotence=True)
    futures = []
    for index in range(MESSAGES):
        key, value, headers, ts = checklib.expected(index, CLIENT, base_ts)
        futures.append(producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts))
    producer.flush(timeout=checklib.WAIT_SECONDS)
    deliveries = {}
    for index, future in enumerate(futures):
        metadata = future.get(timeout=checklib.WAIT_SECONDS)
        deliveries[index] = (metadata.partition, metadata.offset)
    producer.close()
    check(True, f"{CLIENT}: {MESSAGES} idempotent sends acknowledged with acks=all")
    return deliveries


def consume(consumer, topic):
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    consumed = []
    deadline = time.monotonic() + checklib.WAIT_SECONDS
    while len(consumed) < MESSAGES and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                ts = r.timestamp if r.timestamp_type == 0 else None
                consumed.append((r.partition, r.offset, r.key, r.value, list(r.headers), ts))
    return consumed


def delete_topic(admin, topic):
    admin.delete_topics([topic], timeout_ms=TIMEOUT_MS)
    checklib.wait_until(f"{topic} gone from metadata", lambda: topic not in admin.list_topics())
    check(True, f"{CLIENT}: admin deleted {topic} (gone from metadata)")


def main():
    args = checklib.parse_args(__doc__)
    print(f"{CLIENT} {kafka.__version__}", flush=True)
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=120000)
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None,
                             enable_auto_commit=False, request_timeout_ms=120000,
                             fetch_max_wait_ms=200)
    topic = checklib.unique_topic("kp")
    create_topic(admin, topic)
    base_ts = checklib.base_timestamp_ms()
    deliveries = produce(args.bootstrap, topic, base_ts)
    consumed = consume(consumer, topic)
    consumer.close()
    checklib.verify(CLIENT, deliveries, consumed, base_ts)
    delete_topic(admin, topic)
    admin.close()


if __name__ == "__main__":
    checklib.run(main)
