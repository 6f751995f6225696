#!/usr/bin/env bash
# Sweep the deterministic Raft simulator over many seeds and print the failing ones.
#
#   scripts/raft-sim-sweep.sh [FIRST_SEED] [COUNT] [--quick]
#
# Defaults: seeds 0..10000, long runs (5,000 fault ticks each). Seeds are split
# over the machine's cores. Replay a failure with
#   cargo run -p ringlet-raft --example sim -- --seed N
# Exit status is non-zero if any seed failed.
set -euo pipefail

first=${1:-0}
count=${2:-10000}
mode=${3:-}
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-raft}

cargo build --release -q -p ringlet-raft --example sim
bin="$CARGO_TARGET_DIR/release/examples/sim"

jobs=$(nproc)
per=$(( (count + jobs - 1) / jobs ))
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

pids=()
for ((j = 0; j < jobs; j++)); do
    start=$(( first + j * per ))
    n=$(( per ))
    if (( start + n > first + count )); then n=$(( first + count - start )); fi
    if (( n <= 0 )); then continue; fi
    "$bin" --seed "$start" --count "$n" $mode >"$out/$j.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done

ok=$(cat "$out"/*.log | grep -c '^ok ' || true)
failures=$(cat "$out"/*.log | grep '^FAIL ' || true)
echo "seeds $first..$(( first + count )): $ok ok"
if [[ -n "$failures" ]]; then
    echo "$failures"
    echo "failing seeds: $(echo "$failures" | sed -E 's/^FAIL seed ([0-9]+):.*/\1/' | tr '\n' ' ')"
    exit 1
fi
