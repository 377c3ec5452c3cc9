"""The AOS-CX REST push client against a local fake switch (tests/unit/fake_aoscx.py)."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_aoscx import API, FakeAoscx

from spinelb.spine.aoscx_rest import (
    AoscxApplyError,
    AoscxClient,
    AoscxDryRunError,
    AoscxError,
    AoscxLoginError,
    AoscxTimeoutError,
    DryRunResult,
)

OLD = "hostname sw-spine-001\n"
NEW = (
    "hostname sw-spine-001\n"
    "router bgp 65533\n"
    "    neighbor 10.252.1.7 remote-as 65531\n"
    "    neighbor 10.252.1.7 passive\n"
)
BAD = "hostname sw-spine-001\nbogus command\nrouter bgp 65533\n"
POLL = 0.001  # seconds between dry-run polls: tiny, the fake answers at once
FROM_RUNNING = "from=%2Frest%2Fv10.09%2Ffullconfigs%2Frunning-config"

Client = Callable[..., AoscxClient]


@pytest.fixture
def switch() -> Iterator[FakeAoscx]:
    fake = FakeAoscx(running_config=OLD, startup_config=OLD)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def client(switch: FakeAoscx) -> Client:
    def make(**overrides: Any) -> AoscxClient:
        options: dict[str, Any] = {
            "username": switch.username,
            "password": switch.password,
            "port": switch.port,
            "scheme": "http",
            "timeout": 5.0,
        }
        options.update(overrides)
        return AoscxClient("127.0.0.1", **options)

    return make


def writes(switch: FakeAoscx) -> list[tuple[str, str]]:
    """Requests that could change the device: every PUT, every POST but login/logout/dry-run."""
    harmless = (f"{API}/login", f"{API}/logout", f"{API}/configs/running-config?dryrun")
    return [
        (method, path)
        for method, path in switch.requests
        if method == "PUT" or (method == "POST" and path not in harmless)
    ]


# --- session ------------------------------------------------------------------


def test_login_reads_running_config_and_logs_out(switch: FakeAoscx, client: Client) -> None:
    with client() as aoscx:
        assert len(switch.sessions) == 1
        assert aoscx.running_config_text() == OLD
        assert aoscx.running_config()["System"]["cli"] == ["hostname sw-spine-001"]
    assert switch.sessions == set()
    assert switch.logouts == 1
    assert switch.requests[-1] == ("POST", f"{API}/logout")


def test_without_a_session_the_switch_answers_401(client: Client) -> None:
    with pytest.raises(AoscxError) as caught:
        client().running_config()
    assert caught.value.status == 401
    assert "HTTP 401: Login required" in str(caught.value)


def test_bad_password_is_a_clear_login_error_without_the_secret(
    switch: FakeAoscx, client: Client
) -> None:
    wrong = "not-the-Pa55word"
    with pytest.raises(AoscxLoginError) as caught, client(password=wrong):
        pytest.fail("login should have failed")
    text = str(caught.value)
    assert text == (
        f"login to 127.0.0.1:{switch.port} as 'admin': "
        "HTTP 401: Login failed: invalid username or password"
    )
    assert caught.value.status == 401
    assert wrong not in text and wrong not in repr(caught.value)
    assert switch.logins == 0
    assert ("POST", f"{API}/logout") not in switch.requests


def test_unreachable_switch_names_host_and_reason(client: Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AoscxError, match=rf"cannot reach 127\.0\.0\.1:{port}: .*refused"):
        client(port=port).login()


def test_csrf_token_from_login_is_sent_on_writes(switch: FakeAoscx, client: Client) -> None:
    switch.csrf = True
    with client() as aoscx:
        result = aoscx.apply(NEW, poll_interval=POLL)
    assert result.changed and result.confirmed
    assert switch.running_config == NEW


# --- dry-run -------------------------------------------------------------------


def test_dry_run_success_and_error_change_nothing(switch: FakeAoscx, client: Client) -> None:
    with client() as aoscx:
        good = aoscx.dry_run(NEW, poll_interval=POLL)
        bad = aoscx.dry_run(BAD, poll_interval=POLL)
    assert good.ok and good.errors == []
    assert good.config is not None and good.config["System"]["cli"][1] == "router bgp 65533"
    assert bad == DryRunResult(ok=False, errors=["Line 2: % Invalid input: bogus command"])
    assert switch.running_config == OLD
    assert writes(switch) == []


def test_failed_dry_run_leaves_switch_untouched_and_reports_the_switch_text(
    switch: FakeAoscx, client: Client
) -> None:
    switch.pending_polls = 3
    before = (switch.running_config, switch.startup_config, dict(switch.checkpoints))
    with pytest.raises(AoscxDryRunError) as caught, client() as aoscx:
        aoscx.apply(BAD, poll_interval=POLL)
    assert caught.value.errors == ["Line 2: % Invalid input: bogus command"]
    assert "Line 2: % Invalid input: bogus command" in str(caught.value)
    assert "nothing was applied" in str(caught.value)
    assert (switch.running_config, switch.startup_config, dict(switch.checkpoints)) == before
    assert switch.running_config.encode() == OLD.encode()
    assert writes(switch) == []
    dry_run_polls = [
        r for r in switch.requests if r == ("GET", f"{API}/configs/running-config?dryrun")
    ]
    assert len(dry_run_polls) == 4  # three "pending", then "error"
    assert switch.logouts == 1


def test_dry_run_pending_past_the_timeout(switch: FakeAoscx, client: Client) -> None:
    switch.pending_polls = None  # the switch never finishes
    pending = r"still pending after 0\.05 s; nothing was applied"
    with pytest.raises(AoscxTimeoutError, match=pending), client() as aoscx:
        aoscx.apply(NEW, poll_interval=POLL, dry_run_timeout=0.05)
    assert switch.running_config == OLD
    assert writes(switch) == []
    assert switch.logouts == 1


# --- apply ---------------------------------------------------------------------


def test_apply_checkpoints_writes_confirms_and_saves(switch: FakeAoscx, client: Client) -> None:
    mgmt = dict(switch.mgmt_intf)
    with client() as aoscx:
        result = aoscx.apply(NEW, poll_interval=POLL)
        assert "spinelb-auto" in aoscx.checkpoints()
    assert (result.changed, result.checkpoint, result.confirmed) == (True, "spinelb-auto", True)
    assert switch.running_config == NEW
    assert switch.startup_config == NEW
    assert switch.checkpoints["spinelb-auto"].cli == OLD
    assert switch.mgmt_intf == mgmt  # kept although the dry-run's JSON had none
    assert writes(switch) == [
        ("PUT", f"{API}/fullconfigs/spinelb-auto?{FROM_RUNNING}"),
        ("PUT", f"{API}/fullconfigs/running-config"),
        ("PUT", f"{API}/fullconfigs/startup-config?{FROM_RUNNING}"),
    ]
    assert switch.logouts == 1


def test_apply_of_the_running_config_changes_nothing(switch: FakeAoscx, client: Client) -> None:
    with client() as aoscx:
        aoscx.apply(NEW, poll_interval=POLL)
        switch.requests.clear()
        again = aoscx.apply(NEW, poll_interval=POLL)
    assert again.changed is False and again.checkpoint is None
    assert writes(switch) == []


def test_apply_without_confirm_leaves_startup_config(switch: FakeAoscx, client: Client) -> None:
    with client() as aoscx:
        result = aoscx.apply(NEW, confirm=False, checkpoint="before-bgp", poll_interval=POLL)
    assert (result.changed, result.checkpoint, result.confirmed) == (True, "before-bgp", False)
    assert switch.running_config == NEW
    assert switch.startup_config == OLD
    assert switch.checkpoints["before-bgp"].cli == OLD


def test_failed_write_restores_the_checkpoint_and_still_logs_out(
    switch: FakeAoscx, client: Client
) -> None:
    switch.fail[("PUT", f"{API}/fullconfigs/running-config")] = [(500, "config database busy")]
    with pytest.raises(AoscxApplyError) as caught, client() as aoscx:
        aoscx.apply(NEW, poll_interval=POLL)
    error = caught.value
    assert error.status == 500 and error.rolled_back and error.checkpoint == "spinelb-auto"
    assert "HTTP 500: config database busy" in str(error)
    assert "restored from checkpoint 'spinelb-auto'" in str(error)
    assert switch.running_config == OLD and switch.startup_config == OLD
    assert switch.logouts == 1


def test_switch_that_stops_answering_after_the_write_is_rolled_back(
    switch: FakeAoscx, client: Client
) -> None:
    running = ("GET", f"{API}/configs/running-config")
    switch.fail[running] = [None, (503, "Service Unavailable")]  # read ok, confirm fails
    with pytest.raises(AoscxApplyError) as caught, client() as aoscx:
        aoscx.apply(NEW, poll_interval=POLL)
    assert caught.value.rolled_back
    assert "stopped answering after the write" in str(caught.value)
    assert "HTTP 503: Service Unavailable" in str(caught.value)
    assert switch.running_config == OLD and switch.startup_config == OLD
    assert switch.logouts == 1


def test_lockout_that_defeats_the_rollback_tells_the_user_how_to_recover(
    switch: FakeAoscx, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    switch.cut_sessions_on_write = True
    with pytest.raises(AoscxApplyError) as caught, client() as aoscx:
        aoscx.apply(NEW, poll_interval=POLL)
    assert not caught.value.rolled_back
    assert "restoring checkpoint 'spinelb-auto' failed too" in str(caught.value)
    assert "checkpoint rollback spinelb-auto" in str(caught.value)
    assert switch.startup_config == OLD  # never saved
    assert switch.requests[-1] == ("POST", f"{API}/logout")  # tried, got 401, not raised
    assert "logout" in caplog.text


def test_static_routes_are_listed_per_vrf_and_deleted_by_prefix(
    switch: FakeAoscx, client: Client
) -> None:
    switch.running_config = OLD + "vrf CSM\n"
    switch.add_static_route("10.92.100.71/32", "10.252.1.10", vrf="CSM")
    switch.add_static_route("10.92.100.71/32", "10.252.1.11", vrf="CSM")
    switch.add_static_route("10.102.5.0/25", "10.102.5.1")
    switch.add_static_route("fd00:92::7/128", "fd00:252::10")
    with client() as c:
        assert c.vrfs() == ["CSM", "default"]
        assert c.static_routes("CSM") == ["10.92.100.71/32"]
        assert c.static_routes("default") == ["10.102.5.0/25", "fd00:92::7/128"]
        assert c.delete_static_route("CSM", "10.92.100.71/32") is True
        assert c.delete_static_route("default", "fd00:92::7/128") is True
        assert c.delete_static_route("default", "10.9.9.9/32") is False  # absent: 404
        assert c.static_routes("CSM") == []
        c.save()
    assert switch.running_config == OLD + "vrf CSM\nip route 10.102.5.0/25 10.102.5.1\n"
    assert switch.startup_config == switch.running_config
    deletes = [path for method, path in switch.requests if method == "DELETE"]
    assert deletes == [
        f"{API}/system/vrfs/CSM/static_routes/10.92.100.71%2F32",
        f"{API}/system/vrfs/default/static_routes/fd00%3A92%3A%3A7%2F128",
        f"{API}/system/vrfs/default/static_routes/10.9.9.9%2F32",
    ]


def test_a_refused_static_route_delete_names_the_route_and_the_switch_text(
    switch: FakeAoscx, client: Client
) -> None:
    switch.add_static_route("10.92.100.71/32", "10.252.1.10")
    path = f"{API}/system/vrfs/default/static_routes/10.92.100.71%2F32"
    switch.fail[("DELETE", path)] = [(403, "read-only user")]
    with client() as c, pytest.raises(AoscxError) as info:
        c.delete_static_route("default", "10.92.100.71/32")
    assert info.value.status == 403
    assert "delete static route 10.92.100.71/32 of VRF 'default'" in str(info.value)
    assert "read-only user" in str(info.value)
    assert "ip route 10.92.100.71/32" in switch.running_config


def test_checkpoint_names_are_checked_before_any_request(switch: FakeAoscx, client: Client) -> None:
    aoscx = client()
    for name in ("", "../running-config", "startup-config", "a" * 33, "x?from=y"):
        with pytest.raises(ValueError, match="invalid checkpoint name"):
            aoscx.checkpoint(name)
        with pytest.raises(ValueError, match="invalid checkpoint name"):
            aoscx.apply(NEW, checkpoint=name, poll_interval=POLL)
    assert switch.requests == []


# --- secrets -------------------------------------------------------------------


def test_password_and_cookie_never_appear_in_errors_reprs_or_logs(
    switch: FakeAoscx, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    switch.csrf = True
    echo = f"internal error for session {{session}} with password {switch.password}"
    switch.fail[("PUT", f"{API}/fullconfigs/spinelb-auto?{FROM_RUNNING}")] = [(500, echo)]
    aoscx = client()
    with pytest.raises(AoscxError) as caught, aoscx:
        (cookie,) = switch.sessions
        (token,) = switch._csrf_tokens.values()
        aoscx.apply(NEW, poll_interval=POLL)
    shown = [
        str(caught.value),
        repr(caught.value),
        caught.value.switch_text,
        repr(aoscx),
        caplog.text,
    ]
    for text in shown:
        for secret in (switch.password, cookie, token):
            assert secret not in text
    assert "internal error for session ******** with password ********" in str(caught.value)
    assert switch.running_config == OLD  # the checkpoint failed, so nothing was written


# --- TLS -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the TLS tests need the openssl command to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "switch.pem", directory / "switch.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_switch(certificate: tuple[Path, Path]) -> Iterator[FakeAoscx]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    fake = FakeAoscx(running_config=OLD, startup_config=OLD)
    fake.start(tls=context)
    yield fake
    fake.stop()


def tls_client(fake: FakeAoscx, verify: bool | str) -> AoscxClient:
    return AoscxClient(
        "127.0.0.1",
        username=fake.username,
        password=fake.password,
        port=fake.port,
        verify=verify,
        timeout=5.0,
    )


def test_https_with_a_ca_file(tls_switch: FakeAoscx, certificate: tuple[Path, Path]) -> None:
    with tls_client(tls_switch, str(certificate[0])) as aoscx:
        assert aoscx.apply(NEW, poll_interval=POLL).changed
    assert tls_switch.running_config == NEW
    assert tls_switch.logouts == 1


def test_https_refuses_an_unknown_certificate_unless_told(tls_switch: FakeAoscx) -> None:
    with pytest.raises(
        AoscxError, match=r"cannot reach 127\.0\.0\.1:\d+: .*CERTIFICATE_VERIFY_FAILED"
    ):
        tls_client(tls_switch, True).login()
    assert tls_switch.logins == 0
    with tls_client(tls_switch, False) as aoscx:
        assert aoscx.running_config_text() == OLD
