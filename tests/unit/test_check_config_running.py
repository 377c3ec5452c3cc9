"""``spinelb check-config --running/--controller/--json``: is a new config valid, and what does it need."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spinelb.status import check_main

SPEAKER = """\
node_name: ncn-w001
router_id: 10.252.1.10
local_asn: 65531
api: {listen: "127.0.0.1:7473"}
log_level: info
peers:
  - {name: sw-spine-001-nmn, address: 10.252.0.2, asn: 65533, hold_time: 3, keepalive: 1,
     password: Old-Key-1}
  - {name: sw-spine-002-nmn, address: 10.252.0.3, asn: 65533, hold_time: 3, keepalive: 1}
announce:
  - {prefix: 10.92.100.1/32}
pools:
  - {name: node-management, addresses: [10.92.100.0/24]}
"""

CONTROLLER = """\
kubernetes: {namespace: spinelb-system}
controller: {listen: "127.0.0.1:7474"}
pools:
  - {name: node-management, addresses: [10.92.100.0/24]}
"""


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], new: str,
          running: str | None = None, *extra: str) -> tuple[int, dict[str, Any]]:
    """Run check-config --json on ``new`` (and ``running``); the exit status and the JSON."""
    new_path = tmp_path / "new.yaml"
    new_path.write_text(new)
    argv = ["--config", str(new_path), "--json", *extra]
    if running is not None:
        running_path = tmp_path / "running.yaml"
        running_path.write_text(running)
        argv += ["--running", str(running_path)]
    status = check_main(argv)
    out = capsys.readouterr().out
    verdict: dict[str, Any] = json.loads(out)
    return status, verdict


def test_a_valid_config_without_running_is_ok(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    status, verdict = check(tmp_path, capsys, SPEAKER)
    assert status == 0
    assert verdict["ok"] is True and "action" not in verdict
    assert "ok: node ncn-w001, 2 peers, 1 announcement" in verdict["summary"]


def test_the_same_settings_in_other_words_are_unchanged(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reworded = "# a comment\n" + SPEAKER.replace("log_level: info\n", "")
    status, verdict = check(tmp_path, capsys, reworded, SPEAKER)
    assert (status, verdict["ok"], verdict["action"]) == (0, True, "unchanged")


@pytest.mark.parametrize(("old", "new", "says"), [
    ("  - {prefix: 10.92.100.1/32}\n",
     "  - {prefix: 10.92.100.1/32}\n  - {prefix: 10.92.100.2/32}\n", "1 added"),
    ("  - {name: sw-spine-002-nmn, address: 10.252.0.3, asn: 65533, hold_time: 3, keepalive: 1}\n",
     "", "peers removed: sw-spine-002-nmn"),
    ("hold_time: 3, keepalive: 1}\nannounce", "hold_time: 9, keepalive: 3}\nannounce",
     "peer sw-spine-002-nmn (hold_time, keepalive; reset)"),
    ("log_level: info", "log_level: debug", "log_level changed"),
    ("addresses: [10.92.100.0/24]", "addresses: [10.92.100.0/25]", "pools changed"),
])
def test_what_sighup_applies_is_a_reload(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         old: str, new: str, says: str) -> None:
    assert old in SPEAKER
    status, verdict = check(tmp_path, capsys, SPEAKER.replace(old, new), SPEAKER)
    assert (status, verdict["action"]) == (0, "reload")
    assert says in verdict["summary"]


def test_a_changed_password_is_a_reload_that_names_it_but_never_shows_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, verdict = check(tmp_path, capsys, SPEAKER.replace("Old-Key-1", "New-Key-2"), SPEAKER)
    assert (status, verdict["action"]) == (0, "reload")
    assert "password" in verdict["summary"]
    assert "Old-Key-1" not in verdict["summary"] and "New-Key-2" not in verdict["summary"]


@pytest.mark.parametrize(("old", "new", "setting"), [
    ("router_id: 10.252.1.10", "router_id: 10.252.1.11", "router_id"),
    ('api: {listen: "127.0.0.1:7473"}', 'api: {listen: "127.0.0.1:7475"}', "api"),
    ("log_level: info", "log_level: info\nlisten: {port: 1179}", "listen"),
    ("log_level: info", "log_level: info\ngraceful_restart: {restart_time: 120}",
     "graceful_restart"),
])
def test_identity_and_socket_changes_need_a_restart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str,
        setting: str) -> None:
    status, verdict = check(tmp_path, capsys, SPEAKER.replace(old, new), SPEAKER)
    assert (status, verdict["action"]) == (0, "restart")
    assert f"restart: {setting} changed" in verdict["summary"]


def test_a_running_config_that_cannot_be_read_means_restart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, verdict = check(tmp_path, capsys, SPEAKER, "peers: [\n")
    assert (status, verdict["action"]) == (0, "restart")
    assert "the running config is not valid" in verdict["summary"]
    status, verdict = check(tmp_path, capsys, SPEAKER, None, "--running",
                            str(tmp_path / "missing.yaml"))
    assert (status, verdict["action"]) == (0, "restart")


def test_a_rejected_config_lists_every_problem_with_the_password_redacted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = SPEAKER.replace("password: Old-Key-1", f"password: {'Too-Long-Key-' * 8}").replace(
        "asn: 65533, hold_time: 3, keepalive: 1}\nannounce", "asn: 0, hold_time: 2}\nannounce")
    status, verdict = check(tmp_path, capsys, bad, SPEAKER)
    assert status == 2
    assert verdict["ok"] is False and "action" not in verdict
    problems = verdict["problems"]
    assert any(p.startswith("peers[0].password") for p in problems)
    assert any(p.startswith("peers[1].asn") for p in problems)
    assert any(p.startswith("peers[1].hold_time") for p in problems)
    assert "Too-Long-Key" not in json.dumps(verdict)


def test_without_json_a_rejected_config_prints_the_problems_on_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SPEAKER.replace("router_id: 10.252.1.10", "router_id: nowhere"))
    assert check_main(["--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert "router_id" in captured.err and captured.out == ""


def test_the_controller_is_checked_as_the_controller_and_any_change_restarts_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, verdict = check(tmp_path, capsys, CONTROLLER, CONTROLLER, "--controller")
    assert (status, verdict["action"]) == (0, "unchanged")
    assert "ok: controller, 1 pool" in verdict["summary"]
    changed = CONTROLLER.replace("10.92.100.0/24", "10.92.100.0/25")
    status, verdict = check(tmp_path, capsys, changed, CONTROLLER, "--controller")
    assert (status, verdict["action"]) == (0, "restart")
    status, verdict = check(tmp_path, capsys, CONTROLLER)  # as a speaker's it lacks peers
    assert status == 2 and not verdict["ok"]


def test_the_spinelb_command_runs_it(tmp_path: Path) -> None:
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(SPEAKER)
    new.write_text(SPEAKER.replace("log_level: info", "log_level: debug"))
    result = subprocess.run(
        [sys.executable, "-m", "spinelb.cli", "check-config", "--config", str(new),
         "--running", str(old)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("; reload: log_level changed")
