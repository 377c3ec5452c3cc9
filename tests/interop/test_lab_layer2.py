"""Layer 2 mode on the lab: the CAN's layer2 pool, answered by one speaker, moved in under 2 s.

The lab inventory adds ``lab-layer2`` (10.102.10.192/28 on the CAN, ``mode: layer2``) and the
lab's API server holds a Service using it (lab/layer2.py). Every worker holds the Service's
address on its loopback with an acceptor answering its own name (lab/service.py), with
``arp_ignore=1``/``arp_announce=2`` so the kernel never answers ARP for it: only the owner's
responder does. A client namespace on the CAN bridge connects to it with its own kernel.

The owner is taken out twice, its speaker SIGKILLed and its CAN link taken down; each time a
prober in the client opens a TCP connection every 10 ms, and the time from the fault to the
first one answered by another worker is printed and bounded (2 s; BFD 100 ms x 3 detects in
300 ms). The client's neighbor entry must move to the new owner's MAC without the client
asking: the new owner's responder answered no ARP request meanwhile, so the gratuitous ARP
moved it. The lab's CAN is IPv4 only, so NDP is not exercised here (tests/interop/
test_l2_responder.py does it on a bridge). Runs on the shared converged lab (conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

import pytest

from lab.layer2 import SERVICE_PORT, Answer, gather_statuses, judge, layer2_addresses, layer2_pools
from lab.netns import Namespace, attach, wait_for
from lab.reference_site import SiteLab
from lab.service import PYTHON, ServiceTraffic, failover_result, start_failover_probe
from lab.site import Host
from lab.worker import SpinelbWorker

pytestmark = pytest.mark.interop

CLIENT = "l2client"  # the client namespace is prefix + this; its fabric port CLIENT-can
NETWORK = "can"
BOUND = 2.0  # seconds from the fault to the first connection answered by the new owner

# One connection: print the worker's name (run in the client's namespace).
CONNECT = (
    "import socket, sys\n"
    "with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:\n"
    "    print(s.recv(100).decode().strip())\n"
)

@dataclass
class Layer2Lab:
    """The shared lab with the layer2 Service's address, the acceptors and the client."""

    lab: SiteLab
    address: str
    client: Namespace

    def statuses(self, without: str = "") -> dict[str, Mapping[str, Any] | str]:
        """Every worker's speaker's ``/status`` but ``without``'s."""
        speakers = {}
        for worker in self.lab.site.workers.values():
            handle = self.lab.worker_speaker("spinelb", worker)
            assert isinstance(handle, SpinelbWorker)
            if worker.name != without:
                speakers[worker.name] = (handle.ns, handle.config_path)
        return gather_statuses(speakers)

    def settled(self, without: str = "", timeout: float = 30) -> Answer:
        """The owner, once every speaker (but ``without``, the one taken out) agrees on
        exactly one."""

        def agreed() -> Answer | None:
            answer = judge(self.address, self.statuses(without))
            return None if answer.problem else answer

        found = wait_for(agreed, timeout=timeout, interval=0.1,
                         what=f"one owner of {self.address}")
        assert found is not None
        return found

    def connect(self) -> str:
        """The worker that answered one connection from the client."""
        return self.client.run([str(PYTHON), "-c", CONNECT, self.address,
                                str(SERVICE_PORT)]).strip()

    def neighbor_mac(self) -> str | None:
        """The MAC of the address in the client's neighbor table, or None."""
        entries = json.loads(self.client.ip("-j", "neigh", "show", "to", self.address,
                                            "dev", NETWORK) or "[]")
        macs = [e["lladdr"] for e in entries if e.get("lladdr")]
        return macs[0].lower() if macs else None

    def requests_answered(self, node: str) -> int:
        status = self.statuses()[node]
        assert not isinstance(status, str), status
        return sum(i["requests_answered"] for i in status["layer2"]["interfaces"])

    def worker(self, name: str) -> Host:
        return self.lab.site.workers[name]


def client_address(lab: SiteLab, traffic: ServiceTraffic) -> IPv4Address:
    """A free CAN address: no host's, not in the lab's layer2 pool, not lab/service.py's client."""
    network = lab.site.networks[NETWORK]
    used = {h.addresses.get(NETWORK) for h in lab.site.hosts.values()}
    taken = {traffic.client_address(), *used}
    pools = [p.cidr for p in layer2_pools()] + [p.cidr for p in lab.site.pools.values()]
    return next(a for a in reversed(list(network.cidr.hosts()))
                if a not in taken and not any(a in cidr for cidr in pools))


@pytest.fixture(scope="module")
def l2(healthy_lab: SiteLab) -> Iterator[Layer2Lab]:
    """Acceptors on every worker and a client on the CAN; all removed after the module."""
    lab = healthy_lab
    addresses = layer2_addresses(lab.cluster.items("services"), layer2_pools())
    assert addresses, "the lab's API server has no Service in the layer2 pool"
    traffic = ServiceTraffic(lab, IPv4Address(addresses[0]), port=SERVICE_PORT, network=NETWORK)
    client = lab.ns(CLIENT)
    port = f"{CLIENT}-{NETWORK}"
    try:
        for worker in lab.site.workers.values():
            traffic.start_acceptor(worker)  # arp_ignore=1, arp_announce=2, the address on lo
        client.create()
        prefixlen = lab.site.networks[NETWORK].cidr.prefixlen
        attach(client, NETWORK, lab.fabric, NETWORK, port,
               [f"{client_address(lab, traffic)}/{prefixlen}"])
        yield Layer2Lab(lab, addresses[0], client)
    finally:
        traffic.stop_acceptors()
        client.delete()  # its veth goes with it, and the fabric's end of the pair


def probe(l2: Layer2Lab, old: str) -> subprocess.Popen[str]:
    """Start the prober in the client; return once ``old`` has answered it."""
    return start_failover_probe(l2.client, l2.address, SERVICE_PORT, old)


def took_over(l2: Layer2Lab, proc: subprocess.Popen[str], fault_at: float, old: str,
              asked_before: dict[str, int]) -> float:
    """Check the takeover after a fault at ``fault_at``: the prober's first answer came
    from the new owner, whose MAC the client's neighbor entry has, with no ARP request
    answered meanwhile (a gratuitous ARP moved it); the seconds it took."""
    result = failover_result(proc)
    assert result is not None, f"no worker but {old} answered within 10 s"
    mac = l2.neighbor_mac()
    new = l2.settled(without=old)
    assert new.owner is not None and new.owner != old
    assert result["by"] == new.owner
    assert mac == (new.mac or "").lower()
    assert l2.requests_answered(new.owner) == asked_before[new.owner], (
        "the client asked for the address: no gratuitous ARP moved its entry")
    took = float(result["at"]) - fault_at
    print(f"{old} -> {new.owner} ({new.mac}): first connection {took * 1000:.0f} ms after the "
          f"fault, {result['failed']} failed before it")
    return took


def asked(l2: Layer2Lab) -> dict[str, int]:
    return {name: l2.requests_answered(name) for name in l2.lab.site.workers}


def test_one_speaker_answers_and_the_client_resolves_its_mac(l2: Layer2Lab) -> None:
    owner = l2.settled()
    verdicts = [v for v in l2.lab.check() if v.expectation.startswith("layer2:")]
    assert [v.expectation for v in verdicts] == [
        f"layer2: {l2.address} answered by {owner.owner} ({owner.mac})"]
    assert all(v.ok for v in verdicts)
    assert l2.connect() == owner.owner  # only its MAC receives the traffic
    assert l2.neighbor_mac() == (owner.mac or "").lower()


def test_the_layer2_address_is_never_in_bgp(l2: Layer2Lab) -> None:
    for spine in l2.lab.site.spines.values():
        assert l2.lab.spine_router(spine).bgp_paths(f"{l2.address}/32") == []
        assert not l2.lab.kernel_next_hops(spine, IPv4Address(l2.address))


def test_owner_speaker_sigkill_moves_the_address(l2: Layer2Lab) -> None:
    old = l2.settled()
    assert old.owner is not None
    assert l2.connect() == old.owner
    handle = l2.lab.worker_speaker("spinelb", l2.worker(old.owner))
    assert isinstance(handle, SpinelbWorker)
    child = handle.child_pid()
    assert child is not None
    before = asked(l2)
    proc = probe(l2, old.owner)
    fault_at = time.monotonic()
    os.kill(child, signal.SIGKILL)  # the supervisor starts it again after its backoff
    took = took_over(l2, proc, fault_at, old.owner, before)
    assert took < BOUND
    wait_for(lambda: handle.child_pid() not in (None, child), timeout=30, interval=0.1,
             what=f"the supervisor to restart {old.owner}'s speaker")
    assert l2.lab.wait_converged(60, "spinelb"), l2.lab.show()


def test_owner_can_link_down_moves_the_address(l2: Layer2Lab) -> None:
    old = l2.settled()
    assert old.owner is not None
    assert l2.connect() == old.owner
    ns = l2.lab.ns(l2.worker(old.owner))
    before = asked(l2)
    proc = probe(l2, old.owner)
    fault_at = time.monotonic()
    ns.link_down(NETWORK)
    try:
        took = took_over(l2, proc, fault_at, old.owner, before)
    finally:
        ns.link_up(NETWORK)
    assert took < BOUND
    assert l2.lab.wait_converged(60, "spinelb"), l2.lab.show()
    assert l2.settled().owner == old.owner  # the heaviest node takes its address back
    # and the client follows without asking: the owner announces again once its peers are back
    wait_for(lambda: l2.connect() == old.owner, timeout=10, interval=0.1,
             what=f"the client to reach {old.owner} again")
    assert l2.neighbor_mac() == (old.mac or "").lower()
