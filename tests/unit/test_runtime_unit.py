"""The runtime role's systemd unit: valid for systemd, and hardened (no systemd runs here).

The template is rendered as Ansible's template module renders it (Jinja2 with
``trim_blocks``) and checked offline with ``systemd-analyze verify`` and
``systemd-analyze security --offline=true``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

TEMPLATE = Path(__file__).resolve().parents[2] / "roles" / "runtime" / "templates" / "spinelb.service.j2"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(SYSTEMD_ANALYZE is None,
                                reason="systemd-analyze is not installed (Debian package systemd)")


def render(tmp_path: Path, component: str = "speaker", *, privileged: bool = False,
           raw: bool = False, text: str | None = None) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    program = venv / "bin" / "spinelb"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    environment = jinja2.Environment(trim_blocks=True)
    # Ansible's bool filter: role variables may arrive as the strings "True"/"False"
    environment.filters["bool"] = lambda value: str(value).lower() in ("true", "yes", "1", "on")
    template = environment.from_string(text or TEMPLATE.read_text())
    unit = tmp_path / f"spinelb-{component}.service"
    unit.write_text(template.render(
        ansible_managed="Ansible managed", runtime_component=component, runtime_venv=str(venv),
        runtime_config_path=f"/etc/spinelb/{component}.yaml", runtime_user="spinelb",
        runtime_group="spinelb", runtime_listen_privileged=str(privileged),
        runtime_raw_sockets=str(raw),
    ))
    return unit


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, check=False, timeout=60)


def exposure(unit: Path) -> float:
    assert SYSTEMD_ANALYZE is not None
    run = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, check=False, timeout=60)
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", run.stdout)
    assert found, run.stdout + run.stderr
    return float(found.group(1))


@pytest.mark.parametrize("component", ["speaker", "controller"])
@pytest.mark.parametrize("privileged", [False, True])
def test_the_unit_verifies_and_is_hardened(tmp_path: Path, component: str,
                                           privileged: bool) -> None:
    unit = render(tmp_path, component, privileged=privileged)
    run = verify(unit)
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr
    text = unit.read_text()
    assert f"ExecStart={tmp_path}/venv/bin/spinelb {component} --config" in text
    assert ("ExecReload=/bin/kill -HUP $MAINPID" in text) == (component == "speaker")
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "User=spinelb",
                    "ProtectHome=yes", "PrivateTmp=yes", "RestrictAddressFamilies="):
        assert setting in text
    if privileged:
        assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in text
        assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in text
    else:  # no capability at all: dialling port 179 and TCP MD5 need none
        assert re.search(r"^CapabilityBoundingSet=$", text, re.M)
        assert "CAP_" not in text
    # systemd's own score: 0 is fully locked down, 10 is a unit with no hardening
    assert exposure(unit) <= 2.5


def test_the_check_catches_a_broken_unit(tmp_path: Path) -> None:
    broken = TEMPLATE.read_text().replace("ExecStart={{ runtime_venv }}", "ExecStart=relative")
    run = verify(render(tmp_path, text=broken))
    assert run.returncode != 0
    assert "relative" in run.stderr or "absolute" in run.stderr


@pytest.mark.parametrize(("privileged", "capabilities"), [
    (False, "CAP_NET_RAW"), (True, "CAP_NET_BIND_SERVICE CAP_NET_RAW"),
])
def test_a_layer2_speaker_gets_net_raw_and_af_packet_only(
    tmp_path: Path, privileged: bool, capabilities: str
) -> None:
    unit = render(tmp_path, privileged=privileged, raw=True)
    run = verify(unit)
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr
    text = unit.read_text()
    assert f"AmbientCapabilities={capabilities}\n" in text
    assert f"CapabilityBoundingSet={capabilities}\n" in text
    assert "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_PACKET\n" in text
    assert "AF_PACKET" not in render(tmp_path / "plain").read_text()
    assert exposure(unit) <= 3.0
