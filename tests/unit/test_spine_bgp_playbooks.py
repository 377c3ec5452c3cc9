"""playbooks/render.yml and the controller side of spine_bgp, run with ansible-playbook offline.

Nothing here contacts a device: render.yml never does, and the validation failures
must stop spines.yml before the module runs (its FRR pathspace does not exist, so
reaching vtysh would fail differently).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
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
    out = tmp_path / "out"  # render.yml makes it
    run = ansible_playbook("-i", inventory, "playbooks/render.yml",
                           "-e", f"spinelb_render_dir={out}")
    assert run.returncode == 0, run.stdout + run.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["sw-spine-001.cfg", "sw-spine-002.cfg"]
    for name in written:
        assert (out / name).read_text() == (REPO / golden / name).read_text(), name


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


STAND_IN_AOSCX_CONFIG = '''#!/usr/bin/python
# A stand-in for arubanetworks.aoscx.aoscx_config (that collection is in no reachable
# registry): it records the configuration file it was handed, as the real one would push it.
import json
import json
import os
from ansible.module_utils.basic import AnsibleModule

module = AnsibleModule(argument_spec=dict(src=dict(type="str"), save_when=dict(type="str")))
with open(module.params["src"]) as handle:
    text = handle.read()
with open(os.environ["SPINELB_AOSCX_RECORD"], "a") as record:
    record.write(json.dumps({"src": text, "save_when": module.params["save_when"]}) + "\\n")
module.exit_json(changed=True)
'''


def test_aoscx_config_transport_hands_the_rendered_config_to_the_aruba_module(
        tmp_path: Path) -> None:
    modules = COLLECTIONS / "ansible_collections" / "arubanetworks" / "aoscx" / "plugins" / "modules"
    modules.mkdir(parents=True, exist_ok=True)
    (modules / "aoscx_config.py").write_text(STAND_IN_AOSCX_CONFIG)
    record = tmp_path / "pushed.jsonl"
    secret = "Vault-Only-Pw2"
    temp_files_before = set(Path(tempfile.gettempdir()).glob("ansible.*.cfg"))
    os.environ["SPINELB_AOSCX_RECORD"] = str(record)
    try:
        run = ansible_playbook("-i", "inventories/reference-site", "playbooks/spines.yml", "-v",
                               "-e", "ansible_connection=local",
                               "-e", "ansible_python_interpreter=" + sys.executable,
                               "-e", "spine_aoscx_transport=aoscx_config",
                               "-e", f"spinelb_bgp_password={secret}")
    finally:
        os.environ.pop("SPINELB_AOSCX_RECORD")
    assert run.returncode == 0, run.stdout + run.stderr
    pushed = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(pushed) == 2  # one per spine
    golden = {(REPO / "tests/golden/aoscx" / f"sw-spine-00{i}.cfg").read_text() for i in (1, 2)}
    for push in pushed:
        assert push["save_when"] == "modified"
        assert f"password plaintext {secret}" in push["src"]  # the real one goes to the switch
        # Without its password lines it is the reference site's golden render.
        unsecret = [line for line in push["src"].splitlines() if secret not in line]
        assert "\n".join(unsecret) + "\n" in golden
    assert secret not in run.stdout + run.stderr  # and never into the output
    # The file that held it on the controller is gone.
    assert set(Path(tempfile.gettempdir()).glob("ansible.*.cfg")) == temp_files_before
