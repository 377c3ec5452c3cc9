"""The spine_bgp module against a fake vtysh: states, check mode, diff mode, masked password."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from test_spine_bgp_frr_config import (
    OWNED,
    POOLS,
    RUNNING,
    STATIC,
    collection_module,
    golden_text,
)

spine_bgp: Any = collection_module("plugins.modules.spine_bgp")
fc: Any = collection_module("plugins.module_utils.frr_config")

PASSWORD = "s3cret-Pw"


class FakeVtysh:
    """Answers ``show running-config`` with ``running``; records what ``-f`` and ``-c`` send."""

    def __init__(self, running: str, *, refuse: bool = False) -> None:
        self.running = running
        self.refuse = refuse
        self.applied: list[str] = []
        self.argv: list[list[str]] = []

    def run_command(self, args: list[str], **_: Any) -> tuple[int, str, str]:
        self.argv.append(list(args))
        if args[-2:] == ["-c", "show running-config"]:
            return 0, self.running, ""
        if args[-2] == "-f":
            text = Path(args[-1]).read_text()
            self.applied.append(text)
            if self.refuse:
                return 2, f"line 3: % Unknown command: {text.splitlines()[2]}", ""
            # what FRR would then show: the applied lines over the old config
            self.running = fc.to_text(fc.parse(text)) if not self.running.strip() else self.running
            return 0, "", ""
        return 0, "", ""


def run_module(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], vtysh: FakeVtysh,
    **args: Any,
) -> dict[str, Any]:
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, argv, **kw: vtysh.run_command(argv, **kw))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: "/usr/bin/" + name)
    with patch_module_args(args), pytest.raises(SystemExit):
        spine_bgp.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def intended(password: str | None = None) -> str:
    text = golden_text()
    if password:
        text = text.replace(" neighbor 10.252.1.10 passive\n",
                            " neighbor 10.252.1.10 passive\n neighbor 10.252.1.10 password "
                            "<redacted>\n")
    return text


def test_merged_from_nothing_applies_saves_and_reports(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    vtysh = FakeVtysh("")
    result = run_module(monkeypatch, capsys, vtysh, state="merged", config=intended(PASSWORD),
                        bgp_password=PASSWORD, pathspace="spine1", owned=OWNED)
    assert result["changed"] is True
    assert result["before"] == fc.empty()
    assert "router bgp 65533" in result["commands"]
    assert " neighbor 10.252.1.10 password <redacted>" in result["commands"]
    assert f"neighbor 10.252.1.10 password {PASSWORD}" in vtysh.applied[0]
    assert all(argv[1:3] == ["-N", "spine1"] for argv in vtysh.argv)
    assert ["/usr/bin/vtysh", "-N", "spine1", "-c", "write memory"] in vtysh.argv
    assert PASSWORD not in json.dumps(result)
    assert "ncn-w003-nmn" in result["after"]["route_maps"]


def test_nothing_to_do_is_no_change(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    vtysh = FakeVtysh(golden_text())
    result = run_module(monkeypatch, capsys, vtysh, state="replaced", config=intended(),
                        owned=OWNED)
    assert result["changed"] is False
    assert result["commands"] == []
    assert vtysh.applied == []


def test_check_mode_reports_commands_and_masked_diff_without_applying(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    vtysh = FakeVtysh(RUNNING)
    result = run_module(monkeypatch, capsys, vtysh, state="overridden", config=intended(PASSWORD),
                        bgp_password=PASSWORD, owned=OWNED, _ansible_check_mode=True,
                        _ansible_diff=True)
    assert result["changed"] is True
    assert vtysh.applied == []
    assert "after" not in result
    assert "no ip prefix-list pl-old-pool" in result["commands"]
    assert "-ip prefix-list pl-old-pool" not in result["diff"]["after"]
    assert "pl-old-pool" in result["diff"]["before"]
    assert "password <redacted>" in result["diff"]["before"]
    assert "password <redacted>" in result["diff"]["after"]
    assert PASSWORD not in json.dumps(result)
    assert "route-map their-policy permit" not in result["diff"]["after"]  # not ours: not shown


def test_a_refused_change_fails_with_frr_complaint_and_no_password(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    vtysh = FakeVtysh("", refuse=True)
    result = run_module(monkeypatch, capsys, vtysh, state="merged", config=intended(PASSWORD),
                        bgp_password=PASSWORD, owned=OWNED)
    assert result["failed"] is True
    assert result["msg"].startswith("FRR refused part of the change: line 3")
    assert PASSWORD not in json.dumps(result)


def test_gathered_parsed_and_rendered(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    gathered = run_module(monkeypatch, capsys, FakeVtysh(RUNNING), state="gathered")
    assert gathered["changed"] is False
    assert gathered["gathered"] == fc.mask(fc.parse(RUNNING))
    assert PASSWORD not in json.dumps(gathered)

    untouched = FakeVtysh(RUNNING)
    parsed = run_module(monkeypatch, capsys, untouched, state="parsed", running_config=RUNNING)
    assert parsed["parsed"] == gathered["gathered"]
    rendered = run_module(monkeypatch, capsys, untouched, state="rendered", config=intended())
    assert rendered["rendered"] == intended()
    assert untouched.argv == []


def test_the_module_never_pushes_aoscx_itself(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    vtysh = FakeVtysh("")
    result = run_module(monkeypatch, capsys, vtysh, state="merged", platform="aoscx",
                        config="router bgp 65533\n")
    assert result["failed"] is True
    assert result["msg"] == ("spine_bgp: platform aoscx is configured over its REST API by the "
                             "action plugin, not on the device (state=merged)")
    assert vtysh.argv == []


def test_static_routes_to_pool_addresses_are_removed_with_check_and_diff(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    running = golden_text() + STATIC
    owned = dict(OWNED, pools=POOLS)
    check = FakeVtysh(running)
    result = run_module(monkeypatch, capsys, check, state="merged", config=intended(),
                        owned=owned, _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] is True and check.applied == []
    assert result["commands"] == [
        "no ip route 10.92.100.71/32 10.252.1.10",
        "no ip route 10.92.100.72/32 10.252.1.11 tag 5 20",
        "no ipv6 route fd00:92::7/128 fd00:252::10",
        "vrf CSM", " no ip route 10.102.5.71/32 10.102.5.14", "exit-vrf",
    ]
    assert "ip route 10.92.100.71/32 10.252.1.10\n" in result["diff"]["before"]
    assert " ip route 10.102.5.71/32 10.102.5.14\n" in result["diff"]["before"]
    assert "ip route" not in result["diff"]["after"]
    assert "10.99.0.5/32" not in result["diff"]["before"]  # not spinelb's: not shown

    applied = FakeVtysh(running)
    result = run_module(monkeypatch, capsys, applied, state="merged", config=intended(),
                        owned=owned)
    assert result["changed"] is True
    assert applied.applied == ["\n".join(result["commands"]) + "\n"]
    assert ["/usr/bin/vtysh", "-c", "write memory"] in applied.argv

    kept = FakeVtysh(running)
    result = run_module(monkeypatch, capsys, kept, state="deleted", config=intended(), owned=owned)
    assert not [line for line in result["commands"] if "ip route" in line]
