"""Fuzzing the BGP message decoder: whatever the bytes, only BgpError escapes, and each outcome
is one the RFCs prescribe for that message type.

Inputs reach deep: valid OPEN/UPDATE/NOTIFICATION/KEEPALIVE/ROUTE-REFRESH messages built with
the wire module's own encoders (UPDATEs carrying every attribute it knows), and the corpus in
``tests/fuzz_corpus/``, are mutated at the attribute and capability level (duplicate, reflag,
relength, drop, insert) and at the byte level (flip, overwrite, truncate, extend, lying length
fields); the header length is usually fixed up so most inputs pass the header check.

The oracle is independent of the decoder: a reference walk over the attribute list applies the
RFC 7606 section 7 table (lengths, flags, duplicates, overruns, missing well-known attributes)
and says which outcome is required (session reset, treat-as-withdraw, attribute discard); every
NOTIFICATION must be one RFC 4271 6 / RFC 7313 5 allow for the message type, with the data the
RFC asks for; whatever decodes cleanly encodes back to the same message.

CI runs a bounded number of examples (about 20 s in all).  A long local campaign:
``SPINELB_FUZZ_EXAMPLES=200000 .venv/bin/pytest tests/unit/test_fuzz_wire.py``.  A failure
hypothesis finds is minimised; add it to the corpus as a ``.hex`` file (see the README there)
with the outcome the RFCs prescribe, and fix the decoder.
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass, field, replace
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinelb.bgp import fsm, wire
from spinelb.bgp.wire import (
    HEADER_LEN,
    MARKER,
    BgpError,
    Message,
    MessageReader,
    MessageType,
    Open,
    Update,
    decode_message,
    decode_open,
    encode,
    encode_open,
    encode_path_attributes,
    encode_update_body,
    frame,
)

CORPUS_DIR = Path(__file__).resolve().parents[1] / "fuzz_corpus"
_LONG_RUN = int(os.environ.get("SPINELB_FUZZ_EXAMPLES", "0"))
# a long campaign runs for as long as it takes: no per-test timeout (pytest-timeout's 0)
pytestmark = [pytest.mark.timeout(0)] if _LONG_RUN else []


def fuzz_settings(ci_examples: int) -> settings:
    """``ci_examples`` in CI; SPINELB_FUZZ_EXAMPLES raises it for a long local campaign."""
    return settings(
        max_examples=_LONG_RUN or ci_examples,
        deadline=timedelta(milliseconds=500),  # a 4 KiB message decodes in well under 10 ms
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- the oracle: what the RFCs allow -------------------------------------------------------------

# message type -> error code -> subcodes a decoder may send (RFC 4271 6.1-6.3 as RFC 7606 revises
# them: an UPDATE resets only for inconsistent lengths (3/1), a repeated or malformed
# MP_REACH/MP_UNREACH (3/1, 3/4, 3/5, 3/9), an unrecognised well-known attribute (3/2) or NLRI
# that cannot be parsed (3/10); RFC 7313 5 for ROUTE-REFRESH).  Header errors (1/*) apply to all.
ALLOWED: dict[int, dict[int, frozenset[int]]] = {
    MessageType.OPEN: {1: frozenset({2}), 2: frozenset({0, 1, 2, 3, 4, 6, 7})},
    MessageType.UPDATE: {1: frozenset({2}), 3: frozenset({1, 2, 4, 5, 9, 10})},
    MessageType.NOTIFICATION: {1: frozenset({2})},
    MessageType.KEEPALIVE: {1: frozenset({2})},
    MessageType.ROUTE_REFRESH: {1: frozenset({2}), 7: frozenset({1})},
}
KNOWN_ATTRIBUTES = frozenset(int(t) for t in wire.AttrType)
# RFC 7606 section 7 (and RFC 6793 6, RFC 8092 6): the approach per attribute, and its flags.
WITHDRAW, DISCARD, RESET = "treat-as-withdraw", "attribute discard", "session reset"
WELL_KNOWN, OPT, OPT_TRANS = 0x40, 0x80, 0xC0
RFC7606: dict[int, tuple[int, str]] = {
    1: (WELL_KNOWN, WITHDRAW), 2: (WELL_KNOWN, WITHDRAW), 3: (WELL_KNOWN, WITHDRAW),
    4: (OPT, WITHDRAW), 5: (WELL_KNOWN, WITHDRAW), 6: (WELL_KNOWN, DISCARD),
    7: (OPT_TRANS, DISCARD), 8: (OPT_TRANS, WITHDRAW), 9: (OPT, WITHDRAW), 10: (OPT, WITHDRAW),
    14: (OPT, RESET), 15: (OPT, RESET), 16: (OPT_TRANS, WITHDRAW), 17: (OPT_TRANS, DISCARD),
    18: (OPT_TRANS, DISCARD), 32: (OPT_TRANS, WITHDRAW),
}


def length_is_malformed(code: int, length: int, asn4: bool) -> bool:
    """RFC 7606 section 7's length rules, attribute by attribute."""
    if code == 1:
        return length != 1
    if code in (3, 4, 5, 9):
        return length != 4
    if code == 6:
        return length != 0
    if code in (7, 18):
        return length != (8 if asn4 or code == 18 else 6)
    if code in (8, 10):
        return length == 0 or length % 4 != 0
    if code == 16:
        return length == 0 or length % 8 != 0
    if code == 32:
        return length == 0 or length % 12 != 0
    if code == 17:
        return length < 6 or length % 2 != 0  # RFC 6793 6
    return False  # AS_PATH, MP_REACH/MP_UNREACH: malformed by content, not length


def as_path_is_malformed(value: bytes, width: int) -> bool:
    """RFC 7606 7.2 and RFC 7607: segments of a known type, not empty, not overrunning, no AS 0."""
    pos = 0
    while pos < len(value):
        if len(value) - pos < 2:
            return True
        kind, count = value[pos], value[pos + 1]
        end = pos + 2 + count * width
        if kind not in (1, 2, 3, 4) or count == 0 or end > len(value):
            return True
        if any(not any(value[i : i + width]) for i in range(pos + 2, end, width)):
            return True
        pos = end
    return False


def reference_prefixes(data: bytes) -> list[tuple[int, int]] | None:
    """Reference IPv4 NLRI parse (RFC 4271 4.3): (masked address, length) pairs, or None if a
    length exceeds 32 or an entry overruns the field."""
    out, pos = [], 0
    while pos < len(data):
        length = data[pos]
        octets = (length + 7) // 8
        if length > 32 or pos + 1 + octets > len(data):
            return None
        address = int.from_bytes(data[pos + 1 : pos + 1 + octets].ljust(4, b"\0"), "big")
        out.append((address & (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF, length))
        pos += 1 + octets
    return out


@dataclass
class Expected:
    """What the RFCs require of one UPDATE body, from a walk that does not use the decoder."""

    reset: tuple[int, int] | None = None  # the first reset the walk meets, (code, subcode)
    withdraw: bool = False
    discard: set[int] = field(default_factory=set)
    raw_attributes: list[bytes] = field(default_factory=list)
    duplicated: set[int] = field(default_factory=set)
    withdrawn: list[tuple[int, int]] = field(default_factory=list)
    nlri: list[tuple[int, int]] = field(default_factory=list)


def expected_update(body: bytes, asn4: bool) -> Expected:
    """Apply RFC 4271 6.3 / RFC 7606 3, 4, 5.3 and 7 to an UPDATE body, independently."""
    out = Expected()
    end = len(body)
    withdrawn_length = int.from_bytes(body[:2], "big")
    if withdrawn_length + 4 > end:
        out.reset = (3, 1)
        return out
    attrs_start = withdrawn_length + 4
    attrs_end = attrs_start + int.from_bytes(body[attrs_start - 2 : attrs_start], "big")
    if attrs_end > end:
        out.reset = (3, 1)
        return out
    nlri = body[attrs_end:]
    withdrawn = reference_prefixes(body[2 : attrs_start - 2])
    reachable_prefixes = reference_prefixes(nlri)
    if withdrawn is None or reachable_prefixes is None:
        out.reset = (3, 10)
        return out
    out.withdrawn, out.nlri = withdrawn, reachable_prefixes
    seen: set[int] = set()
    mp_reach_family: tuple[int, int] | None = None
    pos = attrs_start
    while pos < attrs_end:
        header = 4 if body[pos] & 0x10 else 3
        if attrs_end - pos < header:
            out.withdraw = True  # RFC 7606 4: header overruns
            break
        flags, code = body[pos], body[pos + 1]
        length = int.from_bytes(body[pos + 2 : pos + header], "big")
        if pos + header + length > attrs_end:
            out.withdraw = True  # RFC 7606 4: value overruns
            break
        out.raw_attributes.append(body[pos : pos + header + length])
        pos += header + length
        if code in seen:
            if code in (14, 15):
                out.reset = out.reset or (3, 1)  # RFC 7606 3.g
            else:
                out.duplicated.add(code)
                out.discard.add(code)
            continue
        seen.add(code)
        value = body[pos - length : pos]
        if code == 14 and length >= 3:
            mp_reach_family = (int.from_bytes(value[:2], "big"), value[2])
        if code not in RFC7606:
            if not flags & OPT:
                out.reset = out.reset or (3, 2)
            continue
        if asn4 and code in (17, 18):
            out.discard.add(code)  # RFC 6793 6: ignored from a NEW speaker
            continue
        want_flags, approach = RFC7606[code]
        wrong_flags = (flags & OPT_TRANS) != want_flags or bool(
            flags & 0x20 and want_flags != OPT_TRANS
        )
        malformed = wrong_flags or length_is_malformed(code, length, asn4)
        if code == 1 and not malformed:
            malformed = value[0] > 2  # RFC 7606 7.1: undefined ORIGIN
        if code in (2, 17) and not malformed:
            malformed = as_path_is_malformed(value, 4 if asn4 or code == 17 else 2)
        if code == 3 and not malformed:  # RFC 7606 7.3, RFC 4271 6.3: not a host address
            malformed = value[0] in (0, 127) or value[0] >= 224
        if malformed and approach != RESET:
            if approach == WITHDRAW:
                out.withdraw = True
            else:
                out.discard.add(code)
    # RFC 4760 3: an MP_REACH of a family we do not carry is ignored, so it needs nothing
    reachable = bool(nlri) or mp_reach_family in {(1, 1), (1, 2), (2, 1), (2, 2)}
    if (reachable and not {1, 2} <= seen) or (nlri and 3 not in seen):
        out.withdraw = True  # RFC 7606 3.d
    return out


def check_error(data: bytes, err: BgpError, *, asn4: bool) -> None:
    """The NOTIFICATION is one the RFCs allow for this message, with the data they ask for."""
    code, subcode, payload = err.code, err.subcode, err.data
    assert isinstance(payload, bytes)
    if code == 1:
        assert subcode in (1, 2, 3), err
        if subcode == 1:
            assert data[:16] != MARKER and payload == b""
        elif subcode == 2:  # RFC 4271 6.1: the erroneous Length field
            assert len(payload) == 2
            if len(data) >= HEADER_LEN:
                assert payload == data[16:18]
        else:
            assert payload == data[18:19] and data[18] not in ALLOWED
        return
    msg_type = data[18]
    assert subcode in ALLOWED[msg_type].get(code, frozenset()), (msg_type, code, subcode, err)
    if (code, subcode) == (2, 1):
        assert payload == b"\x00\x04"  # the version we speak
    elif code == 7:
        assert payload in (data, b"")  # RFC 7313 5: the whole message
    elif code == 3:
        check_update_reset(data[HEADER_LEN:], err, asn4=asn4)
    else:
        assert payload == b""


def check_update_reset(body: bytes, err: BgpError, *, asn4: bool) -> None:
    """Every UPDATE reset has a cause the reference walk sees, and carries the right data."""
    expected = expected_update(body, asn4)
    if err.subcode == 2:  # an unrecognised well-known attribute, quoted whole
        assert err.data in expected.raw_attributes
        assert not err.data[0] & OPT and err.data[1] not in KNOWN_ATTRIBUTES
    elif err.subcode in (4, 5, 9):  # a malformed MP_REACH/MP_UNREACH, quoted whole
        assert err.data in expected.raw_attributes and err.data[1] in (14, 15), err
    elif err.subcode == 1:
        assert expected.reset == (3, 1), err
        assert err.data == b""
    else:
        assert err.data == b""


def check_update(body: bytes, update: Update, *, asn4: bool) -> None:
    """A decoded UPDATE did what RFC 7606 requires and nothing it forbids."""
    expected = expected_update(body, asn4)
    assert expected.reset is None, f"{expected.reset} required, got {update}"
    # the prefixes are intact whatever happened to the attributes (RFC 7606 2: treat-as-withdraw
    # needs them to withdraw)
    assert [(int(p.network_address), p.prefixlen) for p in update.nlri] == expected.nlri
    assert [(int(p.network_address), p.prefixlen) for p in update.withdrawn] == expected.withdrawn
    if expected.withdraw:
        assert update.treat_as_withdraw, update.errors
    assert expected.discard <= set(update.discarded), (expected.discard, update.errors)
    # only attribute-discard attributes and later copies are ever discarded
    assert set(update.discarded) <= {6, 7, 17, 18} | expected.duplicated, update.errors
    codes = [attribute_code(attr) for attr in update.attributes]
    assert len(codes) == len(set(codes)), "one attribute of each type"


def attribute_code(attr: wire.PathAttribute) -> int | str:
    return attr.type if isinstance(attr, wire.UnknownAttribute) else type(attr).__name__


def check_open(msg: Open) -> None:
    """An OPEN that decodes passed RFC 4271 6.2's checks (and RFC 7607's, RFC 6286's)."""
    assert msg.version == 4
    assert msg.my_as != 0 and msg.asn != 0
    assert msg.hold_time not in (1, 2)
    assert int(msg.bgp_id) not in (0, 0xFFFFFFFF)


def check_round_trip(msg: Message) -> None:
    """What decodes without any RFC 7606 action encodes back to the same message."""
    if isinstance(msg, Open):
        assert decode_open(encode_open(msg)) == msg
        return
    if isinstance(msg, Update) and (msg.treat_as_withdraw or msg.discarded):
        return
    again = decode_message(encode(msg))
    if isinstance(msg, Update) and isinstance(again, Update):  # the encoder orders attributes
        assert sorted(map(repr, again.attributes)) == sorted(map(repr, msg.attributes))
        again = replace(again, attributes=msg.attributes)
    assert again == msg


def outcome(data: bytes, *, asn4: bool = True) -> Message | BgpError:
    """Decode one message; only BgpError may escape, and it must be an allowed one."""
    try:
        msg = decode_message(data, asn4=asn4)
    except BgpError as err:
        check_error(data, err, asn4=asn4)
        return err
    if isinstance(msg, Update):
        check_update(data[HEADER_LEN:], msg, asn4=asn4)
    if isinstance(msg, Open):
        check_open(msg)
    if asn4:
        check_round_trip(msg)
    return msg


# --- the corpus: tests/fuzz_corpus/*.hex ------------------------------------------------------------


@dataclass(frozen=True)
class CorpusEntry:
    name: str
    what: str
    expect: str
    asn4: bool
    data: bytes


def read_corpus_file(path: Path) -> CorpusEntry:
    """``# what it is`` lines, ``# expect: ...``, optional ``# asn4: no``, then hex (``#`` comments)."""
    comments, hex_parts = [], []
    for line in path.read_text().splitlines():
        text, _, comment = line.partition("#")
        hex_parts.append(text)
        if not text.strip() and comment:
            comments.append(comment.strip())
    keys = dict(c.split(": ", 1) for c in comments if c.startswith(("expect: ", "asn4: ")))
    what = " ".join(c for c in comments if not c.startswith(("expect: ", "asn4: ")))
    return CorpusEntry(
        path.stem, what, keys["expect"], keys.get("asn4", "yes") == "yes",
        bytes.fromhex("".join(hex_parts)),
    )


CORPUS = [read_corpus_file(p) for p in sorted(CORPUS_DIR.glob("*.hex"))]


def test_corpus_is_there() -> None:
    assert len(CORPUS) >= 40
    assert all(entry.what and entry.expect for entry in CORPUS)


@pytest.mark.parametrize("entry", CORPUS, ids=[e.name for e in CORPUS])
def test_corpus_entry_has_its_prescribed_outcome(entry: CorpusEntry) -> None:
    result = outcome(entry.data, asn4=entry.asn4)
    kind, _, arg = entry.expect.partition(" ")
    if kind == "reset":
        assert isinstance(result, BgpError), result
        code_subcode, _, data = arg.partition(" data ")
        assert f"{result.code}/{result.subcode}" == code_subcode, result
        if data:
            assert result.data == bytes.fromhex(data)
        return
    assert not isinstance(result, BgpError), f"{result.code}/{result.subcode} {result}"
    update = result if isinstance(result, Update) else Update()
    if kind == "ok":
        assert not update.treat_as_withdraw and not update.discarded, update.errors
    elif kind == "treat-as-withdraw":
        assert update.treat_as_withdraw, update
    elif kind == "discard":
        assert not update.treat_as_withdraw, update.errors
        assert sorted(set(update.discarded)) == sorted(int(c) for c in arg.split(",")), update
    else:
        raise AssertionError(f"unknown expectation {entry.expect!r}")


# --- strategies: valid messages from the encoders ------------------------------------------------

asns = st.one_of(st.sampled_from([1, 23456, 64512, 65535, 65536, 2**32 - 1]),
                 st.integers(1, 2**32 - 1))
hosts4 = st.integers(0x01000000, 0xDFFFFFFF).filter(lambda a: a >> 24 != 127).map(IPv4Address)
hosts6 = st.integers(1, 2**128 - 1).map(IPv6Address)
prefixes4 = st.builds(
    lambda a, n: IPv4Network((a >> (32 - n) << (32 - n) if n else 0, n)),
    st.integers(0, 2**32 - 1), st.integers(0, 32))
prefixes6 = st.builds(
    lambda a, n: IPv6Network((a >> (128 - n) << (128 - n) if n else 0, n)),
    st.integers(0, 2**128 - 1), st.integers(0, 128))
u32 = st.integers(0, 2**32 - 1)
segments = st.builds(
    wire.AsPathSegment, st.sampled_from([1, 2, 3, 4]), st.lists(asns, min_size=1, max_size=8)
    .map(tuple))
mp_reach = st.one_of(
    st.builds(lambda hop, nlri: wire.MpReachNlri(1, 1, (hop,), tuple(nlri)),
              hosts4, st.lists(prefixes4, max_size=5)),
    st.builds(lambda hops, nlri: wire.MpReachNlri(2, 1, tuple(hops), tuple(nlri)),
              st.lists(hosts6, min_size=1, max_size=2), st.lists(prefixes6, max_size=5)),
)
mp_unreach = st.one_of(
    st.builds(lambda nlri: wire.MpUnreachNlri(1, 1, tuple(nlri)), st.lists(prefixes4, max_size=5)),
    st.builds(lambda nlri: wire.MpUnreachNlri(2, 1, tuple(nlri)), st.lists(prefixes6, max_size=5)),
)
unknown_attributes = st.builds(
    wire.UnknownAttribute, st.sampled_from([0x80, 0xC0, 0xE0]),
    st.integers(0, 255).filter(lambda c: c not in KNOWN_ATTRIBUTES), st.binary(max_size=300))
path_attributes = st.one_of(
    st.builds(wire.Origin, st.integers(0, 2)),
    st.builds(wire.AsPath, st.lists(segments, max_size=3).map(tuple)),
    st.builds(wire.NextHop, hosts4),
    st.builds(wire.MultiExitDisc, u32),
    st.builds(wire.LocalPref, u32),
    st.just(wire.AtomicAggregate()),
    st.builds(wire.Aggregator, asns, hosts4),
    st.builds(wire.Communities, st.lists(u32, max_size=6).map(tuple)),
    st.builds(wire.OriginatorId, hosts4),
    st.builds(wire.ClusterList, st.lists(hosts4, max_size=4).map(tuple)),
    st.builds(wire.ExtendedCommunities, st.lists(st.integers(0, 2**64 - 1), max_size=4).map(tuple)),
    st.builds(wire.LargeCommunities, st.lists(
        st.builds(wire.LargeCommunity, u32, u32, u32), max_size=3).map(tuple)),
    mp_reach,
    mp_unreach,
    unknown_attributes,
)
capabilities = st.one_of(
    st.builds(wire.Multiprotocol, st.sampled_from([1, 2, 25, 16388]), st.sampled_from([1, 2, 4, 70])),
    st.just(wire.RouteRefreshCapability()),
    st.builds(wire.GracefulRestart, st.integers(0, 4095), st.booleans(), st.booleans(),
              st.lists(st.builds(wire.GracefulRestartFamily, st.sampled_from([1, 2]),
                                 st.sampled_from([1, 2]), st.booleans()), max_size=3).map(tuple)),
    st.builds(wire.FourOctetAs, asns),
    st.builds(wire.UnknownCapability, st.integers(0, 255).filter(
        lambda c: c not in (1, 2, 64, 65)), st.binary(max_size=40)),
)


@st.composite
def mostly(draw: st.DrawFn, valid: st.SearchStrategy[int], edges: list[int]) -> int:
    """A valid value nine times in ten, else an edge case: deep inputs, and the edges too.

    (``one_of`` would not do: Hypothesis favours the edge branch far beyond its share.)"""
    if draw(st.integers(0, 9)) == 9:
        return draw(st.sampled_from(edges))
    return draw(valid)


boundary_octets = st.sampled_from(
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 31, 32, 33, 64, 127, 128, 129, 255])
octets = st.one_of(boundary_octets, st.integers(0, 255))


def rarely(draw: st.DrawFn) -> bool:
    """True one time in ten (an explicit draw: Hypothesis weighs ``one_of`` branches unevenly)."""
    return draw(st.integers(0, 9)) == 9


def sized(draw: st.DrawFn, n: int) -> bytes:
    """``n`` octets, or now and then a few more or fewer (a field that lies about its size)."""
    if rarely(draw):
        n = max(0, n + draw(st.integers(-3, 3)))
    return draw(st.binary(min_size=n, max_size=n))


@st.composite
def raw_nlri(draw: st.DrawFn) -> bytes:
    """NLRI entries, now and then with a length octet past 32 (33, 129, 255...), and usually the
    octets the length implies."""
    lengths = draw(st.lists(st.integers(0, 32), max_size=4))
    if lengths and rarely(draw):
        lengths[-1] = draw(octets)
    return b"".join(bytes((length,)) + sized(draw, (length + 7) // 8) for length in lengths)


@st.composite
def raw_as_path(draw: st.DrawFn, width: int) -> bytes:
    """AS_PATH segments, now and then of an unknown type, empty, or overrunning; AS 0 and
    AS_TRANS included."""
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from([0, 5])) if rarely(draw) else draw(st.integers(1, 4))
        count = draw(st.sampled_from([0, 0, 5, 255])) if rarely(draw) else draw(st.integers(1, 4))
        asns = b"".join(
            draw(st.sampled_from([bytes(width), (23456).to_bytes(width, "big")]))
            if rarely(draw) else draw(st.integers(1, 2 ** (8 * width) - 1)).to_bytes(width, "big")
            for _ in range(min(count, 8)))
        out += bytes((kind, count)) + asns
    return out


@st.composite
def raw_mp(draw: st.DrawFn, reach: bool) -> bytes:
    """MP_REACH/MP_UNREACH values: any AFI/SAFI, next hop lengths 0-255, raw NLRI."""
    head = struct.pack("!HB", draw(st.sampled_from([1, 2, 3, 25, 0xFFFF])),
                       draw(st.sampled_from([1, 2, 4, 70, 128, 255])))
    if reach:
        hop_length = draw(st.one_of(st.sampled_from([0, 4, 16, 32]), octets))
        head += bytes((hop_length,)) + sized(draw, min(hop_length, 40)) + bytes((draw(octets),))
    return head + draw(raw_nlri())


def raw_value(draw: st.DrawFn, code: int, asn4: bool = True) -> bytes:
    """An attribute value shaped like what ``code`` expects, but with anything in it."""
    if code == 1 and draw(st.booleans()):
        return bytes((draw(st.sampled_from([0, 1, 2, 3, 255])),))
    if code == 3 and draw(st.booleans()):  # RFC 4271 6.3: not a host address, or one
        return bytes((draw(st.sampled_from([0, 10, 126, 127, 128, 223, 224, 240, 255])), 0, 0, 1))
    if code in (2, 17):
        return draw(raw_as_path(4 if asn4 or code == 17 else 2))
    if code in (14, 15):
        return draw(raw_mp(code == 14))
    return sized(draw, draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16, 24])))


@st.composite
def update_bodies(draw: st.DrawFn) -> bytes:
    """An UPDATE body from encoded attributes, mutated attribute by attribute."""
    asn4 = draw(st.booleans())
    attrs = draw(st.lists(path_attributes, max_size=10, unique_by=type))
    blobs: list[bytearray] = []
    for attr in attrs:
        try:
            encoded = encode_path_attributes([attr], asn4=asn4)
        except ValueError:
            continue
        blobs.extend(split_attributes(encoded))
    for _ in range(draw(st.integers(0, 4))):
        blobs = mutate_attributes(draw, blobs)
    withdrawn, nlri = (draw(st.one_of(
        st.lists(prefixes4, max_size=5).map(wire.encode_nlri), raw_nlri())) for _ in range(2))
    return encode_update_body(withdrawn, b"".join(blobs), nlri)


def split_attributes(data: bytes) -> list[bytearray]:
    """Split a valid Path Attributes field into its attributes."""
    out, pos = [], 0
    while pos < len(data):
        header = 4 if data[pos] & 0x10 else 3
        length = int.from_bytes(data[pos + 2 : pos + header], "big")
        out.append(bytearray(data[pos : pos + header + length]))
        pos += header + length
    return out


def mutate_attributes(draw: st.DrawFn, blobs: list[bytearray]) -> list[bytearray]:
    """One attribute-level mutation: duplicate, reflag, relength, drop, cut, insert, reorder."""
    kind = draw(st.sampled_from(["duplicate", "flags", "length", "drop", "cut", "insert",
                                 "insert", "insert", "swap"]))
    if kind == "insert" or not blobs:
        # mostly a known attribute with its right flags and a value of a telling length: the
        # ground RFC 7606 section 7 covers; sometimes anything at all
        code = draw(st.one_of(st.sampled_from(sorted(KNOWN_ATTRIBUTES)), st.integers(0, 255)))
        right = RFC7606[code][0] if code in RFC7606 else OPT_TRANS
        flags = draw(st.one_of(st.sampled_from([right, right, right | 0x10]),
                               st.sampled_from([0x40, 0x80, 0xC0, 0xE0, 0x00, 0x20, 0xFF])))
        value = raw_value(draw, code)
        raw = bytes((flags, code)) + (
            len(value).to_bytes(2, "big") if flags & 0x10 else bytes((len(value),))) + value
        at = draw(st.integers(0, len(blobs)))
        return [*blobs[:at], bytearray(raw), *blobs[at:]]
    i = draw(st.integers(0, len(blobs) - 1))
    blob = bytearray(blobs[i])
    if kind == "duplicate":
        return [*blobs[: i + 1], blob, *blobs[i + 1 :]]
    if kind == "drop":
        return blobs[:i] + blobs[i + 1 :]
    if kind == "cut":  # what is left of a header: this attribute is the field's last
        return [*blobs[:i], *blobs[i + 1 :], blob[: draw(st.integers(1, 3))]]
    if kind == "swap":
        j = draw(st.integers(0, len(blobs) - 1))
        blobs = list(blobs)
        blobs[i], blobs[j] = blobs[j], blobs[i]
        return blobs
    if kind == "flags":
        blob[0] = draw(st.integers(0, 255))
    elif len(blob) >= 3:  # a lying length octet (or the low octet of an extended length)
        blob[3 if blob[0] & 0x10 and len(blob) > 3 else 2] = draw(st.integers(0, 255))
    return [*blobs[:i], blob, *blobs[i + 1 :]]


@st.composite
def open_bodies(draw: st.DrawFn) -> bytes:
    """An OPEN body with capabilities, possibly repeated, and edge-case header fields."""
    caps = draw(st.lists(capabilities, max_size=8))
    repeat = draw(st.booleans())
    if caps and repeat:
        caps += [draw(st.sampled_from(caps))] * draw(st.integers(1, 4))  # repeated capabilities
    if draw(st.integers(0, 9)) == 0:  # enough to need RFC 9072 extended parameters
        caps += [wire.UnknownCapability(200, bytes(40))] * 7
    msg = Open(draw(mostly(st.integers(1, 65535), [0, 23456, 65535])),
               draw(mostly(st.sampled_from([0, 3, 90, 180, 65535]), [1, 2])),
               IPv4Address(draw(mostly(st.integers(1, 2**32 - 2), [0, 2**32 - 1]))),
               tuple(caps), draw(mostly(st.just(4), [0, 3, 5, 255])))
    if draw(st.integers(0, 2)) == 0:
        return encode_open(msg)[:9] + draw(raw_parameters())
    return encode_open(msg)


@st.composite
def raw_parameters(draw: st.DrawFn) -> bytes:
    """Optional parameters (RFC 5492, or RFC 9072 extended) holding capabilities of any code
    and length; the lengths usually add up, so the capability decoder is reached."""
    extended = draw(st.integers(0, 4)) == 0
    params = b""
    for _ in range(draw(st.integers(0, 4))):
        caps = b""
        for _ in range(draw(st.integers(0, 4))):
            code = draw(st.one_of(st.sampled_from([1, 2, 64, 65, 6, 70, 73]), octets))
            right = {1: 4, 2: 0, 64: 2 + 4 * draw(st.integers(0, 2)), 65: 4}.get(code, 3)
            size = draw(st.one_of(st.just(right), st.just(right), st.integers(0, 12)))
            value = sized(draw, size)
            caps += bytes((code, size if draw(st.integers(0, 5)) else len(value) & 0xFF)) + value
        kind = draw(st.sampled_from([2, 2, 2, 2, 2, 1, 3, 255]))
        size = len(caps) if draw(st.integers(0, 5)) else draw(octets)
        params += bytes((kind,)) + size.to_bytes(2 if extended else 1, "big") + caps
    params += draw(st.sampled_from([b"", b"", b"", b"\x02", b"\x02\x00"]))  # a cut-off header
    if extended:
        return b"\xff\xff" + len(params).to_bytes(2, "big") + params
    return bytes((len(params) & 0xFF if draw(st.integers(0, 5)) else draw(octets),)) + params


other_bodies = st.one_of(
    st.tuples(st.just(3), st.builds(lambda c, s, d: bytes((c, s)) + d,
                                    st.integers(0, 255), st.integers(0, 255), st.binary(max_size=30))),
    st.tuples(st.just(4), st.just(b"")),
    st.tuples(st.just(5), st.builds(lambda a, t, s: struct.pack("!HBB", a, t, s),
                                    st.sampled_from([1, 2, 25]), st.integers(0, 3),
                                    st.sampled_from([1, 2, 128]))),
)


def mutate_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """Byte-level mutations of a body: flip, overwrite, truncate, extend, insert, delete."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "set", "u16", "truncate", "extend", "insert", "delete"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "flip" and out:
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and out:
            out[at] = draw(boundary_octets)
        elif kind == "u16" and len(out) >= 2:
            at = min(at, len(out) - 2)
            out[at : at + 2] = draw(st.sampled_from([0, 1, 4, 0xFF, 0x100, 0xFFFF])).to_bytes(2, "big")
        elif kind == "truncate":
            del out[at:]
        elif kind == "extend":
            out += draw(st.binary(min_size=1, max_size=16))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 8))]
    return bytes(out)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A whole message: mostly well-framed, its body from the encoders or the corpus, mutated."""
    source = draw(st.sampled_from(["update", "update", "update", "open", "open", "other", "corpus"]))
    if source == "update":
        msg_type, body = 2, draw(update_bodies())
    elif source == "open":
        msg_type, body = 1, draw(open_bodies())
    elif source == "other":
        msg_type, body = draw(other_bodies)
    else:
        entry = draw(st.sampled_from(CORPUS))
        msg_type, body = entry.data[18] if len(entry.data) > 18 else 2, entry.data[HEADER_LEN:]
    body = mutate_bytes(draw, body)[: wire.MAX_MESSAGE_LEN - HEADER_LEN]
    header = bytearray(MARKER + (HEADER_LEN + len(body)).to_bytes(2, "big") + bytes((msg_type,)))
    damage = draw(st.integers(0, 19))
    if damage == 0:
        header[16:18] = draw(st.integers(0, 65535)).to_bytes(2, "big")
    elif damage == 1:
        header[draw(st.integers(0, 18))] = draw(st.integers(0, 255))
    return bytes(header) + body


# --- the properties ----------------------------------------------------------------------------------


@fuzz_settings(2500)
@given(messages(), st.booleans())
def test_any_message_decodes_or_gets_a_prescribed_notification(data: bytes, asn4: bool) -> None:
    outcome(data, asn4=asn4)


@st.composite
def rfc7606_updates(draw: st.DrawFn) -> tuple[bytes, bool]:
    """The RFC 7606 section 7 table, walked directly: a valid UPDATE plus one or two attributes
    of a known type with right or wrong flags and a value of a telling length."""
    asn4 = draw(st.booleans())
    codes = draw(st.lists(st.sampled_from(sorted(RFC7606)), min_size=1, max_size=2, unique=True))
    mandatory: dict[int, wire.PathAttribute] = {
        1: wire.Origin(0), 2: wire.AsPath.sequence(65002), 3: wire.NextHop(IPv4Address("10.0.0.1"))}
    base = split_attributes(encode_path_attributes(
        [attr for code, attr in mandatory.items() if code not in codes], asn4=asn4))
    for code in codes:
        flags = RFC7606[code][0] | draw(st.sampled_from([0, 0x10]))
        if rarely(draw):
            flags ^= draw(st.sampled_from([0x80, 0x40, 0x20]))
        value = raw_value(draw, code, asn4)
        length = len(value).to_bytes(2, "big") if flags & 0x10 else bytes((len(value) & 0xFF,))
        # usually after the base attributes, so it is the first of its type
        at = draw(st.integers(0, len(base))) if rarely(draw) else len(base)
        base.insert(at, bytearray(bytes((flags, code)) + length + value))
    if rarely(draw):
        base.append(draw(st.sampled_from(base)))  # RFC 7606 3.g
    if rarely(draw):  # RFC 7606 4: what is left of a header at the end of the field
        base.append(draw(st.sampled_from(base))[: draw(st.integers(1, 3))])
    nlri = draw(st.one_of(st.lists(prefixes4, max_size=3).map(wire.encode_nlri), raw_nlri()))
    body = encode_update_body(b"", b"".join(base), nlri)
    return frame(2, body[: wire.MAX_MESSAGE_LEN - HEADER_LEN]), asn4


@fuzz_settings(1600)
@given(rfc7606_updates())
def test_rfc7606_table_outcomes(case: tuple[bytes, bool]) -> None:
    data, asn4 = case
    outcome(data, asn4=asn4)


@fuzz_settings(300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_as_another_exception(data: bytes) -> None:
    outcome(data)
    outcome(MARKER + (HEADER_LEN + len(data)).to_bytes(2, "big") + data)  # a valid header, then noise


@fuzz_settings(400)
@given(st.lists(messages(), min_size=1, max_size=6), st.data())
def test_the_stream_framer_splits_the_same_whatever_the_segmentation(
    stream: list[bytes], cuts_from: st.DataObject
) -> None:
    """Reads end anywhere: mostly next to a header or message boundary, where a splitter errs."""
    data = b"".join(stream)
    whole = drain(MessageReader(), [data])
    near: set[int] = set()
    start = 0
    for message in stream:
        for edge in (start, start + 18, start + HEADER_LEN, start + len(message)):
            near.update(p for p in (edge - 1, edge, edge + 1) if 0 < p < len(data))
        start += len(message)
    cuts = cuts_from.draw(st.one_of(
        st.sets(st.sampled_from(sorted(near))) if near else st.just(set[int]()),
        st.sets(st.integers(1, max(len(data) - 1, 1)), max_size=40),
        st.just(set(range(1, len(data)))),  # one octet per read
    ))
    edges = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    chunks = [data[a:b] for a, b in pairwise(edges)]
    assert drain(MessageReader(), chunks) == whole
    for msg_type, body in whole[0]:
        outcome(frame(msg_type, body))


def session_in(state: fsm.State) -> fsm.Session:
    """A session machine in OpenSent or Established, IPv4 and IPv6 negotiated."""
    local = fsm.SessionSettings(local_asn=65001, peer_asn=65002, router_id=IPv4Address("192.0.2.1"),
                                families=(wire.IPV4_UNICAST, wire.IPV6_UNICAST))
    session = fsm.Session(local, rng=random.Random(1))
    session.start(0.0)
    session.handle(fsm.Event.TCP_CR_ACKED, 0.0)
    if state is fsm.State.ESTABLISHED:
        caps = (wire.Multiprotocol(1, 1), wire.Multiprotocol(2, 1), wire.RouteRefreshCapability(),
                wire.FourOctetAs(65002))
        session.receive(Open(65002, 90, IPv4Address("192.0.2.2"), caps), 0.0)
        session.receive(wire.Keepalive(), 0.0)
    assert session.state is state
    return session


@fuzz_settings(300)
@given(messages())
def test_whatever_the_decoder_returns_the_session_machine_handles(data: bytes) -> None:
    """The next layer survives too: a decoded message, or the decoder's error, fed to the FSM in
    OpenSent and in Established raises nothing; an error is answered with one NOTIFICATION."""
    result = outcome(data)
    for state in (fsm.State.OPEN_SENT, fsm.State.ESTABLISHED):
        session = session_in(state)
        if isinstance(result, BgpError):
            actions = session.decode_error(result, 1.0)
            sent = [a.message for a in actions if isinstance(a, fsm.Send)]
            # the decoder's NOTIFICATION, or RFC 6608's FSM error for a message out of its state
            fsm_error = wire.Notification(5, 1 if state is fsm.State.OPEN_SENT else 3)
            assert sent in ([result.notification()], [fsm_error]), sent
            assert session.state is fsm.State.IDLE
        else:
            session.receive(result, 1.0)


def drain(
    reader: MessageReader, chunks: list[bytes]
) -> tuple[list[tuple[int, bytes]], tuple[int, int, bytes] | None]:
    """Feed ``chunks`` one by one; the messages split off and the header error, if any."""
    out: list[tuple[int, bytes]] = []
    for chunk in chunks:
        reader.feed(chunk)
        try:
            out.extend(reader.messages())
        except BgpError as err:
            return out, (err.code, err.subcode, err.data)
    return out, None
