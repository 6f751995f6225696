#!/usr/bin/env bash
# The soak (issue #19): mixed load against one broker and three at once for N minutes.
#
#   scripts/soak.sh --minutes N [--topology both|one|three] [--build release|debug]
#                   [--malloc-check] [--seed S] [--out DIR]
#
# The load and its checks are tests/soak/ (fixed-rate and max-rate producers, idempotent and
# transactional ones, connection churn, consumer group rebalances, topic create and delete,
# kill -9 of a follower on the three brokers); every acknowledgement is checked against what is
# stored at the end, and a broker that exits on its own ends the run. This script adds what a
# test cannot do for itself:
#   - the broker binary is copied out of target/ first, so a build during the soak cannot
#     swap it;
#   - core dumps are on (ulimit -c, and kernel.core_pattern points at OUT/cores while the soak
#     runs, restored after); the backtrace of every core, all threads, is saved next to it
#     with gdb;
#   - --malloc-check runs the brokers under glibc's heap checks (libc_malloc_debug.so with
#     MALLOC_CHECK_=3 and MALLOC_PERTURB_), which abort at the first double free or
#     overwrite they see, instead of later; pair it with --build debug to hunt a heap error.
# Findings print as they happen with the minute they happened in; the run fails on any.
# Everything lands in OUT (default target/soak-DATE): soak.log, broker logs, cores.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=10
topology=both
build=release
malloc_check=0
seed=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --topology) topology="$2"; shift 2 ;;
        --build) build="$2"; shift 2 ;;
        --malloc-check) malloc_check=1; shift ;;
        --seed) seed="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
out=${out:-target/soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/bin" "$out/cores"
out=$(cd "$out" && pwd)

if ! command -v gdb >/dev/null; then
    echo "== installing gdb (backtraces of core dumps)"
    apt-get install -y gdb >/dev/null || echo "warning: no gdb; cores are kept without backtraces"
fi

echo "== building the broker ($build) and the soak"
case "$build" in
    release) cargo build --release -p ringlet --bin ringlet; built=target/release/ringlet ;;
    debug) cargo build -p ringlet --bin ringlet; built=target/debug/ringlet ;;
    *) echo "--build is release or debug" >&2; exit 2 ;;
esac
cp "$built" "$out/bin/ringlet"
cargo test -p ringlet --test soak --no-run

malloc_debug=""
if [ "$malloc_check" = 1 ]; then
    malloc_debug=$(ldconfig -p | awk '/libc_malloc_debug.so.0/ {print $NF; exit}')
    [ -n "$malloc_debug" ] || { echo "libc_malloc_debug.so.0 not found (glibc >= 2.34)" >&2; exit 2; }
fi
cat > "$out/bin/ringlet-soak" <<EOF
#!/bin/sh
# The broker as the soak runs it: core dumps on${malloc_debug:+, glibc heap checks}.
ulimit -c unlimited
${malloc_debug:+export LD_PRELOAD=$malloc_debug MALLOC_CHECK_=3 MALLOC_PERTURB_=165}
exec "$out/bin/ringlet" "\$@"
EOF
chmod +x "$out/bin/ringlet-soak"

old_pattern=""
if [ -w /proc/sys/kernel/core_pattern ]; then
    old_pattern=$(cat /proc/sys/kernel/core_pattern)
    echo "$out/cores/core.%e.%p" > /proc/sys/kernel/core_pattern
    trap 'echo "$old_pattern" > /proc/sys/kernel/core_pattern' EXIT
else
    echo "warning: cannot set kernel.core_pattern; cores go where it says: $(cat /proc/sys/kernel/core_pattern)"
fi

echo "== soaking for $minutes minutes ($topology), output in $out"
status=0
env RINGLET_TEST_BINARY="$out/bin/ringlet-soak" SOAK_MINUTES="$minutes" \
    SOAK_TOPOLOGY="$topology" SOAK_OUT="$out" ${seed:+SOAK_SEED="$seed"} \
    cargo test -p ringlet --test soak -- --ignored --nocapture 2>&1 | tee "$out/soak.log" \
    || status=$?

cores=0
for core in "$out"/cores/core.*; do
    [ -e "$core" ] || continue
    case "$core" in *.bt.txt) continue ;; esac
    cores=$((cores + 1))
    echo "== core dump $core"
    if command -v gdb >/dev/null; then
        # The crashing thread first, then every thread.
        gdb -batch -ex "echo == crashing thread\\n" -ex bt -ex "echo == all threads\\n" \
            -ex "thread apply all bt" "$out/bin/ringlet" "$core" > "$core.bt.txt" 2>&1 || true
        sed -n '/^== crashing thread/,/^== all threads/p' "$core.bt.txt" | head -40
        echo "(every thread: $core.bt.txt)"
    fi
done
if [ "$cores" -gt 0 ]; then
    echo "== $cores core dump(s); the soak failed"
    status=1
fi
exit "$status"
