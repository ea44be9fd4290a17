#!/usr/bin/env bash
# Builds the Debian 12 (bookworm) fixture image for the scanner's end-to-end test
# (crates/bulwark/tests/scan_debian12.rs) and benchmark (crates/bulwark-scanner/benches/scan.rs):
# a real `debootstrap --variant=minbase bookworm` root filesystem, packed as an OCI image layout
# (one gzip layer, an image config, a manifest, index.json). No Docker.
#
# Usage: scripts/debian-fixture.sh [OUT_DIR]
#   OUT_DIR  default: ${BULWARK_FIXTURE_CACHE:-$HOME/.cache/bulwark}/debian12-oci
#
# Cached: when OUT_DIR/index.json exists and every blob it leads to is present at its size,
# nothing is done. The layout is built in a temporary directory next to OUT_DIR and renamed into
# place at the end, so an interrupted run never leaves a half-written layout behind.
#
# Environment (optional):
#   BULWARK_DEBIAN_MIRROR  the mirror to debootstrap from; default: the first non-security
#                          Debian mirror in the machine's apt sources, else http://deb.debian.org/debian
#
# Needs root (or sudo): debootstrap, and reading root-only files of the tree. Installs
# debootstrap with apt-get when it is missing. The last line printed is the layout's path.
#
# Determinism: entries are sorted, owners are written by number with names from the tree's own
# /etc/passwd and /etc/group, modification times are clamped to the suite's Release date (which
# is also the config's `created`), gzip carries no name or time, and what changes on every run
# (downloaded .debs, apt lists, logs, /dev nodes, ldconfig's aux-cache) is left out. Two builds
# on the same day from the same mirror state give a byte-identical layer; on another day
# /etc/shadow's "last changed" day differs, and a new point release changes the packages.
set -euo pipefail

die() { printf 'debian-fixture: %s\n' "$*" >&2; exit 1; }
note() { printf 'debian-fixture: %s\n' "$*" >&2; }

OUT_DIR="${1:-${BULWARK_FIXTURE_CACHE:-${HOME:-/tmp}/.cache/bulwark}/debian12-oci}"
SUITE=bookworm

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root or sudo to run: $*"
    fi
}

# Whether $1 is a complete OCI layout: index.json → manifest → config and layers, each blob
# present at the size its descriptor gives.
layout_complete() {
    [ -f "$1/index.json" ] || return 1
    python3 - "$1" <<'PY'
import json, os, sys

root = sys.argv[1]

def blob(desc):
    algo, _, hexd = desc["digest"].partition(":")
    path = os.path.join(root, "blobs", algo, hexd)
    if not os.path.isfile(path) or os.path.getsize(path) != desc["size"]:
        sys.exit(1)
    return path

try:
    index = json.load(open(os.path.join(root, "index.json")))
    manifests = index["manifests"]
    if not manifests:
        sys.exit(1)
    for m in manifests:
        manifest = json.load(open(blob(m)))
        blob(manifest["config"])
        for layer in manifest["layers"]:
            blob(layer)
except (OSError, ValueError, KeyError, TypeError):
    sys.exit(1)
PY
}

# The mirror: BULWARK_DEBIAN_MIRROR, else the machine's apt sources (deb822 or one-line style),
# else deb.debian.org.
find_mirror() {
    if [ -n "${BULWARK_DEBIAN_MIRROR:-}" ]; then
        echo "$BULWARK_DEBIAN_MIRROR"
        return
    fi
    local uri
    uri="$(
        {
            grep -hs '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources | sed 's/^[[:space:]]*URIs:[[:space:]]*//' | tr ' ' '\n'
            grep -hs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
                sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' | awk '{ print $1 }'
        } | grep -E '^https?://' | grep -v -- '-security' | grep -E '/debian/?$' | head -n 1 || true
    )"
    echo "${uri:-http://deb.debian.org/debian}"
}

if layout_complete "$OUT_DIR"; then
    note "cached: $OUT_DIR ($(du -sh "$OUT_DIR" | cut -f1))"
    echo "$OUT_DIR"
    exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 is required to pack the layout"
if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
    command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing and there is no apt-get to install it"
    note "installing debootstrap with apt-get"
    log="$(mktemp)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        install -y -q debootstrap >"$log" 2>&1; then
        # A fresh machine may have no package lists yet.
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
            update -q >>"$log" 2>&1 &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
                install -y -q debootstrap >>"$log" 2>&1 ||
            { cat "$log" >&2; die "apt-get install debootstrap failed"; }
    fi
    rm -f "$log"
fi
DEBOOTSTRAP="$(command -v debootstrap || echo /usr/sbin/debootstrap)"

MIRROR="$(find_mirror)"
mkdir -p "$(dirname "$OUT_DIR")"
WORK="$(mktemp -d "$(dirname "$OUT_DIR")/.debian12-build.XXXXXX")"
cleanup() { [ -z "$WORK" ] || as_root rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
note "debootstrap --variant=minbase $SUITE from $MIRROR"
if ! as_root "$DEBOOTSTRAP" --variant=minbase "$SUITE" "$WORK/rootfs" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1; then
    tail -n 30 "$WORK/debootstrap.log" >&2
    [ ! -f "$WORK/rootfs/debootstrap/debootstrap.log" ] ||
        tail -n 30 "$WORK/rootfs/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
fi
bootstrapped=$SECONDS
note "debootstrap took $((bootstrapped - started)) s"

# The suite's Release date: the image's `created` and the clamp for modification times.
release="$(ls "$WORK"/rootfs/var/lib/apt/lists/*_dists_"${SUITE}"_Release 2>/dev/null | head -n 1 || true)"
[ -n "$release" ] || release="$(ls "$WORK"/rootfs/var/lib/apt/lists/*_dists_"${SUITE}"_InRelease 2>/dev/null | head -n 1 || true)"
[ -n "$release" ] || die "no Release file of $SUITE under var/lib/apt/lists"
release_date="$(sed -n 's/^Date: //p' "$release" | head -n 1)"
point_release="$(sed -n 's/^Version: //p' "$release" | head -n 1)"
epoch="$(date -u -d "$release_date" +%s)" || die "cannot parse the Release date '$release_date'"

# What a published image leaves out: downloaded packages, apt lists and caches, logs, device
# nodes (the runtime provides /dev), and whatever is in /tmp and /run.
as_root find "$WORK/rootfs/var/cache/apt" "$WORK/rootfs/var/lib/apt/lists" "$WORK/rootfs/var/log" \
    "$WORK/rootfs/dev" "$WORK/rootfs/tmp" "$WORK/rootfs/run" \
    -mindepth 1 \( -type f -o -type l -o -type c -o -type b -o -type p -o -type s \) \
    ! -path "$WORK/rootfs/var/lib/apt/lists/partial" -delete
# ldconfig's aux-cache holds inode numbers and times: the one file that differs between runs.
as_root rm -rf "$WORK/rootfs/debootstrap" "$WORK/rootfs/var/cache/ldconfig/aux-cache"

arch="$(as_root chroot "$WORK/rootfs" dpkg --print-architecture 2>/dev/null || dpkg --print-architecture)"
as_root python3 - "$WORK/rootfs" "$WORK/layout" "$epoch" "$arch" "$SUITE" "$point_release" <<'PY'
"""Packs a root filesystem into an OCI image layout with one gzip layer."""
import datetime
import gzip
import hashlib
import json
import os
import stat
import sys
import tarfile

rootfs, out, epoch, arch, suite, point = sys.argv[1:7]
epoch = int(epoch)


def names(path):
    """uid/gid → name from the tree's own passwd/group files."""
    table = {}
    try:
        with open(os.path.join(rootfs, path), encoding="utf-8") as f:
            for line in f:
                parts = line.split(":")
                if len(parts) > 2 and parts[2].isdigit():
                    table.setdefault(int(parts[2]), parts[0])
    except OSError:
        pass
    return table


users, groups = names("etc/passwd"), names("etc/group")


class Hashing:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, inner):
        self.inner, self.sha, self.size = inner, hashlib.sha256(), 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        if self.inner is not None:
            self.inner.write(data)
        return len(data)

    def flush(self):
        if self.inner is not None:
            self.inner.flush()


os.makedirs(os.path.join(out, "blobs", "sha256"))
tmp_layer = os.path.join(out, "layer.tmp")
links = {}
with open(tmp_layer, "wb") as raw:
    compressed = Hashing(raw)
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
        plain = Hashing(gz)
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:

            def add(rel, full):
                st = os.lstat(full)
                info = tarfile.TarInfo(rel)
                info.mode = stat.S_IMODE(st.st_mode)
                info.uid, info.gid = st.st_uid, st.st_gid
                info.uname, info.gname = users.get(st.st_uid, ""), groups.get(st.st_gid, "")
                info.mtime = min(int(st.st_mtime), epoch)
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif stat.S_ISLNK(st.st_mode):
                    info.type = tarfile.SYMTYPE
                    info.linkname = os.readlink(full)
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1 and key in links:
                        info.type = tarfile.LNKTYPE
                        info.linkname = links[key]
                        tar.addfile(info)
                        return
                    links[key] = rel
                    info.size = st.st_size
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                elif stat.S_ISFIFO(st.st_mode):
                    info.type = tarfile.FIFOTYPE
                    tar.addfile(info)
                # Sockets and device nodes are not part of the image.

            for dirpath, dirnames, filenames in os.walk(rootfs):
                dirnames.sort()
                rel_dir = os.path.relpath(dirpath, rootfs)
                if rel_dir != ".":
                    add(rel_dir, dirpath)
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    rel = name if rel_dir == "." else rel_dir + "/" + name
                    add(rel, full)
                # Symlinks to directories are listed in dirnames but not walked.
                for name in list(dirnames):
                    full = os.path.join(dirpath, name)
                    if os.path.islink(full):
                        add(name if rel_dir == "." else rel_dir + "/" + name, full)
                        dirnames.remove(name)

layer_digest = "sha256:" + compressed.sha.hexdigest()
diff_id = "sha256:" + plain.sha.hexdigest()
os.rename(tmp_layer, os.path.join(out, "blobs", "sha256", compressed.sha.hexdigest()))


def put(obj):
    data = json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"
    hexd = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", hexd), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + hexd, "size": len(data)}


created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
config = put(
    {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["bash"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [
            {
                "created": created,
                "created_by": f"debootstrap --variant=minbase {suite} (Debian {point})",
            }
        ],
    }
)
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
manifest = put(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": compressed.size,
            }
        ],
        "annotations": {
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.version": point,
        },
    }
)
manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
manifest["annotations"] = {"org.opencontainers.image.ref.name": suite}
manifest["platform"] = {"architecture": arch, "os": "linux"}
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion": "1.0.0"}\n')
# index.json last: its presence marks the layout complete.
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": [manifest]}, f, indent=2, sort_keys=True)
    f.write("\n")
print(f"layer {layer_digest}: {compressed.size} bytes gzip, {plain.size} bytes tar", file=sys.stderr)
PY
packed=$SECONDS
note "packing took $((packed - bootstrapped)) s"

# Hand the layout to the caller when sudo built it.
[ "$(id -u)" -eq 0 ] || as_root chown -R "$(id -u):$(id -g)" "$WORK/layout"
layout_complete "$WORK/layout" || die "the packed layout is incomplete"
rm -rf "$OUT_DIR"
mv "$WORK/layout" "$OUT_DIR"
note "Debian $point_release ($release_date), $arch: $OUT_DIR ($(du -sh "$OUT_DIR" | cut -f1)), built in $((packed - started)) s"
echo "$OUT_DIR"
