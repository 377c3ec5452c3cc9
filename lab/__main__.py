"""``python -m lab up|down|show|kubectl``: the reference site in network namespaces."""

from __future__ import annotations

import argparse
import sys

from lab.netns import netns_available
from lab.reference_site import CONVERGE_TIMEOUT, SiteLab
from lab.site import load_site, site_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="build the site with the collection's playbooks and wait")
    up_cmd.add_argument("--speaker", choices=("spinelb", "frr"), default="spinelb",
                        help="what runs on the workers (frr: a stand-in bgpd)")
    up_cmd.add_argument("--timeout", type=float, default=CONVERGE_TIMEOUT,
                        help="seconds to wait for convergence")
    up_cmd.add_argument("--fresh", action="store_true",
                        help="tear down any previous lab first (default: keep what runs, and "
                        "let playbooks/site.yml change only what differs)")
    sub.add_parser("down", help="remove every namespace and process `up` started")
    sub.add_parser("show", help="BGP summaries, kernel routes and verdicts")
    kubectl = sub.add_parser("kubectl", help="kubectl against the lab's API server "
                             "(run inside the master's namespace)")
    kubectl.add_argument("args", nargs=argparse.REMAINDER, help="kubectl's arguments")
    args = parser.parse_args(argv)

    reason = netns_available()
    if reason:
        print(f"lab: {reason}", file=sys.stderr)
        return 2
    lab = SiteLab(load_site())
    if args.command == "kubectl":
        from lab.kube import main as kubectl_main

        return kubectl_main(args.args)
    print(f"site {lab.site.name} from {site_dir()}")
    if args.command == "up":
        return 0 if lab.up(args.speaker, args.timeout, fresh=args.fresh) else 1
    if args.command == "down":
        lab.down()
        print("lab down")
        return 0
    print(lab.show())
    return 0 if all(v.ok for v in lab.check()) else 1


if __name__ == "__main__":
    sys.exit(main())
