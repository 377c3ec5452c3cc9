"""The namespace hosts of the collection's Molecule scenarios (``extensions/molecule/``).

A scenario's hosts are the reference site's, or some of them, built under a
name prefix of the scenario's own (``mol-<scenario>-``) with their files in
the scenario's run directory, so a scenario never touches the lab or a test
run.  ``create`` builds only what the lab itself provides (namespaces,
bridges and links, the cluster's API server in the master's namespace, FRR
started empty on the spines): everything else is the collection's converge.
``destroy`` removes all of it, with whatever the playbooks and the service
traffic started.  ``check`` waits until the site converged per the reference
site's README (:meth:`SiteLab.check`); ``traffic`` drives :mod:`lab.service`.

    python -m lab.scenario create --prefix mol-site- --run-dir DIR [--host NAME ...]
    python -m lab.scenario check --prefix mol-site- --run-dir DIR [--timeout 60]
    python -m lab.scenario traffic plumb|start|stop --prefix ... --run-dir ... --address A
    python -m lab.scenario destroy --prefix mol-site- --run-dir DIR [--host NAME ...]

Run from the repository root (the lab's processes are started as ``python -m lab...``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

from lab.netns import LabError, netns_available
from lab.reference_site import SiteLab
from lab.service import ServiceTraffic
from lab.site import Site, load_site


def scenario_site(site: Site, hosts: Sequence[str]) -> Site:
    """``site`` limited to ``hosts`` (all of it when empty); the masters always stay, since
    the cluster's API server runs on the first one.  A single-path entry keeps the listed
    workers that remain, and goes when none does."""
    if not hosts:
        return site
    unknown = set(hosts) - set(site.hosts)
    if unknown:
        raise LabError(f"not hosts of site {site.name}: {', '.join(sorted(unknown))}")
    workers = {name: h for name, h in site.workers.items() if name in hosts}
    single_path = [replace(entry, workers=kept) for entry in site.single_path
                   if (kept := tuple(w for w in entry.workers if w in workers))]
    return replace(site,
                   spines={name: h for name, h in site.spines.items() if name in hosts},
                   workers=workers, single_path=single_path)


def scenario_lab(prefix: str, run_dir: Path, hosts: Sequence[str] = ()) -> SiteLab:
    """The scenario's lab: the reference site (limited to ``hosts``) under ``prefix``."""
    if not prefix:
        raise LabError("a scenario needs a name prefix of its own (the lab has none)")
    return SiteLab(scenario_site(load_site(), hosts), prefix=prefix, run_dir=run_dir)


def create(lab: SiteLab) -> None:
    """What the lab provides before the collection's playbooks run (idempotent)."""
    lab.run_dir.mkdir(parents=True, exist_ok=True)
    lab.build_network()
    if not lab.cluster.api_running():
        lab.cluster.start_api()
    for spine in lab.site.spines.values():
        router = lab.spine_router(spine)
        if "bgpd" not in router.pids():
            router.start("")


def destroy(lab: SiteLab, traffic: ServiceTraffic) -> None:
    """Everything ``create``, the playbooks and the traffic started (idempotent)."""
    traffic.unplumb()
    lab.down()


def check(lab: SiteLab, timeout: float) -> bool:
    """Wait until every verdict of the reference site holds; print them."""
    converged = lab.wait_converged(timeout, "spinelb")
    for verdict in lab.check():
        print(verdict.line())
    return converged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.scenario", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--prefix", required=True, help="namespace name prefix, e.g. mol-site-")
    common.add_argument("--run-dir", type=Path, required=True,
                        help="where the lab's and the playbooks' files go")
    common.add_argument("--host", action="append", default=[],
                        help="a site host to build (repeat; default: every host)")
    common.add_argument("--address", type=IPv4Address, default=IPv4Address("10.102.10.129"),
                        help="the service address of the traffic (default 10.102.10.129)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create", parents=[common], help="namespaces, links, API server, empty FRR")
    sub.add_parser("destroy", parents=[common], help="remove everything of the scenario")
    check_cmd = sub.add_parser("check", parents=[common], help="wait until converged")
    check_cmd.add_argument("--timeout", type=float, default=60)
    traffic_cmd = sub.add_parser("traffic", parents=[common],
                                 help="plumb: client and acceptors; start/stop: the client")
    traffic_cmd.add_argument("action", choices=("plumb", "start", "stop"))
    args = parser.parse_args(argv)

    reason = netns_available()
    if reason:
        print(f"lab.scenario: {reason}", file=sys.stderr)
        return 2
    lab = scenario_lab(args.prefix, args.run_dir.resolve(), args.host)
    traffic = ServiceTraffic(lab, args.address)
    if args.command == "create":
        create(lab)
    elif args.command == "destroy":
        destroy(lab, traffic)
    elif args.command == "check":
        return 0 if check(lab, args.timeout) else 1
    elif args.action == "plumb":
        traffic.plumb()
    elif args.action == "start":
        print(json.dumps({"pid": traffic.start_client()}))
    else:
        report = traffic.stop_client()
        if report is None:
            print("lab.scenario: no client report", file=sys.stderr)
            return 1
        print(json.dumps(report.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
