#!/usr/bin/env bash
# Run everything that must pass: set-up, the quality gates, then every pytest suite.
#
# Usage: scripts/test.sh [PHASE...] [-- PYTEST_ARGS...]
#   PHASE is one or more of: ruff mypy sanity ansible-lint changelog pytest (default: all).
#   Set-up (scripts/setup.sh) always runs first. Every selected phase runs even when an
#   earlier one failed, so one run shows every problem; the exit status is non-zero if any
#   phase failed. Each phase prints its time, and a summary follows the gates.
# Interop tests (marker `interop`) need root and network namespaces; they always run here.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
ALL_PHASES=(ruff mypy sanity ansible-lint changelog pytest)
# Python trees ruff checks (the ones that exist).
RUFF_PATHS=(src tests lab bench plugins scripts)
PYTEST_PATHS=(tests/unit tests/interop)

phases=()
pytest_args=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --) shift; pytest_args=("$@"); break ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *)
            if [[ " ${ALL_PHASES[*]} " != *" $1 "* ]]; then
                echo "unknown phase '$1'; phases: ${ALL_PHASES[*]}" >&2
                exit 2
            fi
            phases+=("$1")
            ;;
    esac
    shift
done
[ "${#phases[@]}" -gt 0 ] || phases=("${ALL_PHASES[@]}")

cd "$ROOT" || exit 1
# Nothing here reads a terminal; CI has no standard input either.
exec </dev/null
export PATH="$VENV/bin:$PATH"
export NO_COLOR=1

results=()
failed=()
started_all=$(date +%s.%N)

elapsed_since() { awk -v start="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - start }'; }

# run_phase NAME COMMAND...: run one phase, print its outcome and time, record it.
run_phase() {
    local name=$1 started rc seconds
    shift
    printf '\n==> [%s] %s\n' "$name" "$*"
    started=$(date +%s.%N)
    "$@"
    rc=$?
    seconds=$(elapsed_since "$started")
    if [ "$rc" -eq 0 ]; then
        printf '==> [%s] passed in %ss\n' "$name" "$seconds"
        results+=("$(printf '%-13s passed  %7ss' "$name" "$seconds")")
    else
        printf '==> [%s] FAILED (exit %s) in %ss\n' "$name" "$rc" "$seconds"
        results+=("$(printf '%-13s FAILED  %7ss  (exit %s)' "$name" "$seconds" "$rc")")
        failed+=("$name")
    fi
    return "$rc"
}

selected() { [[ " ${phases[*]} " == *" $1 "* ]]; }

existing() {
    local path
    for path in "$@"; do [ -e "$path" ] && printf '%s\n' "$path"; done
}

gate_ruff() {
    local paths
    mapfile -t paths < <(existing "${RUFF_PATHS[@]}")
    ruff check "${paths[@]}"
}

gate_mypy() { mypy src/spinelb; }

gate_ansible_lint() { timeout 600 ansible-lint --offline --profile production; }

gate_changelog() {
    antsibull-changelog lint && antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
}

# pytest exits 5 when it collected no test: that is a failure here, never a silent pass.
run_pytest() {
    local paths rc
    mapfile -t paths < <(existing "${PYTEST_PATHS[@]}")
    # Two workers (SPINELB_TEST_WORKERS; 0 runs in this process): interop tests mostly wait on
    # BGP, BFD and timers, so one worker's lab waits while the other's runs. Tests sharing a lab
    # stay in one worker (tests/interop/conftest.py makes xdist's work units).
    python -m pytest -n "${SPINELB_TEST_WORKERS:-2}" --dist loadscope "${paths[@]}" "${pytest_args[@]}"
    rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "==> [pytest] FAILED: pytest collected no tests (exit 5)" >&2
    fi
    return "$rc"
}

print_summary() {
    local line
    printf '\n==> summary (%s)\n' "$1"
    for line in "${results[@]}"; do printf '    %s\n' "$line"; done
}

if ! run_phase setup "$ROOT/scripts/setup.sh"; then
    echo "==> set-up failed; nothing else was run" >&2
    exit 1
fi

selected ruff && run_phase ruff gate_ruff
selected mypy && run_phase mypy gate_mypy
selected sanity && run_phase sanity "$ROOT/scripts/sanity.sh"
selected ansible-lint && run_phase ansible-lint gate_ansible_lint
if selected changelog; then
    if command -v antsibull-changelog >/dev/null 2>&1; then
        run_phase changelog gate_changelog
    else
        echo "==> [changelog] skipped: antsibull-changelog is not installed"
    fi
fi

# The summary of the gates comes before pytest, so pytest's own closing line stays last.
print_summary "gates, $(elapsed_since "$started_all")s so far"
if [ "${#failed[@]}" -gt 0 ]; then
    printf '==> FAILED gates: %s\n' "${failed[*]}"
fi

selected pytest && run_phase pytest run_pytest

total=$(elapsed_since "$started_all")
if [ "${#failed[@]}" -gt 0 ]; then
    printf '==> test.sh FAILED in %ss: %s\n' "$total" "${failed[*]}"
    exit 1
fi
printf '==> test.sh passed in %ss\n' "$total"
