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

install_python_packaging() {
    command -v python3 >/dev/null 2>&1 || die "python3 is required (scanner PEP 440 reference tests)"
    if python3 -c 'import packaging.version' 2>/dev/null; then
        echo "python3 can import packaging"
        return
    fi
    step "Installing Python's packaging"
    # Plain pip first; Debian's own python refuses that (PEP 668), so then its apt package,
    # and as a last resort pip past the guard.
    python3 -m pip install --quiet packaging 2>/dev/null ||
        { command -v apt-get >/dev/null 2>&1 && [ "$(command -v python3)" = /usr/bin/python3 ] &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                --no-install-recommends python3-packaging >/dev/null 2>&1; } ||
        python3 -m pip install --quiet --break-system-packages packaging ||
        die "could not install Python's packaging (pip install packaging)"
    python3 -c 'import packaging.version' || die "python3 still cannot import packaging"
}

command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain (rustup)"

step "System tools"
install_system_tools
[ -f /etc/containers/policy.json ] ||
    die "/etc/containers/policy.json is missing (Debian package containers-common / golang-github-containers-common)"
install_python_packaging

step "cargo fmt --all --check"
cargo fmt --all --check || die "formatting differs: run cargo fmt --all"

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings || die "clippy found problems"

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

step "All checks passed"
echo "tests: $totals"
