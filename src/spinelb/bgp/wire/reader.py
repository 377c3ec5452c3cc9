"""Splitting a TCP byte stream into BGP messages (sans-IO), checking each header (RFC 4271 6.1)."""

from __future__ import annotations

from collections.abc import Iterator

from .messages import check_route_refresh_length, decode
from .model import (
    HEADER_LEN,
    MARKER,
    MAX_MESSAGE_LEN,
    BgpError,
    ErrorCode,
    HeaderSubcode,
    Message,
    MessageType,
)

# Smallest whole message per type (RFC 4271 4.2-4.5; ROUTE-REFRESH per RFC 2918 3).
_MINIMUM_LENGTH: dict[int, int] = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    # Below 22 octets there is not even a subtype octet to tell 1/2 from 7/1 (RFC 7313 5).
    MessageType.ROUTE_REFRESH: 22,
}


def check_header(data: bytes | bytearray, pos: int = 0) -> tuple[int, int]:
    """Validate the 19-octet header at ``pos``; return (type, length) or raise BgpError."""
    if data[pos : pos + 16] != MARKER:
        raise BgpError(
            ErrorCode.MESSAGE_HEADER,
            HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED,
            b"",
            "marker is not all ones",
        )
    length_field = bytes(data[pos + 16 : pos + 18])
    length = int.from_bytes(length_field, "big")
    msg_type = data[pos + 18]
    if not HEADER_LEN <= length <= MAX_MESSAGE_LEN:
        raise BgpError(
            ErrorCode.MESSAGE_HEADER,
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            length_field,
            f"message length {length}",
        )
    minimum = _MINIMUM_LENGTH.get(msg_type)
    if minimum is None:
        raise BgpError(
            ErrorCode.MESSAGE_HEADER,
            HeaderSubcode.BAD_MESSAGE_TYPE,
            bytes((msg_type,)),
            f"message type {msg_type}",
        )
    if length < minimum or (msg_type == MessageType.KEEPALIVE and length != HEADER_LEN):
        raise BgpError(
            ErrorCode.MESSAGE_HEADER,
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            length_field,
            f"{MessageType(msg_type).name} of length {length}",
        )
    return msg_type, length


class MessageReader:
    """Incremental splitter over a TCP byte stream (sans-IO).

    ``feed`` the bytes as they arrive, then iterate ``messages()`` for each
    complete message as ``(type, body)``.  A header error raises BgpError as
    soon as the header is complete; the session is then over.
    """

    __slots__ = ("_buffer", "_pos")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    @property
    def pending(self) -> int:
        """Octets received but not yet returned as a message."""
        return len(self._buffer) - self._pos

    def messages(self) -> Iterator[tuple[int, bytes]]:
        buffer = self._buffer
        while len(buffer) - self._pos >= HEADER_LEN:
            pos = self._pos
            msg_type, length = check_header(buffer, pos)
            if len(buffer) - pos < length:
                break
            body = bytes(buffer[pos + HEADER_LEN : pos + length])
            self._pos = pos + length
            if msg_type == MessageType.ROUTE_REFRESH:
                check_route_refresh_length(body)
            yield msg_type, body


def decode_message(data: bytes, *, asn4: bool = True) -> Message:
    """Decode exactly one whole message, header included."""
    if len(data) < HEADER_LEN:
        raise BgpError(
            ErrorCode.MESSAGE_HEADER,
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            len(data).to_bytes(2, "big"),
            "shorter than a message header",
        )
    msg_type, length = check_header(data)
    if length != len(data):
        raise BgpError(
            ErrorCode.MESSAGE_HEADER,
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            bytes(data[16:18]),
            f"length field {length}, {len(data)} octets given",
        )
    if msg_type == MessageType.ROUTE_REFRESH:
        check_route_refresh_length(bytes(data[HEADER_LEN:]))
    return decode(msg_type, data[HEADER_LEN:], asn4=asn4)
