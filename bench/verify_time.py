"""Benchmark: how long the whole reference site's check (and a no-op repair) takes.

    .venv/bin/python bench/verify_time.py [--runs 5] [--json out.json] [--keep]    # as root

Builds the reference site under ``bvt-`` namespace names with the collection's
``playbooks/site.yml`` (FRR spines, the lab's API server, the controller, a
spinelb speaker per worker), then runs, on the converged site:

- ``verify.yml`` N times: read the cluster on the master, every speaker and
  every spine, judge every Service address (the issue's target: under 5 s);
- ``reconcile.yml`` N times: the same reads plus each host's (empty) share of
  the plan, which on a healthy site changes nothing.

Each run is the wall time of ``ansible-playbook`` from start to exit, Python
start-up and inventory included: what an operator waits for. Prints the
median, min and max and the ratio to the target (target / median: above 1 is
inside it). Namespaces and processes are removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.reference_site import SiteLab
from lab.site import load_site

TARGET = 5.0  # seconds, issue 6: the check of the whole reference site


def timed(lab: SiteLab, playbook: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.monotonic()
        run = lab.run_playbook(playbook)
        times.append(time.monotonic() - started)
        if run.returncode != 0:
            raise SystemExit(f"{playbook} failed on the converged site:\n{run.stdout[-3000:]}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="leave the lab up")
    args = parser.parse_args()
    lab = SiteLab(load_site(), prefix="bvt-", run_dir=Path(tempfile.mkdtemp(prefix="bvt-")))
    try:
        if not lab.up("spinelb", timeout=120):
            print(lab.show())
            return 1
        results = {name: timed(lab, f"{name}.yml", args.runs) for name in ("verify", "reconcile")}
    finally:
        if not args.keep:
            lab.down()
    print(f"{'playbook':<12}{'median s':>10}{'min s':>8}{'max s':>8}{'target s':>10}{'ratio':>8}")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"{name + '.yml':<12}{median:>10.2f}{min(times):>8.2f}{max(times):>8.2f}"
              f"{TARGET:>10.1f}{TARGET / median:>8.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
