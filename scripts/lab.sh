#!/usr/bin/env bash
# Build the reference site in network namespaces (FRR spines, spinelb workers, the cluster's
# API server and the spinelb controller) and show the Services, the spines' BGP sessions and
# ECMP routes; `down` removes every namespace and process it started; `kubectl ARGS...` runs
# kubectl against the lab's API server (from inside the master's namespace).
#
# Usage: scripts/lab.sh [up|down|show|kubectl ARGS...]   (default: up)
# Runs scripts/setup.sh first, then `.venv/bin/python -m lab ACTION` (the lab package, lab/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
action=${1:-up}
case "$action" in
    up|down|show|kubectl) ;;
    -h|--help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [up|down|show|kubectl ARGS...]" >&2; exit 2 ;;
esac
shift $(($# > 0 ? 1 : 0))

if [ "$action" != kubectl ]; then
    "$ROOT/scripts/setup.sh"
fi
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m lab "$action" "$@"
