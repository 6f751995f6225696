#!/usr/bin/env bash
# Partition-log benchmark with fio as the baseline on the same file system, in the same run.
#
#   scripts/bench-log.sh [DIR] [MIB] [SECONDS]
#
# DIR defaults to a fresh directory under ./target/bench-log (same file system as the repo).
# Runs, in order:
#   1. fio sequential O_DIRECT writes, bs=1M, iodepth 1 and 8 (throughput baseline)
#   2. fio O_DIRECT writes, bs=16k, fdatasync after every write (one fsync per append baseline)
#   3. log_bench: 16 KiB and 1 MiB batches of 1 KiB records, with and without durability
#      waits, and 64 concurrent durable appenders (group commit)
# and prints the ratios the issue asks for:
#   - large batches (1 MiB, no wait) vs fio bs=1M iodepth 1 (target >= 0.80)
#   - 64 concurrent durable appenders vs one fsync per append (target >= 10x)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${1:-$ROOT/target/bench-log/run-$$}"
MIB="${2:-1024}"
SECONDS_PER="${3:-10}"
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

if ! command -v fio >/dev/null 2>&1; then
  echo "installing fio" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null
fi
command -v jq >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null; }

fio_mibps() { # prints write MiB/s of a fio JSON result
  jq '.jobs[0].write.bw_bytes / 1048576'
}

run_fio() { # name, extra args...
  local name="$1"; shift
  fio --name="$name" --filename="$DIR/fio.dat" --rw=write --direct=1 --ioengine=io_uring \
      --size="${MIB}M" --runtime="$SECONDS_PER" --time_based=0 --end_fsync=1 \
      --output-format=json "$@" 2>/dev/null
  rm -f "$DIR/fio.dat"
}

echo "== file system: $(df -hT "$DIR" | tail -1 | awk '{print $1, $2}') ($DIR)"
echo "== fio baselines"
FIO_1M_QD1=$(run_fio seq1m-qd1 --bs=1M --iodepth=1 | fio_mibps)
FIO_1M_QD8=$(run_fio seq1m-qd8 --bs=1M --iodepth=8 | fio_mibps)
FIO_16K_QD1=$(run_fio seq16k-qd1 --bs=16k --iodepth=1 | fio_mibps)
FIO_16K_SYNC=$(run_fio seq16k-fdatasync --bs=16k --iodepth=1 --fdatasync=1 | fio_mibps)
printf '  fio 1 MiB  qd1            : %8.1f MiB/s\n' "$FIO_1M_QD1"
printf '  fio 1 MiB  qd8            : %8.1f MiB/s\n' "$FIO_1M_QD8"
printf '  fio 16 KiB qd1            : %8.1f MiB/s\n' "$FIO_16K_QD1"
printf '  fio 16 KiB fdatasync each : %8.1f MiB/s\n' "$FIO_16K_SYNC"

echo "== log_bench"
cd "$ROOT"
RESULTS="$DIR/log_bench.jsonl"
# Build first so compiler output does not mix with the results table.
cargo build --quiet --release -p ringlet-benches --bin log_bench 2>"$DIR/build.log" ||
  { cat "$DIR/build.log" >&2; exit 1; }
cargo run --quiet --release -p ringlet-benches --bin log_bench -- \
  --dir "$DIR" --mib "$MIB" --seconds "$SECONDS_PER" > "$RESULTS"
printf '  %-20s %10s %10s %10s %10s %10s %8s\n' scenario MiB/s appends/s p50_us p99_us p99.9_us fsyncs
jq -r '[.scenario, (.mib_per_s*10|round/10), (.appends_per_s|round), .p50_us, .p99_us, .p999_us, .fdatasyncs] | @tsv' "$RESULTS" |
  while IFS=$'\t' read -r name mibps aps p50 p99 p999 syncs; do
    printf '  %-20s %10s %10s %10s %10s %10s %8s\n' "$name" "$mibps" "$aps" "$p50" "$p99" "$p999" "$syncs"
  done

get() { jq -r "select(.scenario==\"$1\") | .$2" "$RESULTS"; }
LOG_1M=$(get 1m mib_per_s)
GROUP=$(get 16k-durable-group mib_per_s)
SINGLE=$(get 16k-durable mib_per_s)
echo "== ratios (same run)"
awk -v a="$LOG_1M" -v b="$FIO_1M_QD1" 'BEGIN{printf "  1 MiB batches / fio 1M qd1          : %.2f (target >= 0.80)\n", a/b}'
awk -v a="$LOG_1M" -v b="$FIO_1M_QD8" 'BEGIN{printf "  1 MiB batches / fio 1M qd8          : %.2f\n", a/b}'
awk -v a="$GROUP" -v b="$SINGLE" 'BEGIN{printf "  group commit (64) / fsync per append : %.1fx (target >= 10x)\n", a/b}'
awk -v a="$SINGLE" -v b="$FIO_16K_SYNC" 'BEGIN{printf "  fsync per append / fio fdatasync each: %.2f\n", a/b}'
