#!/usr/bin/env bash
# Measures what this machine can do, for reading broker figures as fractions of it:
#   - loopback TCP throughput (iperf3, one stream, receiver side)
#   - sequential O_DIRECT writes of 1 MiB blocks (fio), on the filesystem the brokers use
# and writes both into a limits JSON (ringlet-bench limits). Installs iperf3 and fio with
# apt-get when they are missing (needs root; otherwise the missing limit becomes a note).
#
# usage: scripts/physical-limits.sh --out FILE [--dir DATA_DIR] [--seconds N] [--bench BIN]
set -euo pipefail

out=""
dir="${TMPDIR:-/tmp}/ringlet-limits"
seconds=10
bench="${RINGLET_BENCH:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --bench) bench="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || { echo "usage: $0 --out FILE [--dir DIR] [--seconds N]" >&2; exit 2; }
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$bench" ]; then
    bench="$repo/target/release/ringlet-bench"
    [ -x "$bench" ] || (cd "$repo" && cargo build --release -p ringlet-benches --bin ringlet-bench)
fi

ensure_tool() {
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "physical-limits: installing $1 with apt-get" >&2
    if command -v apt-get >/dev/null 2>&1; then
        # iperf3's package asks whether to start a daemon; answer no, non-interactively.
        DEBIAN_FRONTEND=noninteractive apt-get install -y "$1" >/dev/null 2>&1 \
            || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y "$1" >/dev/null 2>&1; } \
            || true
    fi
    command -v "$1" >/dev/null 2>&1
}

mkdir -p "$dir"
work="$(mktemp -d "${TMPDIR:-/tmp}/ringlet-limits-out.XXXXXX")"
args=()

if ensure_tool iperf3; then
    port=$(( 20000 + RANDOM % 20000 ))
    iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    server_pid=$!
    # The one-shot server needs a moment to listen (seconds on a loaded machine). Probing it
    # with a plain connect would use up its one session, so watch the listening sockets.
    for _ in $(seq 1 300); do
        ss -ltnH "sport = :$port" 2>/dev/null | grep -q . && break
        sleep 0.1
    done
    # iperf3 -J may exit 0 with {"error": ...}: only a report without an error counts.
    if iperf3 -c 127.0.0.1 -p "$port" -t "$seconds" -J >"$work/iperf3.json" 2>/dev/null \
        && ! grep -q '"error"' "$work/iperf3.json"; then
        args+=(--iperf3 "$work/iperf3.json")
    else
        echo "physical-limits: iperf3 failed: $(grep -o '"error":.*' "$work/iperf3.json" 2>/dev/null)" >&2
    fi
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
else
    echo "physical-limits: iperf3 unavailable; loopback limit not measured" >&2
fi

if ensure_tool fio; then
    # O_DIRECT bypasses the page cache, as the brokers' data files do (Ringlet writes with DMA
    # files); time_based keeps rewriting the 1 GiB file for the whole period.
    if fio --name=seqwrite --filename="$dir/fio-seqwrite.tmp" --rw=write --bs=1M --size=1G \
        --direct=1 --ioengine=psync --runtime="$seconds" --time_based --output-format=json \
        >"$work/fio.json" 2>"$work/fio.err"; then
        args+=(--fio "$work/fio.json")
    else
        echo "physical-limits: fio failed (O_DIRECT unsupported on $dir?): $(tail -1 "$work/fio.err")" >&2
    fi
    rm -f "$dir/fio-seqwrite.tmp"
else
    echo "physical-limits: fio unavailable; disk limit not measured" >&2
fi

"$bench" limits "${args[@]}" --out "$out"
cp "$work"/*.json "$(dirname "$out")/" 2>/dev/null || true
rm -rf "$work"
echo "physical-limits: wrote $out" >&2
cat "$out"
