#!/usr/bin/env bash
# Put the kubernetes.core collection in ./collections, from PyPI (Galaxy is not reachable).
#
# The roles' Kubernetes mode applies its manifests with kubernetes.core.k8s.  No PyPI package
# carries that collection alone; the community `ansible` package bundles it (12.3.0: kubernetes.core
# 6.2.0, for ansible-core 2.19).  This downloads that wheel without its dependencies (54 MB, into
# pip's cache), extracts only ansible_collections/kubernetes/core (1 MB) into
# collections/ansible_collections/kubernetes/core, and removes the wheel.  ansible.cfg's
# collections_path already lists ./collections (git ignores it).
#
# Idempotent and fast when done: nothing runs when the collection's MANIFEST.json already says
# the wanted version.  Needs .venv (scripts/setup.sh); SPINELB_ANSIBLE_VERSION overrides the
# `ansible` release it is taken from, KUBERNETES_CORE_VERSION the version it must contain.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON="$ROOT/.venv/bin/python"
ANSIBLE_VERSION=${SPINELB_ANSIBLE_VERSION:-12.3.0}
WANTED=${KUBERNETES_CORE_VERSION:-6.2.0}
DEST="$ROOT/collections/ansible_collections/kubernetes/core"

log() { printf '==> collections: %s\n' "$*"; }
die() { printf '==> collections: ERROR: %s\n' "$*" >&2; exit 1; }

[ -x "$PYTHON" ] || die "no $PYTHON: run scripts/setup.sh first"

installed_version() {
    [ -f "$DEST/MANIFEST.json" ] || return 0
    "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["collection_info"]["version"])' \
        "$DEST/MANIFEST.json" 2>/dev/null || true
}

if [ "$(installed_version)" = "$WANTED" ]; then
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "kubernetes.core $WANTED from ansible==$ANSIBLE_VERSION on PyPI"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" \
    "ansible==$ANSIBLE_VERSION"
wheel=$(find "$work" -maxdepth 1 -name 'ansible-*.whl' -print -quit)
[ -n "$wheel" ] || die "pip downloaded no ansible wheel"

# Extract next to the destination, then swap it in: an interrupted run leaves no half tree.
mkdir -p "$(dirname "$DEST")"
staging="$DEST.new"
rm -rf "$staging"
"$PYTHON" - "$wheel" "$staging" "$WANTED" <<'EOF'
"""Copy ansible_collections/kubernetes/core out of the wheel; check its version."""
import json
import shutil
import sys
import zipfile
from pathlib import Path

wheel, staging, wanted = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
prefix = "ansible_collections/kubernetes/core/"
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
    if not members:
        sys.exit(f"{wheel} holds no {prefix}")
    for member in members:
        target = staging / member.filename[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
version = json.loads((staging / "MANIFEST.json").read_text())["collection_info"]["version"]
if version != wanted:
    sys.exit(f"the wheel has kubernetes.core {version}, not {wanted}")
EOF
rm -rf "$DEST"
mv "$staging" "$DEST"
log "kubernetes.core $(installed_version) in ${DEST#"$ROOT"/}"
