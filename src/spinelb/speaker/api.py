"""The speaker's local HTTP API: ``GET /status``, ``GET /metrics``, ``GET /healthz``.

A deliberately small HTTP/1.1 server on asyncio streams (no web framework):
one request per connection (``Connection: close``), GET only, a request
head of at most 8 KiB read within 5 seconds.  It listens on loopback by
default (``api.listen``); it has no authentication and serves nothing secret.

The speaker supplies three callables: ``status()`` returns a
:class:`SpeakerStatus` snapshot, ``metrics()`` the Prometheus text and
``healthy()`` whether the speaker is working (for a liveness probe).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TypedDict

from prometheus_client import CONTENT_TYPE_LATEST

from spinelb.config import Announcement

log = logging.getLogger(__name__)

MAX_REQUEST_HEAD = 8192
REQUEST_TIMEOUT = 5.0

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_TEXT = "text/plain; charset=utf-8"


class PeerStatus(TypedDict):
    """One peer in ``GET /status``."""

    name: str
    address: str
    asn: int
    local_asn: int
    state: str  # RFC 4271: Idle, Connect, Active, OpenSent, OpenConfirm, Established
    uptime_seconds: float | None  # time in Established; None when not Established
    advertised: int  # prefixes in the peer's Adj-RIB-Out
    received: int  # prefixes the peer announces to us
    last_error: str | None  # the last NOTIFICATION or connection error, for a person
    families: list[str]  # "ipv4-unicast", "ipv6-unicast"


class AnnouncedStatus(TypedDict):
    """One announcement in ``GET /status``."""

    prefix: str
    peers: list[str]
    next_hop: str  # "self" or an address


class KubernetesStatus(TypedDict):
    """The Kubernetes source's connection in ``GET /status`` (null without ``kubernetes``)."""

    connected: bool  # every watch (Services, EndpointSlices, the Node) is connected
    last_error: str | None  # the last error talking to the API, for a person
    synced: bool  # all three have been listed once; nothing dynamic is announced before


class ServiceAddressStatus(TypedDict):
    """One Service address in ``GET /status``: announced from this node or not, and why."""

    address: str
    pool: str | None  # None: the address is in no pool
    services: list[str]  # "namespace/name" of every Service of ours using it
    announced: bool  # announced to at least one peer
    reason: str  # "Cluster policy, node Ready", "Local policy: no ready endpoint on ncn-w001", ...
    peers: list[str]  # the sessions that carry it (empty when not announced)


class SpeakerStatus(TypedDict):
    """The body of ``GET /status``."""

    node_name: str
    router_id: str
    version: str
    peers: list[PeerStatus]
    announced: list[AnnouncedStatus]
    kubernetes: KubernetesStatus | None
    services: list[ServiceAddressStatus]


def announced_status(announcements: Iterable[Announcement]) -> list[AnnouncedStatus]:
    """The ``announced`` list of the status for these announcements."""
    return [
        {
            "prefix": str(announcement.prefix),
            "peers": list(announcement.peers),
            "next_hop": "self" if announcement.next_hop is None else str(announcement.next_hop),
        }
        for announcement in announcements
    ]


class ApiServer:
    """Serves the API on ``host:port`` (port 0 picks a free port; see :attr:`port`)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        status: Callable[[], Mapping[str, object]],
        metrics: Callable[[], bytes],
        healthy: Callable[[], bool],
    ) -> None:
        self.host = host.strip("[]")
        self._port = port
        self._status = status
        self._metrics = metrics
        self._healthy = healthy
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the kernel chose when 0 was asked for)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self._port, limit=MAX_REQUEST_HEAD
        )
        log.info("api listening", extra={"address": self.host, "port": self.port})

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
            except TimeoutError:
                await _respond(writer, 408, _TEXT, b"request timeout\n")
                return
            except asyncio.LimitOverrunError:
                await _respond(writer, 431, _TEXT, b"request head too large\n")
                return
            except asyncio.IncompleteReadError:
                return  # the client went away
            status, content_type, body = self._answer(head)
            await _respond(writer, status, content_type, body)
        except OSError:
            pass  # the client went away mid-answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _answer(self, head: bytes) -> tuple[int, str, bytes]:
        """The status code, content type and body for one request head."""
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, _TEXT, b"bad request\n"
        method, target, _ = parts
        path = target.split("?", 1)[0]
        if path not in ("/status", "/metrics", "/healthz"):
            return 404, _TEXT, b"not found: try /status, /metrics or /healthz\n"
        if method != "GET":
            return 405, _TEXT, b"only GET is allowed\n"
        try:
            if path == "/status":
                body = json.dumps(self._status(), separators=(",", ":")).encode()
                return 200, "application/json", body
            if path == "/metrics":
                return 200, CONTENT_TYPE_LATEST, self._metrics()
            if self._healthy():
                return 200, _TEXT, b"ok\n"
            return 503, _TEXT, b"unhealthy\n"
        except Exception:
            log.exception("api request failed", extra={"path": path})
            return 500, _TEXT, b"internal error\n"


async def _respond(
    writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes
) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n" + ("Allow: GET\r\n" if status == 405 else "") + "\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
