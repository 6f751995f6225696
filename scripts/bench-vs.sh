#!/usr/bin/env bash
# Side-by-side benchmark of Kafka-compatible brokers with identical workloads.
#
#   scripts/bench-vs.sh --workload NAME[,NAME..|all] --duration SECONDS \
#       --brokers ringlet[,kafka,redpanda,HOST:PORT] --out DIR \
#       [--iterations N] [--warmup SECONDS] [--shards N] [--no-limits] [--kafka-fsync] \
#       [--replication-factor N]
#
# SKIP_BUILD=1 uses the binaries already in target/$PROFILE; RINGLET_BIN and RINGLET_BENCH_BIN
# point at other copies (on a shared machine, a copy nobody rebuilds during the run).
# Brokers:  ringlet   this repo's broker (target/$PROFILE/ringlet), fresh data dir
#           kafka     Apache Kafka in KRaft mode from $KAFKA_HOME (single node, fresh log dir)
#           redpanda  Redpanda from $REDPANDA_BIN (dev mode, fresh data dir)
#           HOST:PORT any broker already running there (no CPU/RSS figures: no pid)
# Every broker is started once, before the first run, and stopped at the end. For each
# workload the runs alternate between brokers (A B A B ...) so that drift of the machine
# (thermal, other tenants) spreads over all of them. The physical limits (iperf3, fio) are
# measured in the same invocation. Output: DIR/runs/*.json, DIR/limits.json,
# DIR/results.json, DIR/report.html, and the comparison table with ratios on stdout.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
workloads_arg="" duration="" brokers_arg="ringlet" out="" iterations=2 warmup="" shards=2
limits=1 kafka_fsync=0 replication_factor=1
PROFILE="${PROFILE:-release}"
while [ $# -gt 0 ]; do
    case "$1" in
        --workload) workloads_arg="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --brokers) brokers_arg="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --iterations) iterations="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --shards) shards="$2"; shift 2 ;;
        --no-limits) limits=0; shift ;;
        --kafka-fsync) kafka_fsync=1; shift ;;
        # The workload topics' RF, for clusters given as HOST:PORT (e.g. two builds' clusters).
        --replication-factor) replication_factor="$2"; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -n "$workloads_arg" ] && [ -n "$out" ] || { sed -n '2,19p' "$0" >&2; exit 2; }

mkdir -p "$out/runs" "$out/logs" "$out/data"
out="$(cd "$out" && pwd)"
profile_flag=(); [ "$PROFILE" = release ] && profile_flag=(--release)
echo "bench-vs: building ringlet-bench and ringlet ($PROFILE)" >&2
[ "${SKIP_BUILD:-0}" = 1 ] || (cd "$repo" && cargo build "${profile_flag[@]}" -p ringlet-benches --bin ringlet-bench >&2)
bench="${RINGLET_BENCH_BIN:-$repo/target/$PROFILE/ringlet-bench}"

# Workload list. With several brokers the half-rate workload takes its rate from the 1k-max
# results (the same offered load for every broker), so 1k-max runs first.
if [ "$workloads_arg" = all ]; then
    workloads_arg="$(cd "$repo/benches/workloads" && ls *.toml | sed 's/\.toml$//' | grep -v '^smoke' | paste -sd,)"
fi
IFS=',' read -r -a workloads <<<"$workloads_arg"
IFS=',' read -r -a brokers <<<"$brokers_arg"
if [ "${#brokers[@]}" -gt 1 ] && printf '%s\n' "${workloads[@]}" | grep -qx 1k-half-rate \
    && ! printf '%s\n' "${workloads[@]}" | grep -qx 1k-max; then
    workloads=(1k-max "${workloads[@]}")
fi
ordered=()
for w in "${workloads[@]}"; do [ "$w" = 1k-max ] && ordered+=("$w"); done
for w in "${workloads[@]}"; do [ "$w" != 1k-max ] && ordered+=("$w"); done
workloads=("${ordered[@]}")
for w in "${workloads[@]}"; do
    [ -f "$repo/benches/workloads/$w.toml" ] || { echo "no workload benches/workloads/$w.toml" >&2; exit 2; }
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $(( 20000 + RANDOM % 20000 ))
}

wait_for_port() { # port pid label
    for _ in $(seq 1 1200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        if [ -n "$2" ] && ! kill -0 "$2" 2>/dev/null; then
            echo "bench-vs: $3 exited during start; see $out/logs/$3.log" >&2; return 1
        fi
        sleep 0.1
    done
    echo "bench-vs: $3 did not listen on $1 within 120 s" >&2; return 1
}

declare -A bootstrap pid
started_pids=()
cleanup() {
    for p in "${started_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${started_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

start_ringlet() {
    [ "${SKIP_BUILD:-0}" = 1 ] || (cd "$repo" && cargo build "${profile_flag[@]}" --bin ringlet >&2)
    local port; port="$(free_port)"
    "${RINGLET_BIN:-$repo/target/$PROFILE/ringlet}" start --data-dir "$out/data/ringlet" \
        --listen "127.0.0.1:$port" --advertise "127.0.0.1:$port" --shards "$shards" \
        >"$out/logs/ringlet.log" 2>&1 &
    pid[ringlet]=$!; started_pids+=("$!"); bootstrap[ringlet]="127.0.0.1:$port"
    wait_for_port "$port" "${pid[ringlet]}" ringlet
}

start_kafka() {
    [ -n "${KAFKA_HOME:-}" ] && [ -x "$KAFKA_HOME/bin/kafka-server-start.sh" ] \
        || { echo "bench-vs: set KAFKA_HOME to an Apache Kafka install (3.x or 4.x)" >&2; exit 2; }
    local port cport props="$out/data/kafka.properties"
    port="$(free_port)"; cport="$(free_port)"
    cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$out/data/kafka
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
    # Kafka acknowledges acks=all without fsync (it relies on replicas); Ringlet fsyncs first.
    # --kafka-fsync makes Kafka flush every append, for a like-for-like durability comparison.
    [ "$kafka_fsync" = 1 ] && echo "log.flush.interval.messages=1" >>"$props"
    # KRaft needs the log directory formatted with a cluster id before the first start (the
    # quickstart's `kafka-storage.sh random-uuid` + `format -t ID -c FILE`). The quorum is
    # static (controller.quorum.voters), so no --standalone: that flag is for the dynamic
    # quorum (controller.quorum.bootstrap.servers) of Kafka 3.9+/4.x, and static works in
    # every KRaft release from 3.3 to 4.x.
    local cluster_id
    cluster_id="$("$KAFKA_HOME/bin/kafka-storage.sh" random-uuid)"
    "$KAFKA_HOME/bin/kafka-storage.sh" format -t "$cluster_id" -c "$props" \
        >"$out/logs/kafka-format.log" 2>&1 \
        || { echo "bench-vs: kafka-storage.sh format failed; see $out/logs/kafka-format.log" >&2; exit 1; }
    # kafka-server-start.sh execs java, so $! is the broker JVM (the process /proc measures).
    # LOG_DIR keeps Kafka's own log4j files (server.log, controller.log) out of $KAFKA_HOME.
    LOG_DIR="$out/logs/kafka-server" KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms1G -Xmx1G}" \
        "$KAFKA_HOME/bin/kafka-server-start.sh" "$props" >"$out/logs/kafka.log" 2>&1 &
    pid[kafka]=$!; started_pids+=("$!"); bootstrap[kafka]="127.0.0.1:$port"
    wait_for_port "$port" "${pid[kafka]}" kafka
}

start_redpanda() {
    [ -n "${REDPANDA_BIN:-}" ] && [ -x "$REDPANDA_BIN" ] \
        || { echo "bench-vs: set REDPANDA_BIN to a redpanda binary" >&2; exit 2; }
    local port rpc admin cfg="$out/data/redpanda.yaml"
    port="$(free_port)"; rpc="$(free_port)"; admin="$(free_port)"
    mkdir -p "$out/data/redpanda"
    cat >"$cfg" <<YAML
redpanda:
  data_directory: $out/data/redpanda
  seed_servers: []
  rpc_server: {address: 127.0.0.1, port: $rpc}
  kafka_api: [{address: 127.0.0.1, port: $port}]
  advertised_kafka_api: [{address: 127.0.0.1, port: $port}]
  admin: [{address: 127.0.0.1, port: $admin}]
  developer_mode: true
YAML
    "$REDPANDA_BIN" --redpanda-cfg "$cfg" --smp "$shards" --memory 2G --overprovisioned \
        >"$out/logs/redpanda.log" 2>&1 &
    pid[redpanda]=$!; started_pids+=("$!"); bootstrap[redpanda]="127.0.0.1:$port"
    wait_for_port "$port" "${pid[redpanda]}" redpanda
}

for b in "${brokers[@]}"; do
    case "$b" in
        ringlet) start_ringlet ;;
        kafka) start_kafka ;;
        redpanda) start_redpanda ;;
        *:*) bootstrap[$b]="$b"; pid[$b]="" ;;
        *) echo "unknown broker $b (ringlet, kafka, redpanda or HOST:PORT)" >&2; exit 2 ;;
    esac
done

limits_args=()
if [ "$limits" = 1 ]; then
    "$repo/scripts/physical-limits.sh" --out "$out/limits.json" --dir "$out/data" --bench "$bench" >&2 \
        && limits_args=(--limits "$out/limits.json")
fi

# Maximum rate for the half-rate workload when several brokers are compared: the slowest
# broker's median sustained 1k-max rate (the lower of produce and per-group consume), so every
# broker is offered the same load. With one broker, ringlet-bench probes the maximum itself
# right before each half-rate run (rate.probe_s in the workload).
max_rate_of_1k_max() {
    local rates=()
    for b in "${brokers[@]}"; do
        local r
        r="$(cat "$out"/runs/1k-max--"${b//[:\/]/_}"--*.json 2>/dev/null \
            | jq -s 'map([.produce_throughput.messages_per_s,
                          .consume_throughput.messages_per_s / ([.workload.consumer_groups, 1] | max)] | min)
                     | sort | .[length/2|floor] // empty')"
        [ -n "$r" ] && rates+=("$r")
    done
    printf '%s\n' "${rates[@]}" | sort -g | head -1
}

for w in "${workloads[@]}"; do
    extra=()
    [ -n "$duration" ] && extra+=(--duration-s "$duration")
    [ -n "$warmup" ] && extra+=(--warmup-s "$warmup")
    if [ "$w" = 1k-half-rate ] && [ "${#brokers[@]}" -gt 1 ]; then
        rate="$(max_rate_of_1k_max)"
        [ -n "$rate" ] || { echo "bench-vs: no 1k-max result to take the maximum rate from" >&2; exit 1; }
        extra+=(--max-rate-msgs "$rate")
    fi
    for i in $(seq 1 "$iterations"); do
        for b in "${brokers[@]}"; do
            pid_args=(); [ -n "${pid[$b]}" ] && pid_args=(--broker-pid "${pid[$b]}")
            file="$out/runs/$w--${b//[:\/]/_}--$i.json"
            echo "bench-vs: $w on $b, iteration $i (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
            "$bench" run --workload "$repo/benches/workloads/$w.toml" --bootstrap "${bootstrap[$b]}" \
                --broker "$b" --iteration "$i" --replication-factor "$replication_factor" \
                "${pid_args[@]}" "${extra[@]}" --out "$file" \
                || echo "bench-vs: $w on $b iteration $i exited with $? (see above)" >&2
        done
    done
done

"$bench" report --brokers "$brokers_arg" "${limits_args[@]}" --out "$out" "$out"/runs/*.json
echo "bench-vs: wrote $out/results.json and $out/report.html" >&2
