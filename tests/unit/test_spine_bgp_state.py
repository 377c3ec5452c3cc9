"""A spine's BGP state from FRR's JSON, captured from the converged lab (tests/golden/frr-bgp)."""

from __future__ import annotations

import json
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

from spinelb.spine.bgp_state import (
    accepted_as_data,
    accepted_from,
    aoscx_sessions,
    frr_accepted,
    frr_sessions,
    merge_accepted,
    sessions_as_data,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "frr-bgp"
WORKERS_NMN = {ip_address(a) for a in ("10.252.1.10", "10.252.1.11", "10.252.1.12")}
WORKERS_CMN = {ip_address(a) for a in ("10.102.5.14", "10.102.5.15", "10.102.5.16")}
OTHER_SPINE = ip_address("10.102.5.3")


def golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())


def test_accepted_paths_per_session_keep_the_pools_apart() -> None:
    accepted = frr_accepted(golden("sw-spine-001-bgp-ipv4.json"))
    nmn = accepted_from(accepted, WORKERS_NMN)
    cmn = accepted_from(accepted, WORKERS_CMN)
    # the NMN sessions carry node-management and hardware-management, the CMN ones the rest
    assert {str(p) for p in nmn} == {
        "10.92.100.60/32", "10.92.100.71/32", "10.92.100.222/32", "10.92.100.225/32",
        "10.94.100.60/32", "10.94.100.71/32",
    }
    assert all(p.subnet_of(ip_network("10.102.0.0/16")) for p in cmn)
    assert not nmn & cmn
    # KEA (Local policy) only from ncn-w002; the refusal probes were never accepted
    kea = ip_network("10.92.100.222/32")
    assert {n for n, prefixes in accepted.items() if kea in prefixes} & WORKERS_NMN == {
        ip_address("10.252.1.11")}
    assert all(ip_network("192.0.2.1/32") not in prefixes for prefixes in accepted.values())
    # the other spine's copies arrive over iBGP
    assert accepted[OTHER_SPINE]


def test_sessions_with_state_uptime_and_counts() -> None:
    sessions = frr_sessions(golden("sw-spine-001-summary.json"))
    assert set(sessions) == WORKERS_NMN | WORKERS_CMN | {OTHER_SPINE}
    w001 = sessions[ip_address("10.252.1.10")]
    assert w001.established and w001.vrf == "default" and w001.remote_asn == 65531
    assert w001.description == "ncn-w001-nmn" and w001.accepted == 5
    assert w001.uptime_seconds is not None and w001.uptime_seconds > 0
    assert sessions[ip_address("10.102.5.14")].remote_asn == 65532


def test_a_session_that_is_down_has_no_uptime_and_bad_entries_are_skipped() -> None:
    data = {"default": {"ipv4Unicast": {"peers": {
        "10.252.1.10": {"state": "Active", "peerUptimeMsec": 0, "remoteAs": 65531},
        "swp1": {"state": "Established"},
    }}}}
    [session] = frr_sessions(data).values()
    assert session.state == "Active" and session.uptime_seconds is None
    routes = {"routes": {"10.0.0.1/32": [{"peerId": "(unspec)"},
                                         {"peerId": "10.252.1.10", "valid": False}],
                         "nonsense": [{"peerId": "10.252.1.10"}]}}
    assert frr_accepted(routes) == {}


def test_aoscx_neighbors_give_state_asn_and_description_and_skip_peer_groups() -> None:
    data = {
        "10.252.1.10": {"remote_as": 65531, "description": "ncn-w001-nmn",
                        "status": {"bgp_peer_state": "Established"}},
        "10.252.1.11": {"remote_as": 65531, "status": {"bgp_peer_state": "Active"}},
        "10.252.1.12": {"remote_as": "65531"},  # not started yet: no status
        "fd00%3A%3A1": {"status": {"bgp_peer_state": "Established"}},
        "nmn-workers": {"is_peer_group": True},
        "1/1/1": {"status": {"bgp_peer_state": "Established"}},
    }
    sessions = aoscx_sessions(data, "CSM")
    assert set(sessions) == {ip_address(a) for a in (
        "10.252.1.10", "10.252.1.11", "10.252.1.12", "fd00::1")}
    w001 = sessions[ip_address("10.252.1.10")]
    assert w001.established and w001.vrf == "CSM" and w001.remote_asn == 65531
    assert w001.description == "ncn-w001-nmn"
    # AOS-CX documents neither an uptime nor a prefix count: unknown, not zero
    assert w001.uptime_seconds is None and w001.accepted is None
    assert sessions[ip_address("10.252.1.11")].state == "Active"
    w003 = sessions[ip_address("10.252.1.12")]
    assert w003.state == "Idle" and w003.remote_asn is None


def test_accepted_paths_merge_across_vrfs_and_become_sorted_plain_data() -> None:
    accepted = frr_accepted(golden("sw-spine-001-bgp-ipv4.json"))
    leak = {ip_address("10.252.1.12"): {ip_network("198.51.100.7/32")},
            ip_address("fd00::7"): {ip_network("fd00:92::1/128")}}
    merged = merge_accepted([accepted, leak])
    data = accepted_as_data(merged)
    assert list(data)[-1] == "fd00::7"  # IPv4 neighbors first
    assert data["10.252.1.12"][-1] == "198.51.100.7/32"
    assert set(data["10.252.1.12"]) == {str(p) for p in accepted[ip_address("10.252.1.12")]} | {
        "198.51.100.7/32"}
    assert all(values == sorted(values, key=lambda t: ip_network(t)) for values in data.values())
    # the parts are left as they were
    assert ip_network("198.51.100.7/32") not in accepted[ip_address("10.252.1.12")]


def test_sessions_as_data_keep_every_field_by_neighbor_address() -> None:
    data = sessions_as_data(frr_sessions(golden("sw-spine-001-summary.json")))
    assert data["10.102.5.3"] == {"state": "Established", "vrf": "default",
                                  "uptime_seconds": 13.0, "remote_asn": 65533,
                                  "description": "sw-spine-002", "accepted": 16}
    assert list(data) == sorted(data, key=ip_address)
