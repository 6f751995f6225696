"""Shared helpers for the Python client checks run by tests/python_clients.rs.

Each check script produces MESSAGES keyed messages with headers and explicit timestamps,
consumes them back without a consumer group (assign + seek to beginning), and compares every
message with what was produced at the (partition, offset) its delivery report named.
Every check prints what it verified; the first mismatch raises CheckFailed, and main() exits 1.
A missing client library exits 1 too, with a hint to run scripts/test.sh.
"""

import argparse
import importlib
import os
import sys
import time
import traceback

MESSAGES = 300
PARTITIONS = 3
DISTINCT_KEYS = 17
# Hang detectors for polling loops (generous: loaded 2-core CI machines), not performance limits.
WAIT_SECONDS = 180


class CheckFailed(Exception):
    pass


def check(condition, what):
    """Prints OK/FAIL for one verified fact; raises on failure."""
    if not condition:
        raise CheckFailed(what)
    print(f"OK   {what}", flush=True)


def require(module_name, pip_name):
    """Imports a client library or exits 1 with an install hint (never a silent pass)."""
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        print(
            f"FAIL: Python module {module_name!r} is not installed ({err}). "
            f"Run scripts/test.sh (it pip-installs {pip_name}).",
            file=sys.stderr,
        )
        sys.exit(1)


def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of the broker")
    return parser.parse_args()


def unique_topic(client):
    return f"py-{client}-{os.getpid()}-{int(time.time() * 1000) % 1_000_000}"


def base_timestamp_ms():
    # In the recent past, so no broker-side timestamp bound can reject it.
    return int(time.time() * 1000) - 10 * MESSAGES


def expected(index, client, base_ts):
    """(key, value, headers, timestamp_ms) of message `index`."""
    key = f"key-{index % DISTINCT_KEYS}".encode()
    value = f"{client}-value-{index}-".encode() + b"p" * (index % 50)
    headers = [("seq", str(index).encode()), ("client", client.encode())]
    return key, value, headers, base_ts + index


def verify(client, deliveries, consumed, base_ts):
    """deliveries: {index: (partition, offset)}; consumed: list of
    (partition, offset, key, value, headers, timestamp_ms) in the order the consumer returned them.
    headers is a list of (str, bytes)."""
    check(len(deliveries) == MESSAGES, f"{client}: {MESSAGES} messages acknowledged")
    at = {}
    key_partition = {}
    for index, (partition, offset) in deliveries.items():
        check_key = expected(index, client, base_ts)[0]
        first = key_partition.setdefault(check_key, partition)
        if first != partition:
            raise CheckFailed(f"{client}: key {check_key!r} went to partitions {first} and {partition}")
        at[(partition, offset)] = index
    check(len(at) == MESSAGES, f"{client}: every acknowledgement names a distinct (partition, offset)")
    check(len(key_partition) == DISTINCT_KEYS, f"{client}: each of {DISTINCT_KEYS} keys stayed on one partition")
    for partition in range(PARTITIONS):
        offsets = sorted(o for (p, o) in at if p == partition)
        check(offsets == list(range(len(offsets))), f"{client}: partition {partition} offsets contiguous from 0 ({len(offsets)} messages)")
        indexes = [at[(partition, o)] for o in offsets]
        check(indexes == sorted(indexes), f"{client}: partition {partition} keeps send order")

    check(len(consumed) == MESSAGES, f"{client}: consumed {len(consumed)} of {MESSAGES} messages")
    last_offset = {}
    for partition, offset, key, value, headers, timestamp_ms in consumed:
        previous = last_offset.get(partition, -1)
        if offset != previous + 1:
            raise CheckFailed(f"{client}: partition {partition} consumed offset {offset} after {previous}")
        last_offset[partition] = offset
        index = at.get((partition, offset))
        if index is None:
            raise CheckFailed(f"{client}: consumed unknown message at {partition}/{offset}")
        want = expected(index, client, base_ts)
        got = (key, value, [(k, bytes(v) if v is not None else None) for k, v in headers], timestamp_ms)
        if got != want:
            raise CheckFailed(f"{client}: message at {partition}/{offset} is {got!r}, expected {want!r}")
    check(True, f"{client}: all {MESSAGES} consumed messages in order with matching key, value, headers, timestamp")


def wait_until(what, condition):
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {WAIT_SECONDS}s waiting for {what}")
        time.sleep(0.2)


def run(main):
    """Runs main(), turning any failure into exit code 1 with a clear message."""
    try:
        main()
    except CheckFailed as err:
        print(f"FAIL {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception:  # a client exception is a failed check too
        traceback.print_exc()
        print("FAIL unexpected exception (see traceback above)", file=sys.stderr, flush=True)
        sys.exit(1)
    print("ALL CHECKS PASSED", flush=True)
