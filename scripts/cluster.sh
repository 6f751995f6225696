#!/usr/bin/env bash
# Runs a local Ringlet cluster of N brokers on 127.0.0.1 (the first three are the controller
# voters) until Ctrl-C.
#
#   scripts/cluster.sh [--nodes N] [--dir DIR] [--base-port P] [--shards S] [-- EXTRA ringlet start ARGS]
#
# Node i (1-based) listens for Kafka clients on P+i-1 (default 9092, 9093, ...), for the other
# brokers on P+100+i-1, and keeps its data in DIR/node-i (default ./data-cluster/node-i); its log
# is DIR/node-i.log. Clients bootstrap with 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094.
# PROFILE=release (default) or debug picks the build; RINGLET_BIN points at another binary.
set -euo pipefail
nodes=3
dir=./data-cluster
base_port=9092
shards=1
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --nodes) nodes="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --base-port) base_port="$2"; shift 2 ;;
        --shards) shards="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
repo="$(cd "$(dirname "$0")/.." && pwd)"
PROFILE="${PROFILE:-release}"
bin="${RINGLET_BIN:-$repo/target/$PROFILE/ringlet}"
if [ -z "${RINGLET_BIN:-}" ]; then
    profile_flag=(); [ "$PROFILE" = release ] && profile_flag=(--release)
    (cd "$repo" && cargo build "${profile_flag[@]}" -p ringlet --bin ringlet >&2)
fi
voters=$((nodes < 3 ? nodes : 3))
seeds=""
for i in $(seq 1 "$voters"); do
    seeds="${seeds:+$seeds,}$i@127.0.0.1:$((base_port + 100 + i - 1))"
done
mkdir -p "$dir"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for i in $(seq 1 "$nodes"); do
    "$bin" start --node-id "$i" --data-dir "$dir/node-$i" \
        --listen "127.0.0.1:$((base_port + i - 1))" \
        --rpc-listen "127.0.0.1:$((base_port + 100 + i - 1))" \
        --seeds "$seeds" --shards "$shards" "${extra[@]}" >"$dir/node-$i.log" 2>&1 &
    pids+=($!)
    echo "node $i: kafka 127.0.0.1:$((base_port + i - 1)), pid $!, log $dir/node-$i.log"
done
wait -n "${pids[@]}" || true
echo "a broker exited; stopping the cluster" >&2
