#!/usr/bin/env bash
# Run `ansible-test sanity` and antsibull-docs' collection lint over the collection, offline.
#
# ansible-test wants the collection under .../ansible_collections/spinelb/fabric/ and reads the
# file list from git, so this copies the files git would commit (tracked and untracked-but-not-
# ignored, minus deleted ones) into a temporary tree of that shape with its own `git init`.
# That works the same in a fresh CI clone and in a work tree with uncommitted files.
#
# Usage: scripts/sanity.sh [extra ansible-test sanity arguments, e.g. --test pep8]
# Run scripts/setup.sh first (test.sh does): it installs ansible-test's pip bootstrap stand-in.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
export PATH="$VENV/bin:$PATH"

# Sanity tests that cannot apply here:
# - pslint: needs PowerShell (pwsh), which no reachable registry ships; the collection has no
#   PowerShell code.
SKIP_TESTS=(pslint)
# pep8 and pylint (ansible-test's style rules for Ansible content) run on the Ansible content
# only. The speaker package (src/), the lab, the benchmark and the pytest suites are plain
# Python whose style gate is ruff with pyproject.toml's rules plus mypy --strict; ansible-test's
# rules contradict those in places (pylint's collection config bans `_` as a name), and two
# style checkers with different rules on the same code only produce churn. Every other sanity
# test (compile, shebang, line-endings, smart quotes, symlinks, yamllint, shellcheck, ...) runs
# on every file the collection ships.
STYLE_TESTS=(pep8 pylint)
STYLE_PATHS=(plugins roles playbooks scripts tests/integration tests/sanity)

log() { printf '==> sanity: %s\n' "$*"; }

work=$(mktemp -d -t spinelb-sanity.XXXXXX)
trap 'rm -rf "$work"' EXIT
tree="$work/ansible_collections/spinelb/fabric"
mkdir -p "$tree"

# The files git would see, NUL-separated, relative to ROOT.
list_files() {
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' path; do
                # a tracked file deleted in the work tree is still listed by --cached
                if [ -e "$ROOT/$path" ] || [ -L "$ROOT/$path" ]; then printf '%s\0' "$path"; fi
            done
    else
        (cd "$ROOT" && find . \( -name .venv -o -name .git -o -name '*_cache' -o -name .hypothesis \
            -o -name __pycache__ -o -name collections -o -path ./tests/output -o -path ./lab/run \) \
            -prune -o \( -type f -o -type l \) -printf '%P\0')
    fi
}

list_files >"$work/files"
tar -C "$ROOT" --null -T "$work/files" -cf - | tar -C "$tree" -xf -
git -C "$tree" init -q
git -C "$tree" add -A

python_version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
skip_args=()
for name in "${SKIP_TESTS[@]}" "${STYLE_TESTS[@]}"; do skip_args+=(--skip-test "$name"); done
style_args=()
for name in "${STYLE_TESTS[@]}"; do style_args+=(--test "$name"); done
style_targets=()
for path in "${STYLE_PATHS[@]}"; do
    if [ -n "$(find "$tree/$path" -name '*.py' -print -quit 2>/dev/null)" ]; then
        style_targets+=("$path/")
    fi
done

run_ansible_test() {
    (cd "$tree" && ansible-test sanity --venv --python "$python_version" --color no "$@")
}

status=0
log "ansible-test sanity --python $python_version, all tests but ${SKIP_TESTS[*]} ${STYLE_TESTS[*]}"
if ! run_ansible_test "${skip_args[@]}" "$@"; then
    log "FAILED: ansible-test sanity"
    status=1
fi
if [ "${#style_targets[@]}" -gt 0 ]; then
    log "ansible-test sanity ${STYLE_TESTS[*]} on ${style_targets[*]}"
    if ! run_ansible_test "${style_args[@]}" "${style_targets[@]}"; then
        log "FAILED: ansible-test sanity ${STYLE_TESTS[*]}"
        status=1
    fi
fi

# Checks plugin docs and roles' meta/argument_specs.yml, which ansible-test does not.
if command -v antsibull-docs >/dev/null 2>&1; then
    log "antsibull-docs lint-collection-docs --plugin-docs"
    if ! (cd "$tree" && ANSIBLE_COLLECTIONS_PATH="$work" \
        antsibull-docs lint-collection-docs --plugin-docs .); then
        log "FAILED: antsibull-docs lint-collection-docs"
        status=1
    fi
else
    log "antsibull-docs not installed; collection docs lint skipped"
fi
exit "$status"
