"""speaker_info: a real speaker's /status read through its loopback API by the module."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from test_spine_bgp_frr_config import collection_module

from lab.apiserver import free_port
from spinelb.config import parse_config
from spinelb.speaker.speaker import Speaker

speaker_info: Any = collection_module("plugins.modules.speaker_info")


@pytest.fixture
def speaker_api() -> Iterator[str]:
    """A speaker with one peer that never answers (port 1 on loopback) and one static route."""
    port = free_port()
    config = parse_config({
        "node_name": "ncn-w001", "router_id": "10.252.1.10", "local_asn": 65531,
        "api": {"listen": f"127.0.0.1:{port}"},
        "peers": [{"name": "sw-spine-001-nmn", "address": "127.0.0.1", "port": 1, "asn": 65533,
                   "connect_retry": 60}],
        "announce": [{"prefix": "192.0.2.1/32"}],
    })
    loop = asyncio.new_event_loop()
    speaker = Speaker(config)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(speaker.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(speaker.shutdown("test over"), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def run_module(capsys: pytest.CaptureFixture[str], **args: Any) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        speaker_info.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_reads_sessions_and_announcements(speaker_api: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys, api=speaker_api)
    assert result["changed"] is False and result["reachable"] is True
    assert result["node_name"] == "ncn-w001"
    [session] = result["sessions"]
    assert session["name"] == "sw-spine-001-nmn" and session["state"] != "Established"
    assert result["established"] is False
    assert [a["prefix"] for a in result["announced"]] == ["192.0.2.1/32"]
    assert result["services"] == [] and result["kubernetes"] is None


def test_require_established_fails_naming_the_sessions(
        speaker_api: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys, api=speaker_api, require_established=True)
    assert result["failed"] is True
    assert result["msg"].startswith("sessions not Established: sw-spine-001-nmn (")


def test_an_unreachable_speaker_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    result = run_module(capsys, api=f"127.0.0.1:{port}", timeout=2)
    assert result["failed"] is True and result["reachable"] is False
    assert f"127.0.0.1:{port} did not answer" in result["msg"]
    result = run_module(capsys, api="nonsense")
    assert result["msg"] == "api must be ADDRESS:PORT, got 'nonsense'"


def test_ipv6_api_addresses_are_bracketed() -> None:
    assert speaker_info.api_url("::1:7473") == "http://[::1]:7473/status"
    assert speaker_info.api_url("[::1]:7473") == "http://[::1]:7473/status"
