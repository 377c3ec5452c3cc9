#!/usr/bin/env bash
# Build the reference site in network namespaces (FRR spines, spinelb workers) and show the
# spines' BGP sessions and ECMP routes; `down` removes every namespace and process it started.
#
# Usage: scripts/lab.sh [up|down|show]   (default: up)
# Runs scripts/setup.sh first, then `.venv/bin/python -m lab ACTION` (the lab package, lab/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
action=${1:-up}
case "$action" in
    up|down|show) ;;
    -h|--help) sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [up|down|show]" >&2; exit 2 ;;
esac
shift $(($# > 0 ? 1 : 0))

"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m lab "$action" "$@"
