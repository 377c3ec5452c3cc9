"""Benchmark: failover of a service address, Layer 2 mode beside BGP mode with BFD.

    .venv/bin/python bench/failover_modes.py [--runs 20] [--json out.json]    # as root

Builds the reference site under ``bfm-`` namespace names with the collection's
``playbooks/site.yml`` (BFD 100 ms x 3 on every BGP session and on the speakers'
Layer 2 mesh, as the lab inventory sets), then measures, N times each, the time
from the death of the node serving an address to the first TCP connection that
another node answers, seen by a client that opens one connection every 10 ms
(0.25 s connect timeout):

- **BGP mode**: TFTP's 10.92.100.60, single path through ncn-w001 (the client on
  the NMN routes the pool through sw-spine-001); the fault: ncn-w001's NMN link
  down. The spines' BFD notices, the route moves to ncn-w002.
- **Layer 2 mode**: the lab's layer2 Service address on the CAN (the client is on
  the CAN itself and resolves it with ARP); the fault: its owner's CAN link down.
  The other speakers' BFD mesh notices, the next owner's responder sends
  gratuitous ARP, the client's kernel follows it.

Every worker answers the addresses with its name (lab/service.py's acceptors), so
the first answer from another worker is the moment service came back. After each
fault the link comes back and the address returns to its first node before the
next run. Prints median, min and max per mode, the ratio Layer 2 / BGP and the
issue's target (Layer 2 under 1 s). Namespaces and processes are removed at the
end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.layer2 import SERVICE_PORT, gather_statuses, judge, layer2_addresses, layer2_pools
from lab.netns import Namespace, attach, wait_for
from lab.reference_site import SiteLab
from lab.service import (
    PYTHON,
    ServiceTraffic,
    failover_result,
    start_failover_probe,
)
from lab.site import load_site
from lab.worker import SpinelbWorker

TARGET = 1.0  # seconds, issue 8: Layer 2 failover, median of 20
TFTP = IPv4Address("10.92.100.60")  # single path: ncn-w001, then ncn-w002
BGP_PORT = 8080
L2_CLIENT = "l2client"

# One connection: the name of the worker that answered (run in a client namespace).
CONNECT = (
    "import socket, sys\n"
    "with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:\n"
    "    print(s.recv(100).decode().strip())\n"
)


def answered_by(client: Namespace, address: str, port: int) -> str:
    return client.run([str(PYTHON), "-c", CONNECT, address, str(port)], check=False).strip()


def layer2_settled(lab: SiteLab, address: str, owner: str) -> bool:
    """Every speaker agrees ``owner`` answers ``address`` and only it does (lab.layer2.judge)."""
    speakers = {}
    for worker in lab.site.workers.values():
        handle = lab.worker_speaker("spinelb", worker)
        assert isinstance(handle, SpinelbWorker)
        speakers[worker.name] = (handle.ns, handle.config_path)
    answer = judge(address, gather_statuses(speakers))
    return not answer.problem and answer.owner == owner


def bgp_settled(lab: SiteLab, address: str, owner: str) -> bool:
    """Both spines' kernels route ``address`` through ``owner`` alone."""
    hop = lab.site.workers[owner].addresses["nmn"]
    return all(lab.kernel_next_hops(spine, IPv4Address(address)) == {hop}
               for spine in lab.site.spines.values())


def failovers(lab: SiteLab, client: Namespace, address: str, port: int, link: str,
              runs: int, settled: Callable[[SiteLab, str, str], bool]) -> list[float]:
    """``runs`` times: the serving worker's ``link`` down, the time to another's answer.

    Before each run the site is settled, not just answering: after the previous run's link
    came back, the speakers' BFD sessions come Up one by one, and a fault before the last one
    would find a node that never gave the address up.
    """
    times = []
    for run in range(runs):
        old = wait_for(lambda: answered_by(client, address, port) or None, timeout=60,
                       interval=0.2, what=f"an answer from {address}")
        assert isinstance(old, str)
        wait_for(partial(settled, lab, address, old), timeout=60, interval=0.2,
                 what=f"{address} settled on {old}")
        ns = lab.ns(lab.site.workers[old])
        proc = start_failover_probe(client, address, port, old)
        fault_at = time.monotonic()
        ns.link_down(link)
        try:
            result = failover_result(proc)
        finally:
            ns.link_up(link)
        if result is None:
            raise SystemExit(f"run {run + 1}: nobody but {old} answered {address} within 10 s")
        took = float(result["at"]) - fault_at
        times.append(took)
        print(f"  {address}: {old} {link} down -> {result['by']} answered after "
              f"{took * 1000:.0f} ms ({result['failed']} failed)", flush=True)
        def back(old: str = old) -> bool:
            return settled(lab, address, old) and answered_by(client, address, port) == old

        wait_for(back, timeout=60, interval=0.2, what=f"{old} to serve {address} again")
    return times


def bgp_mode(lab: SiteLab, runs: int) -> list[float]:
    traffic = ServiceTraffic(lab, TFTP, port=BGP_PORT, network="nmn")
    try:
        traffic.plumb()
        return failovers(lab, traffic.client_ns, str(TFTP), BGP_PORT, "nmn", runs, bgp_settled)
    finally:
        traffic.unplumb()


def layer2_mode(lab: SiteLab, runs: int) -> list[float]:
    addresses = layer2_addresses(lab.cluster.items("services"), layer2_pools())
    if not addresses:
        raise SystemExit("the lab's API server has no Service in a layer2 pool")
    address = addresses[0]
    traffic = ServiceTraffic(lab, IPv4Address(address), port=SERVICE_PORT, network="can")
    client = lab.ns(L2_CLIENT)
    network = lab.site.networks["can"]
    used = {h.addresses.get("can") for h in lab.site.hosts.values()}
    pools = [p.cidr for p in lab.site.pools.values()]
    mine = next(a for a in reversed(list(network.cidr.hosts()))
                if a not in used and not any(a in cidr for cidr in pools))
    try:
        for worker in lab.site.workers.values():
            traffic.start_acceptor(worker)
        client.create()
        attach(client, "can", lab.fabric, "can", f"{L2_CLIENT}-can",
               [f"{mine}/{network.cidr.prefixlen}"])
        return failovers(lab, client, address, SERVICE_PORT, "can", runs, layer2_settled)
    finally:
        traffic.stop_acceptors()
        client.delete()


def summary(name: str, times: list[float]) -> dict[str, float]:
    median = statistics.median(times)
    print(f"{name:>8}: median {median * 1000:.0f} ms, min {min(times) * 1000:.0f}, "
          f"max {max(times) * 1000:.0f} (n={len(times)})")
    return {"median": median, "min": min(times), "max": max(times), "runs": len(times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the lab comes down on kill too
    lab = SiteLab(load_site(), prefix="bfm-", run_dir=Path(tempfile.mkdtemp(prefix="bfm-")))
    try:
        if not lab.up("spinelb", timeout=120):
            print(lab.show())
            return 1
        modes: dict[str, Callable[[SiteLab, int], list[float]]] = {
            "bgp+bfd": bgp_mode, "layer2": layer2_mode}
        results = {}
        for name, measure in modes.items():
            print(f"{name}:", flush=True)
            results[name] = measure(lab, args.runs)
        print()
        report = {name: summary(name, times) for name, times in results.items()}
        ratio = report["layer2"]["median"] / report["bgp+bfd"]["median"]
        inside = TARGET / report["layer2"]["median"]
        print(f"layer2 / bgp+bfd (median): {ratio:.2f}; layer2 target {TARGET:.1f} s: "
              f"{inside:.2f}x inside")
        if args.json:
            args.json.write_text(json.dumps({"modes": report, "ratio": ratio,
                                             "times": results}, indent=2))
        return 0
    finally:
        lab.down()


if __name__ == "__main__":
    raise SystemExit(main())
