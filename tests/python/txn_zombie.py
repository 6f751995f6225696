"""A transactional producer that opens a transaction, writes records into it and then waits
to be killed (kill -9) by tests/transactions.rs: the zombie whose transaction the next
instance with the same transactional.id must fence and abort.

Prints READY once the records are acknowledged (in the log, uncommitted)."""

import argparse
import sys
import time

import checklib

ck = checklib.require("confluent_kafka", "confluent-kafka")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--transactional-id", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, default=30)
    args = parser.parse_args()
    producer = ck.Producer({"bootstrap.servers": args.bootstrap,
                            "transactional.id": args.transactional_id,
                            "transaction.timeout.ms": 60000})
    producer.init_transactions(60)
    producer.begin_transaction()
    for i in range(args.records):
        producer.produce(args.topic, value=f"zombie-{i}".encode(), partition=i % 3)
    if producer.flush(60) != 0:
        print("FAIL records not acknowledged", flush=True)
        sys.exit(1)
    print("READY", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
