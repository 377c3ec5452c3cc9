"""The netns connection: a host's tasks run inside its network namespace (needs root).

The test makes its own namespace ``spt<pid>-x`` with a veth pair inside it (the
kernel here has no dummy links), runs playbooks against it, and deletes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_spine_bgp_playbooks import ansible_playbook

NETNS = f"spt{os.getpid()}-x"
VETH = ("sptv0", "sptv1")  # both ends inside the namespace


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    try:
        subprocess.run(["ip", "-n", NETNS, "link", "add", VETH[0], "type", "veth", "peer",
                        "name", VETH[1]], check=True)
        yield NETNS
    finally:
        subprocess.run(["ip", "netns", "delete", NETNS], check=False)


PLAYBOOK = """
- name: Inside the namespace
  hosts: all
  gather_facts: false
  tasks:
    - name: Interfaces
      ansible.builtin.command: ip -j addr
      register: addr
      changed_when: false
    - name: Copy them out (same filesystem)
      ansible.builtin.copy:
        content: "{{ addr.stdout }}"
        dest: "{{ dir }}/{{ inventory_hostname }}-addr.json"
        mode: "0644"
    - name: Template
      ansible.builtin.template:
        src: "{{ dir }}/note.j2"
        dest: "{{ dir }}/{{ inventory_hostname }}-note.txt"
        mode: "0644"
    - name: Fetch
      ansible.builtin.fetch:
        src: "{{ dir }}/{{ inventory_hostname }}-note.txt"
        dest: "{{ dir }}/fetched/"
        flat: true
"""


def inventory(tmp_path: Path, hosts: dict[str, dict[str, str]]) -> Path:
    path = tmp_path / "inventory.json"
    common = {"ansible_connection": "spinelb.fabric.netns",
              "ansible_python_interpreter": sys.executable}
    path.write_text(json.dumps({"all": {"hosts": {
        name: {**common, **host_vars} for name, host_vars in hosts.items()}}}))
    return path


def play(tmp_path: Path, hosts: dict[str, dict[str, str]]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "playbook.yml").write_text(PLAYBOOK)
    (tmp_path / "note.j2").write_text("written for {{ inventory_hostname }}\n")
    return ansible_playbook("-i", str(inventory(tmp_path, hosts)), str(tmp_path / "playbook.yml"),
                            "-e", f"dir={tmp_path}")


def test_tasks_see_only_the_namespaces_interfaces_and_files_work(netns: str,
                                                                 tmp_path: Path) -> None:
    run = play(tmp_path, {netns: {}})
    assert run.returncode == 0, run.stdout + run.stderr
    interfaces = json.loads((tmp_path / f"{netns}-addr.json").read_text())
    assert sorted(entry["ifname"] for entry in interfaces) == sorted(["lo", *VETH])
    assert (tmp_path / f"{netns}-note.txt").read_text() == f"written for {netns}\n"
    assert (tmp_path / "fetched" / f"{netns}-note.txt").read_text() == f"written for {netns}\n"


def test_ansible_netns_names_the_namespace_of_any_host(netns: str, tmp_path: Path) -> None:
    run = play(tmp_path, {"worker-a": {"ansible_netns": netns}})
    assert run.returncode == 0, run.stdout + run.stderr
    interfaces = json.loads((tmp_path / "worker-a-addr.json").read_text())
    assert set(VETH) <= {entry["ifname"] for entry in interfaces}


def test_a_missing_namespace_fails_with_a_clear_message(tmp_path: Path) -> None:
    missing = f"spt{os.getpid()}-missing"
    run = play(tmp_path, {missing: {}})
    assert run.returncode != 0
    assert f"network namespace '{missing}' does not exist" in run.stdout
    assert not (tmp_path / f"{missing}-addr.json").exists()
