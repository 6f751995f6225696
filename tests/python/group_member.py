"""One consumer-group member, driven by tests/consumer_group_failover.rs.

It subscribes to a topic in a group, and for every message: prints a `delivered` event,
sleeps `--delay-ms` (so a test can kill it half way), commits that message's offset
synchronously and prints a `committed` event once the broker accepted the commit. It also
prints `assigned` / `revoked` events from the rebalance callbacks. Events are JSON lines on
stdout with the wall-clock time in microseconds, so the test can order them against its own
members' events.

It exits 0 after `--idle-exit-s` seconds without a message (once it has been assigned
partitions), or is killed by the test. `--client` picks confluent-kafka or kafka-python.
"""

import argparse
import json
import sys
import time


def emit(kind, partition=None, offset=None, value=None, partitions=None):
    event = {"t": time.time_ns() // 1000, "kind": kind}
    if partition is not None:
        event["p"] = partition
    if offset is not None:
        event["o"] = offset
    if value is not None:
        event["v"] = value
    if partitions is not None:
        event["ps"] = sorted(partitions)
    print(json.dumps(event), flush=True)


class Idle:
    """Tracks when the member may stop: assigned once, then quiet for `limit_s`."""

    def __init__(self, limit_s):
        self.limit_s = limit_s
        self.assigned = False
        self.last = time.monotonic()

    def touch(self):
        self.last = time.monotonic()

    def done(self):
        return self.assigned and time.monotonic() - self.last > self.limit_s


def run_confluent(args, idle):
    import confluent_kafka

    def on_assign(consumer, partitions):
        idle.assigned = True
        idle.touch()
        emit("assigned", partitions=[p.partition for p in partitions])

    def on_revoke(consumer, partitions):
        emit("revoked", partitions=[p.partition for p in partitions])

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": args.session_timeout_ms,
            "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": 200,
            "partition.assignment.strategy": args.strategy,
        }
    )
    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    while not idle.done():
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            print(f"consumer error: {message.error()}", file=sys.stderr, flush=True)
            continue
        idle.touch()
        handle(args, message.partition(), message.offset(), message.value())
        try:
            consumer.commit(message=message, asynchronous=False)
            emit("committed", message.partition(), message.offset() + 1)
        except confluent_kafka.KafkaException as err:
            print(f"commit refused: {err}", file=sys.stderr, flush=True)
    consumer.close()


def run_kafka_python(args, idle):
    import kafka
    from kafka.structs import OffsetAndMetadata, TopicPartition

    class Listener(kafka.ConsumerRebalanceListener):
        def on_partitions_assigned(self, assigned):
            idle.assigned = True
            idle.touch()
            emit("assigned", partitions=[p.partition for p in assigned])

        def on_partitions_revoked(self, revoked):
            emit("revoked", partitions=[p.partition for p in revoked])

    consumer = kafka.KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=200,
        max_poll_records=1,
    )
    consumer.subscribe([args.topic], listener=Listener())
    while not idle.done():
        for message in _records(consumer):
            idle.touch()
            handle(args, message.partition, message.offset, message.value)
            offsets = {
                TopicPartition(message.topic, message.partition): OffsetAndMetadata(
                    message.offset + 1, None, -1
                )
            }
            try:
                consumer.commit(offsets)
                emit("committed", message.partition, message.offset + 1)
            except kafka.errors.KafkaError as err:
                print(f"commit refused: {err}", file=sys.stderr, flush=True)
    consumer.close()


# kafka-python 3.0.12 drops a rebalance it was leading when a poll times out during it:
# `join_group_async` leaves the JoinGroup/SyncGroup task running, and by the next poll the
# task has recorded the new assignment snapshot, so `need_rejoin()` is false and the finished
# task's assignment is never applied (no `on_partitions_assigned`, nothing fetched, while the
# coordinator counts the member as owning its partitions). A JoinGroup waits for every member
# to rejoin, which takes up to one heartbeat interval (500 ms here) for an idle member, so the
# poll must outlast that; it still returns as soon as records arrive.
KAFKA_PYTHON_POLL_MS = 3000


def _records(consumer):
    batches = consumer.poll(timeout_ms=KAFKA_PYTHON_POLL_MS)
    for records in batches.values():
        yield from records


def handle(args, partition, offset, value):
    emit("delivered", partition, offset, (value or b"").decode("utf-8", "replace"))
    if args.delay_ms:
        time.sleep(args.delay_ms / 1000.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--client", choices=["confluent", "kafka-python"], default="confluent")
    parser.add_argument("--strategy", default="range")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--idle-exit-s", type=float, default=5.0)
    args = parser.parse_args()
    idle = Idle(args.idle_exit_s)
    if args.client == "confluent":
        run_confluent(args, idle)
    else:
        run_kafka_python(args, idle)
    emit("exit")


if __name__ == "__main__":
    main()
