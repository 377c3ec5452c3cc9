"""A spine's BGP state from FRR's JSON, captured from the converged lab (tests/golden/frr-bgp)."""

from __future__ import annotations

import json
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

from spinelb.spine.bgp_state import accepted_from, frr_accepted, frr_sessions

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
