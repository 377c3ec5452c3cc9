"""The README's first code block is the two-command promise, and CI keeps it.

The first fenced block must hold exactly two commands (run the lab, run the tests), and
``.ci/run`` must run the second one. The second check runs ``.ci/run`` for real, in a copy of
the repository's README and CI script whose test command is a stand-in that records its call.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def first_code_block_commands(readme: str) -> list[str]:
    """Return the non-blank lines of the first fenced code block of a Markdown text."""
    lines: list[str] = []
    inside = False
    for line in readme.splitlines():
        if line.startswith("```"):
            if inside:
                return lines
            inside = True
        elif inside and line.strip():
            lines.append(line.strip())
    raise AssertionError("README.md has no closed fenced code block")


def readme_commands() -> list[str]:
    return first_code_block_commands((REPO_ROOT / "README.md").read_text())


def test_first_code_block_has_exactly_two_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2, commands
    assert not any(command.startswith("#") for command in commands), commands


def test_the_commands_run_the_lab_then_the_tests() -> None:
    lab, tests = readme_commands()
    assert "lab" in lab
    assert "test" in tests


def test_the_commands_name_scripts_that_exist_and_are_executable() -> None:
    for command in readme_commands():
        program = REPO_ROOT / command.split()[0]
        assert program.is_file(), command
        assert os.access(program, os.X_OK), command


def test_the_code_block_parser_stops_at_the_first_block() -> None:
    text = "intro\n\n```sh\n./a\n\n./b\n```\n\n```sh\n./c\n```\n"
    assert first_code_block_commands(text) == ["./a", "./b"]


def _ci_copy(tmp_path: Path, test_script_exit: int) -> Path:
    """A minimal repository copy: README, .ci/run, and a recording stand-in test command."""
    (tmp_path / ".ci").mkdir()
    (tmp_path / "README.md").write_text((REPO_ROOT / "README.md").read_text())
    ci_run = tmp_path / ".ci" / "run"
    ci_run.write_text((REPO_ROOT / ".ci" / "run").read_text())
    ci_run.chmod(ci_run.stat().st_mode | stat.S_IXUSR)
    _lab, tests = readme_commands()
    stand_in = tmp_path / tests.split()[0]
    stand_in.parent.mkdir(parents=True, exist_ok=True)
    stand_in.write_text(
        f'#!/bin/sh\necho "$0 $*" > "{tmp_path}/called"\nexit {test_script_exit}\n'
    )
    stand_in.chmod(0o755)
    return tmp_path


def test_ci_run_runs_the_readme_test_command(tmp_path: Path) -> None:
    copy = _ci_copy(tmp_path, test_script_exit=0)
    result = subprocess.run(
        ["bash", str(copy / ".ci" / "run")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CI": "true"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    _lab, tests = readme_commands()
    assert (copy / "called").read_text().split() == tests.split()


def test_ci_run_fails_when_the_test_command_fails(tmp_path: Path) -> None:
    copy = _ci_copy(tmp_path, test_script_exit=3)
    result = subprocess.run(
        ["bash", str(copy / ".ci" / "run")],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 3
    assert (copy / "called").is_file()
