"""BFD Control packets (RFC 5880 4.1): hand-built vectors, the 6.8.6 refusals, round trips."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spinelb.bfd.packet import BfdPacketError, ControlPacket, Diag, State, decode, diag_name

# Octet by octet from the RFC's layout: |Vers(3)|Diag(5)| |Sta(2)|P|F|C|A|D|M| |Detect Mult| |Length|
# then My Discriminator, Your Discriminator, Desired Min TX, Required Min RX, Required Min Echo RX.
DOWN_FIRST = bytes.fromhex(
    "20"  # version 1, diag 0
    "40"  # state Down (01), no flags
    "03"  # detect mult 3
    "18"  # length 24
    "0000002a"  # my discriminator 42
    "00000000"  # your discriminator 0
    "000f4240"  # desired min TX 1,000,000 us
    "000186a0"  # required min RX 100,000 us
    "0000c350"  # required min echo RX 50,000 us
)
UP_POLL = bytes.fromhex(
    "23"  # version 1, diag 3 (neighbor signaled session down)
    "e8"  # state Up (11), P (0x20), C (0x08)
    "05"  # detect mult 5
    "18"  # length 24
    "deadbeef"  # my discriminator
    "00000007"  # your discriminator
    "000186a0"  # desired min TX 100,000 us
    "000493e0"  # required min RX 300,000 us
    "00000000"  # no echo
)


def with_octet(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes([value]) + data[index + 1 :]


def test_decode_a_first_down_packet() -> None:
    packet = decode(DOWN_FIRST)
    assert packet == ControlPacket(
        state=State.DOWN,
        my_discriminator=42,
        your_discriminator=0,
        diag=Diag.NO_DIAGNOSTIC,
        detect_mult=3,
        desired_min_tx_us=1_000_000,
        required_min_rx_us=100_000,
        required_min_echo_rx_us=50_000,
    )
    assert packet.encode() == DOWN_FIRST


def test_encode_an_up_poll_packet_octet_for_octet() -> None:
    packet = ControlPacket(
        state=State.UP,
        my_discriminator=0xDEADBEEF,
        your_discriminator=7,
        diag=Diag.NEIGHBOR_SIGNALED_SESSION_DOWN,
        detect_mult=5,
        desired_min_tx_us=100_000,
        required_min_rx_us=300_000,
        poll=True,
        control_plane_independent=True,
    )
    assert packet.encode() == UP_POLL
    assert decode(UP_POLL) == packet


@pytest.mark.parametrize(
    ("octet", "field"),
    [(0x20, "poll"), (0x10, "final"), (0x08, "control_plane_independent"), (0x02, "demand")],
)
def test_each_flag_bit(octet: int, field: str) -> None:
    packet = decode(with_octet(DOWN_FIRST, 1, 0x40 | octet))
    flags = {name: getattr(packet, name) for name in ("poll", "final", "control_plane_independent", "demand")}
    assert flags == {name: name == field for name in flags}
    assert packet.encode()[1] == 0x40 | octet


@pytest.mark.parametrize("state", list(State))
def test_each_state_value(state: State) -> None:
    data = with_octet(UP_POLL, 1, state << 6)
    assert decode(data).state is state


def test_reserved_diag_is_kept_and_named() -> None:
    packet = decode(with_octet(DOWN_FIRST, 0, 0x20 | 17))
    assert packet.diag == 17
    assert diag_name(packet.diag) == "diag 17"
    assert diag_name(1) == "control detection time expired"


def test_octets_after_length_are_ignored() -> None:
    assert decode(DOWN_FIRST + b"\xff" * 6) == decode(DOWN_FIRST)


def test_length_beyond_24_within_the_payload_is_accepted() -> None:
    data = with_octet(DOWN_FIRST, 3, 26) + b"\0\0"
    assert decode(data).my_discriminator == 42


@pytest.mark.parametrize(
    ("data", "field", "value"),
    [
        (b"", "payload", 0),
        (with_octet(DOWN_FIRST, 0, 0x00), "version", 0),
        (with_octet(DOWN_FIRST, 0, 0x40), "version", 2),
        (with_octet(DOWN_FIRST, 0, 0xE0), "version", 7),
        (DOWN_FIRST[:23], "payload", 23),
        (with_octet(DOWN_FIRST, 3, 23), "length", 23),
        (with_octet(DOWN_FIRST, 3, 0), "length", 0),
        (with_octet(DOWN_FIRST, 3, 25), "length", 25),
        (with_octet(DOWN_FIRST, 2, 0), "detect_mult", 0),
        (with_octet(DOWN_FIRST, 1, 0x41), "multipoint", 1),
        (DOWN_FIRST[:4] + bytes(4) + DOWN_FIRST[8:], "my_discriminator", 0),
        (with_octet(DOWN_FIRST, 1, 0x80), "your_discriminator", 0),  # Init with Your Discr 0
        (with_octet(DOWN_FIRST, 1, 0xC0), "your_discriminator", 0),  # Up with Your Discr 0
        (with_octet(UP_POLL, 1, 0xC4), "authentication_present", 1),
    ],
)
def test_reception_checks_name_the_field(data: bytes, field: str, value: int) -> None:
    with pytest.raises(BfdPacketError) as caught:
        decode(data)
    assert (caught.value.field, caught.value.value) == (field, value)
    assert str(caught.value).startswith(f"{field} {value}: ")


def test_admin_down_with_your_discriminator_zero_is_accepted() -> None:
    assert decode(with_octet(DOWN_FIRST, 1, 0x00)).state is State.ADMIN_DOWN


@pytest.mark.parametrize(
    "fields",
    [
        {"diag": 32},
        {"detect_mult": 0},
        {"detect_mult": 256},
        {"my_discriminator": -1},
        {"your_discriminator": 2**32},
        {"desired_min_tx_us": 2**32},
    ],
)
def test_packet_values_out_of_range_are_refused(fields: dict[str, int]) -> None:
    base = {"state": State.DOWN, "my_discriminator": 1, **fields}
    with pytest.raises(ValueError, match=next(iter(fields))):
        ControlPacket(**base)  # type: ignore[arg-type]


u32 = st.integers(0, 2**32 - 1)


@st.composite
def packets(draw: st.DrawFn) -> ControlPacket:
    state = draw(st.sampled_from(list(State)))
    your = draw(u32 if state in (State.DOWN, State.ADMIN_DOWN) else st.integers(1, 2**32 - 1))
    return ControlPacket(
        state=state,
        my_discriminator=draw(st.integers(1, 2**32 - 1)),
        your_discriminator=your,
        diag=draw(st.integers(0, 31)),
        detect_mult=draw(st.integers(1, 255)),
        desired_min_tx_us=draw(u32),
        required_min_rx_us=draw(u32),
        required_min_echo_rx_us=draw(u32),
        poll=draw(st.booleans()),
        final=draw(st.booleans()),
        control_plane_independent=draw(st.booleans()),
        demand=draw(st.booleans()),
    )


@given(packets())
def test_round_trip(packet: ControlPacket) -> None:
    data = packet.encode()
    assert len(data) == 24
    assert data[0] >> 5 == 1 and data[3] == 24
    assert decode(data) == packet


@given(st.binary(max_size=64))
def test_any_octets_decode_or_raise_bfd_packet_error(data: bytes) -> None:
    try:
        packet = decode(data)
    except BfdPacketError:
        return
    assert packet.encode() == data[:24] or struct.unpack_from("!B", data, 3)[0] > 24


@given(packets(), st.integers(0, 23), st.integers(0, 255))
def test_a_corrupted_octet_never_escapes_as_another_exception(
    packet: ControlPacket, index: int, value: int
) -> None:
    with contextlib.suppress(BfdPacketError):
        decode(with_octet(packet.encode(), index, value))
