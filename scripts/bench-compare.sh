#!/usr/bin/env bash
# Side-by-side benchmark: Bulwark against the reference Distribution registry (Debian package
# docker-registry, 2.8.x), both on loopback with fresh storage, every workload run in the order
# A B B A (A = Distribution, B = Bulwark), a fresh server process per run. Prints a Markdown
# table of medians and Bulwark/Distribution ratios against the project's targets.
#
# Environment (all optional):
#   BENCH_DURATION=10              seconds per run
#   BENCH_CONCURRENCY=8            workers for push-small, pull-small, mixed
#   BENCH_MANIFEST_CONCURRENCY=32  workers for manifest-get
#   BENCH_LARGE_CONCURRENCY=1      workers for large-push, large-pull
#   BENCH_LARGE_SIZE=128MiB        large blob size;  BENCH_CHUNK_SIZE=16MiB  PATCH size
#   BENCH_WORKLOADS="push-small pull-small manifest-get large-push large-pull mixed"
#   BENCH_ORDER="A B B A"          run order per workload
#   BENCH_TMPDIR=$TMPDIR or /tmp   where server data and the dd test go (the disk under test)
#   BENCH_OUT_DIR=target/bench-results   where results (JSON lines) and the summary go
#   BENCH_SKIP_BUILD=1             use the existing release binaries
#   BENCH_PIN=1                    pin servers to CPU 0 and the load generator to CPU 1
#   BENCH_BULWARK_AUTH=password    how the bench logs in to Bulwark: password (the admin's, an
#                                  argon2id check per token request, the default) or token (a
#                                  personal access token made on a first start of the data
#                                  dir, so the measured process never hashes a password)
# Only 127.0.0.1 is ever used.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
MANIFEST_CONCURRENCY=${BENCH_MANIFEST_CONCURRENCY:-32}
LARGE_CONCURRENCY=${BENCH_LARGE_CONCURRENCY:-1}
LARGE_SIZE=${BENCH_LARGE_SIZE:-128MiB}
CHUNK_SIZE=${BENCH_CHUNK_SIZE:-16MiB}
WORKLOADS=${BENCH_WORKLOADS:-"push-small pull-small manifest-get large-push large-pull mixed"}
ORDER=${BENCH_ORDER:-"A B B A"}
OUT_DIR=${BENCH_OUT_DIR:-$ROOT/target/bench-results}
PIN=${BENCH_PIN:-0}
BULWARK_AUTH=${BENCH_BULWARK_AUTH:-password}
[[ $BULWARK_AUTH == password || $BULWARK_AUTH == token ]] ||
    { echo "BENCH_BULWARK_AUTH must be password or token" >&2; exit 2; }

# Where cargo puts the binaries (CARGO_TARGET_DIR is honoured, as cargo does).
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BULWARK="$TARGET_DIR/release/bulwark"
BENCH="$TARGET_DIR/release/bulwark-bench"

log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Binaries
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    log "== building release binaries"
    cargo build --release -p bulwark -p bulwark-bench
fi
for b in "$BULWARK" "$BENCH"; do
    [[ -x "$b" ]] || { log "missing $b (build with cargo build --release -p bulwark -p bulwark-bench)"; exit 1; }
done

BULWARK_BENCH_ADMIN_PASSWORD="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
DIST=""
if command -v docker-registry >/dev/null 2>&1; then
    DIST=$(command -v docker-registry)
elif command -v apt-get >/dev/null 2>&1; then
    log "== installing docker-registry (Distribution) with apt-get"
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y docker-registry >&2; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get update >&2 || true
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y docker-registry >&2 || true
    fi
    DIST=$(command -v docker-registry || true)
fi
if [[ -z "$DIST" ]]; then
    log "!! docker-registry (Distribution) could not be installed: benchmarking Bulwark alone"
    ORDER="B B"
fi

# ---------------------------------------------------------------------------------------------
# Scratch space, results, cleanup
WORK=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/bulwark-bench.XXXXXX")
mkdir -p "$OUT_DIR"
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$OUT_DIR/results-$STAMP.jsonl"
SUMMARY="$OUT_DIR/summary-$STAMP.md"
RUNLOG="$OUT_DIR/runs-$STAMP.log"
: >"$RESULTS"
SERVER_PID=""

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

wait_ready() { # port
    for _ in $(seq 1 100); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "!! server exited during start-up; its log:"
            cat "$SERVER_DIR/server.log" >&2 || true
            return 1
        fi
        # Any HTTP answer will do: Bulwark answers /v2/ with a 401 challenge (auth is on).
        if [[ "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/" 2>/dev/null)" =~ ^(200|401)$ ]]; then
            return 0
        fi
        sleep 0.1
    done
    log "!! server on port $1 did not become ready"
    return 1
}

SERVER_PREFIX=()
BENCH_PREFIX=()
if [[ "$PIN" == 1 ]] && command -v taskset >/dev/null 2>&1; then
    SERVER_PREFIX=(taskset -c 0)
    BENCH_PREFIX=(taskset -c 1)
fi

start_server() { # name [existing dir] -> sets SERVER_PID, PORT, SERVER_DIR
    local name=$1
    PORT=$(free_port)
    SERVER_DIR=${2:-$(mktemp -d "$WORK/$name.XXXXXX")}
    mkdir -p "$SERVER_DIR/data"
    case "$name" in
    distribution)
        cat >"$SERVER_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $SERVER_DIR/data
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
EOF
        "${SERVER_PREFIX[@]}" "$DIST" serve "$SERVER_DIR/config.yml" >"$SERVER_DIR/server.log" 2>&1 &
        ;;
    bulwark)
        env -u RUST_LOG \
            BULWARK_LISTEN="127.0.0.1:$PORT" \
            BULWARK_DATA_DIR="$SERVER_DIR/data" \
            BULWARK_GC__INTERVAL_SECS=0 \
            BULWARK_LOG__LEVEL=warn \
            BULWARK_ADMIN_PASSWORD="$BULWARK_BENCH_ADMIN_PASSWORD" \
            "${SERVER_PREFIX[@]}" "$BULWARK" serve >"$SERVER_DIR/server.log" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    wait_ready "$PORT"
}

# ---------------------------------------------------------------------------------------------
# Disk: fsync'd sequential write speed where the servers store data.
dd_mib_per_s() { # extra dd flags...
    local out bytes secs
    out=$(dd if=/dev/zero of="$WORK/ddtest" bs=1M count=256 "$@" 2>&1) || return 1
    rm -f "$WORK/ddtest"
    bytes=$(printf '%s\n' "$out" | awk '/copied/ {print $1}' | tail -1)
    secs=$(printf '%s\n' "$out" | sed -n 's/.*copied, \([0-9.]*\) s.*/\1/p' | tail -1)
    awk -v b="$bytes" -v s="$secs" 'BEGIN { if (s > 0) printf "%.0f\n", b / 1048576 / s }'
}
log "== measuring disk write speed in $WORK"
DISK_DIRECT=$(dd_mib_per_s oflag=direct conv=fsync || true)
DISK_BUFFERED=$(dd_mib_per_s conv=fsync || true)
log "   dd bs=1M count=256 oflag=direct conv=fsync: ${DISK_DIRECT:-n/a} MiB/s"
log "   dd bs=1M count=256 conv=fsync (buffered):   ${DISK_BUFFERED:-n/a} MiB/s"
DISK=${DISK_DIRECT:-$DISK_BUFFERED}

# ---------------------------------------------------------------------------------------------
# Runs
for w in $WORKLOADS; do
    case "$w" in
    manifest-get) conc=$MANIFEST_CONCURRENCY ;;
    large-push | large-pull) conc=$LARGE_CONCURRENCY ;;
    *) conc=$CONCURRENCY ;;
    esac
    for slot in $ORDER; do
        case "$slot" in
        A) name=distribution ;;
        B) name=bulwark ;;
        *) log "bad BENCH_ORDER entry $slot"; exit 2 ;;
        esac
        creds=()
        # Bulwark refuses anonymous pushes; Distribution runs with no auth at all, so every
        # Bulwark figure includes the cost of authenticating (token flow) and authorising.
        if [[ $name == bulwark ]]; then
            creds=(--username admin --password "$BULWARK_BENCH_ADMIN_PASSWORD")
            if [[ $BULWARK_AUTH == token ]]; then
                # First start: bootstrap the admin and make a token; the measured process
                # then starts on that data dir and never runs argon2.
                start_server bulwark
                pat=$(curl -fsS -u "admin:$BULWARK_BENCH_ADMIN_PASSWORD" -H 'content-type: application/json' \
                    -d '{"name":"bench"}' "http://127.0.0.1:$PORT/api/v1/users/admin/tokens" |
                    sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
                stop_server
                [[ -n "$pat" ]] || { log "!! could not create a personal access token"; exit 1; }
                creds=(--username admin --password "$pat")
                start_server bulwark "$SERVER_DIR"
            else
                start_server bulwark
            fi
        else
            start_server "$name"
        fi
        log "== $w on $name (pid $SERVER_PID, port $PORT, concurrency $conc, ${DURATION}s)"
        if "${BENCH_PREFIX[@]}" "$BENCH" "${creds[@]}" --url "http://127.0.0.1:$PORT" --workload "$w" \
            --concurrency "$conc" --duration "$DURATION" --large-size "$LARGE_SIZE" \
            --chunk-size "$CHUNK_SIZE" --server-pid "$SERVER_PID" --label "$name" --json \
            >>"$RESULTS" 2>>"$RUNLOG"; then
            if command -v jq >/dev/null 2>&1; then
                tail -n 1 "$RESULTS" | jq -r '"   \(.ops) ops, \(.errors) errors, \(.ops_per_s*10|round/10) ops/s, \(.mib_per_s*10|round/10) MiB/s, p99 \(.latency_ms.p99) ms, server \(.server.cpu_ms_per_op*1000|round/1000) ms CPU/op, VmHWM \(.server.vmhwm_kib/1024|round) MiB"' >&2
            fi
        else
            log "!! run failed (see $RUNLOG)"
        fi
        stop_server
        rm -rf "$SERVER_DIR"
    done
done

# ---------------------------------------------------------------------------------------------
# Summary
{
    echo "# bench-compare $STAMP"
    echo
    echo "- date: $(date)"
    echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -h | awk '/^Mem:/ {print $2}') RAM, load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [[ -n "$DIST" ]]; then
        echo "- distribution: $("$DIST" --version 2>/dev/null | head -1)"
    else
        echo "- distribution: not available (Bulwark measured alone)"
    fi
    echo "- disk (dd 256 MiB): ${DISK_DIRECT:-n/a} MiB/s with oflag=direct conv=fsync, ${DISK_BUFFERED:-n/a} MiB/s buffered + fsync"
    echo "- per run: ${DURATION}s; concurrency $CONCURRENCY (manifest-get $MANIFEST_CONCURRENCY, large $LARGE_CONCURRENCY); large blob $LARGE_SIZE in $CHUNK_SIZE PATCHes; order $ORDER"
    echo
    if [[ -n "$DISK" ]]; then
        "$BENCH" compare "$RESULTS" --disk-mib-per-s "$DISK"
    else
        "$BENCH" compare "$RESULTS"
    fi
} | tee "$SUMMARY"
log "results: $RESULTS"
log "summary: $SUMMARY"
