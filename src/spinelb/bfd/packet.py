"""BFD Control packets (RFC 5880 4.1), encoded and decoded without I/O.

A Control packet is 24 octets when no authentication section follows::

    |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
    |                       My Discriminator                        |
    |                      Your Discriminator                       |
    |                    Desired Min TX Interval                    |
    |                   Required Min RX Interval                    |
    |                 Required Min Echo RX Interval                 |

Intervals travel in microseconds.  :func:`decode` applies the reception
checks of RFC 5880 6.8.6 that need no session (version, length, detect
multiplier, multipoint, discriminators) and refuses authentication, which this
implementation does not offer: every refusal is a :class:`BfdPacketError`
naming the field and its value.  The A and M bits are therefore not fields of
:class:`ControlPacket`: a packet that has them set is never accepted, and
:meth:`ControlPacket.encode` always writes them as zero.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

__all__ = [
    "LENGTH",
    "VERSION",
    "BfdPacketError",
    "ControlPacket",
    "Diag",
    "State",
    "decode",
    "diag_name",
]

VERSION = 1
LENGTH = 24  # a Control packet without an authentication section
U32_MAX = 0xFFFFFFFF

_FORMAT = struct.Struct("!BBBBIIIII")

_POLL = 0x20
_FINAL = 0x10
_CONTROL_PLANE_INDEPENDENT = 0x08
_AUTHENTICATION_PRESENT = 0x04
_DEMAND = 0x02
_MULTIPOINT = 0x01


class State(enum.IntEnum):
    """RFC 5880 4.1 session states, valued as they travel on the wire."""

    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3

    @property
    def label(self) -> str:
        """The RFC's spelling: ``AdminDown``, ``Down``, ``Init``, ``Up``."""
        return _STATE_LABELS[self]


_STATE_LABELS = {State.ADMIN_DOWN: "AdminDown", State.DOWN: "Down", State.INIT: "Init", State.UP: "Up"}


class Diag(enum.IntEnum):
    """RFC 5880 4.1 diagnostic codes: why the sender's session last changed state.

    Codes 9-31 are reserved; :func:`decode` keeps them as plain integers.
    """

    NO_DIAGNOSTIC = 0
    CONTROL_DETECTION_TIME_EXPIRED = 1
    ECHO_FUNCTION_FAILED = 2
    NEIGHBOR_SIGNALED_SESSION_DOWN = 3
    FORWARDING_PLANE_RESET = 4
    PATH_DOWN = 5
    CONCATENATED_PATH_DOWN = 6
    ADMINISTRATIVELY_DOWN = 7
    REVERSE_CONCATENATED_PATH_DOWN = 8


def diag_name(diag: int) -> str:
    """``"control detection time expired"`` for 1; ``"diag 12"`` for a reserved code."""
    try:
        return Diag(diag).name.replace("_", " ").lower()
    except ValueError:
        return f"diag {diag}"


class BfdPacketError(ValueError):
    """A received packet that RFC 5880 6.8.6 says to discard: ``field`` held ``value``."""

    def __init__(self, field: str, value: int, reason: str) -> None:
        super().__init__(f"{field} {value}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


@dataclass(frozen=True)
class ControlPacket:
    """One BFD Control packet; intervals in microseconds, as on the wire."""

    state: State
    my_discriminator: int
    your_discriminator: int = 0
    diag: int = Diag.NO_DIAGNOSTIC
    detect_mult: int = 3
    desired_min_tx_us: int = 1_000_000
    required_min_rx_us: int = 1_000_000
    required_min_echo_rx_us: int = 0
    poll: bool = False
    final: bool = False
    control_plane_independent: bool = False
    demand: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.diag <= 31:
            problems.append(f"diag {self.diag} is not 0..31")
        if not 1 <= self.detect_mult <= 255:
            problems.append(f"detect_mult {self.detect_mult} is not 1..255")
        for name in (
            "my_discriminator",
            "your_discriminator",
            "desired_min_tx_us",
            "required_min_rx_us",
            "required_min_echo_rx_us",
        ):
            value = getattr(self, name)
            if not 0 <= value <= U32_MAX:
                problems.append(f"{name} {value} is not 0..{U32_MAX}")
        if problems:
            raise ValueError("; ".join(problems))

    def encode(self) -> bytes:
        """The 24 octets of this packet (version 1, no authentication, not multipoint)."""
        flags = (
            (_POLL if self.poll else 0)
            | (_FINAL if self.final else 0)
            | (_CONTROL_PLANE_INDEPENDENT if self.control_plane_independent else 0)
            | (_DEMAND if self.demand else 0)
        )
        return _FORMAT.pack(
            VERSION << 5 | self.diag,
            int(self.state) << 6 | flags,
            self.detect_mult,
            LENGTH,
            self.my_discriminator,
            self.your_discriminator,
            self.desired_min_tx_us,
            self.required_min_rx_us,
            self.required_min_echo_rx_us,
        )


def decode(data: bytes | bytearray | memoryview) -> ControlPacket:
    """Decode one UDP payload, or raise :class:`BfdPacketError` for a packet to discard.

    The checks are RFC 5880 6.8.6's, in its order, less those that need a
    session (finding it by Your Discriminator is the transport's job).
    Octets after ``Length`` are ignored.
    """
    payload = len(data)
    if payload < 1:
        raise BfdPacketError("payload", payload, "empty")
    version = data[0] >> 5
    if version != VERSION:
        raise BfdPacketError("version", version, f"not {VERSION}")
    if payload < LENGTH:
        raise BfdPacketError("payload", payload, f"shorter than {LENGTH} octets")
    (
        version_diag,
        state_flags,
        detect_mult,
        length,
        my_discriminator,
        your_discriminator,
        desired_min_tx,
        required_min_rx,
        required_min_echo_rx,
    ) = _FORMAT.unpack_from(data)
    if length < LENGTH:
        raise BfdPacketError("length", length, f"less than {LENGTH}")
    if length > payload:
        raise BfdPacketError("length", length, f"more than the {payload}-octet payload")
    if detect_mult == 0:
        raise BfdPacketError("detect_mult", 0, "must not be zero")
    if state_flags & _MULTIPOINT:
        raise BfdPacketError("multipoint", 1, "must be zero")
    if my_discriminator == 0:
        raise BfdPacketError("my_discriminator", 0, "must not be zero")
    state = State(state_flags >> 6)
    if your_discriminator == 0 and state not in (State.DOWN, State.ADMIN_DOWN):
        raise BfdPacketError(
            "your_discriminator", 0, f"zero is only valid in Down or AdminDown, not {state.label}"
        )
    if state_flags & _AUTHENTICATION_PRESENT:
        raise BfdPacketError("authentication_present", 1, "authentication is not supported")
    diag = version_diag & 0x1F
    return ControlPacket(
        state=state,
        my_discriminator=my_discriminator,
        your_discriminator=your_discriminator,
        diag=Diag(diag) if diag <= max(Diag) else diag,
        detect_mult=detect_mult,
        desired_min_tx_us=desired_min_tx,
        required_min_rx_us=required_min_rx,
        required_min_echo_rx_us=required_min_echo_rx,
        poll=bool(state_flags & _POLL),
        final=bool(state_flags & _FINAL),
        control_plane_independent=bool(state_flags & _CONTROL_PLANE_INDEPENDENT),
        demand=bool(state_flags & _DEMAND),
    )
