"""confluent-kafka (librdkafka) against Ringlet: admin create topic, produce with acks=all,
consume with assign() (no group subscribe, no commits), admin delete topic."""

import time

import checklib
from checklib import MESSAGES, PARTITIONS, check

ck = checklib.require("confluent_kafka", "confluent-kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CLIENT = "confluent-kafka"
client_errors = []


def error_cb(err):
    # Printed and collected: a client that cannot reach the broker reports here.
    print(f"client error callback: {err}", flush=True)
    client_errors.append(str(err))


def create_topic(admin, topic):
    futures = admin.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=60)
    futures[topic].result(timeout=checklib.WAIT_SECONDS)
    def ready():
        md = admin.list_topics(topic=topic, timeout=30)
        t = md.topics.get(topic)
        return t is not None and t.error is None and len(t.partitions) == PARTITIONS and all(
            p.leader >= 0 for p in t.partitions.values())
    checklib.wait_until(f"metadata for {topic}", ready)
    check(True, f"{CLIENT}: admin created {topic} with {PARTITIONS} partitions (seen in metadata)")


def produce(bootstrap, topic, base_ts):
    producer = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                            "enable.idempotence": True, "error_cb": error_cb})
    deliveries, failures = {}, []

    def on_delivery(index):
        def report(err, msg):
            if err is not None:
                failures.append((index, str(err)))
            else:
                deliveries[index] = (msg.partition(), msg.offset())
        return report

    for index in range(MESSAGES):
        key, value, headers, ts = checklib.expected(index, CLIENT, base_ts)
        producer.produce(topic, value=value, key=key, headers=headers, timestamp=ts,
                         on_delivery=on_delivery(index))
        producer.poll(0)
    remaining = producer.flush(checklib.WAIT_SECONDS)
    check(remaining == 0, f"{CLIENT}: producer flushed ({remaining} left)")
    check(not failures, f"{CLIENT}: no delivery failures {failures[:3]}")
    return deliveries


def consume(bootstrap, topic):
    # confluent-kafka requires group.id; with assign() and no commits it still needs no
    # coordinator for fetching.
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "ringlet-assign-only",
                            "enable.auto.commit": False, "enable.auto.offset.store": False,
                            "error_cb": error_cb})
    consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(PARTITIONS)])
    consumed = []
    deadline = time.monotonic() + checklib.WAIT_SECONDS
    while len(consumed) < MESSAGES and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise checklib.CheckFailed(f"{CLIENT}: consumer error {msg.error()}")
        ts_type, ts = msg.timestamp()
        check_ts = ts if ts_type == ck.TIMESTAMP_CREATE_TIME else None
        consumed.append((msg.partition(), msg.offset(), msg.key(), msg.value(),
                         msg.headers() or [], check_ts))
    consumer.close()
    return consumed


def delete_topic(admin, topic):
    futures = admin.delete_topics([topic], operation_timeout=60)
    futures[topic].result(timeout=checklib.WAIT_SECONDS)
    checklib.wait_until(f"{topic} gone from metadata",
                        lambda: topic not in admin.list_topics(timeout=30).topics)
    check(True, f"{CLIENT}: admin deleted {topic} (gone from metadata)")


def main():
    args = checklib.parse_args(__doc__)
    print(f"{CLIENT} {ck.version()[0]} on librdkafka {ck.libversion()[0]}", flush=True)
    admin = AdminClient({"bootstrap.servers": args.bootstrap, "error_cb": error_cb})
    topic = checklib.unique_topic("ck")
    create_topic(admin, topic)
    base_ts = checklib.base_timestamp_ms()
    deliveries = produce(args.bootstrap, topic, base_ts)
    consumed = consume(args.bootstrap, topic)
    checklib.verify(CLIENT, deliveries, consumed, base_ts)
    delete_topic(admin, topic)
    if client_errors:
        print(f"note: client error callbacks seen (not fatal by themselves): {client_errors}")


if __name__ == "__main__":
    checklib.run(main)
