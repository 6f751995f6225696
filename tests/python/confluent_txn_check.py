"""confluent-kafka (librdkafka) transactions against Ringlet: a consume-transform-produce loop
with send_offsets_to_transaction, one transaction aborted and redone, then checked by content:
a read_committed consumer sees every transformed record exactly once, a read_uncommitted one
also sees the aborted copies, and the group's committed offsets are the input's end."""

import collections
import time

import checklib
from checklib import check

ck = checklib.require("confluent_kafka", "confluent-kafka")
from confluent_kafka import TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CLIENT = "confluent-kafka-txn"
PARTITIONS = 3
RECORDS = 30
PER_TXN = 10


def create_topics(bootstrap, topics):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics], operation_timeout=60)
    for topic in topics:
        futures[topic].result(timeout=checklib.WAIT_SECONDS)


def produce_input(bootstrap, topic):
    producer = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(RECORDS):
        producer.produce(topic, key=str(i).encode(), value=f"in-{i}".encode(), partition=i % PARTITIONS)
    check(producer.flush(60) == 0, f"{CLIENT}: {RECORDS} input records written")


def poll_batch(consumer, limit):
    """Up to `limit` records; stops at a quiet poll once something arrived."""
    batch = []
    deadline = time.monotonic() + checklib.WAIT_SECONDS
    while len(batch) < limit and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            if batch:
                break
            continue
        if msg.error():
            raise checklib.CheckFailed(f"consumer error {msg.error()}")
        batch.append(msg)
    return batch


def transform_loop(bootstrap, source, sink, group):
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                            "enable.auto.commit": False, "isolation.level": "read_committed",
                            "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(source, p, 0) for p in range(PARTITIONS)])
    producer = ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{group}-txn",
                            "transaction.timeout.ms": 30000})
    producer.init_transactions(60)
    done, transactions, aborted = 0, 0, 0
    while done < RECORDS:
        batch = poll_batch(consumer, PER_TXN)
        if not batch:
            raise checklib.CheckFailed(f"no input after {done} records")
        producer.begin_transaction()
        for msg in batch:
            producer.produce(sink, key=msg.key(), value=msg.value().replace(b"in-", b"out-"),
                             partition=msg.partition())
        positions = consumer.position(consumer.assignment())
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 60)
        transactions += 1
        if transactions == 2:
            # Flushed first: an abort purges unsent records, and these must reach the log.
            check(producer.flush(60) == 0, f"{CLIENT}: records of the doomed transaction written")
            producer.abort_transaction(60)
            aborted += len(batch)
            # Rewind to what the group committed: the aborted batch is read again.
            for tp in consumer.committed(consumer.assignment(), timeout=60):
                consumer.seek(TopicPartition(source, tp.partition, tp.offset if tp.offset >= 0 else 0))
            continue
        producer.commit_transaction(60)
        done += len(batch)
    check(aborted > 0, f"{CLIENT}: one transaction of {aborted} records aborted and redone")
    committed = consumer.committed([TopicPartition(source, p) for p in range(PARTITIONS)], timeout=60)
    offsets = sorted((tp.partition, tp.offset) for tp in committed)
    check(offsets == [(p, RECORDS // PARTITIONS) for p in range(PARTITIONS)],
          f"{CLIENT}: the group's committed offsets are the input's end ({offsets})")
    consumer.close()
    return aborted


def read_all(bootstrap, topic, isolation):
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{isolation}-{topic}",
                            "enable.auto.commit": False, "isolation.level": isolation})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    values = []
    quiet_since = time.monotonic()
    deadline = time.monotonic() + checklib.WAIT_SECONDS
    while time.monotonic() - quiet_since < 3 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        values.append(msg.value().decode())
        quiet_since = time.monotonic()
    consumer.close()
    return values


def main(args):
    suffix = checklib.unique_topic("txn")
    source, sink = f"{suffix}-in", f"{suffix}-out"
    create_topics(args.bootstrap, [source, sink])
    produce_input(args.bootstrap, source)
    aborted = transform_loop(args.bootstrap, source, sink, f"{suffix}-group")
    want = sorted(f"out-{i}" for i in range(RECORDS))
    committed = read_all(args.bootstrap, sink, "read_committed")
    dupes = [v for v, n in collections.Counter(committed).items() if n > 1]
    check(not dupes, f"{CLIENT}: read_committed sees no duplicates ({dupes[:5]})")
    check(sorted(committed) == want, f"{CLIENT}: read_committed sees each of {RECORDS} results once")
    everything = read_all(args.bootstrap, sink, "read_uncommitted")
    check(len(everything) == RECORDS + aborted and set(everything) == set(want),
          f"{CLIENT}: read_uncommitted also sees the {aborted} aborted records ({len(everything)} in all)")


if __name__ == "__main__":
    checklib.run(lambda: main(checklib.parse_args(__doc__)))
