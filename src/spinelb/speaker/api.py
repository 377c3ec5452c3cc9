"""The local HTTP API of the speaker and the controller: ``GET /status``, ``/metrics``, ``/healthz``.

A deliberately small HTTP/1.1 server on asyncio streams (no web framework):
one request per connection (``Connection: close``), a request head of at
most 8 KiB read within 5 seconds.  It listens on loopback by default
(``api.listen``); it has no authentication and serves nothing secret.

The owner supplies three callables: ``status()`` returns a snapshot (a
:class:`SpeakerStatus` for the speaker), ``metrics()`` the Prometheus text and
``healthy()`` whether it is working (for a liveness probe).  It may also
register operator actions, each answering ``POST <path>`` with JSON: the
speaker's ``POST /resync``, the controller's ``POST /assign``.  They take no
body; one of at most 1 KiB is read and discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypedDict

from prometheus_client import CONTENT_TYPE_LATEST

from spinelb.config import Announcement

log = logging.getLogger(__name__)

MAX_REQUEST_HEAD = 8192
MAX_REQUEST_BODY = 1024  # actions take no body; a small one is read and discarded
REQUEST_TIMEOUT = 5.0  # to read the head and the body; an action's own work is not counted
GET_PATHS = ("/status", "/metrics", "/healthz")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"

#: The query of a request, ``?prefix=a&prefix=b`` as ``{"prefix": ["a", "b"]}``.
Query = Mapping[str, list[str]]

#: An operator action behind ``POST <path>``, given the request's query: the HTTP status and
#: the JSON body of its answer.
Action = Callable[[Query], Awaitable[tuple[int, Mapping[str, object]]]]


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
    bfd: str | None  # the path's BFD state (Up, Down, Init, AdminDown); None without BFD


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


class Layer2AddressStatus(TypedDict):
    """One layer2 address in ``GET /status``: who answers it, and whether this node does."""

    address: str
    pool: str
    owner: str | None  # the node that answers it; None: no live eligible node
    answered_here: bool  # this node answers it (it is the owner and has a responder)
    mac: str | None  # the MAC this node answers with (its interface's); None when it does not
    interfaces: list[str]  # where this node answers it


class Layer2PeerStatus(TypedDict):
    """Another speaker on the segment, as this node's BFD sees it."""

    node: str
    address: str
    bfd: str  # Up, Down, Init, AdminDown (ours: this node is not eligible)
    live: bool  # BFD Up: it may answer addresses


class Layer2InterfaceStatus(TypedDict):
    """One interface this node answers on, with its responder's counters."""

    interface: str
    mac: str | None  # None: the responder could not be opened (see error)
    error: str | None
    addresses: int
    received: int
    requests_answered: int
    announcements_sent: int
    send_errors: int


class Layer2Status(TypedDict):
    """The ``layer2`` section of ``GET /status`` (null without layer2 pools)."""

    eligible: bool  # this node's Node is Ready and not excluded: it may answer addresses
    source_address: str
    live: list[str]  # the nodes that may answer, this one included when eligible
    addresses: list[Layer2AddressStatus]
    peers: list[Layer2PeerStatus]
    interfaces: list[Layer2InterfaceStatus]
    holding: bool  # just started: waiting for its peers' BFD before taking addresses
    owned: int  # addresses this node answers
    takeovers: int  # addresses this node began to answer since it started
    released: int  # addresses it stopped answering


class SpeakerStatus(TypedDict):
    """The body of ``GET /status``."""

    node_name: str
    router_id: str
    version: str
    peers: list[PeerStatus]
    announced: list[AnnouncedStatus]
    withdrawn: list[str]  # static announcements an operator withdrew until the next reload
    kubernetes: KubernetesStatus | None
    services: list[ServiceAddressStatus]
    layer2: Layer2Status | None


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


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    content_type: str
    body: bytes
    allow: str | None = None  # the Allow header of a 405


class ApiServer:
    """Serves the API on ``host:port`` (port 0 picks a free port; see :attr:`port`).

    ``actions`` maps a path to the :data:`Action` that answers ``POST`` on it.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        status: Callable[[], Mapping[str, object]],
        metrics: Callable[[], bytes],
        healthy: Callable[[], bool],
        actions: Mapping[str, Action] | None = None,
    ) -> None:
        self.host = host.strip("[]")
        self._port = port
        self._status = status
        self._metrics = metrics
        self._healthy = healthy
        self._actions = {
            path: action for path, action in (actions or {}).items() if path not in GET_PATHS
        }
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
            answer = await self._handle(reader)
            if answer is not None:
                await _respond(writer, answer)
        except OSError:
            pass  # the client went away mid-answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader) -> _Answer | None:
        """Read one request and answer it; None when the client went away."""
        deadline = asyncio.get_running_loop().time() + REQUEST_TIMEOUT
        try:
            async with asyncio.timeout_at(deadline):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            return _Answer(408, _TEXT, b"request timeout\n")
        except asyncio.LimitOverrunError:
            return _Answer(431, _TEXT, b"request head too large\n")
        except asyncio.IncompleteReadError:
            return None
        request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return _Answer(400, _TEXT, b"bad request\n")
        method, target, _ = parts
        path, _, query = target.partition("?")
        action = self._actions.get(path)
        if path in GET_PATHS:
            if method != "GET":
                return _Answer(405, _TEXT, b"only GET is allowed\n", allow="GET")
            return self._get(path)
        if action is None:
            return _Answer(404, _TEXT, f"not found: try {self._paths()}\n".encode())
        if method != "POST":
            return _Answer(405, _TEXT, b"only POST is allowed\n", allow="POST")
        try:
            refused = await _discard_body(reader, _headers(header_lines), deadline)
        except asyncio.IncompleteReadError:
            return None
        if refused is not None:
            return refused
        try:
            status, body = await action(urllib.parse.parse_qs(query))
        except Exception:
            log.exception("api action failed", extra={"path": path})
            return _Answer(500, _TEXT, b"internal error\n")
        return _Answer(status, _JSON, json.dumps(body, separators=(",", ":")).encode())

    def _get(self, path: str) -> _Answer:
        try:
            if path == "/status":
                body = json.dumps(self._status(), separators=(",", ":")).encode()
                return _Answer(200, _JSON, body)
            if path == "/metrics":
                return _Answer(200, CONTENT_TYPE_LATEST, self._metrics())
            if self._healthy():
                return _Answer(200, _TEXT, b"ok\n")
            return _Answer(503, _TEXT, b"unhealthy\n")
        except Exception:
            log.exception("api request failed", extra={"path": path})
            return _Answer(500, _TEXT, b"internal error\n")

    def _paths(self) -> str:
        """The paths served, for a 404's answer."""
        paths = f"GET {', '.join(GET_PATHS)}"
        if self._actions:
            paths += f"; POST {', '.join(sorted(self._actions))}"
        return paths


def _headers(lines: Iterable[str]) -> dict[str, str]:
    """The request's header fields, names in lower case (a repeated one: the last)."""
    fields = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


async def _discard_body(
    reader: asyncio.StreamReader, headers: Mapping[str, str], deadline: float
) -> _Answer | None:
    """Read and drop an action's body; the answer refusing it, if it must be refused."""
    if "transfer-encoding" in headers:
        return _Answer(411, _TEXT, b"send no body, or one with Content-Length\n")
    length = headers.get("content-length", "0")
    if not length.isdigit():
        return _Answer(400, _TEXT, b"bad Content-Length\n")
    if int(length) > MAX_REQUEST_BODY:
        return _Answer(413, _TEXT, b"this action takes no body\n")
    try:
        async with asyncio.timeout_at(deadline):
            await reader.readexactly(int(length))
    except TimeoutError:
        return _Answer(408, _TEXT, b"request timeout\n")
    return None


async def _respond(writer: asyncio.StreamWriter, answer: _Answer) -> None:
    head = (
        f"HTTP/1.1 {answer.status} {_REASONS[answer.status]}\r\n"
        f"Content-Type: {answer.content_type}\r\n"
        f"Content-Length: {len(answer.body)}\r\n"
        "Connection: close\r\n"
        + (f"Allow: {answer.allow}\r\n" if answer.allow else "")
        + "\r\n"
    )
    writer.write(head.encode("latin-1") + answer.body)
    await writer.drain()
