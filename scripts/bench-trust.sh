#!/usr/bin/env bash
# What pull enforcement costs: manifest GET throughput of a pull-only account with a project
# trust policy off (A) and on (B, require_signature = enforce, every image signed with
# `bulwark sign`), on one Bulwark server, runs in the order A B B A. Prints medians and the
# B/A ratio (target: within 5 %, i.e. ratio >= 0.95). Also a pull-small pass (manifest and
# blobs: the blob check runs too).
#
# Environment (all optional):
#   BENCH_DURATION=10             seconds per run
#   BENCH_CONCURRENCY=32          workers for manifest-get (pull-small uses 8)
#   BENCH_ORDER="A B B A"         run order
#   BENCH_SKIP_BUILD=1            use the existing release binaries
#   BENCH_OUT_DIR=target/bench-results
# Only 127.0.0.1 is used.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DURATION=${BENCH_DURATION:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
ORDER=${BENCH_ORDER:-"A B B A"}
OUT_DIR=${BENCH_OUT_DIR:-$ROOT/target/bench-results}
BULWARK="$ROOT/target/release/bulwark"
BENCH="$ROOT/target/release/bulwark-bench"
log() { printf '%s\n' "$*" >&2; }

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    log "== building release binaries"
    cargo build --release -p bulwark -p bulwark-bench
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-bench-trust.XXXXXX")
mkdir -p "$OUT_DIR"
RESULTS="$OUT_DIR/trust-$(date +%Y%m%d-%H%M%S).jsonl"
: >"$RESULTS"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ADMIN_PW="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
READER_PW="reader-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
PORT=""
for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; break; fi
done
[[ -n "$PORT" ]] || { log "no free port"; exit 1; }
URL="http://127.0.0.1:$PORT"

# Scanning on push is off: it would compete for the CPU during the measured runs.
env -u RUST_LOG \
    BULWARK_LISTEN="127.0.0.1:$PORT" \
    BULWARK_DATA_DIR="$WORK/data" \
    BULWARK_GC__INTERVAL_SECS=0 \
    BULWARK_SCANNER__ENABLED=false \
    BULWARK_LOG__LEVEL=warn \
    BULWARK_ADMIN_PASSWORD="$ADMIN_PW" \
    "$BULWARK" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break
    sleep 0.1
done

api() { # method path [json]
    curl -fsS -u "admin:$ADMIN_PW" -X "$1" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$URL/api/v1$2" >/dev/null
}
api POST /projects '{"name":"bench","visibility":"private"}'
api POST /users "{\"name\":\"reader\",\"password\":\"$READER_PW\"}"
api PUT /projects/bench/members '{"kind":"user","name":"reader","role":"reader"}'

IMAGES=16
log "== pushing $IMAGES images and signing each with bulwark sign"
"$BENCH" --url "$URL" --workload manifest-get --images "$IMAGES" --count 1 --duration 0 \
    --username admin --password "$ADMIN_PW" >/dev/null
BULWARK_KEY_PASSWORD=bench "$BULWARK" key generate --output-dir "$WORK/key" >/dev/null
for i in $(seq 0 $((IMAGES - 1))); do
    BULWARK_KEY_PASSWORD=bench BULWARK_PASSWORD="$ADMIN_PW" \
        "$BULWARK" sign --key "$WORK/key/cosign.key" --plain-http -u admin \
        "127.0.0.1:$PORT/bench/pull:img-$i" >/dev/null
done
POLICY=$(python3 -c 'import json,sys; print(json.dumps({"require_signature":"enforce","keys":[{"name":"bench","public_key":open(sys.argv[1]).read()}]}))' "$WORK/key/cosign.pub")

reader_auth=(--username reader --password "$READER_PW")

run() { # workload concurrency slot
    local label
    if [[ "$3" == B ]]; then
        api PUT /projects/bench/trust-policy "$POLICY"
        label="enforce"
    else
        curl -fsS -o /dev/null -u "admin:$ADMIN_PW" -X DELETE "$URL/api/v1/projects/bench/trust-policy" || true
        label="off"
    fi
    "$BENCH" --url "$URL" --workload "$1" --reuse-images --images "$IMAGES" \
        --concurrency "$2" --duration "$DURATION" "${reader_auth[@]}" \
        --server-pid "$SERVER_PID" --json --label "$label" >>"$RESULTS"
    log "   $1 $label done"
}

for w in manifest-get pull-small; do
    conc=$CONCURRENCY
    [[ "$w" == pull-small ]] && conc=8
    log "== $w (concurrency $conc), order $ORDER"
    for slot in $ORDER; do run "$w" "$conc" "$slot"; done
done

# Every refusal would show as an error in the results; there must be none (all images are
# signed), and the decision log must hold the enforce runs' admissions.
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| workload | policy | runs | ops/s (median) | p50 ms | p99 ms | server CPU ms/op | errors |")
print("|---|---|---|---|---|---|---|---|")
med = {}
for w in ["manifest-get", "pull-small"]:
    for label in ["off", "enforce"]:
        rs = [r for r in rows if r["workload"] == w and r["label"] == label]
        if not rs:
            continue
        ops = statistics.median(r["ops_per_s"] for r in rs)
        p50 = statistics.median(r["latency_ms"]["p50"] for r in rs)
        p99 = statistics.median(r["latency_ms"]["p99"] for r in rs)
        cpu = statistics.median((r.get("server") or {}).get("cpu_ms_per_op", float("nan")) for r in rs)
        errs = sum(r["errors"] for r in rs)
        med[(w, label)] = ops
        print(f"| {w} | {label} | {len(rs)} | {ops:.0f} | {p50:.2f} | {p99:.2f} | {cpu:.3f} | {errs} |")
print()
for w in ["manifest-get", "pull-small"]:
    if (w, "off") in med and (w, "enforce") in med:
        ratio = med[(w, "enforce")] / med[(w, "off")]
        verdict = "met" if ratio >= 0.95 else "NOT met"
        print(f"{w}: enforce/off throughput = {ratio:.3f} (target >= 0.95: {verdict})")
if any(r["errors"] for r in rows):
    sys.exit("errors during the runs (refused pulls?) — see " + sys.argv[1])
PY
log "== results: $RESULTS"
