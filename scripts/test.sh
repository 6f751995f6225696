#!/usr/bin/env bash
# Runs Ringlet's whole test suite: `cargo test --workspace`.
#
# The integration tests in tests/ drive the real broker binary with real Kafka clients:
# librdkafka (rdkafka crate, built by cargo), kcat, Python confluent-kafka / kafka-python /
# aiokafka, and Node.js kafkajs. This script first installs whichever of those clients is
# missing (apt-get for kcat, pip for the Python clients, `npm ci` in tests/js for kafkajs), so a
# fresh Debian machine with Rust, python3 + pip and node + npm needs nothing else.
#
# Usage: scripts/test.sh [extra cargo test args...]   e.g. scripts/test.sh -- --nocapture
#        RINGLET_SKIP_INSTALL=1 scripts/test.sh        (never install; tests then fail loudly
#                                                       if a client is missing)
set -euo pipefail
cd "$(dirname "$0")/.."

# Versions known to install on Debian 12 / Python 3.11 and to talk to a Kafka 3.x broker.
PYTHON_CLIENTS=(confluent-kafka==2.16.1 kafka-python==3.0.12 aiokafka==0.14.0)
PYTHON=${PYTHON:-python3}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root (or sudo) to run: $*" >&2; return 1; fi
}

install_kcat() {
    if command -v kcat >/dev/null 2>&1; then return; fi
    echo "== installing kcat (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q kcat
}

install_python_clients() {
    if "$PYTHON" -c 'import confluent_kafka, kafka, aiokafka' >/dev/null 2>&1; then return; fi
    echo "== installing Python Kafka clients (pip): ${PYTHON_CLIENTS[*]}"
    # Debian marks its Python as externally managed (PEP 668); these are test-only clients.
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$PYTHON" -m pip install -q "${PYTHON_CLIENTS[@]}"
}

install_js_clients() {
    if [ -f tests/js/node_modules/kafkajs/package.json ]; then return; fi
    echo "== installing kafkajs (npm ci in tests/js)"
    (cd tests/js && npm ci --no-audit --no-fund)
}

if [ "${RINGLET_SKIP_INSTALL:-0}" != 1 ]; then
    install_kcat
    install_python_clients
    install_js_clients
fi

echo "== cargo test --workspace --no-fail-fast $*"
cargo test --workspace --no-fail-fast "$@"
