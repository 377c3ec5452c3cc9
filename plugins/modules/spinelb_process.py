#!/usr/bin/python
# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A spinelb process kept running by ``spinelb supervise`` behind a pid file, for hosts without systemd.

The supervisor (``<executable> supervise --daemon --pid-file F -- COMMAND``)
writes its pid to F and the command's to ``F.child`` once the command has
started, restarts the command when it exits, forwards SIGHUP to it and stops
it on SIGTERM.  This module only reads those files and signals the
supervisor; it needs nothing but the host's Python.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: spinelb_process
short_description: Start, stop, restart or reload a spinelb process supervised behind a pid file
version_added: 0.1.0
description:
  - Runs O(command) under C(spinelb supervise) (O(executable)), which restarts it when it exits,
    forwards SIGHUP to it and stops it on SIGTERM; for hosts without systemd (containers, the
    lab's network namespaces).
  - The process is running when the pid in O(pid_file) is alive and its command line names
    O(pid_file). Its command's pid is in C(<pid_file>.child).
author:
  - spinelb maintainers (@spinelb)
requirements:
  - C(spinelb) on the host (O(executable)), for C(spinelb supervise).
  - Linux (C(/proc)).
attributes:
  check_mode:
    support: full
    description: Reports what would change without starting, stopping or signalling anything.
  diff_mode:
    support: none
    description: Nothing to show as a diff; RV(pid) and RV(child_pid) say what runs.
options:
  name:
    description:
      - What the process is (C(speaker), C(controller)), for messages.
    type: str
    default: spinelb
  pid_file:
    description:
      - The supervisor's pid file, an absolute path. Its directory must exist.
    type: path
    required: true
  command:
    description:
      - The command to supervise, as a list (for example the speaker with its config).
      - Required to start it. When a running supervisor runs another command,
        V(started) restarts it with this one.
    type: list
    elements: str
  executable:
    description:
      - The C(spinelb) executable that supervises (C(spinelb supervise --daemon)).
    type: path
    default: spinelb
  log_file:
    description:
      - Where the supervisor and the command write their output (appended).
      - Default none (discarded).
    type: path
  state:
    description:
      - V(started) starts it unless it runs (then nothing changes).
      - V(stopped) stops it (SIGTERM to the supervisor, which stops the command) if it runs.
      - V(restarted) stops it if it runs, then starts it.
      - V(reloaded) sends SIGHUP (the speaker reloads its config); starts it if it does not run.
    type: str
    choices: [started, stopped, restarted, reloaded]
    default: started
  timeout:
    description:
      - Seconds to wait for the process to start or stop.
    type: int
    default: 30
seealso:
  - module: spinelb.fabric.spinelb_config
"""

EXAMPLES = r"""
- name: Run the speaker
  spinelb.fabric.spinelb_process:
    name: speaker
    pid_file: /run/spinelb/speaker.pid
    log_file: /var/log/spinelb/speaker.log
    executable: /opt/spinelb/venv/bin/spinelb
    command: [/opt/spinelb/venv/bin/spinelb, speaker, --config, /etc/spinelb/speaker.yaml]
    state: started

- name: Apply a changed config
  spinelb.fabric.spinelb_process:
    name: speaker
    pid_file: /run/spinelb/speaker.pid
    executable: /opt/spinelb/venv/bin/spinelb
    command: [/opt/spinelb/venv/bin/spinelb, speaker, --config, /etc/spinelb/speaker.yaml]
    state: reloaded

- name: Stop it
  spinelb.fabric.spinelb_process:
    name: speaker
    pid_file: /run/spinelb/speaker.pid
    state: stopped
"""

RETURN = r"""
pid:
  description: The supervisor's pid; null when it is not running.
  returned: always
  type: int
  sample: 4242
child_pid:
  description: The supervised command's pid; null when it is not running.
  returned: always
  type: int
  sample: 4243
state:
  description: V(started) or V(stopped), after the task (in check mode, what it would be).
  returned: always
  type: str
  sample: started
"""

import os  # noqa: E402  (ansible-test wants the documentation first)
import signal  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = dict(
    name=dict(type="str", default="spinelb"),
    pid_file=dict(type="path", required=True),
    command=dict(type="list", elements="str"),
    executable=dict(type="path", default="spinelb"),
    log_file=dict(type="path"),
    state=dict(type="str", default="started",
               choices=["started", "stopped", "restarted", "reloaded"]),
    timeout=dict(type="int", default=30),
)
POLL_INTERVAL = 0.05


def read_pid(path):
    """The pid in ``path``, or None."""
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def cmdline(pid):
    """The process's arguments, or None when it is gone (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            if handle.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return None
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except (OSError, IndexError):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def alive(pid):
    return pid is not None and cmdline(pid) is not None


class Supervised:
    """The supervisor behind ``pid_file`` and its command, seen through the pid files."""

    def __init__(self, module):
        self.module = module
        params = module.params
        self.name = params["name"]
        self.pid_file = os.path.abspath(params["pid_file"])
        self.child_file = self.pid_file + ".child"
        self.timeout = params["timeout"]

    def supervisor(self):
        """The supervisor's pid when it runs (its command line names the pid file), else None."""
        pid = read_pid(self.pid_file)
        if pid is None:
            return None
        args = cmdline(pid)
        return pid if args is not None and self.pid_file in args else None

    def child(self):
        pid = read_pid(self.child_file)
        return pid if alive(pid) else None

    def supervised_command(self, pid):
        """The command the supervisor ``pid`` runs (what follows its ``--``)."""
        args = cmdline(pid) or []
        return args[args.index("--") + 1:] if "--" in args else None

    def wait(self, condition, what):
        deadline = time.monotonic() + self.timeout
        while not condition():
            if time.monotonic() > deadline:
                self.module.fail_json(msg=f"{self.name}: {what} within {self.timeout} s",
                                      **self.facts())
            time.sleep(POLL_INTERVAL)

    def start(self):
        params = self.module.params
        if not params["command"]:
            self.module.fail_json(msg=f"{self.name}: command is required to start it")
        argv = [params["executable"], "supervise", "--daemon", "--pid-file", self.pid_file]
        if params["log_file"]:
            argv += ["--log-file", params["log_file"]]
        argv += ["--", *params["command"]]
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            self.module.fail_json(msg=f"{self.name} did not start: {(err or out).strip()}",
                                  rc=rc, **self.facts())
        self.wait(lambda: self.supervisor() is not None and self.child() is not None,
                  "the process did not start")

    def stop(self, pid):
        os.kill(pid, signal.SIGTERM)
        self.wait(lambda: not alive(pid), "the process did not stop")

    def reload(self, pid):
        os.kill(pid, signal.SIGHUP)

    def facts(self):
        pid = self.supervisor()
        return {"pid": pid, "child_pid": self.child() if pid else None,
                "state": "started" if pid else "stopped"}


def run(module):
    """Bring the process to ``state``; the module's result."""
    process = Supervised(module)
    state = module.params["state"]
    pid = process.supervisor()
    command = module.params["command"]
    if state == "started" and pid is not None and command and (
            process.supervised_command(pid) != command):
        state = "restarted"  # it runs another command (an older config path, say)
    if state == "started" and pid is not None:
        return dict(process.facts(), changed=False)
    if state == "stopped":
        if pid is None:
            return dict(process.facts(), changed=False)
        if module.check_mode:
            return {"changed": True, "pid": None, "child_pid": None, "state": "stopped"}
        process.stop(pid)
        return dict(process.facts(), changed=True)
    if module.check_mode:
        return {"changed": True, "pid": pid, "child_pid": process.child() if pid else None,
                "state": "started"}
    if state == "reloaded" and pid is not None:
        process.reload(pid)
        return dict(process.facts(), changed=True)
    if pid is not None:  # restarted
        process.stop(pid)
    process.start()
    return dict(process.facts(), changed=True)


def main():
    """Entry point."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
