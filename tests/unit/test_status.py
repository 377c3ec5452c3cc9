"""``spinelb status`` against a fake API, and ``spinelb check-config``'s exit codes."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from spinelb import status
from spinelb.status import check_main, format_uptime, main

PEERS = [
    {
        "name": "sw-spine-001-nmn",
        "address": "10.252.0.2",
        "asn": 65533,
        "local_asn": 65531,
        "state": "Established",
        "uptime_seconds": 3725.4,
        "advertised": 3,
        "received": 0,
        "last_error": None,
        "families": ["ipv4-unicast"],
    },
    {
        "name": "sw-spine-002-nmn",
        "address": "10.252.0.3",
        "asn": 65533,
        "local_asn": 65531,
        "state": "Active",
        "uptime_seconds": None,
        "advertised": 0,
        "received": 0,
        "last_error": "connection refused",
        "families": ["ipv4-unicast", "ipv6-unicast"],
    },
]
ANNOUNCED = [
    {"prefix": "10.102.10.129/32", "peers": ["sw-spine-001-nmn"], "next_hop": "self"},
    {"prefix": "2001:db8::5/128", "peers": ["sw-spine-002-nmn"], "next_hop": "self"},
]


def status_body(peers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "node_name": "ncn-w001",
        "router_id": "10.252.1.10",
        "version": "0.1.0",
        "peers": peers,
        "announced": ANNOUNCED,
    }


class FakeApi:
    """A real HTTP server on 127.0.0.1 that answers GET /status with ``body``."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = status_body(PEERS)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = json.dumps(fake.body).encode()
                code = 200 if self.path == "/status" else 404
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    thread = threading.Thread(target=api.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()
    thread.join()


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_table_for_a_person(fake_api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--api", fake_api.address]) == 1  # one peer is not Established
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "node ncn-w001  router-id 10.252.1.10  spinelb 0.1.0"
    header = next(line for line in lines if line.startswith("PEER"))
    assert header.split() == [
        "PEER", "ADDRESS", "AS", "STATE", "UPTIME", "ADVERTISED", "RECEIVED", "LAST", "ERROR",
    ]  # fmt: skip
    first = next(line for line in lines if line.startswith("sw-spine-001-nmn"))
    assert first.split() == [
        "sw-spine-001-nmn",
        "10.252.0.2",
        "65533",
        "Established",
        "1h02m",
        "3",
        "0",
        "-",
    ]
    second = next(line for line in lines if line.startswith("sw-spine-002-nmn"))
    assert second.split()[3:5] == ["Active", "-"]
    assert second.endswith("connection refused")
    # columns line up: every state starts where the header's STATE does
    assert first.index("Established") == header.index("STATE") == second.index("Active")
    assert "announced: 2 prefixes (1 IPv4, 1 IPv6)" in out
    assert "  10.102.10.129/32  next hop self  to sw-spine-001-nmn" in lines


def test_exit_0_when_every_peer_is_established(
    fake_api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api.body = status_body([PEERS[0]])
    assert main(["--api", fake_api.address]) == 0


def test_json_prints_the_raw_status(fake_api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--api", fake_api.address, "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == status_body(PEERS)


def test_many_announcements_are_summarised(
    fake_api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api.body["announced"] = [
        {"prefix": f"10.0.0.{i}/32", "peers": ["a"], "next_hop": "self"} for i in range(50)
    ]
    main(["--api", fake_api.address])
    out = capsys.readouterr().out
    assert "announced: 50 prefixes (50 IPv4, 0 IPv6)" in out
    assert "10.0.0.7/32" not in out
    assert "--json" in out


def test_api_address_from_the_config(
    fake_api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "speaker.yaml"
    # not a valid speaker config: status only needs api.listen
    config.write_text(
        f'api: {{listen: "{fake_api.address}"}}\npeers: [{{password_file: /root/x}}]\n'
    )
    assert main(["--config", str(config)]) == 1
    assert "sw-spine-001-nmn" in capsys.readouterr().out


def test_api_disabled_in_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "speaker.yaml"
    config.write_text("api: {listen: null}\n")
    assert main(["--config", str(config)]) == 2
    assert "disabled" in capsys.readouterr().err


def test_unreachable_api_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["--api", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the speaker's API at 127.0.0.1:{port}" in err
    assert "is the speaker running?" in err


def test_default_api_address(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def fake_fetch(api: str) -> bytes:
        asked.append(api)
        return json.dumps(status_body([])).encode()

    monkeypatch.setattr(status, "fetch_status", fake_fetch)
    assert main([]) == 0
    assert asked == ["127.0.0.1:7473"]


def test_bad_api_address_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--api", "localhost:x"]) == 2
    assert "bad API address" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (42.9, "42s"), (303, "5m03s"), (3725, "1h02m"), (273600, "3d04h")],
)
def test_format_uptime(seconds: float | None, text: str) -> None:
    assert format_uptime(seconds) == text


# --- check-config --------------------------------------------------------------

GOOD = """\
node_name: ncn-w001
router_id: 10.252.1.10
local_asn: 65531
peers:
  - {name: spine-1, address: 10.252.0.2, asn: 65533, password: s3cret-xyz}
announce:
  - prefix: 10.102.10.129/32
"""


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "speaker.yaml"
    path.write_text(GOOD)
    assert check_main(["--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == f"{path}: ok: node ncn-w001, 1 peer, 1 announcement (1 IPv4, 0 IPv6)\n"


def test_check_config_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "speaker.yaml"
    path.write_text(GOOD.replace("asn: 65533", "asn: 65533, hold_time: 2").replace("/32", "/24"))
    assert check_main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: 2 problems" in err
    assert "peers[0].hold_time: must be 0 or at least 3 (RFC 4271) (got 2)" in err
    assert "announce[0].prefix: host bits set: the network is 10.102.10.0/24" in err
    assert "s3cret-xyz" not in err


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_main(["--config", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read the config" in capsys.readouterr().err
