"""Fixtures for interop tests: small topologies in network namespaces with real peers.

``topology(workers=3)`` (a factory fixture) returns a :class:`lab.topology.Topology`:
a "spine" namespace and N "worker" namespaces on one LAN (``10.200.0.0/24``,
``fd00:200::/64``, inside the namespaces only).  On it:

- ``topo.start_frr_spine(topo.frr_spine_config(...))``: FRR spine, passive, ECMP;
- ``topo.start_speaker(i, topo.speaker_config(i, announce=[...]))``: a spinelb
  speaker in worker i; the handle has ``pid``, ``log_path``, ``api_port``,
  ``terminate()``, ``kill()``, ``status()``;
- ``topo.start_bird(conf)``, ``topo.start_gobgp(conf)``, ``topo.start_exabgp(conf)``
  (see ``lab.bird``, ``lab.gobgp.render_config``, ``lab.exabgp.render_config``);
- ``topo.start_frr_speaker(i, asn, prefixes)``: FRR as a stand-in speaker.

Everything a topology started is stopped and its namespaces deleted after the test.
Tests needing the speaker itself take the ``speaker_ready`` fixture, which
fails with the reason when ``spinelb speaker`` is not usable.

``converged_lab`` is the whole reference site (``lab.reference_site.SiteLab``
under ``scl<pid>-`` names), built once per run by ``playbooks/site.yml`` and
shared by the modules whose tests leave it as they found it (each takes it
through ``healthy_lab``, which first waits until every verdict is ok); modules
that change the site for good build their own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the lab package lives at the repo root, not in src/
    sys.path.insert(0, str(REPO))

from lab.netns import netns_available  # noqa: E402
from lab.reference_site import SiteLab  # noqa: E402
from lab.site import load_site  # noqa: E402
from lab.topology import Topology, build_topology, speaker_available, sweep_stale_namespaces  # noqa: E402

#: Lab fixtures built once per run and shared by the modules that use them.
SHARED_LAB_FIXTURES = {"converged_lab", "healthy_lab"}
#: The modules using them: under pytest-xdist they all run in one worker (one lab build).
SHARED_LAB_MODULES = {
    "test_lab_failover", "test_lab_faults", "test_lab_graceful_restart", "test_lab_kubernetes",
    "test_lab_layer2", "test_lab_site", "test_lab_verify",
}
#: Interop modules whose tests are independent of each other, each one long: spread one by one.
SPREAD_BY_TEST = {"test_molecule"}
#: Unit modules whose speakers run BFD on loopback: BFD's port is fixed (3784, RFC 5881), so
#: two of them at once in the two workers would collide on 127.0.0.x:3784. One unit, in order.
LOOPBACK_BFD_MODULES = {"test_graceful_restart", "test_speaker_bfd", "test_speaker_layer2"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs namespaces (through ``netns_ready``) is an interop test.

    A test taking the shared lab from a module not in ``SHARED_LAB_MODULES`` is refused: under
    pytest-xdist its module could run in the other worker, which would build a second lab.
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "netns_ready" in fixtures:
            item.add_marker(pytest.mark.interop)
        module = Path(str(item.fspath)).stem
        if fixtures & SHARED_LAB_FIXTURES and module not in SHARED_LAB_MODULES:
            raise pytest.UsageError(
                f"{item.nodeid} uses the shared lab: add {module} to SHARED_LAB_MODULES in "
                "tests/interop/conftest.py"
            )


def work_unit(nodeid: str) -> str:
    """The pytest-xdist work unit of a test: the tests of one unit run in one worker, in order.

    Every module sharing the converged lab is one unit (the lab is built once, by that
    worker); any other interop module is a unit (its tests share module fixtures, and some
    depend on their order), except those in ``SPREAD_BY_TEST``; unit tests go one by one, but
    those running BFD on loopback (``LOOPBACK_BFD_MODULES``) are one unit.
    """
    path = nodeid.split("::", 1)[0]
    if not path.startswith("tests/interop/"):
        return "BFD on loopback" if Path(path).stem in LOOPBACK_BFD_MODULES else nodeid
    module = Path(path).stem
    if module in SHARED_LAB_MODULES:
        return "shared converged lab"
    return nodeid if module in SPREAD_BY_TEST else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """scripts/test.sh's two workers get whole :func:`work_unit` s, the largest first."""
    from xdist.scheduler import LoadScopeScheduling

    class LabScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return LabScheduling(config, log)


@pytest.fixture(scope="session")
def netns_ready() -> None:
    """Skip (with the reason) unless we are root with a working ``ip netns``."""
    reason = netns_available()
    if reason:
        pytest.skip(f"interop tests need network namespaces: {reason}")
    sweep_stale_namespaces()


@pytest.fixture(scope="session")
def speaker_ready(netns_ready: None) -> None:
    """Fail (with the reason) unless the spinelb speaker command exists and runs."""
    reason = speaker_available()
    if reason:
        pytest.fail(f"the spinelb speaker is not usable: {reason}")


@pytest.fixture
def topology(netns_ready: None, tmp_path: Path) -> Iterator[Callable[..., Topology]]:
    """A factory: ``topology(workers=3)`` builds a spine + workers LAN, torn down after the test."""
    built: list[Topology] = []

    def make(workers: int = 3) -> Topology:
        run_dir = tmp_path / f"topo{len(built) + 1}"
        run_dir.mkdir(parents=True, exist_ok=True)
        topo = build_topology(run_dir, workers)
        built.append(topo)
        return topo

    yield make
    for topo in built:
        topo.close()


@pytest.fixture(scope="session")
def converged_lab(speaker_ready: None,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteLab]:
    """The reference site, up and converged, for the whole run (torn down at its end)."""
    lab = SiteLab(load_site(), prefix=f"scl{os.getpid()}-",
                  run_dir=tmp_path_factory.mktemp("converged-lab"))
    try:
        assert lab.up("spinelb", timeout=90), lab.show()
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def healthy_lab(converged_lab: SiteLab) -> SiteLab:
    """:func:`converged_lab`, once every verdict is ok again (a module's tests restore it)."""
    assert converged_lab.wait_converged(60, "spinelb"), converged_lab.show()
    return converged_lab
