"""kafka-python's broker version inference against Ringlet: the client reads ApiVersions and
picks the newest Kafka release whose marker API version the broker serves (kafka-python 3.0.12
knows up to 4.3, marked by DescribeLogDirs v5, an API Ringlet does not have; 4.2 is marked by
ListOffsets v11). Run by tests/client_behaviours.rs with --expect MAJOR.MINOR."""

import argparse

import checklib
from checklib import check

kafka = checklib.require("kafka", "kafka-python")
from kafka.admin import KafkaAdminClient  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--expect", required=True)
    args = parser.parse_args()
    expect = tuple(int(part) for part in args.expect.split("."))
    print(f"kafka-python {kafka.__version__}", flush=True)
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=60_000)
    inferred = admin._client.check_version()
    admin.close()
    check(tuple(inferred) == expect, f"KafkaAdminClient inferred broker {inferred}, expected {expect}")
    consumer = kafka.KafkaConsumer(bootstrap_servers=args.bootstrap, request_timeout_ms=60_000)
    inferred = consumer._client.check_version()
    consumer.close()
    check(tuple(inferred) == expect, f"KafkaConsumer inferred broker {inferred}, expected {expect}")

if __name__ == "__main__":
    checklib.run(main)
