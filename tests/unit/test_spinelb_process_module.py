"""spinelb_process: a supervised process through its pid files, by module call and by playbook."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from test_spine_bgp_frr_config import collection_module
from test_spine_bgp_playbooks import ansible_playbook
from test_supervise import CHILD, alive, wait_until

from spinelb.supervise import read_pid

spinelb_process: Any = collection_module("plugins.modules.spinelb_process")

SPINELB = str(Path(sys.executable).with_name("spinelb"))


class Process:
    """The files of one supervised test child."""

    def __init__(self, tmp_path: Path) -> None:
        self.pid_file = tmp_path / "child.pid"
        self.state = tmp_path / "state"
        self.hups = tmp_path / "state.hups"
        self.log_file = tmp_path / "child.log"

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-c", CHILD, str(self.state), *extra]

    def pids(self) -> tuple[int | None, int | None]:
        return read_pid(self.pid_file), read_pid(Path(f"{self.pid_file}.child"))


@pytest.fixture
def process(tmp_path: Path) -> Iterator[Process]:
    files = Process(tmp_path)
    yield files
    pid = read_pid(files.pid_file)
    if pid is not None and alive(pid):
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid))


def run_module(capsys: pytest.CaptureFixture[str], process: Process, state: str, *,
               check_mode: bool = False, **args: Any) -> dict[str, Any]:
    args = {"name": "test child", "pid_file": str(process.pid_file),
            "command": process.command(), "executable": SPINELB,
            "log_file": str(process.log_file), "state": state,
            "_ansible_check_mode": check_mode, **args}
    with patch_module_args(args), pytest.raises(SystemExit):
        spinelb_process.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_started_starts_once(process: Process, capsys: pytest.CaptureFixture[str]) -> None:
    first = run_module(capsys, process, "started")
    assert (first["changed"], first["state"]) == (True, "started"), first
    assert (first["pid"], first["child_pid"]) == process.pids()
    assert alive(first["pid"]) and alive(first["child_pid"])
    second = run_module(capsys, process, "started")
    assert second["changed"] is False
    assert (second["pid"], second["child_pid"]) == (first["pid"], first["child_pid"])


def test_reloaded_sends_sighup_to_the_command(process: Process,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    started = run_module(capsys, process, "started")
    wait_until(lambda: read_pid(process.state) == started["child_pid"])  # its handler is set
    reloaded = run_module(capsys, process, "reloaded")
    assert reloaded["changed"] is True
    assert reloaded["child_pid"] == started["child_pid"]
    wait_until(lambda: process.hups.exists()
               and process.hups.read_text().split() == [str(started["child_pid"])])


def test_restarted_runs_a_new_command_process(process: Process,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    started = run_module(capsys, process, "started")
    restarted = run_module(capsys, process, "restarted")
    assert restarted["changed"] is True
    assert restarted["child_pid"] not in (None, started["child_pid"])
    assert restarted["pid"] != started["pid"]
    assert not alive(started["child_pid"]) and alive(restarted["child_pid"])


def test_stopped_stops_both_and_then_changes_nothing(process: Process,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    started = run_module(capsys, process, "started")
    stopped = run_module(capsys, process, "stopped")
    assert (stopped["changed"], stopped["state"], stopped["pid"]) == (True, "stopped", None)
    assert not alive(started["pid"]) and not alive(started["child_pid"])
    assert process.pids() == (None, None)
    again = run_module(capsys, process, "stopped")
    assert again["changed"] is False


def test_check_mode_changes_nothing(process: Process,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    would_start = run_module(capsys, process, "started", check_mode=True)
    assert (would_start["changed"], would_start["state"]) == (True, "started")
    assert process.pids() == (None, None)
    started = run_module(capsys, process, "started")
    for state in ("stopped", "restarted", "reloaded"):
        result = run_module(capsys, process, state, check_mode=True)
        assert result["changed"] is True, state
    assert process.pids() == (started["pid"], started["child_pid"])
    assert alive(started["child_pid"]) and not process.hups.exists()


def test_a_running_supervisor_of_another_command_is_restarted(
        process: Process, capsys: pytest.CaptureFixture[str]) -> None:
    started = run_module(capsys, process, "started")
    changed = run_module(capsys, process, "started", command=process.command("--new-config"))
    assert changed["changed"] is True and changed["pid"] != started["pid"]
    assert "--new-config" in Path(f"/proc/{changed['child_pid']}/cmdline").read_text()


def test_reloaded_starts_what_does_not_run(process: Process,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys, process, "reloaded")
    assert (result["changed"], result["state"]) == (True, "started")
    assert alive(result["child_pid"])


def test_a_command_that_cannot_start_fails_the_task(process: Process,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys, process, "started", command=["/nonexistent/spinelb-speaker"])
    assert result["failed"] is True
    assert "test child did not start" in result["msg"] and "/nonexistent" in result["msg"]
    assert process.pids() == (None, None)


PLAYBOOK = """
- name: A supervised process on localhost
  hosts: localhost
  gather_facts: false
  vars:
    process: &process
      name: test child
      pid_file: "{{ dir }}/child.pid"
      log_file: "{{ dir }}/child.log"
      executable: "{{ spinelb }}"
      command: "{{ command }}"
  tasks:
    - name: Start
      spinelb.fabric.spinelb_process:
        <<: *process
        state: started
      register: first
    - name: Start again
      spinelb.fabric.spinelb_process:
        <<: *process
        state: started
      register: second
    - name: Reload
      spinelb.fabric.spinelb_process:
        <<: *process
        state: reloaded
      register: reload
    - name: Stop
      spinelb.fabric.spinelb_process:
        <<: *process
        state: stopped
      register: stop
    - name: Report
      ansible.builtin.debug:
        msg: "RESULT {{ [first.changed, second.changed, reload.changed, stop.changed,
          first.child_pid == second.child_pid, stop.state] | join(' ') }}"
"""


def test_a_playbook_starts_reloads_and_stops_it(process: Process, tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    extra = {"dir": str(tmp_path), "spinelb": SPINELB, "command": process.command()}
    run = ansible_playbook("-i", "localhost,", "-c", "local", str(playbook),
                           "-e", f"ansible_python_interpreter={sys.executable}",
                           "-e", json.dumps(extra))
    assert run.returncode == 0, run.stdout + run.stderr
    # started, started again (no change), reloaded, stopped; the same child until the stop
    assert '"msg": "RESULT True False True True True stopped"' in run.stdout
    assert process.pids() == (None, None)
