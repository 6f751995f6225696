#!/usr/bin/env bash
# acks=all with RF=3 against RF=1, in the same run, on one local 3-broker Ringlet cluster.
#
#   scripts/bench-replication.sh [--workload NAME[,NAME..]] [--duration SECONDS] \
#       [--iterations N] [--shards N] --out DIR
#
# Starts three brokers (scripts/cluster.sh layout: Kafka ports 9092+, internal ports 9192+ unless
# BASE_PORT says otherwise), then runs each workload (default 1k-max and 1k-half-rate, both
# acks=all) alternating RF=1 and RF=3 topics (rf1 rf3 rf1 rf3 ...) so machine drift cancels, and
# writes DIR/results.json and DIR/report.html with the ratios of rf3 to rf1. The broker CPU and
# RSS figures are those of node 1 (where the RF=1 topics' leaders are spread too, so they are
# indicative only). SKIP_BUILD=1 uses the binaries in target/$PROFILE (default release).
set -euo pipefail
workloads_arg="1k-max,1k-half-rate"
duration=15
iterations=2
shards=1
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --workload) workloads_arg="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --iterations) iterations="$2"; shift 2 ;;
        --shards) shards="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || { sed -n '2,12p' "$0" >&2; exit 2; }
repo="$(cd "$(dirname "$0")/.." && pwd)"
PROFILE="${PROFILE:-release}"
profile_flag=(); [ "$PROFILE" = release ] && profile_flag=(--release)
[ "${SKIP_BUILD:-0}" = 1 ] || (cd "$repo" && cargo build "${profile_flag[@]}" -p ringlet -p ringlet-benches >&2)
bench="$repo/target/$PROFILE/ringlet-bench"
base_port="${BASE_PORT:-9092}"
mkdir -p "$out/runs" "$out/logs"
out="$(cd "$out" && pwd)"
rm -rf "$out/data"

RINGLET_BIN="$repo/target/$PROFILE/ringlet" "$repo/scripts/cluster.sh" --nodes 3 \
    --dir "$out/data" --base-port "$base_port" --shards "$shards" >"$out/logs/cluster.log" 2>&1 &
cluster_pid=$!
trap 'kill "$cluster_pid" 2>/dev/null; wait "$cluster_pid" 2>/dev/null || true' EXIT
bootstrap="127.0.0.1:$base_port,127.0.0.1:$((base_port + 1)),127.0.0.1:$((base_port + 2))"
for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$((base_port + 2))") 2>/dev/null; then break; fi
    sleep 0.2
done
sleep 3 # the controller election and broker registration (about a second)
node1_pid="$(pgrep -f -- "--node-id 1 --data-dir $out/data/node-1" | head -1 || true)"
pid_args=(); [ -n "$node1_pid" ] && pid_args=(--broker-pid "$node1_pid")

IFS=',' read -r -a workloads <<<"$workloads_arg"
for w in "${workloads[@]}"; do
    for i in $(seq 1 "$iterations"); do
        for rf in 1 3; do
            echo "bench-replication: $w rf=$rf iteration $i (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
            "$bench" run --workload "$repo/benches/workloads/$w.toml" --bootstrap "$bootstrap" \
                --broker "rf$rf" --replication-factor "$rf" --iteration "$i" "${pid_args[@]}" \
                --duration-s "$duration" --out "$out/runs/$w--rf$rf--$i.json" --no-progress \
                || echo "bench-replication: $w rf=$rf iteration $i exited with $?" >&2
        done
    done
done
"$bench" report --brokers rf1,rf3 --out "$out" "$out"/runs/*.json
echo "bench-replication: wrote $out/results.json and $out/report.html" >&2
