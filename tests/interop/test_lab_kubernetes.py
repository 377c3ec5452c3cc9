"""The lab end to end through Kubernetes: kubectl in, ECMP routes in the spines' kernels out.

The reference site runs with its API server (kmock's emulator) and the spinelb
controller in the master's namespace and a spinelb speaker per worker whose
service addresses come only from that API.  Every change here is made with
kubectl, as an operator would, and judged in the spines' kernels.
Runs on the shared converged lab (``scl<pid>-`` names, conftest.py).
"""

from __future__ import annotations

import json
import re
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from lab.netns import wait_for
from lab.reference_site import SiteLab
from lab.site import site_dir

pytestmark = pytest.mark.interop

SEED = site_dir().parent / "seed" / "metallb-bgp-mode.txt"
KEA = IPv4Address("10.92.100.222")
CAN_SERVICE = IPv4Address("10.102.10.129")
NMN_SERVICE = IPv4Address("10.92.100.71")
EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"

NEW_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: e2e-web
  namespace: services
  annotations:
    metallb.universe.tf/address-pool: node-management
spec:
  type: LoadBalancer
  clusterIP: 10.16.0.99
  ports:
  - {port: 8443, nodePort: 30999, protocol: TCP, targetPort: 8443}
  selector:
    app.kubernetes.io/name: e2e-web
"""


@pytest.fixture(scope="module")
def lab(healthy_lab: SiteLab) -> SiteLab:
    """The run's shared converged lab (tests/interop/conftest.py); these tests restore it."""
    return healthy_lab


def hops(lab: SiteLab, address: IPv4Address | str) -> dict[str, set[str]]:
    """Each spine's kernel next hops for ``address``/32."""
    result: dict[str, set[str]] = {}
    for spine in lab.site.spines.values():
        route = lab.ns(spine).route(f"{address}/32")
        result[spine.name] = route.gateways if route else set()
    return result


def on_every_spine(lab: SiteLab, gateways: set[str]) -> dict[str, set[str]]:
    return {name: gateways for name in lab.site.spines}


def workers_on(lab: SiteLab, network: str, names: list[str] | None = None) -> set[str]:
    workers = lab.site.workers
    return {str(workers[n].addresses[network]) for n in names or list(workers)}


def service(lab: SiteLab, namespace: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        lab.cluster.kubectl("get", "service", "-n", namespace, name, "-o", "json"))
    return data


def ingress(obj: dict[str, Any]) -> list[str]:
    return [e["ip"] for e in (obj.get("status") or {}).get("loadBalancer", {}).get("ingress") or []]


@pytest.mark.skipif(not SEED.exists(), reason="needs ../shared/seed (the source document)")
def test_kubectl_shows_the_seed_documents_external_ips(lab: SiteLab) -> None:
    seed = re.search(r"kubectl get service -A \| grep LoadBalancer\n.*?\n(NAMESPACE.*?)\nMetalLB",
                     SEED.read_text(), re.S)
    assert seed is not None
    wanted = [line.replace("*", "").split()[:6] for line in seed.group(1).splitlines()[1:]]
    assert len(wanted) == 8
    output = lab.cluster.kubectl("get", "service", "-A")
    header, *rows = output.splitlines()
    assert header.split()[:6] == ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP",
                                  "PORT(S)"]
    shown = [row.split()[:6] for row in rows if "LoadBalancer" in row]
    for line in wanted:
        assert line in shown
    # the one without a requested address got the first of its pool from the controller
    cmn = next(row for row in shown if row[1] == "istio-ingressgateway-cmn")
    assert cmn[4] == "10.102.5.64"


def test_seed_routes_local_policy_and_new_service_lifecycle(lab: SiteLab) -> None:
    # Local policy: only the worker with the ready endpoint; Cluster: every worker
    assert hops(lab, KEA) == on_every_spine(lab, workers_on(lab, "nmn", ["ncn-w002"]))
    assert hops(lab, CAN_SERVICE) == on_every_spine(lab, workers_on(lab, "can"))

    # a Service created with kubectl: an address from its pool, then 3-way ECMP on both spines
    lab.cluster.kubectl("create", "-f", "-", input_text=NEW_SERVICE)
    address = wait_for(lambda: ingress(service(lab, "services", "e2e-web")), timeout=10,
                       what="e2e-web's address")[0]
    assert IPv4Address(address) in lab.site.pools["node-management"].cidr
    everyone = on_every_spine(lab, workers_on(lab, "nmn"))
    wait_for(lambda: hops(lab, address) == everyone, timeout=10,
             what=f"{address} ECMP via every worker on both spines")
    events = lab.cluster.kubectl("get", "events", "-n", "services")
    assert "IPAllocated" in events

    # excluding ncn-w003 takes it out of every ECMP set; removing the label brings it back
    lab.cluster.kubectl("label", "node", "ncn-w003", f"{EXCLUDE}=")
    two = ["ncn-w001", "ncn-w002"]
    for target, network in ((address, "nmn"), (str(CAN_SERVICE), "can"),
                            (str(NMN_SERVICE), "nmn")):
        want = on_every_spine(lab, workers_on(lab, network, two))
        wait_for(lambda target=target, want=want: hops(lab, target) == want, timeout=10,
                 what=f"{target} without ncn-w003")
    lab.cluster.kubectl("label", "node", "ncn-w003", f"{EXCLUDE}-")
    wait_for(lambda: hops(lab, address) == everyone, timeout=10,
             what=f"{address} with ncn-w003 again")

    # deleting the Service withdraws its route from both spines
    lab.cluster.kubectl("delete", "service", "-n", "services", "e2e-web")
    nothing = {name: set[str]() for name in lab.site.spines}
    wait_for(lambda: hops(lab, address) == nothing, timeout=10,
             what=f"{address} gone from both spines")
    assert all(v.ok for v in lab.check()), lab.show()


def test_lab_kubeconfig_and_kubectl_entry_point(lab: SiteLab) -> None:
    kubeconfig = Path(lab.kubeconfig)
    assert kubeconfig.exists()
    text = kubeconfig.read_text()
    assert f"http://{lab.site.masters['ncn-m001'].addresses['nmn']}:6443" in text
