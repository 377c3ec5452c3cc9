"""ExaBGP as an independent oracle: it must read what we encode the way we meant it.

Runs ``exabgp decode HEX`` (ExaBGP 5 in the project's virtualenv) on messages
from our encoder and compares the fields of its JSON with ours.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from spinelb.bgp.wire import (
    AS_TRANS,
    AsPath,
    Communities,
    FourOctetAs,
    GracefulRestart,
    GracefulRestartFamily,
    LargeCommunities,
    LargeCommunity,
    LocalPref,
    Message,
    MpReachNlri,
    MpUnreachNlri,
    MultiExitDisc,
    Multiprotocol,
    NextHop,
    Open,
    Origin,
    OriginValue,
    RouteRefreshCapability,
    Update,
    encode,
)

_EXABGP = Path(sys.executable).with_name("exabgp")
EXABGP = str(_EXABGP) if _EXABGP.exists() else shutil.which("exabgp")

pytestmark = pytest.mark.skipif(
    EXABGP is None, reason="exabgp (PyPI exabgp 5) is not installed next to this Python"
)


def exabgp_decode(msg: Message) -> dict[str, Any]:
    assert EXABGP is not None
    result = subprocess.run(
        [EXABGP, "decode", encode(msg).hex()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"exabgp could not decode: {result.stdout}{result.stderr}"
    decoded: dict[str, Any] = json.loads(lines[-1])
    return decoded


def test_exabgp_reads_our_ipv4_update() -> None:
    msg = Update(
        attributes=(
            Origin(OriginValue.INCOMPLETE),
            AsPath.sequence(65001, 4_200_000_000),
            NextHop(IPv4Address("10.252.1.10")),
            MultiExitDisc(50),
            LocalPref(200),
            Communities((0xFFFD0064,)),
            LargeCommunities((LargeCommunity(65533, 1, 2),)),
        ),
        nlri=(IPv4Network("10.102.10.129/32"), IPv4Network("10.102.0.0/16")),
    )
    update = exabgp_decode(msg)["neighbor"]["message"]["update"]
    attrs = update["attribute"]
    assert attrs["origin"] == "incomplete"
    assert attrs["as-path"]["0"] == {"element": "as-sequence", "value": [65001, 4_200_000_000]}
    assert attrs["med"] == 50
    assert attrs["local-preference"] == 200
    assert attrs["community"] == [[65533, 100]]
    assert attrs["large-community"] == [[65533, 1, 2]]
    announced = update["announce"]["ipv4 unicast"]["10.252.1.10"]
    assert [n["nlri"] for n in announced] == ["10.102.10.129/32", "10.102.0.0/16"]


def test_exabgp_reads_our_ipv6_update_and_withdrawal() -> None:
    msg = Update(
        attributes=(
            MpReachNlri(
                2,
                1,
                (IPv6Address("2001:db8::a"), IPv6Address("fe80::1")),
                (IPv6Network("2001:db8:100::1/128"), IPv6Network("2001:db8:200::/48")),
            ),
            Origin(),
            AsPath.sequence(65001),
        )
    )
    update = exabgp_decode(msg)["neighbor"]["message"]["update"]
    announced = update["announce"]["ipv6 unicast"]["2001:db8::a"]
    assert [n["nlri"] for n in announced] == ["2001:db8:100::1/128", "2001:db8:200::/48"]
    assert update["attribute"]["origin"] == "igp"

    withdrawal = Update(attributes=(MpUnreachNlri(2, 1, (IPv6Network("2001:db8:100::1/128"),)),))
    withdrawn = exabgp_decode(withdrawal)["neighbor"]["message"]["update"]["withdraw"]
    assert withdrawn == {"ipv6 unicast": [{"nlri": "2001:db8:100::1/128"}]}


def test_exabgp_reads_our_open() -> None:
    msg = Open(
        AS_TRANS,
        90,
        IPv4Address("10.252.1.10"),
        (
            Multiprotocol(1, 1),
            Multiprotocol(2, 1),
            RouteRefreshCapability(),
            FourOctetAs(4_200_000_000),
            GracefulRestart(120, False, False, (GracefulRestartFamily(1, 1),)),
        ),
    )
    opened = exabgp_decode(msg)["neighbor"]["open"]
    assert (opened["version"], opened["asn"], opened["hold_time"]) == (4, AS_TRANS, 90)
    assert opened["router_id"] == "10.252.1.10"
    caps = opened["capabilities"]
    assert caps["1"]["families"] == ["ipv4/unicast", "ipv6/unicast"]
    assert caps["2"]["name"] == "route-refresh"
    assert caps["65"]["asn4"] == 4_200_000_000
    assert caps["64"]["time"] == 120
    assert list(caps["64"]["address-family-flags"]) == ["ipv4/unicast"]
