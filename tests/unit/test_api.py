"""The local HTTP API served on 127.0.0.1:0, asked with real HTTP requests; and the metrics."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from spinelb.config import parse_config
from spinelb.speaker import api
from spinelb.speaker.api import Action, ApiServer, Query, SpeakerStatus, announced_status
from spinelb.speaker.metrics import SpeakerMetrics

STATUS: SpeakerStatus = {
    "node_name": "ncn-w001",
    "router_id": "10.252.1.10",
    "version": "0.1.0",
    "peers": [
        {
            "name": "spine-1",
            "address": "10.252.0.2",
            "asn": 65533,
            "local_asn": 65531,
            "state": "Established",
            "uptime_seconds": 12.5,
            "advertised": 3,
            "received": 0,
            "last_error": None,
            "families": ["ipv4-unicast"],
        }
    ],
    "announced": [{"prefix": "10.102.10.129/32", "peers": ["spine-1"], "next_hop": "self"}],
}


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


def http(port: int, path: str, method: str = "GET") -> Reply:
    """One real HTTP request with urllib (blocking; run it in a thread)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())


async def raw(port: int, data: bytes) -> bytes:
    """Send ``data`` as it is and read the whole answer (the server closes the connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


def serve(
    test: Callable[[ApiServer], Awaitable[None]],
    *,
    healthy: Callable[[], bool] = lambda: True,
    status: Callable[[], Any] = lambda: STATUS,
    actions: Mapping[str, Action] | None = None,
) -> None:
    metrics = SpeakerMetrics()
    metrics.session_state("spine-1", "Established")

    async def run() -> None:
        server = ApiServer("127.0.0.1", 0, status=status, metrics=metrics.render, healthy=healthy,
                           actions=actions)
        await server.start()
        try:
            assert server.port != 0
            await test(server)
        finally:
            await server.close()

    asyncio.run(run())


def test_status_is_json() -> None:
    async def check(server: ApiServer) -> None:
        reply = await asyncio.to_thread(http, server.port, "/status")
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "application/json"
        assert json.loads(reply.body) == STATUS

    serve(check)


def test_metrics_are_prometheus_text() -> None:
    async def check(server: ApiServer) -> None:
        reply = await asyncio.to_thread(http, server.port, "/metrics")
        assert reply.status == 200
        assert reply.headers["Content-Type"] == CONTENT_TYPE_LATEST
        assert b'spinelb_session_up{peer="spine-1"} 1.0' in reply.body

    serve(check)


@pytest.mark.parametrize(
    ("healthy", "code", "body"), [(True, 200, b"ok\n"), (False, 503, b"unhealthy\n")]
)
def test_healthz(healthy: bool, code: int, body: bytes) -> None:
    async def check(server: ApiServer) -> None:
        reply = await asyncio.to_thread(http, server.port, "/healthz")
        assert (reply.status, reply.body) == (code, body)

    serve(check, healthy=lambda: healthy)


def test_unknown_path_is_404() -> None:
    async def check(server: ApiServer) -> None:
        assert (await asyncio.to_thread(http, server.port, "/nope")).status == 404

    serve(check)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_405(method: str) -> None:
    async def check(server: ApiServer) -> None:
        reply = await asyncio.to_thread(http, server.port, "/status", method)
        assert reply.status == 405
        assert reply.headers["Allow"] == "GET"

    serve(check)


def test_query_string_is_ignored() -> None:
    async def check(server: ApiServer) -> None:
        assert (await asyncio.to_thread(http, server.port, "/healthz?verbose=1")).status == 200

    serve(check)


def test_oversized_request_head_is_refused() -> None:
    async def check(server: ApiServer) -> None:
        answer = await raw(server.port, b"GET /status HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 431 ")

    serve(check)


def test_malformed_request_line_is_400() -> None:
    async def check(server: ApiServer) -> None:
        answer = await raw(server.port, b"HELLO\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")

    serve(check)


def test_failing_status_is_500_and_the_server_carries_on() -> None:
    def broken() -> Any:
        raise RuntimeError("boom")

    async def check(server: ApiServer) -> None:
        assert (await asyncio.to_thread(http, server.port, "/status")).status == 500
        assert (await asyncio.to_thread(http, server.port, "/healthz")).status == 200

    serve(check, status=broken)


# --- actions (POST) --------------------------------------------------------------


class Resync:
    """An action that counts its calls and answers with the count."""

    def __init__(self, status: int = 200) -> None:
        self.calls = 0
        self.status = status
        self.query: Query = {}

    async def __call__(self, query: Query) -> tuple[int, dict[str, object]]:
        self.calls += 1
        self.query = query
        return self.status, {"resynced": True, "calls": self.calls}


def test_post_runs_the_action_and_answers_its_json() -> None:
    resync = Resync()

    async def check(server: ApiServer) -> None:
        for calls in (1, 2):
            reply = await asyncio.to_thread(http, server.port, "/resync", "POST")
            assert reply.status == 200
            assert reply.headers["Content-Type"] == "application/json"
            assert json.loads(reply.body) == {"resynced": True, "calls": calls}
        assert resync.calls == 2
        assert resync.query == {}
        reply = await asyncio.to_thread(http, server.port, "/resync?prefix=a&prefix=b%2F32",
                                        "POST")
        assert reply.status == 200
        assert resync.query == {"prefix": ["a", "b/32"]}

    serve(check, actions={"/resync": resync})


def test_an_action_answers_with_its_own_status() -> None:
    async def check(server: ApiServer) -> None:
        reply = await asyncio.to_thread(http, server.port, "/assign", "POST")
        assert reply.status == 409
        assert json.loads(reply.body) == {"resynced": True, "calls": 1}

    serve(check, actions={"/assign": Resync(409)})


def test_action_paths_take_post_only_and_the_others_get_only() -> None:
    resync = Resync()

    async def check(server: ApiServer) -> None:
        for method in ("GET", "PUT", "DELETE"):
            reply = await asyncio.to_thread(http, server.port, "/resync", method)
            assert (reply.status, reply.headers["Allow"]) == (405, "POST"), method
        reply = await asyncio.to_thread(http, server.port, "/status", "POST")
        assert (reply.status, reply.headers["Allow"]) == (405, "GET")
        reply = await asyncio.to_thread(http, server.port, "/nope", "POST")
        assert reply.status == 404
        assert reply.body == b"not found: try GET /status, /metrics, /healthz; POST /resync\n"
        assert resync.calls == 0

    serve(check, actions={"/resync": resync})


def test_an_action_not_configured_is_404() -> None:
    async def check(server: ApiServer) -> None:
        for method in ("POST", "GET"):
            assert (await asyncio.to_thread(http, server.port, "/resync", method)).status == 404

    serve(check)


def test_a_small_body_is_read_and_discarded_a_large_one_refused() -> None:
    resync = Resync()
    head = b"POST /resync HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"

    async def check(server: ApiServer) -> None:
        answer = await raw(server.port, head % 1024 + b"{" * 1024)
        assert answer.startswith(b"HTTP/1.1 200 ") and resync.calls == 1
        answer = await raw(server.port, head % 1025 + b"{" * 1025)
        assert answer.startswith(b"HTTP/1.1 413 ")
        answer = await raw(server.port, b"POST /resync HTTP/1.1\r\nContent-Length: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")
        chunked = b"POST /resync HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        assert (await raw(server.port, chunked)).startswith(b"HTTP/1.1 411 ")
        assert resync.calls == 1

    serve(check, actions={"/resync": resync})


def test_a_body_that_never_arrives_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "REQUEST_TIMEOUT", 0.2)
    resync = Resync()

    async def check(server: ApiServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /resync HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}")
        await writer.drain()
        answer = await reader.read()  # the connection stays open: the server ends it
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert resync.calls == 0

    serve(check, actions={"/resync": resync})


def test_a_failing_action_is_500_and_the_server_carries_on() -> None:
    async def broken(query: Query) -> tuple[int, dict[str, object]]:
        raise RuntimeError("boom")

    async def check(server: ApiServer) -> None:
        reply = await asyncio.to_thread(http, server.port, "/resync", "POST")
        assert (reply.status, reply.body) == (500, b"internal error\n")
        assert (await asyncio.to_thread(http, server.port, "/healthz")).status == 200

    serve(check, actions={"/resync": broken})


def test_announced_status_from_config() -> None:
    config = parse_config(
        {
            "node_name": "w",
            "router_id": "10.0.0.1",
            "local_asn": 65531,
            "peers": [{"name": "s", "address": "10.0.0.2", "asn": 65533}],
            "announce": [
                {"prefix": "10.1.0.1/32"},
                {"prefix": "10.1.0.2/32", "next_hop": "10.0.0.9"},
            ],
        }
    )
    assert announced_status(config.announcements) == [
        {"prefix": "10.1.0.1/32", "peers": ["s"], "next_hop": "self"},
        {"prefix": "10.1.0.2/32", "peers": ["s"], "next_hop": "10.0.0.9"},
    ]


# --- metrics -------------------------------------------------------------------


def samples(metrics: SpeakerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the rendered text, by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_follow_the_session() -> None:
    metrics = SpeakerMetrics()
    metrics.session_state("spine-1", "Active")
    metrics.session_state("spine-1", "Established")
    metrics.update_sent("spine-1", 3)
    metrics.update_received("spine-1")
    metrics.advertised("spine-1", 100)
    metrics.received("spine-1", 2)
    metrics.notification("spine-1", 6, 2, "sent")
    metrics.notification("spine-1", 4, 0, "received")
    metrics.session_state("spine-1", "Idle")
    metrics.announcements(100)
    found = samples(metrics)
    peer = (("peer", "spine-1"),)
    assert found[("spinelb_session_up", peer)] == 0
    assert found[("spinelb_session_state", (("peer", "spine-1"), ("state", "Idle")))] == 1
    assert found[("spinelb_session_state", (("peer", "spine-1"), ("state", "Established")))] == 0
    assert found[("spinelb_updates_sent_total", peer)] == 3
    assert found[("spinelb_updates_received_total", peer)] == 1
    assert found[("spinelb_prefixes_advertised", peer)] == 100
    assert found[("spinelb_prefixes_received", peer)] == 2
    labels = (("code", "6"), ("peer", "spine-1"), ("subcode", "2"))
    assert found[("spinelb_notifications_sent_total", labels)] == 1
    labels = (("code", "4"), ("peer", "spine-1"), ("subcode", "0"))
    assert found[("spinelb_notifications_received_total", labels)] == 1
    assert found[("spinelb_session_flaps_total", peer)] == 1
    assert found[("spinelb_announcements", ())] == 100


def test_remove_peer_drops_its_series() -> None:
    metrics = SpeakerMetrics()
    for peer in ("spine-1", "spine-2"):
        metrics.session_state(peer, "Established")
        metrics.update_sent(peer)
        metrics.notification(peer, 6, 4, "received")
        metrics.advertised(peer, 1)
    metrics.remove_peer("spine-1")
    text = metrics.render().decode()
    assert 'peer="spine-1"' not in text
    assert 'peer="spine-2"' in text
    metrics.remove_peer("never-seen")  # no error


def test_each_speaker_has_its_own_registry() -> None:
    first, second = SpeakerMetrics(), SpeakerMetrics()
    first.session_state("a", "Established")
    assert b'peer="a"' not in second.render()
    shared = CollectorRegistry()
    SpeakerMetrics(shared).announcements(7)
    assert any(m.name == "spinelb_announcements" for m in shared.collect())


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError):
        SpeakerMetrics().session_state("a", "Up")
