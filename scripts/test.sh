#!/usr/bin/env bash
# Runs every Bulwark check: formatting, clippy and the whole test suite, including the
# real-client tests (skopeo, podman, buildah) and the scanner's reference tests (dpkg, rpm,
# Python's `packaging`). Installs the missing system tools first on Debian/Ubuntu.
#
# Usage: scripts/test.sh        (from anywhere; CI runs it through .ci/run)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

# Commands the tests need, and the Debian packages that provide them.
declare -A PACKAGE_OF=(
    [skopeo]=skopeo
    [podman]=podman
    [buildah]=buildah
    [rpm]=rpm
    [dpkg]=dpkg
)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root or sudo to run: $*"
    fi
}

install_system_tools() {
    local missing=() cmd
    for cmd in "${!PACKAGE_OF[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$cmd]}")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "skopeo, podman, buildah, rpm and dpkg are installed"
        return
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "missing ${missing[*]} and no apt-get to install them; install them by hand"
    step "Installing ${missing[*]} with apt-get"
    local log
    log="$(mktemp)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1; then
        cat "$log" >&2
        die "apt-get update failed"
    fi
    # The whole set, so that a partly installed machine ends up complete.
    # With recommends: the client tests were verified against Debian's default install.
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        skopeo podman buildah rpm dpkg >"$log" 2>&1; then
        cat "$log" >&2
        die "apt-get install failed"
    fi
    rm -f "$log"
    for cmd in "${!PACKAGE_OF[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || die "$cmd is still missing after apt-get install"
    done
}

# Python modules the tests use: packaging (PEP 440 reference for the scanner), moto's server
# (the S3-compatible store for the storage suite; it implements multipart uploads and ranged
# GETs), openapi-spec-validator (validates the management API's OpenAPI document) and oras
# (the ORAS project's Python client, which fetches signature artifacts in the trust tests).
PY_MODULES="packaging.version moto.server openapi_spec_validator oras.client"
PY_PACKAGES="packaging moto[server] openapi-spec-validator oras"
python_has_modules() {
    local m
    for m in $PY_MODULES; do
        python3 -c "import $m" 2>/dev/null || return 1
    done
}
install_python_deps() {
    command -v python3 >/dev/null 2>&1 || die "python3 is required (scanner, S3 and OpenAPI tests)"
    if python_has_modules; then
        echo "python3 has $PY_MODULES"
        return
    fi
    step "Installing Python test dependencies ($PY_PACKAGES)"
    # Plain pip first; Debian's own python refuses that (PEP 668), so then pip past the guard.
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    python3 -m pip install --quiet $PY_PACKAGES 2>/dev/null ||
        python3 -m pip install --quiet --break-system-packages $PY_PACKAGES ||
        die "could not install Python packages: pip install $PY_PACKAGES"
    python_has_modules || die "python3 still cannot import all of $PY_MODULES"
}

# A PostgreSQL server for the metadata store's Postgres suite. A server named by
# BULWARK_TEST_POSTGRES_URL is used as it is; otherwise a throwaway cluster (trust auth, no
# fsync) is started on 127.0.0.1 at a free port under a temporary directory, installing
# Debian's postgresql first if needed, and stopped and removed when the script exits.
# Either way the suite is then required to run (BULWARK_REQUIRE_POSTGRES=1).
PG_TMP=""
PG_BIN=""
pg_as_owner() {
    # initdb and postgres refuse to run as root: root runs them as Debian's postgres user.
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}
pg_find_bin() {
    # The server binaries: on PATH, else Debian's newest /usr/lib/postgresql/*/bin.
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    else
        # (No such directory is no error: set -e and pipefail must not end the script here.)
        { find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null || true; } |
            sort -V | tail -n 1
    fi
}
stop_postgres() {
    [ -n "$PG_TMP" ] || return 0
    if [ -f "$PG_TMP/data/postmaster.pid" ]; then
        pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_TMP"
    PG_TMP=""
}
start_postgres() {
    if [ -n "${BULWARK_TEST_POSTGRES_URL:-}" ]; then
        echo "using the PostgreSQL server in BULWARK_TEST_POSTGRES_URL"
        [ -n "${BULWARK_TEST_POSTGRES_TLS_URL:-}" ] && [ -n "${BULWARK_TEST_POSTGRES_TLS_CA:-}" ] ||
            die "with BULWARK_TEST_POSTGRES_URL, also set BULWARK_TEST_POSTGRES_TLS_URL (the same server with ssl=on) and BULWARK_TEST_POSTGRES_TLS_CA (the CA file that signed its certificate)"
        export BULWARK_REQUIRE_POSTGRES=1
        return
    fi
    PG_BIN="$(pg_find_bin)"
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
        command -v apt-get >/dev/null 2>&1 ||
            die "PostgreSQL (initdb, pg_ctl) is missing and there is no apt-get to install it; install it by hand or set BULWARK_TEST_POSTGRES_URL"
        step "Installing postgresql with apt-get"
        local log
        log="$(mktemp)"
        # DPkg::Lock::Timeout: wait for another apt or dpkg run instead of failing at once.
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
            update -q >"$log" 2>&1; then
            cat "$log" >&2
            die "apt-get update failed"
        fi
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
            install -y -q postgresql >"$log" 2>&1; then
            cat "$log" >&2
            die "apt-get install postgresql failed"
        fi
        rm -f "$log"
        PG_BIN="$(pg_find_bin)"
        if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
            die "initdb is still missing after apt-get install postgresql"
        fi
    fi
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 ||
            die "running as root, but there is no postgres user to run PostgreSQL as"
    fi

    PG_TMP="$(mktemp -d "${TMPDIR:-/tmp}/bulwark-pg.XXXXXX")"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$PG_TMP"
    local log="$PG_TMP/initdb.log"
    if ! pg_as_owner "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres -A trust -E UTF8 \
        --no-locale >"$log" 2>&1; then
        cat "$log" >&2
        die "initdb failed"
    fi
    # TLS for crates/bulwark/tests/postgres_tls.rs: a throwaway CA and a server certificate
    # for 127.0.0.1. Plain connections keep working (ssl=on only offers TLS).
    command -v openssl >/dev/null 2>&1 ||
        die "openssl is missing (Debian's postgresql depends on it): apt-get install openssl"
    local tls="$PG_TMP/tls"
    mkdir -p "$tls"
    if ! {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
            -subj "/CN=bulwark test CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" &&
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" &&
            printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
                "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth" \
                >"$tls/server.ext" &&
            openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
                -CAcreateserial -days 7 -extfile "$tls/server.ext" -out "$tls/server.pem"
    } >"$PG_TMP/openssl.log" 2>&1; then
        cat "$PG_TMP/openssl.log" >&2
        die "could not create the PostgreSQL test certificates"
    fi
    # PostgreSQL refuses a key others can read, or one its user does not own.
    chmod 600 "$tls/server.key" "$tls/ca.key"
    [ "$(id -u)" -ne 0 ] || chown -R postgres: "$tls"
    # A free port: one nothing answers on; should another server take it first, try again.
    local port="" _
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 30000))
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            continue
        fi
        if pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
            -o "-p $port -k '$PG_TMP' -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on -c ssl_cert_file='$tls/server.pem' -c ssl_key_file='$tls/server.key'" \
            start >/dev/null 2>&1; then
            break
        fi
        port=""
    done
    if [ -z "$port" ]; then
        cat "$PG_TMP/server.log" >&2 2>/dev/null || true
        die "could not start PostgreSQL"
    fi
    export BULWARK_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export BULWARK_TEST_POSTGRES_TLS_CA="$tls/ca.pem"
    export BULWARK_TEST_POSTGRES_TLS_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=verify-full&sslrootcert=$tls/ca.pem"
    export BULWARK_REQUIRE_POSTGRES=1
    echo "PostgreSQL $("$PG_BIN/pg_ctl" --version | awk '{ print $3 }') on 127.0.0.1:$port ($PG_TMP)"
}

# An S3-compatible server (moto) on a free loopback port for the S3 blob store suite, unless
# BULWARK_TEST_S3_ENDPOINT names one already.
S3_PID=""
stop_s3() {
    [ -n "$S3_PID" ] || return 0
    kill "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    S3_PID=""
}
start_s3() {
    if [ -n "${BULWARK_TEST_S3_ENDPOINT:-}" ]; then
        echo "using the S3 server at $BULWARK_TEST_S3_ENDPOINT"
        export BULWARK_REQUIRE_S3=1
        return
    fi
    local port="" _ log
    log="$(mktemp "${TMPDIR:-/tmp}/bulwark-moto.XXXXXX")"
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        python3 -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
        S3_PID=$!
        for _ in $(seq 1 100); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                export BULWARK_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
                export BULWARK_REQUIRE_S3=1
                echo "moto S3 server on 127.0.0.1:$port"
                return
            fi
            kill -0 "$S3_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop_s3
    done
    cat "$log" >&2 || true
    die "could not start the moto S3 server"
}
cleanup() {
    stop_s3
    stop_postgres
}

command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain (rustup)"

# A whole run builds from scratch on CI; incremental caches would only double the disk used.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
step "Disk space"
df -h . | tail -n 1

step "System tools"
install_system_tools
[ -f /etc/containers/policy.json ] ||
    die "/etc/containers/policy.json is missing (Debian package containers-common / golang-github-containers-common)"
install_python_deps

step "cargo fmt --all --check"
cargo fmt --all --check || die "formatting differs: run cargo fmt --all"

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings || die "clippy found problems"

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "PostgreSQL for the metadata store tests"
start_postgres

step "S3-compatible server for the blob store tests"
start_s3

# ---- Debian 12 fixture image for crates/bulwark/tests/scan_debian12.rs (and the scanner bench):
# debootstrap's minbase bookworm as an OCI layout, built once and cached (scripts/debian-fixture.sh).
step "Debian 12 fixture image (debootstrap, cached)"
BULWARK_DEBIAN12_OCI="$(scripts/debian-fixture.sh)" || die "could not build the Debian 12 fixture image"
export BULWARK_DEBIAN12_OCI BULWARK_REQUIRE_DEBIAN12=1
# ---- end of the Debian 12 fixture block

step "cargo test --workspace (BULWARK_REQUIRE_CLIENTS=1)"
test_log="$(mktemp)"
set +e
BULWARK_REQUIRE_CLIENTS=1 cargo test --workspace --no-fail-fast 2>&1 | tee "$test_log"
test_status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary).
totals="$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    END { printf "%d passed, %d failed", p, f }' "$test_log")"
rm -f "$test_log"
[ "$test_status" -eq 0 ] || { echo "tests: $totals"; die "tests failed"; }

# Every integration test that drives a server only through its network API (and offline
# commands through TestServer::cli_envs) runs again with each server on its own PostgreSQL
# database and S3 bucket. Left out: tests about the embedded default itself (ops: the data
# dir lock and offline GC; crash: SQLite/filesystem recovery; migrate_cli: SQLite to
# PostgreSQL), tests that build their own replicas or databases (replicas), scan_server (it
# inspects blob files; its PostgreSQL cases run in the first pass) and the scanner CLI tests.
SCALE_TESTS=(clients conformance_blobs conformance_manifests conformance_listing
    conformance_referrers conformance_gc api permissions auth_flows trust_enforce sign_cli
    admin_cli metrics)
step "Integration tests against PostgreSQL + S3 (BULWARK_TEST_BACKEND=postgres-s3)"
scale_log="$(mktemp)"
scale_args=()
for t in "${SCALE_TESTS[@]}"; do scale_args+=(--test "$t"); done
set +e
BULWARK_REQUIRE_CLIENTS=1 BULWARK_TEST_BACKEND=postgres-s3 \
    cargo test -p bulwark --no-fail-fast "${scale_args[@]}" 2>&1 | tee "$scale_log"
scale_status=${PIPESTATUS[0]}
set -e
totals="$(awk -v p0="${totals%% passed*}" -v f0="$(echo "$totals" | awk '{ print $3 }')" \
    '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    END { printf "%d passed, %d failed", p0 + p, f0 + f }' "$scale_log")"
rm -f "$scale_log"
[ "$scale_status" -eq 0 ] || { echo "tests: $totals"; die "integration tests on PostgreSQL + S3 failed"; }

step "All checks passed"
echo "tests: $totals"
echo "target/: $(du -sh target 2>/dev/null | cut -f1)"
