"""Property tests: decode(encode(x)) == x for generated messages of every type.

UPDATEs round-trip on 4-octet sessions and, through AS_TRANS plus AS4_PATH /
AS4_AGGREGATOR, on 2-octet sessions.  Attributes are generated in the
encoder's canonical order (MP_REACH/MP_UNREACH first, then by type code),
which is the order the decoder returns them in.
"""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from spinelb.bgp.wire import (
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SEQUENCE,
    AS_SET,
    Aggregator,
    AsPath,
    AsPathSegment,
    AtomicAggregate,
    BgpError,
    ClusterList,
    Communities,
    ExtendedCommunities,
    FourOctetAs,
    GracefulRestart,
    GracefulRestartFamily,
    Keepalive,
    LargeCommunities,
    LargeCommunity,
    LocalPref,
    Message,
    MessageReader,
    MpReachNlri,
    MpUnreachNlri,
    MultiExitDisc,
    Multiprotocol,
    NextHop,
    Notification,
    Open,
    Origin,
    OriginatorId,
    PathAttribute,
    RouteRefresh,
    RouteRefreshCapability,
    UnknownAttribute,
    UnknownCapability,
    Update,
    decode,
    decode_message,
    encode,
    shutdown_data,
    shutdown_reason,
)

settings.register_profile("wire", max_examples=150, deadline=None)
settings.load_profile("wire")

u32 = st.integers(0, 2**32 - 1)
asn = st.integers(1, 2**32 - 1)
ipv4 = st.builds(IPv4Address, u32)
host4 = st.builds(IPv4Address, st.integers(0x01000000, 0xDFFFFFFF)).filter(
    lambda a: not a.is_loopback
)
ipv6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))


@st.composite
def prefix4(draw: st.DrawFn) -> IPv4Network:
    length = draw(st.integers(0, 32))
    return IPv4Network((draw(u32), length), strict=False)


@st.composite
def prefix6(draw: st.DrawFn) -> IPv6Network:
    length = draw(st.integers(0, 128))
    return IPv6Network((draw(st.integers(0, 2**128 - 1)), length), strict=False)


segment = st.builds(
    AsPathSegment,
    st.sampled_from([AS_SEQUENCE, AS_SET]),
    st.lists(asn, min_size=1, max_size=8).map(tuple),
)
confed_segment = st.builds(
    AsPathSegment,
    st.sampled_from([AS_CONFED_SEQUENCE, AS_CONFED_SET]),
    st.lists(asn, min_size=1, max_size=4).map(tuple),
)
# confederation segments only lead the path, as RFC 5065 puts them
as_path = st.builds(
    lambda confed, rest: AsPath(tuple(confed + rest)),
    st.lists(confed_segment, max_size=1),
    st.lists(segment, max_size=4),
)

KNOWN_TYPES = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32}


@st.composite
def mp_reach(draw: st.DrawFn) -> MpReachNlri:
    if draw(st.booleans()):
        hops = draw(st.sampled_from([1, 2]))
        next_hops: tuple[IPv4Address | IPv6Address, ...] = tuple(
            draw(st.lists(ipv6, min_size=hops, max_size=hops))
        )
        return MpReachNlri(2, 1, next_hops, tuple(draw(st.lists(prefix6(), max_size=20))))
    return MpReachNlri(1, 1, (draw(ipv4),), tuple(draw(st.lists(prefix4(), max_size=20))))


@st.composite
def mp_unreach(draw: st.DrawFn) -> MpUnreachNlri:
    if draw(st.booleans()):
        return MpUnreachNlri(2, 1, tuple(draw(st.lists(prefix6(), max_size=20))))
    return MpUnreachNlri(1, 1, tuple(draw(st.lists(prefix4(), max_size=20))))


ATTRIBUTE_STRATEGIES: dict[int, st.SearchStrategy[PathAttribute]] = {
    14: mp_reach(),
    15: mp_unreach(),
    1: st.builds(Origin, st.integers(0, 2)),
    2: as_path,
    3: st.builds(NextHop, host4),
    4: st.builds(MultiExitDisc, u32),
    5: st.builds(LocalPref, u32),
    6: st.just(AtomicAggregate()),
    7: st.builds(Aggregator, asn, ipv4),
    8: st.builds(Communities, st.lists(u32, min_size=1, max_size=10).map(tuple)),
    9: st.builds(OriginatorId, ipv4),
    10: st.builds(ClusterList, st.lists(ipv4, min_size=1, max_size=4).map(tuple)),
    16: st.builds(
        ExtendedCommunities, st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4).map(tuple)
    ),
    32: st.builds(
        LargeCommunities,
        st.lists(st.builds(LargeCommunity, u32, u32, u32), min_size=1, max_size=5).map(tuple),
    ),
}


@st.composite
def update(draw: st.DrawFn) -> Update:
    chosen = draw(st.sets(st.sampled_from(sorted(ATTRIBUTE_STRATEGIES))))
    nlri = tuple(draw(st.lists(prefix4(), max_size=30)))
    # keep the UPDATE well-formed: reachable NLRI need ORIGIN and AS_PATH (and NEXT_HOP)
    if nlri or 14 in chosen:
        chosen |= {1, 2}
    if nlri:
        chosen.add(3)
    attrs = [draw(ATTRIBUTE_STRATEGIES[code]) for code in (14, 15) if code in chosen]
    attrs += [draw(ATTRIBUTE_STRATEGIES[code]) for code in sorted(chosen) if code not in (14, 15)]
    unknown_types = draw(
        st.sets(st.integers(11, 254).filter(lambda t: t not in KNOWN_TYPES), max_size=2)
    )
    for code in sorted(unknown_types):
        flags = draw(st.sampled_from([0x80, 0xC0, 0xE0]))
        attrs.append(UnknownAttribute(flags, code, draw(st.binary(max_size=300))))
    attrs.sort(key=lambda a: _code(a))
    return Update(
        withdrawn=tuple(draw(st.lists(prefix4(), max_size=30))),
        attributes=tuple(attrs),
        nlri=nlri,
    )


def _code(attr: PathAttribute) -> int:
    if isinstance(attr, UnknownAttribute):
        return attr.type
    order = {
        MpReachNlri: -2,
        MpUnreachNlri: -1,
        Origin: 1,
        AsPath: 2,
        NextHop: 3,
        MultiExitDisc: 4,
        LocalPref: 5,
        AtomicAggregate: 6,
        Aggregator: 7,
        Communities: 8,
        OriginatorId: 9,
        ClusterList: 10,
        ExtendedCommunities: 16,
        LargeCommunities: 32,
    }
    return order[type(attr)]


capability = st.one_of(
    st.builds(Multiprotocol, st.integers(0, 65535), st.integers(0, 255)),
    st.just(RouteRefreshCapability()),
    st.builds(
        GracefulRestart,
        st.integers(0, 4095),
        st.booleans(),
        st.booleans(),
        st.lists(
            st.builds(
                GracefulRestartFamily, st.integers(0, 65535), st.integers(0, 255), st.booleans()
            ),
            max_size=4,
        ).map(tuple),
    ),
    st.builds(FourOctetAs, asn),
    st.builds(
        UnknownCapability,
        st.integers(0, 255).filter(lambda c: c not in (1, 2, 64, 65)),
        st.binary(max_size=40),
    ),
)

open_message = st.builds(
    Open,
    st.integers(1, 65535),
    st.one_of(st.just(0), st.integers(3, 65535)),
    st.builds(IPv4Address, st.integers(1, 2**32 - 2)),
    st.lists(capability, max_size=12).map(tuple),
)

message = st.one_of(
    open_message,
    update(),
    st.builds(Notification, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=64)),
    st.just(Keepalive()),
    st.builds(RouteRefresh, st.integers(0, 65535), st.integers(0, 255), st.integers(0, 255)),
)


def _fits(data: bytes) -> bool:
    return len(data) <= 4096


@given(message)
def test_roundtrip_four_octet_session(msg: Message) -> None:
    try:
        data = encode(msg)
    except ValueError:
        assert isinstance(msg, Update)  # only a generated UPDATE can exceed 4096 octets
        return
    decoded = decode_message(data)
    assert decoded == msg
    if isinstance(decoded, Update):
        assert not decoded.treat_as_withdraw and not decoded.discarded, decoded.errors


@given(update())
def test_roundtrip_two_octet_session(msg: Update) -> None:
    # 4-octet confederation member ASNs cannot reach an OLD speaker (RFC 6793 has no AS4 form)
    path = msg.attribute(AsPath)
    assume(
        not isinstance(path, AsPath)
        or all(
            asn <= 0xFFFF
            for s in path.segments
            if s.type in (AS_CONFED_SEQUENCE, AS_CONFED_SET)
            for asn in s.asns
        )
    )
    # RFC 6793 4.2.3: an AGGREGATOR AS other than AS_TRANS means an OLD speaker aggregated,
    # and the receiver then ignores AS4_PATH; such paths cannot survive the trip.
    aggregator = msg.attribute(Aggregator)
    assume(not isinstance(aggregator, Aggregator) or aggregator.asn in range(0x10000, 2**32))
    try:
        data = encode(msg, asn4=False)
    except ValueError:
        return
    decoded = decode_message(data, asn4=False)
    assert isinstance(decoded, Update)
    assert decoded == msg, decoded.errors
    assert not decoded.treat_as_withdraw and not decoded.discarded, decoded.errors


@given(st.lists(message, min_size=1, max_size=5), st.integers(1, 300))
def test_reader_reassembles_any_chunking(msgs: list[Message], chunk: int) -> None:
    encoded = []
    for msg in msgs:
        try:
            encoded.append(encode(msg))
        except ValueError:
            continue
    stream = b"".join(encoded)
    reader = MessageReader()
    got = []
    for start in range(0, len(stream), chunk):
        reader.feed(stream[start : start + chunk])
        got.extend(decode(t, body) for t, body in reader.messages())
    assert got == [decode_message(data) for data in encoded]


@given(st.text(max_size=300))
def test_shutdown_communication_roundtrip(reason: str) -> None:
    data = shutdown_data(reason)
    assert len(data) <= 256
    decoded = shutdown_reason(data)
    assert decoded is not None
    assert reason.startswith(decoded)
    if len(reason.encode()) <= 255:
        assert decoded == reason


@given(st.binary(max_size=200))
def test_garbage_update_bodies_never_crash(body: bytes) -> None:
    """Whatever arrives, the decoder returns an Update or raises BgpError, nothing else."""
    for asn4 in (True, False):
        with contextlib.suppress(BgpError):
            decode(2, body, asn4=asn4)


@given(st.binary(max_size=100))
def test_garbage_open_bodies_never_crash(body: bytes) -> None:
    with contextlib.suppress(BgpError):
        decode(1, body)
