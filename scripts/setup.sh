#!/usr/bin/env bash
# Install everything the lab and the tests need, on a fresh Debian 12 machine, as root.
#
#   apt:  FRR, BIRD 2, GoBGP, ExaBGP (the peers of the lab and of the interop tests), iproute2,
#         tcpdump, git, shellcheck (an ansible-test sanity check), python3-venv/-dev.
#   pip:  a virtualenv .venv at the repository root with `pip install -e .[test]`, which puts
#         the `spinelb` command in .venv/bin next to ansible-core, ansible-lint, ruff, mypy,
#         pytest and the rest of pyproject.toml's `test` extra.
#   ansible-test: the offline stand-in for its pip bootstrap script (see
#         scripts/ansible_test_get_pip.py).
#
# Idempotent and fast when nothing changed: a stamp in .venv records a hash of the dependency
# files and the interpreter; when it matches and every apt package is present, nothing runs.
# Environment: SPINELB_PYTHON=/path/to/python3 picks the interpreter (3.11 or newer) for .venv.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
STAMP="$VENV/.spinelb-setup-stamp"
APT_PACKAGES=(
    frr frr-pythontools bird2 gobgpd exabgp iproute2 tcpdump git shellcheck procps
    # systemd-analyze checks the roles' unit offline (no systemd runs as PID 1 here)
    systemd
    python3 python3-venv python3-dev ca-certificates
)
# Files whose content decides what gets installed.
DEPENDENCY_FILES=(pyproject.toml scripts/setup.sh scripts/ansible_test_get_pip.py)

log() { printf '==> setup: %s\n' "$*"; }
die() { printf '==> setup: ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "installing Debian packages needs root (or sudo): $*"
    fi
}

missing_apt_packages() {
    local package status
    for package in "${APT_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null || true)
        [ "${status:0:2}" = "ii" ] || printf '%s ' "$package"
    done
}

install_apt_packages() {
    local missing policy=/usr/sbin/policy-rc.d created_policy=0
    missing=$(missing_apt_packages)
    [ -n "$missing" ] || return 0
    log "apt: installing $missing"
    # Keep the packaged daemons (frr, bird, gobgpd, exabgp) from starting in the root network
    # namespace: the lab and the tests start their own copies inside network namespaces.
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        created_policy=1
    fi
    # shellcheck disable=SC2086  # $missing is a list of package names
    if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q \
        && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing; }; then
        [ "$created_policy" -eq 0 ] || as_root rm -f "$policy"
        die "apt-get failed"
    fi
    [ "$created_policy" -eq 0 ] || as_root rm -f "$policy"
}

# The first interpreter that is Python >= 3.11 and can build a virtualenv with pip.
pick_python() {
    local candidate
    for candidate in "${SPINELB_PYTHON:-}" python3.11 python3 /usr/bin/python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' \
            >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

venv_works() {
    [ -x "$VENV/bin/python" ] \
        && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

dependency_hash() {
    {
        (cd "$ROOT" && sha256sum "${DEPENDENCY_FILES[@]}")
        "$VENV/bin/python" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

# ansible-test looks for ~/.ansible/test/cache/get_pip_<pip version with _>.py before it tries
# to download it; the version is the one its python_requirements.py pins (pip='24.2' in 2.19).
install_get_pip_standin() {
    local source versions version cache_dir="$HOME/.ansible/test/cache"
    source=$(compgen -G "$VENV/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py" \
        | head -n1 || true)
    [ -n "$source" ] || die "ansible-test is not installed in $VENV"
    versions=$(sed -n "s/.*\bpip='\([0-9][0-9.]*\)'.*/\1/p" "$source" | sort -u)
    [ -n "$versions" ] || die "cannot find the pip version ansible-test pins in $source"
    mkdir -p "$cache_dir"
    for version in $versions; do
        install -m 0644 "$ROOT/scripts/ansible_test_get_pip.py" "$cache_dir/get_pip_${version//./_}.py"
    done
}

# ansible.cfg points collections_path at ./collections: link this checkout in as spinelb.fabric.
link_collection() {
    local link="$ROOT/collections/ansible_collections/spinelb/fabric"
    mkdir -p "$(dirname "$link")"
    [ -L "$link" ] || ln -sfn ../../.. "$link"
}

main() {
    local started=$SECONDS python pip_log
    # One setup at a time per checkout (lab.sh and test.sh may start together).
    exec 9>"${TMPDIR:-/tmp}/spinelb-setup-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1).lock"
    flock 9

    install_apt_packages

    if venv_works && [ -f "$STAMP" ] && [ -x "$VENV/bin/spinelb" ] \
        && [ "$(cat "$STAMP")" = "$(dependency_hash)" ]; then
        install_get_pip_standin
        link_collection
        "$ROOT/scripts/collections.sh"
        log "up to date ($((SECONDS - started))s)"
        return 0
    fi

    if ! venv_works; then
        python=$(pick_python) || die "no Python >= 3.11 with venv and ensurepip found"
        log "creating $VENV with $python ($("$python" --version 2>&1))"
        rm -rf "$VENV"
        "$python" -m venv "$VENV"
    fi
    log "pip: installing spinelb (editable) with its test extra into $VENV"
    # pip's and the build backend's chatter goes to a log, shown only when pip fails.
    pip_log="$VENV/setup-pip.log"
    if ! (cd "$ROOT" && "$VENV/bin/python" -m pip install --progress-bar off \
        --disable-pip-version-check -e ".[test]") >"$pip_log" 2>&1; then
        tail -n 60 "$pip_log" >&2
        die "pip install failed (full log: $pip_log)"
    fi
    [ -x "$VENV/bin/spinelb" ] || die "the spinelb command did not land in $VENV/bin"
    install_get_pip_standin
    link_collection
    "$ROOT/scripts/collections.sh"
    dependency_hash >"$STAMP"
    log "done ($((SECONDS - started))s)"
}

main "$@"
