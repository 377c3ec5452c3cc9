"""The spinelb speaker against BIRD 2, GoBGP 3.10 and ExaBGP 5: every prefix arrives with the
configured attributes, SIGTERM withdraws and closes with our reason, and SIGHUP sends only the
difference without resetting the session.

Each peer's own view (``birdc``, ``gobgp -j``, ExaBGP's JSON API) is turned into one
:class:`SeenRoute` per prefix and compared with what the announcement asked for.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import yaml

from lab import exabgp as exabgp_lab
from lab import gobgp
from lab.bird import BirdRoute, BirdRouter
from lab.exabgp import ExabgpReceiver
from lab.netns import wait_for
from lab.topology import SPINE_ASN, SpeakerHandle, Topology

pytestmark = pytest.mark.interop

WORKER_ASN = 65531
FOUR_OCTET_ASN = 4200000001
FAMILIES = ["ipv4-unicast", "ipv6-unicast"]
V4 = [f"10.93.0.{i}/32" for i in range(1, 51)]
V6 = ["fd00:93::1/128", "fd00:93::2/128"]
SHUTDOWN_TEXT = "spinelb speaker stopping"
WELL_KNOWN = {"no-export": (65535, 65281), "no-advertise": (65535, 65282)}

T = TypeVar("T")


def wait_until(fetch: Callable[[], T], ok: Callable[[T], bool], *, timeout: float, what: str) -> T:
    """Fetch until ``ok(value)`` holds (within ``timeout``) and return that value."""
    seen: list[T] = []

    def check() -> bool:
        value = fetch()
        if ok(value):
            seen.append(value)
            return True
        return False

    wait_for(check, timeout=timeout, what=what)
    return seen[-1]


@dataclass(frozen=True)
class SeenRoute:
    """One route as a peer holds it, in the same terms whichever peer reports it."""

    as_path: tuple[int, ...]
    next_hop: str
    origin: str
    med: int | None
    communities: frozenset[tuple[int, int]]
    large_communities: frozenset[tuple[int, int, int]]


def community(text: str) -> tuple[int, int]:
    if text in WELL_KNOWN:
        return WELL_KNOWN[text]
    high, low = text.split(":")
    return int(high), int(low)


def large_community(text: str) -> tuple[int, int, int]:
    a, b, c = text.split(":")
    return int(a), int(b), int(c)


def expected_routes(announce: list[dict[str, Any]], asn: int, own_v4: str) -> dict[str, SeenRoute]:
    """What an eBGP peer must hold for each announcement (next hop ``self`` is ``own_v4``)."""
    return {
        ann["prefix"]: SeenRoute(
            as_path=(asn,),
            next_hop=ann.get("next_hop", own_v4),
            origin="igp",
            med=ann.get("med"),
            communities=frozenset(community(c) for c in ann.get("communities", [])),
            large_communities=frozenset(large_community(c) for c in ann.get("large_communities", [])),
        )
        for ann in announce
    }


def announcements(topo: Topology) -> list[dict[str, Any]]:
    """Two attribute sets for the /32s (so more than one UPDATE is needed), and /128s with an
    explicit IPv6 next hop over the IPv4 session."""
    half = len(V4) // 2
    return [
        *({"prefix": p, "med": 7, "communities": ["65533:100"], "large_communities": ["65533:1:1"]}
          for p in V4[:half]),
        *({"prefix": p, "communities": ["65533:200", "no-export"],
           "large_communities": ["65533:2:2", "4200000001:3:3"]} for p in V4[half:]),
        *({"prefix": p, "next_hop": topo.worker_v6(0), "med": 70, "communities": ["65533:600"],
           "large_communities": ["65533:6:6"]} for p in V6),
    ]


def times_established(speaker: SpeakerHandle) -> int:
    """How many times the speaker logged its session reaching Established."""
    return len(re.findall(r'"new":"Established"', speaker.log()))


# --- BIRD ---------------------------------------------------------------------------------------


def bird_config(topo: Topology) -> str:
    """A passive BIRD spine for worker 0, both families, exporting its routes to the kernel.

    The protocol time format has milliseconds and no spaces, so ``show protocols`` keeps its
    columns and a session reset shows as a new "since" time.
    """
    return f"""
router id {topo.spine_v4};
timeformat protocol "%F_%T.%3f";
protocol device {{ }}
protocol kernel {{ ipv4 {{ export all; }}; merge paths on; }}
protocol kernel {{ ipv6 {{ export all; }}; merge paths on; }}
protocol bgp w1 {{
    local {topo.spine_v4} as {SPINE_ASN};
    neighbor {topo.worker_v4(0)} as {WORKER_ASN};
    passive on;
    hold time 3;
    ipv4 {{ import all; export none; }};
    ipv6 {{ import all; export none; }};
}}
"""


def bird_seen(route: BirdRoute) -> SeenRoute:
    attrs = route.attributes
    return SeenRoute(
        as_path=tuple(route.as_path),
        next_hop=attrs["BGP.next_hop"],
        origin=attrs["BGP.origin"].lower(),
        med=int(attrs["BGP.med"]) if "BGP.med" in attrs else None,
        communities=frozenset(route.communities),
        large_communities=frozenset(route.large_communities),
    )


def bird_table(router: BirdRouter) -> dict[str, SeenRoute]:
    """Every route BIRD learned from the worker's session ``w1``."""
    return {r.prefix: bird_seen(r) for r in router.routes() if r.protocol == "w1"}


def bird_since(router: BirdRouter) -> str:
    """When BIRD's session ``w1`` last changed state (ms resolution, see :func:`bird_config`)."""
    for line in router.birdc("show", "protocols", "w1").splitlines():
        words = line.split()
        if words and words[0] == "w1":
            return words[4]
    raise KeyError("w1 not in show protocols")


def bird_import_counts(router: BirdRouter, channel: str = "ipv4") -> tuple[int, int]:
    """(updates, withdraws) BIRD received on ``channel`` of ``w1`` since the session came up."""
    text = router.birdc("show", "protocols", "all", "w1")
    section = text.split(f"Channel {channel}", 1)[1]
    updates = re.search(r"Import updates:\s+(\d+)", section)
    withdraws = re.search(r"Import withdraws:\s+(\d+)", section)
    assert updates and withdraws, text
    return int(updates.group(1)), int(withdraws.group(1))


def wait_bird_table(router: BirdRouter, want: dict[str, SeenRoute], what: str) -> dict[str, SeenRoute]:
    """Wait until BIRD holds exactly ``want``'s prefixes (the caller compares attributes)."""
    return wait_until(lambda: bird_table(router), lambda t: t.keys() == want.keys(),
                      timeout=15, what=what)


def test_bird_receives_every_prefix_installs_it_and_loses_it_on_sigterm(
    topology: Callable[..., Topology],
) -> None:
    topo = topology(workers=1)
    router = topo.start_bird(bird_config(topo))
    config = topo.speaker_config(0, families=FAMILIES)
    config["announce"] = announcements(topo)
    speaker = topo.start_speaker(0, config)
    want = expected_routes(config["announce"], WORKER_ASN, topo.worker_v4(0))

    wait_for(lambda: router.protocols().get("w1") == "Established", timeout=15,
             what="BIRD session Established")
    wait_for(lambda: speaker.status()["peers"][0]["state"] == "Established", timeout=5,
             what="speaker session Established")
    table = wait_bird_table(router, want, "all 52 prefixes in BIRD")
    assert table == want

    kernel = wait_until(lambda: {p: topo.spine.route(p) for p in want},
                        lambda routes: all(routes.values()), timeout=5,
                        what="all 52 prefixes in the spine's kernel")
    for prefix, route in kernel.items():
        assert route is not None and route.protocol == "bird", route
        assert route.gateways == {want[prefix].next_hop}, route
    assert speaker.status()["peers"][0]["advertised"] == len(want)

    assert speaker.terminate() == 0
    wait_for(lambda: not bird_table(router), timeout=5, what="routes withdrawn from BIRD")
    detail = router.birdc("show", "protocols", "all", "w1")
    assert "Received: Administrative shutdown" in detail, detail
    assert SHUTDOWN_TEXT in detail, detail
    wait_for(lambda: not any(topo.spine.route(p) for p in want), timeout=5,
             what="routes gone from the spine's kernel")


# --- GoBGP ------------------------------------------------------------------------------------


def gobgp_seen(path: dict[str, Any]) -> SeenRoute:
    attrs = {a["type"]: a for a in path["attrs"]}
    origin = {0: "igp", 1: "egp", 2: "incomplete"}[attrs[1]["value"]]
    as_path = tuple(asn for seg in attrs[2].get("as_paths", []) for asn in seg["asns"])
    next_hop = attrs[3]["nexthop"] if 3 in attrs else attrs[14]["nexthop"]
    communities = frozenset((c >> 16, c & 0xFFFF) for c in attrs.get(8, {}).get("communities", []))
    large = frozenset((c["ASN"], c["LocalData1"], c["LocalData2"])
                      for c in attrs.get(32, {}).get("value", []))
    med = attrs[4]["metric"] if 4 in attrs else None
    return SeenRoute(as_path, next_hop, origin, med, communities, large)


def test_gobgp_receives_every_prefix_from_a_four_octet_as(
    topology: Callable[..., Topology],
) -> None:
    topo = topology(workers=1)
    router = topo.start_gobgp(gobgp.render_config(
        asn=SPINE_ASN, router_id=topo.spine_v4,
        neighbors=[{"address": topo.worker_v4(0), "asn": FOUR_OCTET_ASN, "passive": True,
                    "families": FAMILIES}],
    ))
    config = topo.speaker_config(0, local_asn=FOUR_OCTET_ASN, families=FAMILIES)
    config["announce"] = announcements(topo)
    topo.start_speaker(0, config)
    want = expected_routes(config["announce"], FOUR_OCTET_ASN, topo.worker_v4(0))

    wait_for(lambda: router.neighbors().get(topo.worker_v4(0)) == "established", timeout=15,
             what="GoBGP session established")

    def rib() -> dict[str, list[dict[str, Any]]]:
        return {**router.rib("ipv4"), **router.rib("ipv6")}

    paths = wait_until(rib, lambda r: r.keys() == want.keys(), timeout=15,
                       what="all 52 prefixes in GoBGP's RIB")
    assert {prefix: [gobgp_seen(p) for p in found] for prefix, found in paths.items()} == {
        prefix: [route] for prefix, route in want.items()
    }
    # eBGP: ORIGIN, AS_PATH, NEXT_HOP or MP_REACH, optional MED, communities; no LOCAL_PREF.
    for prefix, found in paths.items():
        types = {a["type"] for a in found[0]["attrs"]}
        hop = 14 if ":" in prefix else 3
        assert types == {1, 2, hop, 8, 32} | ({4} if want[prefix].med is not None else set()), (
            prefix, types)

    (neighbor,) = router.gobgp("neighbor")
    assert neighbor["state"]["peer_asn"] == FOUR_OCTET_ASN
    eor = {(f["state"]["family"]["afi"], f["state"].get("received"),
            f["mp_graceful_restart"]["state"].get("end_of_rib_received"))
           for f in neighbor["afi_safis"]}
    assert eor == {(1, len(V4), True), (2, len(V6), True)}


# --- ExaBGP ------------------------------------------------------------------------------------


@dataclass
class ExabgpLog:
    """ExaBGP's JSON messages for one session, in arrival order, split by kind."""

    announced: list[tuple[int, str, str, SeenRoute]]  # (index, family, prefix, route)
    withdrawn: list[tuple[int, str, str]]  # (index, family, prefix)
    eor: dict[str, int]  # family -> index
    notifications: list[tuple[int, dict[str, Any]]]


def exabgp_log(receiver: ExabgpReceiver) -> ExabgpLog:
    log = ExabgpLog([], [], {}, [])
    for index, message in enumerate(receiver.messages()):
        if message.get("type") == "notification":
            log.notifications.append((index, message["neighbor"]["notification"]))
            continue
        if message.get("type") != "update":
            continue
        body = message["neighbor"]["message"]
        if "eor" in body:
            log.eor[f"{body['eor']['afi']} {body['eor']['safi']}"] = index
            continue
        update = body.get("update", {})
        attrs = update.get("attribute", {})
        for family, by_hop in update.get("announce", {}).items():
            for next_hop, nlris in by_hop.items():
                for nlri in nlris:
                    log.announced.append((index, family, nlri["nlri"], SeenRoute(
                        as_path=tuple(exabgp_lab.as_path(attrs)),
                        next_hop=next_hop,
                        origin=attrs.get("origin", ""),
                        med=attrs.get("med"),
                        communities=frozenset(tuple(c) for c in attrs.get("community", [])),
                        large_communities=frozenset(
                            tuple(c) for c in attrs.get("large-community", [])),
                    )))
                    # eBGP: nothing beyond what the announcement asked for
                    assert set(attrs) <= {"origin", "as-path", "med", "community",
                                          "large-community"}, attrs
        for family, nlris in update.get("withdraw", {}).items():
            log.withdrawn += [(index, family, nlri["nlri"]) for nlri in nlris]
    return log


def test_exabgp_decodes_every_update_end_of_rib_and_the_shutdown(
    topology: Callable[..., Topology],
) -> None:
    topo = topology(workers=1)
    receiver = topo.start_exabgp(exabgp_lab.render_config(
        local_address=topo.spine_v4, local_as=SPINE_ASN, router_id=topo.spine_v4,
        neighbors=[{"address": topo.worker_v4(0), "asn": WORKER_ASN}],
        received_file=topo.run_dir / f"exabgp-{topo.spine.name}.jsonl",
    ))
    config = topo.speaker_config(0, families=FAMILIES)
    config["announce"] = announcements(topo)
    speaker = topo.start_speaker(0, config)
    want = expected_routes(config["announce"], WORKER_ASN, topo.worker_v4(0))

    log = wait_until(lambda: exabgp_log(receiver), lambda g: len(g.eor) == 2, timeout=15,
                     what="End-of-RIB for both families at ExaBGP")
    seen = {prefix: route for _, _, prefix, route in log.announced}
    assert seen == want
    assert len(log.announced) == len(want), "a prefix was announced more than once"
    families = {prefix: family for _, family, prefix, _ in log.announced}
    assert {p for p, f in families.items() if f == "ipv6 unicast"} == set(V6)  # via MP_REACH
    assert {p for p, f in families.items() if f == "ipv4 unicast"} == set(V4)
    for _, family, prefix, _ in log.announced:  # End-of-RIB follows the family's whole table
        assert log.eor[family] > max(i for i, f, _, _ in log.announced if f == family), prefix
    assert not log.withdrawn and not log.notifications

    assert speaker.terminate() == 0
    log = wait_until(lambda: exabgp_log(receiver), lambda g: bool(g.notifications), timeout=5,
                     what="NOTIFICATION at ExaBGP")
    withdrawn = {prefix: family for _, family, prefix in log.withdrawn}
    assert withdrawn == families
    ((cease_at, cease),) = log.notifications
    assert all(index < cease_at for index, _, _ in log.withdrawn), "withdrawals after the Cease"
    assert (cease["code"], cease["subcode"]) == (6, 2), cease
    assert SHUTDOWN_TEXT in cease["message"], cease
    wait_for(lambda: "down" in receiver.states(), timeout=5, what="session down at ExaBGP")


# --- SIGHUP -----------------------------------------------------------------------------------


def test_sighup_sends_only_the_difference_and_a_bad_config_changes_nothing(
    topology: Callable[..., Topology],
) -> None:
    topo = topology(workers=1)
    router = topo.start_bird(bird_config(topo))
    config = topo.speaker_config(0)
    a_prefixes = V4[:10]
    config["announce"] = [{"prefix": p, "communities": ["65533:100"]} for p in a_prefixes]
    speaker = topo.start_speaker(0, config)
    want_a = expected_routes(config["announce"], WORKER_ASN, topo.worker_v4(0))
    wait_for(lambda: router.protocols().get("w1") == "Established", timeout=15,
             what="BIRD session Established")
    assert wait_bird_table(router, want_a, "announcements A in BIRD") == want_a
    since = bird_since(router)
    assert bird_import_counts(router) == (10, 0)

    # B: drop the first three, change the fourth's communities, add three new ones.
    config_b = dict(config)
    config_b["announce"] = [
        {"prefix": V4[3], "communities": ["65533:400"], "large_communities": ["65533:4:4"]},
        *({"prefix": p, "communities": ["65533:100"]} for p in V4[4:10]),
        *({"prefix": p, "communities": ["65533:100"]} for p in V4[20:23]),
    ]
    want_b = expected_routes(config_b["announce"], WORKER_ASN, topo.worker_v4(0))
    speaker.config_path.write_text(yaml.safe_dump(config_b, sort_keys=False))
    speaker.signal(1)  # SIGHUP
    wait_for(lambda: bird_table(router) == want_b, timeout=10, what="announcements B in BIRD")
    wait_for(lambda: bird_import_counts(router) == (14, 3), timeout=5,
             what="BIRD counting 3 added + 1 changed updates and 3 withdraws")
    assert bird_since(router) == since, "the session was reset by the reload"
    assert router.protocols()["w1"] == "Established"
    assert times_established(speaker) == 1
    assert "config reloaded" in speaker.log()

    # A config with an error: refused, logged, and nothing changes.
    bad = dict(config_b)
    bad["peers"] = [{**config_b["peers"][0], "hold_time": 1, "password": "hup-s3cret"}]
    bad["announce"] = [{"prefix": V4[40]}]
    speaker.config_path.write_text(yaml.safe_dump(bad, sort_keys=False))
    speaker.signal(1)
    wait_for(lambda: "config reload refused" in speaker.log(), timeout=5,
             what="the refused reload in the speaker's log")
    log = speaker.log()
    assert "peers[0].hold_time" in log, log[-2000:]
    assert "hup-s3cret" not in log
    deadline = time.monotonic() + 2  # a negative: the running state stays for 2 s
    while time.monotonic() < deadline:
        assert bird_table(router) == want_b
        assert bird_since(router) == since
        time.sleep(0.25)
    assert speaker.alive()
    assert bird_import_counts(router) == (14, 3)
    assert speaker.status()["peers"][0]["state"] == "Established"
    assert {a["prefix"] for a in speaker.status()["announced"]} == set(want_b)
