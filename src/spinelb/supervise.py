"""``spinelb supervise``: keep one command running, without systemd, behind a pid file.

For hosts with no service manager (containers, the lab's namespaces): the
supervisor starts the command, starts it again when it exits (after a delay
that doubles up to :data:`MAX_RESTART_DELAY` and resets once the command has
stayed up :data:`STABLE_AFTER` seconds), forwards SIGHUP to it (the speaker
reloads its config), and on SIGTERM or SIGINT stops it (SIGTERM, then SIGKILL
after :data:`STOP_TIMEOUT`) and exits.

The pid file holds the supervisor's pid and ``<pid file>.child`` the
command's; both are written only once the command has started and are
removed on exit.  With ``daemon``, :func:`main` detaches (double fork,
``setsid``, stdin from /dev/null, output to the log file) and returns only
when the command has started, so a caller that sees exit status 0 finds both
pid files in place.

Signals are taken synchronously with :func:`signal.sigtimedwait` (blocked in
the supervisor, unblocked in the command), so none is lost between checks.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spinelb.speaker import logfmt

log = logging.getLogger("spinelb.supervise")

MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0  # seconds up after which the restart delay starts over
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
SIGNALS = (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
IDLE_WAIT = 3600.0  # sigtimedwait needs a timeout; nothing is due while the command runs


class SuperviseError(Exception):
    """The supervisor cannot start: the pid file belongs to a running one, or the command fails."""


def child_pid_file(pid_file: Path) -> Path:
    """Where the supervised command's pid is: ``<pid file>.child``."""
    return pid_file.with_name(pid_file.name + ".child")


def read_pid(path: Path) -> int | None:
    """The pid in ``path``, or None when the file is missing or holds no number."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def supervising(pid_file: Path) -> int | None:
    """The pid of the live supervisor that owns ``pid_file`` (its command line names it), or None."""
    pid = read_pid(pid_file)
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if os.fsencode(str(pid_file)) in cmdline else None


def _write_pid(path: Path, pid: int) -> None:
    """Replace ``path`` with ``pid`` atomically: a reader sees the old file or the whole new one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(f"{pid}\n")
    temporary.replace(path)


def _unblock_signals() -> None:  # runs in the command's process, between fork and exec
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


@dataclass
class Supervisor:
    """Runs ``command`` until told to stop; see the module docstring."""

    command: list[str]
    pid_file: Path
    restart_delay: float = 1.0
    child: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)
    delay: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.delay = self.restart_delay

    @property
    def child_pid_file(self) -> Path:
        return child_pid_file(self.pid_file)

    def run(self, ready_fd: int | None = None) -> int:
        """Supervise until SIGTERM/SIGINT; 0 then, 1 when the command cannot start at all.

        ``ready_fd`` (a pipe's write end) gets ``ok`` once the command has started
        and the pid files are written, or the reason it could not start.
        """
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # queued while blocked, never ignored
        try:
            self._start()
            _write_pid(self.pid_file, os.getpid())
        except (OSError, SuperviseError) as exc:
            _tell(ready_fd, f"cannot start {self.command[0]}: {exc}\n")
            return 1
        _tell(ready_fd, "ok\n")
        try:
            self._loop()
        finally:
            self.pid_file.unlink(missing_ok=True)
            self.child_pid_file.unlink(missing_ok=True)
        return 0

    def _start(self) -> None:
        self.child = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                      preexec_fn=_unblock_signals)
        self.started_at = time.monotonic()
        _write_pid(self.child_pid_file, self.child.pid)
        log.info("started", extra={"pid": self.child.pid, "command": " ".join(self.command)})

    def _loop(self) -> None:
        next_start = 0.0
        while True:
            now = time.monotonic()
            if self.child is None and now >= next_start:
                try:
                    self._start()
                except OSError as exc:
                    log.error("cannot start", extra={"error": str(exc), "retry_in": self.delay})
                    next_start = now + self._next_delay()
                continue
            wait = IDLE_WAIT if self.child is not None else next_start - now
            info = signal.sigtimedwait(SIGNALS, wait)
            if info is None:
                continue
            if info.si_signo == signal.SIGCHLD:
                if self._reaped():
                    next_start = time.monotonic() + self._next_delay()
            elif info.si_signo == signal.SIGHUP:
                if self.child is not None:
                    log.info("forwarding SIGHUP", extra={"pid": self.child.pid})
                    self.child.send_signal(signal.SIGHUP)
            else:
                log.info("stopping", extra={"signal": signal.Signals(info.si_signo).name})
                self._stop()
                return

    def _reaped(self) -> bool:
        """Whether the command has exited (then it is reaped and its pid file removed)."""
        if self.child is None or self.child.poll() is None:
            return False
        up = time.monotonic() - self.started_at
        if up >= STABLE_AFTER:
            self.delay = self.restart_delay
        log.warning("exited", extra={"pid": self.child.pid, "status": self.child.returncode,
                                     "restart_in": self.delay})
        self.child = None
        self.child_pid_file.unlink(missing_ok=True)
        return True

    def _next_delay(self) -> float:
        """The delay before this restart; the next one waits twice as long (up to the maximum)."""
        delay = self.delay
        self.delay = min(self.delay * 2, MAX_RESTART_DELAY)
        return delay

    def _stop(self) -> None:
        child = self.child
        if child is None:
            return
        child.terminate()
        try:
            child.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("did not stop; killing it", extra={"pid": child.pid})
            child.kill()
            child.wait()
        self.child = None


def _tell(fd: int | None, message: str) -> None:
    if fd is None:
        if message != "ok\n":
            sys.stderr.write(f"spinelb supervise: {message}")
        return
    with contextlib.suppress(OSError):
        os.write(fd, message.encode())
        os.close(fd)


def _redirect(log_file: Path | None) -> None:
    """stdin from /dev/null; stdout and stderr appended to ``log_file`` (or /dev/null)."""
    null = os.open(os.devnull, os.O_RDWR)
    out = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640) if log_file else null
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    for fd in {null, out}:
        if fd > 2:
            os.close(fd)


def daemonize(supervisor: Supervisor, log_file: Path | None) -> int:
    """Run ``supervisor`` detached; 0 once its command started, else 1 with the reason on stderr."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:  # the caller: wait for the daemon's word (the pipe closes when it has spoken or died)
        os.close(write_fd)
        os.waitpid(pid, 0)
        with os.fdopen(read_fd, "rb") as ready:
            message = ready.read().decode(errors="replace")
        if message == "ok\n":
            return 0
        sys.stderr.write(f"spinelb supervise: {message or 'the supervisor exited before starting'}")
        return 1
    status = 1
    try:
        os.close(read_fd)
        os.setsid()
        if os.fork():
            os._exit(0)
        _redirect(log_file)
        logfmt.setup()
        status = supervisor.run(ready_fd=write_fd)
    except BaseException as exc:  # never return into the caller's code from a forked process
        _tell(write_fd, f"{type(exc).__name__}: {exc}\n")
    finally:
        os._exit(status)


def main(argv: Sequence[str]) -> int:
    """``spinelb supervise --pid-file F [--log-file L] [--restart-delay S] [--daemon] -- CMD...``."""
    parser = argparse.ArgumentParser(
        prog="spinelb supervise",
        description="Run a command, restart it when it exits, forward SIGHUP, stop it on SIGTERM.",
    )
    parser.add_argument("--pid-file", required=True, type=Path,
                        help="the supervisor's pid (the command's is in FILE.child)")
    parser.add_argument("--log-file", type=Path,
                        help="append the supervisor's and the command's output here")
    parser.add_argument("--restart-delay", type=float, default=1.0, metavar="SECONDS",
                        help="the first restart's delay; it doubles up to 30 s (default 1)")
    parser.add_argument("--daemon", action="store_true",
                        help="detach; return once the command has started")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = parser.parse_args(list(argv))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise (give it after --)")
    if args.restart_delay <= 0:
        parser.error("--restart-delay must be more than 0")
    pid_file = args.pid_file.absolute()
    running = supervising(args.pid_file) or supervising(pid_file)
    if running is not None:
        print(f"spinelb supervise: already running as pid {running} ({pid_file})",
              file=sys.stderr)
        return 1
    supervisor = Supervisor(command, pid_file, args.restart_delay)
    log_file = args.log_file.absolute() if args.log_file else None
    if args.daemon:
        return daemonize(supervisor, log_file)
    if log_file is not None:
        _redirect(log_file)
    logfmt.setup()
    return supervisor.run()
