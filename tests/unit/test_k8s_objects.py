"""Reading Services, Nodes and EndpointSlices: MetalLB's annotations as CSM's manifests use them."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import yaml

from spinelb.k8s.objects import (
    EXCLUDE_LABEL,
    node_info,
    owned,
    service_info,
    slice_info,
)

SITE = Path(__file__).resolve().parents[3] / "shared" / "reference-site"


def svc(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "LoadBalancer", "ports": [{"port": 53, "protocol": "UDP"}]}
    body.update(spec)
    return {"metadata": {"name": "dns", "namespace": "services", "uid": "u1",
                         "annotations": annotations or {}},
            "spec": body}


@pytest.mark.skipif(not (SITE / "services.yaml").exists(),
                    reason="needs ../shared/reference-site (the yardstick site) beside the repo")
def test_reference_site_services_read_as_csm_means_them() -> None:
    docs = [d for d in yaml.safe_load_all((SITE / "services.yaml").read_text()) if d]
    infos = {info.key: info for info in map(service_info, docs)}
    s3 = infos["ceph-rgw/cray-s3"]
    assert s3.requested == (ip_address("10.102.10.129"),)
    assert s3.pool == "customer-access"
    assert s3.ports == {("TCP", 8080)}
    assert s3.families == (4,) and not s3.local and s3.problems == ()
    assert infos["istio-system/istio-ingressgateway-cmn"].requested == ()
    assert infos["services/cray-dhcp-kea-udp-nmn"].local
    udp, tcp = infos["services/cray-dns-unbound-udp-nmn"], infos["services/cray-dns-unbound-tcp-nmn"]
    assert udp.sharing_key == tcp.sharing_key == "cray-dns-unbound-nmn"
    assert udp.requested == tcp.requested == (ip_address("10.92.100.225"),)
    assert all(owned(info, None) for info in infos.values())


def test_annotation_prefixes_and_requested_addresses() -> None:
    old = service_info(svc({"metallb.universe.tf/loadBalancerIPs": "10.0.0.1, fd00::1",
                            "metallb.universe.tf/address-pool": "p"}))
    new = service_info(svc({"metallb.io/loadBalancerIPs": "10.0.0.1,fd00::1",
                            "metallb.io/address-pool": "p",
                            "metallb.io/allow-shared-ip": "k"}))
    assert old.requested == new.requested == (ip_address("10.0.0.1"), ip_address("fd00::1"))
    assert old.families == (4, 6)  # no ipFamilies: what was requested
    assert old.pool == new.pool == "p"
    assert new.sharing_key == "k" and old.sharing_key is None


def test_unusable_values_are_problems_naming_field_and_value() -> None:
    info = service_info(svc({"metallb.io/loadBalancerIPs": "10.0.0.1,bogus"},
                            loadBalancerIP="10.0.0.2", ipFamilies=["IPv5"]))
    assert info.requested == (ip_address("10.0.0.1"),)
    assert info.problems == (
        "annotation metallb.io/loadBalancerIPs: 'bogus' is not an IP address",
        "spec.loadBalancerIP '10.0.0.2' and annotation metallb.io/loadBalancerIPs "
        "'10.0.0.1,bogus' disagree",
        "spec.ipFamilies: 'IPv5' is not IPv4 or IPv6",
    )


def test_families_follow_the_family_policy() -> None:
    dual = service_info(svc(ipFamilies=["IPv6", "IPv4"], ipFamilyPolicy="RequireDualStack"))
    assert dual.families == (6, 4) and dual.require_all_families
    prefer = service_info(svc(ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="PreferDualStack"))
    assert prefer.families == (4, 6) and not prefer.require_all_families
    single = service_info(svc(ipFamilies=["IPv4", "IPv6"]))
    assert single.families == (4,)
    assert service_info(svc()).families == (4,)


def test_status_ingress_and_ownership() -> None:
    obj = svc(loadBalancerClass="other.io/lb")
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}, {"hostname": "x"}]}}
    info = service_info(obj)
    assert info.ingress == (ip_address("10.0.0.9"),)
    assert not owned(info, None) and owned(info, "other.io/lb")
    assert not owned(service_info(svc(type="ClusterIP")), None)
    obj = svc()
    obj["metadata"]["deletionTimestamp"] = "2026-11-26T10:00:00Z"
    assert not owned(service_info(obj), None)


def test_node_readiness_and_exclusion() -> None:
    def node(status: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        return {"metadata": {"name": "ncn-w003", "labels": labels or {}},
                "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                          {"type": "Ready", "status": status}]}}

    assert node_info(node("True")).ready
    assert not node_info(node("Unknown")).ready
    assert node_info(node("True", {EXCLUDE_LABEL: ""})).excluded
    assert not node_info({"metadata": {"name": "bare"}}).ready


def test_endpoint_slice_ready_nodes() -> None:
    obj = {
        "metadata": {"name": "kea-abcde", "namespace": "services",
                     "labels": {"kubernetes.io/service-name": "cray-dhcp-kea-udp-nmn"}},
        "endpoints": [
            {"addresses": ["10.40.0.12"], "conditions": {"ready": True}, "nodeName": "ncn-w002"},
            {"addresses": ["10.40.0.13"], "conditions": {"ready": False}, "nodeName": "ncn-w001"},
            {"addresses": ["10.40.0.14"], "conditions": {"ready": True, "terminating": True},
             "nodeName": "ncn-w003"},
            {"addresses": ["10.40.0.15"], "nodeName": "ncn-w004"},  # absent ready: ready
            {"addresses": ["10.40.0.16"], "conditions": {"ready": True}},  # no node
        ],
    }
    info = slice_info(obj)
    assert info.service_key == "services/cray-dhcp-kea-udp-nmn"
    assert info.ready_nodes == {"ncn-w002", "ncn-w004"}
    assert slice_info({"metadata": {"name": "x"}}).service_key is None
