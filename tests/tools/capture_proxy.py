"""Records the request frames real Kafka clients send, for protocol/tests/fixtures.

A TCP proxy: listens on --listen, forwards every connection to --upstream (a running broker),
and writes each client->broker frame (4-byte length prefix included, exactly as on the wire) to
--out as <client>-<api_key>-<api name>-v<version>.bin, keeping the first frame per
(api key, version). Start the broker with --advertise pointing at the proxy so the client keeps
talking through it after the metadata round trip, e.g.:

    ringlet start --listen 127.0.0.1:19092 --advertise 127.0.0.1:19093 ...
    python3 tests/tools/capture_proxy.py --listen 127.0.0.1:19093 --upstream 127.0.0.1:19092 \
        --out protocol/tests/fixtures --client kcat
    kcat -b 127.0.0.1:19093 -L; printf 'k:v\n' | kcat -b 127.0.0.1:19093 -t t -P -K:; ...
"""

import argparse
import os
import socket
import struct
import threading

API_NAMES = {0: "produce", 1: "fetch", 2: "list_offsets", 3: "metadata", 8: "offset_commit",
             9: "offset_fetch", 10: "find_coordinator", 18: "api_versions", 19: "create_topics",
             20: "delete_topics", 21: "delete_records", 23: "offset_for_leader_epoch",
             32: "describe_configs", 33: "alter_configs", 37: "create_partitions",
             60: "describe_cluster"}


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def pump_requests(client, upstream, args, lock, seen):
    try:
        while True:
            prefix = recv_exact(client, 4)
            if prefix is None:
                break
            (size,) = struct.unpack(">i", prefix)
            payload = recv_exact(client, size)
            if payload is None:
                break
            api_key, version = struct.unpack(">hh", payload[:4])
            with lock:
                if (api_key, version) not in seen:
                    seen.add((api_key, version))
                    name = API_NAMES.get(api_key, f"api{api_key}")
                    path = os.path.join(args.out, f"{args.client}-{api_key:02d}-{name}-v{version}.bin")
                    with open(path, "wb") as f:
                        f.write(prefix + payload)
                    print(f"captured {path} ({size + 4} bytes)", flush=True)
            upstream.sendall(prefix + payload)
    except OSError:
        pass
    finally:
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def pump_responses(upstream, client):
    try:
        while True:
            data = upstream.recv(65536)
            if not data:
                break
            client.sendall(data)
    except OSError:
        pass
    finally:
        try:
            client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--client", required=True, help="file name prefix, e.g. kcat or librdkafka")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    host, port = args.listen.rsplit(":", 1)
    up_host, up_port = args.upstream.rsplit(":", 1)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, int(port)))
    server.listen(64)
    lock, seen = threading.Lock(), set()
    print(f"capturing {args.listen} -> {args.upstream} into {args.out}", flush=True)
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection((up_host, int(up_port)))
        threading.Thread(target=pump_requests, args=(client, upstream, args, lock, seen), daemon=True).start()
        threading.Thread(target=pump_responses, args=(upstream, client), daemon=True).start()


if __name__ == "__main__":
    main()
