"""playbooks/render.yml and the controller side of spine_bgp, run with ansible-playbook offline.

Nothing here contacts a device: render.yml never does, and the validation failures
must stop spines.yml before the module runs (its FRR pathspace does not exist, so
reaching vtysh would fail differently).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_spine_bgp_frr_config import REPO, collection_root

PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
COLLECTIONS = collection_root()


def ansible_playbook(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0")
    return subprocess.run([PLAYBOOK, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False, timeout=240)


@pytest.mark.parametrize(("inventory", "golden"), [
    ("inventories/reference-site", "tests/golden/aoscx"),
    ("inventories/lab", "tests/golden/frr"),
])
def test_render_writes_each_spine_config_equal_to_the_golden_files(
        tmp_path: Path, inventory: str, golden: str) -> None:
    run = ansible_playbook("-i", inventory, "playbooks/render.yml",
                           "-e", f"spinelb_render_dir={tmp_path}")
    assert run.returncode == 0, run.stdout + run.stderr
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["sw-spine-001.cfg", "sw-spine-002.cfg"]
    for name in written:
        assert (tmp_path / name).read_text() == (REPO / golden / name).read_text(), name


def test_render_needs_a_directory() -> None:
    run = ansible_playbook("-i", "inventories/lab", "playbooks/render.yml")
    assert run.returncode != 0
    assert "set the output directory: -e spinelb_render_dir=DIR" in run.stdout


def test_render_masks_the_password(tmp_path: Path) -> None:
    secret = "Vault-Only-Pw1"
    run = ansible_playbook("-i", "inventories/lab", "playbooks/render.yml", "-v",
                           "-e", f"spinelb_render_dir={tmp_path}",
                           "-e", f"spinelb_bgp_password={secret}")
    assert run.returncode == 0, run.stdout + run.stderr
    text = (tmp_path / "sw-spine-001.cfg").read_text()
    assert " neighbor 10.252.1.10 password <redacted>" in text
    assert secret not in text
    assert secret not in run.stdout + run.stderr


def test_invalid_site_fails_naming_the_variable_before_any_device(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory"
    shutil.copytree(REPO / "inventories" / "lab", inventory, symlinks=False)
    site = inventory / "group_vars" / "all" / "site.yml"
    site.write_text(site.read_text().replace(
        "customer-access: {cidr: 10.102.10.128/26", "customer-access: {cidr: 10.102.5.96/27"))
    run = ansible_playbook("-i", str(inventory), "playbooks/spines.yml",
                           "-e", "spine_frr_pathspace=spbgp-no-such-pathspace")
    assert run.returncode != 0
    assert ("spinelb_pools.customer-access.cidr: 10.102.5.96/27 overlaps "
            "spinelb_pools.customer-management.cidr (10.102.5.64/26)") in run.stdout
    assert "vtysh" not in run.stdout
