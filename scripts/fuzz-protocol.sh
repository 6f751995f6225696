#!/usr/bin/env bash
# Fuzzes Ringlet's input parsers with cargo-fuzz (libFuzzer).
#
# Usage: scripts/fuzz-protocol.sh [TARGET]      TARGET: decode_request (default), record_batch
#            or produce_path (a produced batch through every produce check, stamped as the log
#            stores it, then read back by Fetch, ListOffsets and the coordinators' decoder)
#        FUZZ_SECONDS=60 scripts/fuzz-protocol.sh   (default: 600 s = 10 minutes)
#        FUZZ_ARGS="-fork=1 -ignore_crashes=1" scripts/fuzz-protocol.sh   (keep going after a
#            crash, collecting every distinct one in fuzz/artifacts/TARGET/)
#
# Installs cargo-fuzz when missing. Works on the stable toolchain: the address sanitizer needs
# nightly (-Zsanitizer), so the target is built with `--sanitizer none`, and RUSTC_BOOTSTRAP=1
# lets stable rustc accept the few -Z flags cargo-fuzz still passes. Without ASan an
# out-of-bounds read is still caught by Rust's bounds checks; a panic or an abort (for example a
# failed huge allocation) is a crash. Seeds come from the captured client frames in
# protocol/tests/fixtures. Crashes land in fuzz/artifacts/TARGET/; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-decode_request}
seconds=${FUZZ_SECONDS:-600}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

corpus=fuzz/corpus/$target
mkdir -p "$corpus"
if [ "$target" = decode_request ]; then
    for fixture in protocol/tests/fixtures/*.bin; do
        [ -e "$fixture" ] && cp "$fixture" "$corpus/"
    done
fi

echo "== fuzzing $target for ${seconds}s (stable toolchain, no sanitizer)"
# -rss_limit_mb: the broker may legitimately buffer up to a 100 MiB frame; more is a bug.
RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none --release "$target" "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 ${FUZZ_ARGS:-}
