"""confluent-kafka (librdkafka) against Ringlet on behaviours its own tests exercise, run by
tests/client_behaviours.rs, one check per invocation:

  codec            topics with compression.type gzip (at creation) and zstd (altered); produce
                   uncompressed, consume back every key, value and header
  keyless          a compacted topic refuses a batch holding a record without a key
  max-timestamp    AdminClient.list_offsets(OffsetSpec.max_timestamp()) names the record with
                   the largest timestamp in a batch produced out of timestamp order
  format-version   message.format.version is accepted, described and alterable (Kafka 3.x)
"""

import argparse
import time

import checklib
from checklib import check

ck = checklib.require("confluent_kafka", "confluent-kafka")
from confluent_kafka import KafkaError, TopicPartition  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

CLIENT = "confluent-kafka"
MESSAGES = 200


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--check", required=True)
    parser.add_argument("--topic", action="append", required=True)
    return parser.parse_args()


def create_topic(admin, topic, config=None, partitions=1):
    futures = admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})],
                                  operation_timeout=60)
    futures[topic].result(timeout=checklib.WAIT_SECONDS)

    def ready():
        t = admin.list_topics(topic=topic, timeout=30).topics.get(topic)
        return t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader >= 0 for p in t.partitions.values())
    checklib.wait_until(f"metadata for {topic}", ready)
    check(True, f"created {topic} with {config or {}}")


def describe(admin, topic):
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(timeout=checklib.WAIT_SECONDS)


def source_is(entry, source):
    return entry.source in (source, source.value)


def incremental_set(admin, topic, name, value):
    entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin.incremental_alter_configs([resource])[resource].result(timeout=checklib.WAIT_SECONDS)


def producer(bootstrap, **extra):
    config = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 50,
              "compression.type": "none"}
    config.update(extra)
    return ck.Producer(config)


def produce_all(p, topic, records):
    """records: (key, value, headers, timestamp_ms or None). Returns per record (err, offset)."""
    results = [None] * len(records)

    def report(index):
        def on_delivery(err, msg):
            results[index] = (err, msg.offset())
        return on_delivery
    for index, (key, value, headers, ts) in enumerate(records):
        kwargs = {"timestamp": ts} if ts is not None else {}
        p.produce(topic, key=key, value=value, headers=headers, on_delivery=report(index), **kwargs)
    left = p.flush(checklib.WAIT_SECONDS)
    check(left == 0, f"producer flushed ({left} left)")
    return results


def consume_all(bootstrap, topic, count):
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "ringlet-behaviours",
                            "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
    out = []
    deadline = time.monotonic() + checklib.WAIT_SECONDS
    while len(out) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise checklib.CheckFailed(f"consumer error {msg.error()}")
        out.append((msg.offset(), msg.key(), msg.value(), msg.headers() or []))
    consumer.close()
    return out


def record(topic, index):
    key = f"key-{index % 7}".encode()
    value = f"{topic}-value-{index}-".encode() + b"z" * (index % 90)
    return key, value, [("seq", str(index).encode()), ("seq", b"twice")], None


def check_codec(admin, bootstrap, topics):
    gzip_topic, zstd_topic = topics
    create_topic(admin, gzip_topic, {"compression.type": "gzip"})
    create_topic(admin, zstd_topic)
    incremental_set(admin, zstd_topic, "compression.type", "zstd")
    for topic, codec in [(gzip_topic, "gzip"), (zstd_topic, "zstd")]:
        entry = describe(admin, topic)["compression.type"]
        check(entry.value == codec and source_is(entry, ConfigSource.DYNAMIC_TOPIC_CONFIG)
              and not entry.is_read_only,
              f"{topic}: compression.type described as {entry.value} (topic override, writable)")
    p = producer(bootstrap)
    for topic in topics:
        records = [record(topic, i) for i in range(MESSAGES)]
        results = produce_all(p, topic, records)
        failures = [r for r in results if r[0] is not None]
        check(not failures, f"{topic}: {MESSAGES} uncompressed records acknowledged {failures[:2]}")
        consumed = consume_all(bootstrap, topic, MESSAGES)
        want = [(i, k, v, h) for i, (k, v, h, _) in enumerate(records)]
        got = [(o, k, v, [(hk, bytes(hv)) for hk, hv in h]) for o, k, v, h in consumed]
        check(got == want, f"{topic}: consumed every key, value and header at its offset")


def check_keyless(admin, bootstrap, topics):
    topic = topics[0]
    create_topic(admin, topic, {"cleanup.policy": "compact"})
    p = producer(bootstrap, **{"linger.ms": 500})
    records = [(b"k0", b"v0", None, None), (None, b"no key", None, None), (b"k2", b"v2", None, None)]
    results = produce_all(p, topic, records)
    codes = [r[0].code() if r[0] is not None else None for r in results]
    check(codes == [KafkaError.INVALID_RECORD] * 3,
          f"the whole batch failed with INVALID_RECORD ({[str(r[0]) for r in results]})")
    # librdkafka reports the code only; tests/client_behaviours.rs reads the record errors.
    results = produce_all(p, topic, [(b"k3", b"v3", None, None)])
    check(results[0][0] is None and results[0][1] == 0,
          f"a keyed record is accepted at offset 0 afterwards ({results[0]})")


def check_max_timestamp(admin, bootstrap, topics):
    topic = topics[0]
    create_topic(admin, topic)
    base = int(time.time() * 1000) - 60_000
    # One batch (a long linger, one flush), timestamps out of order; the largest appears twice
    # and the first of those is the answer, not the batch's last offset.
    stamps = [base, base + 5_000, base + 1_000, base + 5_000, base + 2_000]
    p = producer(bootstrap, **{"linger.ms": 1000})
    results = produce_all(p, topic, [(b"k", b"v%d" % i, None, ts) for i, ts in enumerate(stamps)])
    check([r[1] for r in results] == list(range(5)) and all(r[0] is None for r in results),
          "five records at offsets 0..4")
    tp = TopicPartition(topic, 0)
    info = admin.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(
        timeout=checklib.WAIT_SECONDS)
    check((info.offset, info.timestamp) == (1, base + 5_000),
          f"max_timestamp is offset 1 at {base + 5_000} (got offset {info.offset} at {info.timestamp})")


def check_format_version(admin, bootstrap, topics):
    topic, plain = topics
    create_topic(admin, topic, {"message.format.version": "2.8"})
    create_topic(admin, plain)
    entry = describe(admin, topic)["message.format.version"]
    check(entry.value == "2.8" and source_is(entry, ConfigSource.DYNAMIC_TOPIC_CONFIG),
          f"{topic}: message.format.version described as the override 2.8 ({entry.value})")
    default = describe(admin, plain)["message.format.version"]
    check(default.value == "3.0-IV1" and source_is(default, ConfigSource.DEFAULT_CONFIG),
          f"{plain}: message.format.version described as Kafka 3.x's default ({default.value})")
    incremental_set(admin, topic, "message.format.version", "3.0-IV1")
    check(describe(admin, topic)["message.format.version"].value == "3.0-IV1",
          f"{topic}: IncrementalAlterConfigs set it to 3.0-IV1")
    resource = ConfigResource(ResourceType.TOPIC, plain,
                              set_config={"message.format.version": "2.1"})
    admin.alter_configs([resource])[resource].result(timeout=checklib.WAIT_SECONDS)
    check(describe(admin, plain)["message.format.version"].value == "2.1",
          f"{plain}: AlterConfigs set it to 2.1")


CHECKS = {
    "codec": check_codec,
    "keyless": check_keyless,
    "max-timestamp": check_max_timestamp,
    "format-version": check_format_version,
}


def main():
    args = parse_args()
    print(f"{CLIENT} {ck.version()[0]} on librdkafka {ck.libversion()[0]}: {args.check}",
          flush=True)
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    CHECKS[args.check](admin, args.bootstrap, args.topic)


if __name__ == "__main__":
    checklib.run(main)
