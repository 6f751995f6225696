#!/usr/bin/env bash
# Randomized faults against a 3-broker Ringlet cluster under load (issue #6, scenario 6).
#
#   scripts/chaos.sh [--rounds N] [--seed S]
#
# Starts three real brokers on 127.0.0.1 (tests/common/cluster.rs), produces numbered messages
# with acks=all to an RF=3 topic, and runs N rounds of a random fault on a random node: SIGKILL
# then restart, or SIGSTOP then SIGCONT. After each round it waits until every partition is led
# with all replicas in sync. At the end it reads everything back and prints how many messages
# were acknowledged, lost (fails the run) and duplicated. The seed is printed; the same seed
# replays the same faults.
set -euo pipefail
rounds=10
seed=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
export CHAOS_ROUNDS="$rounds"
[ -n "$seed" ] && export CHAOS_SEED="$seed"
exec cargo test -p ringlet --test cluster_chaos -- --nocapture
