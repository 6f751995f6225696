"""aiokafka against Ringlet: admin create topic, produce with acks=all, consume with
AIOKafkaConsumer(group_id=None) + assign() + seek_to_beginning(), admin delete topic."""

import asyncio
import time

import checklib
from checklib import MESSAGES, PARTITIONS, check

aiokafka = checklib.require("aiokafka", "aiokafka")
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

CLIENT = "aiokafka"
TIMEOUT_MS = checklib.WAIT_SECONDS * 1000


async def wait_until(what, condition):
    deadline = time.monotonic() + checklib.WAIT_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            raise checklib.CheckFailed(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def create_topic(admin, topic):
    response = await admin.create_topics(
        [NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)], timeout_ms=TIMEOUT_MS)
    errors = [e for e in response.to_object()["topic_errors"] if e["error_code"] != 0]
    check(not errors, f"{CLIENT}: CreateTopics response has no topic errors {errors}")
    async def ready():
        described = await admin.describe_topics([topic])
        return any(t.get("topic") == topic and t.get("error_code") == 0
                   and len(t.get("partitions", [])) == PARTITIONS for t in described)
    await wait_until(f"metadata for {topic}", ready)
    check(True, f"{CLIENT}: admin created {topic} with {PARTITIONS} partitions (seen in metadata)")


async def produce(bootstrap, topic, base_ts):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                request_timeout_ms=120000)
    await producer.start()
    try:
        futures = []
        for index in range(MESSAGES):
            key, value, headers, ts = checklib.expected(index, CLIENT, base_ts)
            futures.append(await producer.send(topic, value=value, key=key, headers=headers,
                                               timestamp_ms=ts))
        deliveries = {}
        for index, future in enumerate(futures):
            metadata = await asyncio.wait_for(future, checklib.WAIT_SECONDS)
            deliveries[index] = (metadata.partition, metadata.offset)
    finally:
        await producer.stop()
    check(True, f"{CLIENT}: {MESSAGES} sends acknowledged with acks=all")
    return deliveries


async def consume(bootstrap, topic):
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, request_timeout_ms=120000,
                                fetch_max_wait_ms=200)
    await consumer.start()
    consumed = []
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + checklib.WAIT_SECONDS
        while len(consumed) < MESSAGES and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    ts = r.timestamp if r.timestamp_type == 0 else None
                    consumed.append((r.partition, r.offset, r.key, r.value, list(r.headers), ts))
    finally:
        await consumer.stop()
    return consumed


async def delete_topic(admin, topic):
    response = await admin.delete_topics([topic], timeout_ms=TIMEOUT_MS)
    errors = [e for e in response.to_object()["topic_error_codes"] if e["error_code"] != 0]
    check(not errors, f"{CLIENT}: DeleteTopics response has no topic errors {errors}")
    async def gone():
        return topic not in await admin.list_topics()
    await wait_until(f"{topic} gone from metadata", gone)
    check(True, f"{CLIENT}: admin deleted {topic} (gone from metadata)")


async def amain(bootstrap):
    print(f"{CLIENT} {aiokafka.__version__}", flush=True)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=120000)
    await admin.start()
    try:
        topic = checklib.unique_topic("aio")
        await create_topic(admin, topic)
        base_ts = checklib.base_timestamp_ms()
        deliveries = await produce(bootstrap, topic, base_ts)
        consumed = await consume(bootstrap, topic)
        checklib.verify(CLIENT, deliveries, consumed, base_ts)
        await delete_topic(admin, topic)
    finally:
        await admin.close()


def main():
    args = checklib.parse_args(__doc__)
    asyncio.run(amain(args.bootstrap))


if __name__ == "__main__":
    checklib.run(main)
