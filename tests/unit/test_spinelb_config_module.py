"""spinelb_config: the module with the real ``spinelb check-config``, and the action plugin by playbook."""

from __future__ import annotations

import json
import stat
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from test_spine_bgp_frr_config import collection_module
from test_spine_bgp_playbooks import ansible_playbook
from test_spine_model import reference_site

from spinelb.deploy import SpeakerOptions, speaker_document

spinelb_config: Any = collection_module("plugins.modules.spinelb_config")

SPINELB = str(Path(sys.executable).with_name("spinelb"))
SECRET = "Vault-Only-Md5-Key"

SPEAKER = """\
node_name: ncn-w001
router_id: 10.252.1.10
local_asn: 65531
api: {listen: "127.0.0.1:7473"}
peers:
  - {name: sw-spine-001-nmn, address: 10.252.0.2, asn: 65533, hold_time: 3, keepalive: 1}
pools:
  - {name: node-management, addresses: [10.92.100.0/24]}
"""


def run_module(capsys: pytest.CaptureFixture[str], *, check_mode: bool = False,
               diff: bool = False, **args: Any) -> dict[str, Any]:
    args.setdefault("spinelb", SPINELB)
    args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(args), pytest.raises(SystemExit):
        spinelb_config.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_new_file_is_created_then_left_alone(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "speaker.yaml"
    first = run_module(capsys, path=str(path), content=SPEAKER)
    assert (first["changed"], first["action"]) == (True, "created"), first
    assert path.read_text() == SPEAKER
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    second = run_module(capsys, path=str(path), content=SPEAKER)
    assert (second["changed"], second["action"]) == (False, "unchanged"), second
    assert leftovers(tmp_path) == []


def test_a_change_says_reload_or_restart_and_replaces_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "speaker.yaml"
    path.write_text(SPEAKER)
    path.chmod(0o640)
    reload = SPEAKER.replace("hold_time: 3, keepalive: 1", "hold_time: 9, keepalive: 3")
    result = run_module(capsys, path=str(path), content=reload, diff=True)
    assert (result["changed"], result["action"]) == (True, "reload"), result
    assert path.read_text() == reload
    assert result["diff"]["before"] == SPEAKER and result["diff"]["after"] == reload
    assert result["summary"].startswith(f"{path}: ok: node ncn-w001")
    restart = reload.replace("router_id: 10.252.1.10", "router_id: 10.252.1.99")
    result = run_module(capsys, path=str(path), content=restart)
    assert (result["changed"], result["action"]) == (True, "restart")
    assert leftovers(tmp_path) == []


def test_a_rejected_config_fails_and_leaves_the_file(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "speaker.yaml"
    path.write_text(SPEAKER)
    bad = SPEAKER.replace("hold_time: 3", "hold_time: 2").replace(
        "keepalive: 1}", f"keepalive: 1, password: {SECRET * 6}}}")
    result = run_module(capsys, path=str(path), content=bad)
    assert result["failed"] is True
    assert "spinelb rejected the new speaker config" in result["msg"]
    assert any(p.startswith("peers[0].hold_time") for p in result["problems"])
    assert any(p.startswith("peers[0].password") for p in result["problems"])
    assert SECRET not in json.dumps(result)
    assert path.read_text() == SPEAKER
    assert leftovers(tmp_path) == []


def test_check_mode_reports_and_changes_nothing(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "speaker.yaml"
    result = run_module(capsys, path=str(path), content=SPEAKER, check_mode=True)
    assert (result["changed"], result["action"]) == (True, "created")
    assert not path.exists() and leftovers(tmp_path) == []
    path.write_text(SPEAKER)
    path.chmod(0o600)
    changed = SPEAKER.replace("10.92.100.0/24", "10.92.100.0/25")
    result = run_module(capsys, path=str(path), content=changed, check_mode=True)
    assert (result["changed"], result["action"]) == (True, "reload")
    assert path.read_text() == SPEAKER and stat.S_IMODE(path.stat().st_mode) == 0o600
    result = run_module(capsys, path=str(path), content=SPEAKER, check_mode=True)
    assert (result["changed"], result["action"]) == (True, "unchanged")  # the mode would change
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_diffs_redact_every_password_value(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "speaker.yaml"
    old = SPEAKER.replace("keepalive: 1}", "keepalive: 1,\n     password: Old-Secret-1}")
    path.write_text(old)
    new = old.replace("Old-Secret-1", "New-Secret-2")
    result = run_module(capsys, path=str(path), content=new, diff=True, check_mode=True)
    assert result["action"] == "reload"
    assert "Old-Secret-1" not in json.dumps(result) and "New-Secret-2" not in json.dumps(result)
    assert "password: <redacted>" in result["diff"]["before"]
    assert spinelb_config.redact("peers:\n- password: x\n  password_file: /k\n") == (
        "peers:\n- password: <redacted>\n  password_file: /k\n")


def test_the_controller_kind_is_checked_as_the_controller(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "controller.yaml"
    controller = "kubernetes: {}\npools:\n  - {name: a, addresses: [10.92.100.0/24]}\n"
    result = run_module(capsys, path=str(path), content=controller, kind="controller")
    assert (result["changed"], result["action"]) == (True, "created"), result
    result = run_module(capsys, path=str(path), content=controller.replace("/24", "/25"),
                        kind="controller")
    assert result["action"] == "restart"


def test_without_spinelb_on_the_host_only_check_mode_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "speaker.yaml"
    missing = str(tmp_path / "venv" / "bin" / "spinelb")
    result = run_module(capsys, path=str(path), content=SPEAKER, spinelb=missing,
                        check_mode=True)
    assert (result["changed"], result["action"]) == (True, "created")
    # also a warning; where Ansible puts it depends on what else this process imported
    assert result["summary"] == f"{missing} is not installed yet: the config was not checked"
    result = run_module(capsys, path=str(path), content=SPEAKER, spinelb=missing)
    assert result["failed"] and "no such executable" in result["msg"]
    assert not path.exists()


# --- the action plugin, through ansible-playbook ---------------------------------------------

PLAYBOOK = """
- name: Write the speaker's config
  hosts: ncn-w001
  gather_facts: false
  tasks:
    - name: Key file
      ansible.builtin.copy:
        content: "{{ spinelb_bgp_password }}"
        dest: "{{ dir }}/bgp-password"
        mode: "0600"
      no_log: true
      when: spinelb_bgp_password is defined
    - name: Speaker config
      spinelb.fabric.spinelb_config:
        kind: speaker
        path: "{{ dir }}/speaker.yaml"
        spinelb: "{{ spinelb }}"
        options:
          kubeconfig: "{{ dir }}/kubeconfig"
          password_file: "{{ dir }}/bgp-password"
          log_level: "{{ level }}"
      register: written
    - name: Show it
      ansible.builtin.debug:
        msg: "action={{ written.action }}"
"""


def play(tmp_path: Path, *extra: str, level: str = "info") -> str:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    run = ansible_playbook(
        "-i", "inventories/reference-site", str(playbook), "--diff",
        "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}",
        "-e", f"dir={tmp_path}", "-e", f"spinelb={SPINELB}", "-e", f"level={level}", *extra)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


def test_the_action_plugin_renders_the_hosts_document_from_the_inventory(
        tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\n")
    first = play(tmp_path, "-e", f"spinelb_bgp_password={SECRET}")
    assert "action=created" in first
    written = yaml.safe_load((tmp_path / "speaker.yaml").read_text())
    site = reference_site()
    expected = speaker_document(
        replace(site, bgp=replace(site.bgp, password=SECRET)), "ncn-w001",
        SpeakerOptions(kubeconfig=str(tmp_path / "kubeconfig"),
                       password_file=str(tmp_path / "bgp-password")))
    assert written == expected
    assert SECRET not in first and SECRET not in (tmp_path / "speaker.yaml").read_text()

    again = play(tmp_path, "-e", f"spinelb_bgp_password={SECRET}")
    assert "action=unchanged" in again and "changed=0" in again.split("PLAY RECAP")[-1]
    checked = play(tmp_path, "--check", "-e", f"spinelb_bgp_password={SECRET}", level="debug")
    assert "action=reload" in checked and "+log_level: debug" in checked
    assert yaml.safe_load((tmp_path / "speaker.yaml").read_text())["log_level"] == "info"
    assert SECRET not in again + checked


def test_the_action_plugin_refuses_a_site_password_without_password_file(
        tmp_path: Path) -> None:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.replace('          password_file: "{{ dir }}/bgp-password"\n',
                                         ""))
    run = ansible_playbook(
        "-i", "inventories/reference-site", str(playbook),
        "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}",
        "-e", f"dir={tmp_path}", "-e", f"spinelb={SPINELB}", "-e", "level=info",
        "-e", f"spinelb_bgp_password={SECRET}")
    assert run.returncode != 0
    assert "set password_file" in run.stdout
    assert SECRET not in run.stdout + run.stderr
    assert not (tmp_path / "speaker.yaml").exists()


def test_options_become_the_dataclass_with_empty_strings_unset() -> None:
    action: Any = collection_module("plugins.action.spinelb_config")
    options = action.process_options("speaker", {
        "kubeconfig": "", "password_file": "", "log_level": "debug",
        "announce": [{"prefix": "192.0.2.1/32"}]})
    assert options == SpeakerOptions(log_level="debug", announce=({"prefix": "192.0.2.1/32"},))
    with pytest.raises(ValueError, match="options for kind=controller: unknown listen"):
        action.process_options("controller", {"listen": "0.0.0.0:179"})
