"""Whole BGP messages: OPEN with capabilities, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH, framing.

``encode``/``decode`` dispatch on the message type; UPDATE bodies are handled
in :mod:`.attributes`.  Decoders check what RFC 4271 section 6 asks of each
message and raise :class:`BgpError` with the exact code, subcode and data.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from .attributes import decode_update, encode_update
from .model import (
    HEADER_LEN,
    IPV4_UNICAST,
    MARKER,
    MAX_MESSAGE_LEN,
    BgpError,
    Capability,
    CapabilityCode,
    ErrorCode,
    Family,
    FourOctetAs,
    GracefulRestart,
    GracefulRestartFamily,
    HeaderSubcode,
    Keepalive,
    Message,
    MessageType,
    MpUnreachNlri,
    Multiprotocol,
    Notification,
    Open,
    OpenSubcode,
    RouteRefresh,
    RouteRefreshCapability,
    RouteRefreshSubcode,
    UnknownCapability,
    Update,
)

_CAPABILITIES_PARAMETER = 2  # RFC 5492; the only optional parameter still defined
_EXTENDED_PARAMETERS = 255  # RFC 9072 marker in both the length and the type octet

# --- framing -------------------------------------------------------------------


def frame(msg_type: int, body: bytes) -> bytes:
    """Marker, length and type in front of a body; ValueError if over 4096 octets."""
    length = HEADER_LEN + len(body)
    if length > MAX_MESSAGE_LEN:
        raise ValueError(f"message of {length} octets exceeds {MAX_MESSAGE_LEN}")
    return MARKER + length.to_bytes(2, "big") + bytes((msg_type,)) + body


def _bad_length(body_length: int, reason: str) -> BgpError:
    # RFC 4271 6.1: the Data field holds the erroneous Length field.
    length_field = (body_length + HEADER_LEN).to_bytes(2, "big")
    return BgpError(
        ErrorCode.MESSAGE_HEADER, HeaderSubcode.BAD_MESSAGE_LENGTH, length_field, reason
    )


# --- capabilities ---------------------------------------------------------------


def _encode_capability(cap: Capability) -> bytes:
    code: int
    if isinstance(cap, Multiprotocol):
        code, value = CapabilityCode.MULTIPROTOCOL, struct.pack("!HBB", cap.afi, 0, cap.safi)
    elif isinstance(cap, RouteRefreshCapability):
        code, value = CapabilityCode.ROUTE_REFRESH, b""
    elif isinstance(cap, GracefulRestart):
        if not 0 <= cap.restart_time <= 0x0FFF:
            raise ValueError("graceful restart time must be 0..4095 seconds")
        flags = (0x8000 if cap.restart_state else 0) | (0x4000 if cap.notification else 0)
        value = (flags | cap.restart_time).to_bytes(2, "big") + b"".join(
            struct.pack("!HBB", f.afi, f.safi, 0x80 if f.forwarding_preserved else 0)
            for f in cap.families
        )
        code = CapabilityCode.GRACEFUL_RESTART
    elif isinstance(cap, FourOctetAs):
        code, value = CapabilityCode.FOUR_OCTET_AS, cap.asn.to_bytes(4, "big")
    elif isinstance(cap, UnknownCapability):
        code, value = cap.code, cap.value
    else:
        raise TypeError(f"not a capability: {cap!r}")
    if len(value) > 255:
        raise ValueError(f"capability {code} value is {len(value)} octets, more than 255")
    return bytes((code, len(value))) + value


def _malformed_open(reason: str) -> BgpError:
    # RFC 4271 6.2: a recognised optional parameter that is malformed is 2/0 (Unspecific).
    return BgpError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSPECIFIC, b"", reason)


def _decode_capability(code: int, value: bytes) -> Capability:
    if code == CapabilityCode.MULTIPROTOCOL:
        if len(value) != 4:
            raise _malformed_open(f"multiprotocol capability of {len(value)} octets")
        afi, _, safi = struct.unpack("!HBB", value)
        return Multiprotocol(afi, safi)
    if code == CapabilityCode.ROUTE_REFRESH:
        if value:
            raise _malformed_open(f"route refresh capability of {len(value)} octets")
        return RouteRefreshCapability()
    if code == CapabilityCode.GRACEFUL_RESTART:
        if len(value) < 2 or (len(value) - 2) % 4:
            raise _malformed_open(f"graceful restart capability of {len(value)} octets")
        head = int.from_bytes(value[:2], "big")
        families = tuple(
            GracefulRestartFamily(afi, safi, bool(flags & 0x80))
            for afi, safi, flags in struct.iter_unpack("!HBB", value[2:])
        )
        return GracefulRestart(head & 0x0FFF, bool(head & 0x8000), bool(head & 0x4000), families)
    if code == CapabilityCode.FOUR_OCTET_AS:
        # RFC 6793 defines the value as exactly four octets and gives no error of its own;
        # a recognised but malformed capability is "Unspecific" per RFC 4271 6.2.
        if len(value) != 4:
            raise _malformed_open(f"4-octet AS capability of {len(value)} octets")
        asn = int.from_bytes(value, "big")
        if asn == 0:  # RFC 7607
            raise BgpError(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_PEER_AS, b"", "4-octet AS 0")
        return FourOctetAs(asn)
    return UnknownCapability(code, bytes(value))  # RFC 5492: never an error


def _decode_capabilities(data: bytes) -> list[Capability]:
    caps: list[Capability] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 2:
            raise _malformed_open("capability header truncated")
        code, length = data[pos], data[pos + 1]
        end = pos + 2 + length
        if end > len(data):
            raise _malformed_open(f"capability {code} overruns its parameter")
        caps.append(_decode_capability(code, data[pos + 2 : end]))
        pos = end
    return caps


# --- OPEN ------------------------------------------------------------------------


def encode_open(msg: Open) -> bytes:
    """The body of an OPEN; all capabilities in one parameter each, RFC 9072 format if needed."""
    if not 0 <= msg.my_as <= 0xFFFF:
        raise ValueError("OPEN My AS is 2 octets: put AS_TRANS there and the AS in FourOctetAs")
    caps = [_encode_capability(cap) for cap in msg.capabilities]
    if sum(2 + len(c) for c in caps) <= 255:
        params = b"".join(bytes((_CAPABILITIES_PARAMETER, len(c))) + c for c in caps)
        tail = bytes((len(params),)) + params
    else:
        params = b"".join(
            bytes((_CAPABILITIES_PARAMETER,)) + len(c).to_bytes(2, "big") + c for c in caps
        )
        tail = bytes((_EXTENDED_PARAMETERS, _EXTENDED_PARAMETERS)) + len(params).to_bytes(2, "big")
        tail += params
    head = struct.pack("!BHHI", msg.version, msg.my_as, msg.hold_time, int(msg.bgp_id))
    return head + tail


def decode_open(body: bytes) -> Open:
    """Decode an OPEN body, checking it in the order of RFC 4271 6.2."""
    if len(body) < 10:
        raise _bad_length(len(body), "OPEN shorter than 29 octets")
    version = body[0]
    if version != 4:
        # Data: the largest locally supported version number, 2 octets.
        raise BgpError(
            ErrorCode.OPEN_MESSAGE,
            OpenSubcode.UNSUPPORTED_VERSION_NUMBER,
            (4).to_bytes(2, "big"),
            f"BGP version {version}",
        )
    my_as, hold_time, bgp_id, params_length = struct.unpack_from("!HHIB", body, 1)
    if my_as == 0:  # RFC 7607
        raise BgpError(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_PEER_AS, b"", "peer AS 0")
    if hold_time in (1, 2):
        raise BgpError(
            ErrorCode.OPEN_MESSAGE,
            OpenSubcode.UNACCEPTABLE_HOLD_TIME,
            b"",
            f"hold time {hold_time}",
        )
    if bgp_id in (0, 0xFFFFFFFF):  # RFC 6286 2.2: non-zero; all-ones is no router's id either
        raise BgpError(
            ErrorCode.OPEN_MESSAGE,
            OpenSubcode.BAD_BGP_IDENTIFIER,
            b"",
            f"BGP identifier {IPv4Address(bgp_id)}",
        )
    params = body[10:]
    if params_length == _EXTENDED_PARAMETERS and params[:1] == bytes((_EXTENDED_PARAMETERS,)):
        if len(params) < 3:
            raise _malformed_open("extended optional parameters length truncated")
        params_length = int.from_bytes(params[1:3], "big")
        params = params[3:]
        header = 3  # RFC 9072: type (1) and length (2)
    else:
        header = 2
    if params_length != len(params):
        raise _malformed_open(
            f"optional parameters length {params_length}, {len(params)} octets present"
        )
    caps: list[Capability] = []
    pos = 0
    while pos < len(params):
        if len(params) - pos < header:
            raise _malformed_open("optional parameter header truncated")
        kind = params[pos]
        length = (
            params[pos + 1] if header == 2 else int.from_bytes(params[pos + 1 : pos + 3], "big")
        )
        end = pos + header + length
        if end > len(params):
            raise _malformed_open(f"optional parameter {kind} overruns the OPEN")
        if kind != _CAPABILITIES_PARAMETER:
            raise BgpError(
                ErrorCode.OPEN_MESSAGE,
                OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
                b"",
                f"optional parameter type {kind}",
            )
        caps.extend(_decode_capabilities(params[pos + header : end]))
        pos = end
    return Open(my_as, hold_time, IPv4Address(bgp_id), tuple(caps), version)


# --- NOTIFICATION, KEEPALIVE, ROUTE-REFRESH ----------------------------------------


def check_route_refresh_length(body: bytes) -> None:
    if len(body) == 4:
        return
    if len(body) >= 3 and body[2] in (1, 2):
        # RFC 7313 5: BoRR/EoRR of the wrong length; the Data is the whole message.
        raise BgpError(
            ErrorCode.ROUTE_REFRESH_MESSAGE,
            RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
            frame(MessageType.ROUTE_REFRESH, body) if len(body) <= 4096 - HEADER_LEN else b"",
            "ROUTE-REFRESH is not 23 octets",
        )
    raise _bad_length(len(body), "ROUTE-REFRESH is not 23 octets")


def decode(msg_type: int, body: bytes | memoryview, *, asn4: bool = True) -> Message:
    """Decode a message body of the given type.

    ``asn4`` says whether both speakers sent capability 65 (4-octet AS numbers in
    AS_PATH and AGGREGATOR).  Raises BgpError when the session must be reset.
    """
    data = bytes(body)
    if msg_type == MessageType.UPDATE:
        return decode_update(data, asn4=asn4)
    if msg_type == MessageType.KEEPALIVE:
        if data:
            raise _bad_length(len(data), "KEEPALIVE with a body")
        return Keepalive()
    if msg_type == MessageType.OPEN:
        return decode_open(data)
    if msg_type == MessageType.NOTIFICATION:
        if len(data) < 2:
            raise _bad_length(len(data), "NOTIFICATION shorter than 21 octets")
        return Notification(data[0], data[1], data[2:])
    if msg_type == MessageType.ROUTE_REFRESH:
        check_route_refresh_length(data)
        afi, subtype, safi = struct.unpack("!HBB", data)
        return RouteRefresh(afi, safi, subtype)
    raise BgpError(
        ErrorCode.MESSAGE_HEADER,
        HeaderSubcode.BAD_MESSAGE_TYPE,
        bytes((msg_type & 0xFF,)),
        f"message type {msg_type}",
    )


def encode(msg: Message, *, asn4: bool = True) -> bytes:
    """The whole message with its 19-octet header.

    ``asn4=False`` encodes AS_PATH/AGGREGATOR for a peer without capability 65
    (AS_TRANS plus AS4_PATH/AS4_AGGREGATOR, RFC 6793).  Raises ValueError if a
    value does not fit its field or the message exceeds 4096 octets.
    """
    try:
        if isinstance(msg, Update):
            return frame(MessageType.UPDATE, encode_update(msg, asn4=asn4))
        if isinstance(msg, Keepalive):
            return frame(MessageType.KEEPALIVE, b"")
        if isinstance(msg, Open):
            return frame(MessageType.OPEN, encode_open(msg))
        if isinstance(msg, Notification):
            return frame(MessageType.NOTIFICATION, bytes((msg.code, msg.subcode)) + msg.data)
        if isinstance(msg, RouteRefresh):
            body = struct.pack("!HBB", msg.afi, msg.subtype, msg.safi)
            return frame(MessageType.ROUTE_REFRESH, body)
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{type(msg).__name__}: value out of range: {exc}") from exc
    raise TypeError(f"not a BGP message: {msg!r}")


# --- End-of-RIB (RFC 4724 2) and shutdown communication (RFC 9003) ------------------


def end_of_rib(family: Family) -> Update:
    """The End-of-RIB marker: an empty UPDATE for IPv4 unicast, else an empty MP_UNREACH_NLRI."""
    if family == IPV4_UNICAST:
        return Update()
    return Update(attributes=(MpUnreachNlri(family[0], family[1], ()),))


def end_of_rib_family(update: Update) -> Family | None:
    """The family whose End-of-RIB this UPDATE is, or None if it is not one."""
    if update.withdrawn or update.nlri or update.treat_as_withdraw or update.discarded:
        return None
    if not update.attributes:
        return IPV4_UNICAST
    if len(update.attributes) == 1:
        (attr,) = update.attributes
        if isinstance(attr, MpUnreachNlri) and not attr.withdrawn:
            return (attr.afi, attr.safi)
    return None


_MAX_SHUTDOWN_OCTETS = 255


def shutdown_data(reason: str, *, limit: int = _MAX_SHUTDOWN_OCTETS) -> bytes:
    """Cease data carrying a shutdown communication: length octet plus UTF-8 (RFC 9003 2).

    Truncated to ``limit`` octets (RFC 9003: 255; RFC 8203 peers: 128) on a character
    boundary, so the result is always valid UTF-8.
    """
    encoded = reason.encode("utf-8")
    if len(encoded) > min(limit, _MAX_SHUTDOWN_OCTETS):
        encoded = encoded[: min(limit, _MAX_SHUTDOWN_OCTETS)]
        encoded = encoded.decode("utf-8", "ignore").encode("utf-8")
    return bytes((len(encoded),)) + encoded


def shutdown_reason(data: bytes) -> str | None:
    """The shutdown communication in Cease data, or None if absent or malformed (RFC 9003 3)."""
    if not data:
        return None
    length = data[0]
    if 1 + length > len(data):
        return None
    try:
        return bytes(data[1 : 1 + length]).decode("utf-8")
    except UnicodeDecodeError:
        return None
