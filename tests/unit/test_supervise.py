"""``spinelb supervise``: a pid-file supervisor that restarts, forwards SIGHUP and stops its command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.apiserver import free_port
from spinelb.supervise import MAX_RESTART_DELAY, STABLE_AFTER, Supervisor, read_pid

SPINELB = str(Path(sys.executable).with_name("spinelb"))

# The supervised command: records SIGHUPs, then its pid (so a test sees it only once the
# handler is in place), then waits for signals.
CHILD = """
import os, signal, sys
state = sys.argv[1]
def hup(*_):
    with open(state + ".hups", "a") as out:
        out.write(f"{os.getpid()}\\n")
signal.signal(signal.SIGHUP, hup)
with open(state + ".tmp", "w") as out:
    out.write(f"{os.getpid()}\\n")
os.replace(state + ".tmp", state)
while True:
    signal.pause()
"""


def wait_until(cond: Callable[[], object], timeout: float = 20.0) -> None:
    """Return once ``cond()`` is truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat.rsplit(b")", 1)[-1].split()[0] != b"Z"


class Run:
    """One supervisor started by a test, and where its files are."""

    def __init__(self, tmp_path: Path) -> None:
        self.pid_file = tmp_path / "child.pid"
        self.child_file = tmp_path / "child.pid.child"
        self.log_file = tmp_path / "supervise.log"
        self.state = tmp_path / "state"
        self.started: list[int] = []

    def supervise(self, *command: str, restart_delay: str = "0.05"
                  ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [SPINELB, "supervise", "--daemon", "--pid-file", str(self.pid_file),
             "--log-file", str(self.log_file), "--restart-delay", restart_delay, "--", *command],
            capture_output=True, text=True, timeout=60, check=False)
        pid = read_pid(self.pid_file)
        if pid is not None:
            self.started.append(pid)
        return result

    def child(self) -> list[str]:
        return [sys.executable, "-c", CHILD, str(self.state)]

    def stop_all(self) -> None:
        for pid in self.started:
            if alive(pid):
                os.kill(pid, signal.SIGTERM)
                wait_until(lambda gone=pid: not alive(gone))


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    started = Run(tmp_path)
    yield started
    started.stop_all()


def test_daemon_returns_once_the_command_runs_with_both_pid_files(run: Run) -> None:
    result = run.supervise(*run.child())
    assert result.returncode == 0, result.stderr
    supervisor, child = read_pid(run.pid_file), read_pid(run.child_file)
    assert supervisor is not None and alive(supervisor) and supervisor != os.getpid()
    assert child is not None and alive(child)
    wait_until(lambda: read_pid(run.state) == child)
    cmdline = Path(f"/proc/{supervisor}/cmdline").read_bytes().split(b"\0")
    assert str(run.pid_file).encode() in cmdline


def test_a_command_that_exits_is_started_again(run: Run) -> None:
    assert run.supervise(*run.child()).returncode == 0
    first = read_pid(run.child_file)
    assert first is not None
    wait_until(lambda: read_pid(run.state) == first)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: read_pid(run.child_file) not in (None, first))
    second = read_pid(run.child_file)
    wait_until(lambda: read_pid(run.state) == second)
    assert alive(second) and not alive(first)
    log = [json.loads(line) for line in run.log_file.read_text().splitlines()]
    assert [entry["msg"] for entry in log if entry["logger"] == "spinelb.supervise"][:3] == [
        "started", "exited", "started"]


def test_sighup_is_forwarded_to_the_command(run: Run) -> None:
    assert run.supervise(*run.child()).returncode == 0
    supervisor, child = read_pid(run.pid_file), read_pid(run.child_file)
    assert supervisor is not None and child is not None
    wait_until(lambda: read_pid(run.state) == child)  # its handler is installed
    os.kill(supervisor, signal.SIGHUP)
    hups = run.state.with_name("state.hups")
    wait_until(lambda: hups.exists() and hups.read_text().split() == [str(child)])
    assert alive(supervisor) and alive(child)  # a reload, not a restart


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_stops_both_and_removes_the_pid_files(run: Run, stop: signal.Signals) -> None:
    assert run.supervise(*run.child()).returncode == 0
    supervisor, child = read_pid(run.pid_file), read_pid(run.child_file)
    assert supervisor is not None and child is not None
    os.kill(supervisor, stop)
    wait_until(lambda: not alive(supervisor))
    assert not alive(child)
    assert not run.pid_file.exists() and not run.child_file.exists()


def test_a_command_that_ignores_sigterm_is_killed(run: Run, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    stubborn = ["/bin/sh", "-c", f"trap '' TERM; echo $$ > {run.state}; while :; do sleep 1; done"]
    monkeypatch.setattr("spinelb.supervise.STOP_TIMEOUT", 0.2)  # in this process only
    supervisor = Supervisor(stubborn, run.pid_file)
    supervisor._start()  # the unit under test: _stop's escalation
    assert supervisor.child is not None
    child = supervisor.child
    wait_until(lambda: read_pid(run.state) == child.pid)
    supervisor._stop()
    assert child.returncode == -signal.SIGKILL


def test_a_second_supervisor_on_the_same_pid_file_is_refused(run: Run) -> None:
    assert run.supervise(*run.child()).returncode == 0
    supervisor = read_pid(run.pid_file)
    again = run.supervise(*run.child())
    assert again.returncode == 1
    assert f"already running as pid {supervisor}" in again.stderr
    assert read_pid(run.pid_file) == supervisor


def test_a_command_that_cannot_start_fails_the_daemon_without_pid_files(run: Run) -> None:
    result = run.supervise(str(run.state.with_name("no-such-program")))
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "no-such-program" in result.stderr
    assert not run.pid_file.exists() and not run.child_file.exists()


def test_the_restart_delay_doubles_up_to_the_maximum_and_resets_after_a_stable_run(
        tmp_path: Path) -> None:
    supervisor = Supervisor(["true"], tmp_path / "x.pid", restart_delay=1.0)
    assert [supervisor._next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, MAX_RESTART_DELAY,
                                                             MAX_RESTART_DELAY]
    supervisor._start()
    assert supervisor.child is not None
    supervisor.child.wait()
    supervisor.started_at -= STABLE_AFTER  # as if it had been up that long
    assert supervisor._reaped()
    assert supervisor._next_delay() == 1.0


def test_the_speaker_under_the_supervisor_reloads_on_sighup(run: Run, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "speaker.yaml"
    config.write_text(f"node_name: spt-node\nrouter_id: 192.0.2.1\nlocal_asn: 65531\n"
                      f"api: {{listen: '127.0.0.1:{port}'}}\npeers: []\n")
    assert run.supervise(SPINELB, "speaker", "--config", str(config)).returncode == 0

    def status() -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as answer:
                body: dict[str, object] = json.loads(answer.read())
                return body
        except OSError:
            return None

    wait_until(lambda: status() is not None)
    config.write_text(config.read_text().replace("spt-node", "spt-renamed"))
    supervisor = read_pid(run.pid_file)
    child = read_pid(run.child_file)
    assert supervisor is not None
    os.kill(supervisor, signal.SIGHUP)
    wait_until(lambda: (status() or {}).get("node_name") == "spt-renamed")
    assert read_pid(run.child_file) == child  # reloaded in place
