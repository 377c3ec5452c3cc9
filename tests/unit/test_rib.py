"""Adj-RIB-Out: packing, differences only, withdrawals, refresh."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_network

from spinelb.bgp import wire
from spinelb.bgp.rib import AdjRibIn, AdjRibOut, PathAttributes
from spinelb.bgp.wire import IPV4_UNICAST, IPV6_UNICAST, MAX_MESSAGE_LEN

ATTRS = PathAttributes(
    (wire.Origin(0), wire.AsPath.sequence(65531)), IPv4Address("10.252.1.10")
)
OTHER = PathAttributes(
    (wire.Origin(0), wire.AsPath.sequence(65531), wire.Communities((65533 << 16 | 100,))),
    IPv4Address("10.252.1.10"),
)
V6 = PathAttributes((wire.Origin(0), wire.AsPath.sequence(65531)), IPv6Address("fd00::10"))


def hosts(n: int, base: str = "10.92.0.0") -> list[wire.Prefix]:
    start = int(IPv4Address(base))
    return [ip_network(f"{IPv4Address(start + i)}/32") for i in range(n)]


def drain(rib: AdjRibOut) -> list[wire.Update]:
    out = []
    while rib.pending():
        for data in rib.take(16384):
            assert len(data) <= MAX_MESSAGE_LEN
            msg = wire.decode_message(data)
            assert isinstance(msg, wire.Update)
            out.append(msg)
    return out


def announced(updates: list[wire.Update]) -> set[wire.Prefix]:
    got: set[wire.Prefix] = set()
    for u in updates:
        got.update(u.nlri)
        for a in u.attributes:
            if isinstance(a, wire.MpReachNlri):
                got.update(a.nlri)
    return got


def withdrawn(updates: list[wire.Update]) -> set[wire.Prefix]:
    got: set[wire.Prefix] = set()
    for u in updates:
        got.update(u.withdrawn)
        for a in u.attributes:
            if isinstance(a, wire.MpUnreachNlri):
                got.update(a.withdrawn)
    return got


def test_prefixes_sharing_attributes_are_packed_into_full_updates() -> None:
    rib = AdjRibOut(families=[IPV4_UNICAST])
    prefixes = hosts(10_000)
    rib.replace(dict.fromkeys(prefixes, ATTRS))
    updates = drain(rib)
    assert announced(updates) == set(prefixes)
    # 5 octets per /32 after 19 + 4 octets of framing and 20 of attributes
    # (ORIGIN 4, AS_PATH 9, NEXT_HOP 7): 810 per 4096-octet UPDATE.
    per_update = (MAX_MESSAGE_LEN - 19 - 4 - 20) // 5
    assert len(updates) == -(-10_000 // per_update) == 13
    assert all(u.attribute(wire.NextHop) == wire.NextHop(IPv4Address("10.252.1.10")) for u in updates)
    assert rib.advertised == 10_000


def test_only_differences_are_sent() -> None:
    rib = AdjRibOut(families=[IPV4_UNICAST])
    a, b, c = hosts(3)
    rib.replace({a: ATTRS, b: ATTRS})
    drain(rib)
    rib.replace({a: ATTRS, b: OTHER, c: ATTRS})
    updates = drain(rib)
    assert announced(updates) == {b, c}
    assert withdrawn(updates) == set()
    rib.replace({a: ATTRS, b: OTHER, c: ATTRS})
    assert not rib.pending()
    rib.replace({c: ATTRS})
    updates = drain(rib)
    assert withdrawn(updates) == {a, b}
    assert announced(updates) == set()
    assert rib.advertised == 1


def test_announce_then_withdraw_before_sending_sends_nothing() -> None:
    rib = AdjRibOut(families=[IPV4_UNICAST])
    (a,) = hosts(1)
    rib.put(a, ATTRS)
    rib.remove(a)
    assert drain(rib) == []


def test_withdraw_all_and_refresh() -> None:
    rib = AdjRibOut(families=[IPV4_UNICAST, IPV6_UNICAST])
    v4 = hosts(5)
    v6 = [ip_network(f"fd00:100::{i}/128") for i in range(1, 4)]
    rib.replace({**dict.fromkeys(v4, ATTRS), **dict.fromkeys(v6, V6)})
    first = drain(rib)
    assert announced(first) == set(v4) | set(v6)
    mp = [a for u in first for a in u.attributes if isinstance(a, wire.MpReachNlri)]
    assert mp and all(a.next_hops[0] == IPv6Address("fd00::10") for a in mp)
    rib.refresh(IPV6_UNICAST)
    assert announced(drain(rib)) == set(v6)
    rib.withdraw_all()
    assert withdrawn(drain(rib)) == set(v4) | set(v6)
    assert rib.advertised == 0


def test_families_not_negotiated_are_never_sent() -> None:
    rib = AdjRibOut(families=[IPV4_UNICAST])
    rib.replace({ip_network("fd00::1/128"): V6, hosts(1)[0]: ATTRS})
    assert announced(drain(rib)) == set(hosts(1))


def test_take_returns_about_max_bytes() -> None:
    rib = AdjRibOut(families=[IPV4_UNICAST])
    rib.replace(dict.fromkeys(hosts(20_000), ATTRS))
    batch = rib.take(16384)
    assert 16384 <= sum(map(len, batch)) < 16384 + MAX_MESSAGE_LEN
    assert rib.pending()


def test_adj_rib_in_tracks_presence_of_both_families() -> None:
    rib_in = AdjRibIn()
    v4 = hosts(3)
    v6 = [ip_network("fd00:92::71/128"), ip_network("fd00:92::/64")]
    rib_in.announce([*v4, *v6])
    rib_in.announce(v4[:1])  # an implicit replace counts once
    assert len(rib_in) == 5
    rib_in.withdraw([v4[0], v6[1], ip_network("10.1.0.0/16")])  # unknown withdrawals are no-ops
    assert set(rib_in) == {v4[1], v4[2], v6[0]}
    assert v4[1] in rib_in and v4[0] not in rib_in and ip_network("0.0.0.0/0") not in rib_in
    # 10.0.0.0/8 and ::a00:0/8-style keys must not collide across families
    rib_in.announce([ip_network("::a5c:0/120")])
    assert ip_network("10.92.0.0/24") not in rib_in
