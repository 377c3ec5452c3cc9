"""playbooks/verify.yml on the lab: every seed address ok, and a real fault reported as it is.

Runs under ``slv<pid>-`` namespace names, beside a lab that may be up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.netns import LabError
from lab.reference_site import SiteLab
from lab.site import load_site
from lab.topology import speaker_available

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def lab(netns_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteLab]:
    reason = speaker_available()
    if reason:
        pytest.fail(f"the spinelb speaker is not usable: {reason}")
    site_lab = SiteLab(load_site(), prefix=f"slv{os.getpid()}-",
                       run_dir=tmp_path_factory.mktemp("lab-verify"))
    try:
        assert site_lab.up("spinelb", timeout=90), site_lab.show()
        yield site_lab
    finally:
        site_lab.down()


def test_verify_reports_every_seed_address_ok(lab: SiteLab) -> None:
    output = lab.playbook("verify.yml")
    assert "16 addresses: ok 16" in output
    assert "sessions: 14 of 14 established" in output
    assert re.search(r"10\.92\.100\.222\s+ok\s+node-management\s+1/1\s+1/1", output)  # KEA


def test_a_stopped_speaker_is_not_announced_then_repaired(lab: SiteLab) -> None:
    lab.worker_speaker("spinelb", lab.site.workers["ncn-w001"]).stop()
    with pytest.raises(LabError) as failed:
        lab.playbook("verify.yml")
    output = str(failed.value)
    # every address ncn-w001 should announce; KEA (only from ncn-w002) stays ok
    assert "16 addresses: not_announced 15, ok 1" in output, output[-3000:]
    assert "speakers unreachable: ncn-w001" in output
    assert "ncn-w001: speaker unreachable; it should announce (Cluster policy, node Ready)" in output
    # the spines' side of the same fault: two of three next hops, its sessions down
    assert "sw-spine-001: 2 of 3 next hops; lacks 10.102.10.10 (ncn-w001 can)" in output
    assert "sessions: 10 of 14 established" in output
    lab.playbook("site.yml")  # the collection starts it again
    assert "16 addresses: ok 16" in lab.playbook("verify.yml")


def test_verify_changes_nothing(lab: SiteLab) -> None:
    recap = lab.playbook("verify.yml", "--check")
    assert not re.search(r"changed=[1-9]", recap)
    assert Path(lab.kubeconfig).exists()
