"""The collection's Molecule scenarios (extensions/molecule/), each a full ``molecule test``.

Each runs under ``slt<pid>-<scenario>-`` namespace names (``SPINELB_MOLECULE_PREFIX``) with
its ephemeral directory in the test's tmp_path, so it runs beside a lab that is up, a manual
``molecule test`` and other tests; namespaces a killed run leaves are swept by
``netns_ready`` like any ``slt<pid>-`` namespace.  Scenarios take 30 s to two and a half minutes.

The first tests check the site scenario's traffic tools (lab/service.py) on 127.0.0.1,
without namespaces: the client counts what the acceptor answered, and what failed.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.apiserver import free_port
from lab.netns import list_namespaces
from lab.service import TrafficReport, accept, drive
from lab.topology import speaker_available

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
MOLECULE = VENV_BIN / "molecule"
# "restart roll: 2493 connections in 24.9s, 0 failed, 0 slow, answered by {...}"
ROLL = re.compile(r"(reload|restart) roll: (\d+) connections in [\d.]+s,\s+(\d+) failed")


async def drive_against_acceptor(connections: int) -> TrafficReport:
    port = free_port()
    stopped, ready = asyncio.Event(), asyncio.Event()
    acceptor = asyncio.create_task(accept("127.0.0.1", port, "ncn-w001", stopped, ready))
    await asyncio.wait_for(ready.wait(), timeout=10)
    try:
        return await drive("127.0.0.1", port, 0.001, asyncio.Event(), limit=connections)
    finally:
        stopped.set()
        await acceptor


def test_client_counts_every_answer_by_worker() -> None:
    report = asyncio.run(drive_against_acceptor(40))
    assert (report.attempted, report.answered, report.failed) == (40, 40, 0)
    assert report.by_worker == {"ncn-w001": 40}
    assert TrafficReport.from_dict(report.as_dict()).as_dict() == report.as_dict()


def test_client_counts_refused_connections_as_failed() -> None:
    port = free_port()  # nothing listens there
    report = asyncio.run(drive("127.0.0.1", port, 0.001, asyncio.Event(), limit=5))
    assert (report.attempted, report.answered, report.failed) == (5, 0, 5)
    assert all("ConnectionRefusedError" in failure for failure in report.failures)
    assert "0 answered (none), 5 failed" in report.summary()


def molecule_test(scenario: str, tmp_path: Path) -> tuple[str, str]:
    """``molecule test -s SCENARIO`` from the repository root; its output, and its prefix."""
    if not MOLECULE.exists():
        pytest.fail(f"molecule is not installed in {VENV_BIN} (scripts/setup.sh installs it)")
    if not (REPO / "collections" / "ansible_collections" / "spinelb" / "fabric").exists():
        pytest.fail("collections/ does not link the collection (scripts/setup.sh makes it)")
    prefix = f"slt{os.getpid()}-"
    env = dict(
        os.environ,
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        SPINELB_MOLECULE_PREFIX=prefix,
        MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "molecule"),
        ANSIBLE_NOCOLOR="1",
        NO_COLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        COLUMNS="500",  # molecule wraps its output at the terminal width
    )
    run = subprocess.run(
        [str(MOLECULE), "test", "-s", scenario], cwd=REPO, env=env, capture_output=True,
        text=True, check=False, timeout=900,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"molecule test -s {scenario} failed:\n{output[-8000:]}"
    return output, f"{prefix}{scenario}-"


def assert_destroyed(prefix: str) -> None:
    left = [name for name in list_namespaces() if name.startswith(prefix)]
    assert not left, f"destroy left namespaces {left}"
    assert not list(Path("/var/run/frr").glob(f"{prefix}*")), "destroy left FRR's run directories"


@pytest.fixture
def molecule_ready(netns_ready: None) -> None:
    reason = speaker_available()
    if reason:
        pytest.fail(f"the spinelb speaker is not usable: {reason}")
    if shutil.which("vtysh") is None:
        pytest.fail("FRR is not installed (scripts/setup.sh installs it)")


def assert_steps(output: str, scenario: str, steps: tuple[str, ...]) -> None:
    for step in steps:
        # the recap, without a terminal: "speaker > converge: Executed: Successful"
        assert re.search(rf"^{scenario} \S+ {step}: Executed: Successful", output, re.M), step


@pytest.mark.timeout(900)
def test_speaker_scenario_converges_idempotent_and_verified(
    molecule_ready: None, tmp_path: Path
) -> None:
    output, prefix = molecule_test("speaker", tmp_path)
    assert_steps(output, "speaker", ("converge", "idempotence", "verify", "destroy"))
    assert_destroyed(prefix)


@pytest.mark.timeout(900)
def test_site_scenario_converges_idempotent_and_rolls_without_losing_a_connection(
    molecule_ready: None, tmp_path: Path
) -> None:
    output, prefix = molecule_test("site", tmp_path)
    assert_steps(output, "site",
                 ("prepare", "converge", "idempotence", "side_effect", "verify", "destroy"))
    rolls = {name: (int(made), int(failed)) for name, made, failed in ROLL.findall(output)}
    assert set(rolls) == {"reload", "restart"}, output[-4000:]
    for name, (made, failed) in rolls.items():
        assert failed == 0, f"{name} roll: {failed} of {made} connections failed"
        assert made >= 100, f"{name} roll: only {made} connections"
    print(f"rolling: {rolls}")
    assert_destroyed(prefix)
