"""spinelb.fabric.service_prefixes, ``state: reconciled``: who does which repair, and how.

The plugin's repairs are module calls on the host it runs for (``ansible.builtin.uri`` to a
speaker's or the controller's local API, ``ansible.builtin.command`` with vtysh on an FRR
spine); here they are recorded and answered, so each host's share of a plan, check mode, and
what is left for a person are checked without a lab (tests/interop/test_lab_verify.py runs
them for real).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from test_spine_bgp_frr_config import collection_module
from test_spine_model import ansible_inventory
from test_spine_routes_plugin import with_host_vars

from spinelb.reconcile.repair import (
    assign,
    needs_person,
    resync_speaker,
    soft_clear,
    withdraw_static,
)
from spinelb.spine import load_site

action: Any = collection_module("plugins.action.service_prefixes")
site_inventory: Any = collection_module("plugins.module_utils.site_inventory")

PLAN = [
    assign("istio-system/istio-ingressgateway-cmn", "no address in status"),
    resync_speaker("ncn-w002", "connect to sw-spine-001 now, not after its backoff"),
    withdraw_static("ncn-w003", "10.102.10.177/32", "a pool's address no Service has"),
    soft_clear("sw-spine-001", "10.252.1.11", "ask ncn-w002-nmn (10.252.1.11) to resend"),
    soft_clear("sw-spine-001", "10.102.5.14", "re-apply the route-map of ncn-w001-cmn"),
    soft_clear("sw-spine-002", "10.252.1.12", "a stale path"),
    needs_person("sw-spine-001: its configuration differs from the site's: run "
                 "playbooks/spines.yml -e spine_state=replaced"),
]


class Host:
    """The plugin as it runs for ``host``, its module calls recorded and answered."""

    def __init__(self, host: str, *, check_mode: bool = False, platform: str = "frr",
                 answer: dict[str, Any] | None = None) -> None:
        listing = ansible_inventory("reference-site")
        self.task_vars = with_host_vars(listing, host)
        for spine in ("sw-spine-001", "sw-spine-002"):
            self.task_vars["hostvars"][spine] = dict(
                self.task_vars["hostvars"][spine], spinelb_platform=platform,
                spine_frr_pathspace="lab-" + spine)
        self.site = load_site(*site_inventory.site_arguments(self.task_vars, host))
        task = SimpleNamespace(args={}, delegate_to=None, async_val=0, check_mode=check_mode,
                               action="spinelb.fabric.service_prefixes")
        connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir="/nonexistent"))
        self.plugin = action.ActionModule(task, connection, SimpleNamespace(), None, None)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answer = answer

        def execute_module(module_name: str, module_args: dict[str, Any], **_: Any) -> Any:
            self.calls.append((module_name, module_args))
            if self.answer is not None:
                return self.answer
            if module_name == "ansible.builtin.uri":
                return {"status": 200, "json": {"resynced": True}}
            return {"rc": 0, "stdout": ""}
        self.plugin._execute_module = execute_module

    def reconcile(self, **args: Any) -> dict[str, Any]:
        options = {"speaker_api": "127.0.0.1:7473", "controller_api": None, "pathspace": None,
                   "timeout": 15, **args}
        result: dict[str, Any] = self.plugin._reconcile({}, options, self.site, PLAN,
                                                        self.task_vars)
        return result


def lines(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["line"] for entry in entries]


def test_a_worker_asks_only_its_own_speaker_to_resynchronise() -> None:
    w002 = Host("ncn-w002")
    result = w002.reconcile()
    assert w002.calls == [("ansible.builtin.uri", {
        "url": "http://127.0.0.1:7473/resync", "method": "POST", "body": "{}",
        "body_format": "json", "return_content": True, "timeout": 15, "status_code": [200]})]
    assert result["changed"] is True
    assert lines(result["done"]) == [
        "ncn-w002: resync_speaker(worker ncn-w002): connect to sw-spine-001 now, not after its "
        "backoff"]
    assert result["done"][0]["result"] == {"resynced": True}
    w001 = Host("ncn-w001")
    assert w001.reconcile()["done"] == []
    assert w001.calls == []


def test_the_controllers_host_asks_it_to_assign_and_a_standby_is_not_a_failure() -> None:
    master = Host("ncn-m001")
    assert master.reconcile()["done"] == []  # no controller_api: not the controller's host
    result = master.reconcile(controller_api="[::1]:7474")
    assert master.calls[0][1]["url"] == "http://[::1]:7474/assign"
    assert master.calls[0][1]["status_code"] == [200, 409]
    assert result["changed"] is True


def test_an_frr_spine_clears_each_of_its_sessions_softly_in_its_vrf() -> None:
    spine = Host("sw-spine-001")
    result = spine.reconcile()
    assert spine.calls == [
        ("ansible.builtin.command", {"argv": ["vtysh", "-N", "lab-sw-spine-001", "-c",
                                              "clear bgp vrf CSM 10.252.1.11 soft"]}),
        ("ansible.builtin.command", {"argv": ["vtysh", "-N", "lab-sw-spine-001", "-c",
                                              "clear bgp 10.102.5.14 soft"]}),
    ]
    assert [entry["neighbor"] for entry in result["done"]] == ["10.252.1.11", "10.102.5.14"]
    assert lines(result["left"]) == [str(PLAN[-1])]


def test_an_aoscx_spine_leaves_the_soft_clear_to_a_person_with_its_command() -> None:
    spine = Host("sw-spine-001", platform="aoscx")
    result = spine.reconcile()
    assert spine.calls == []
    assert result["done"] == [] and not result.get("changed")
    assert ("needs_person: ask ncn-w002-nmn (10.252.1.11) to resend: on sw-spine-001 run "
            "`clear ip bgp 10.252.1.11 soft in vrf CSM` (AOS-CX offers no REST call for it)"
            ) in lines(result["left"])


def test_check_mode_says_what_it_would_do_and_calls_nothing() -> None:
    spine = Host("sw-spine-002", check_mode=True)
    result = spine.reconcile()
    assert spine.calls == []
    assert result["changed"] is True and result["done"] == []
    assert lines(result["would_do"]) == [
        "sw-spine-002: soft_clear(spine sw-spine-002, neighbor 10.252.1.12): a stale path"]


def test_a_repair_that_fails_fails_the_task_naming_it() -> None:
    worker = Host("ncn-w002", answer={"failed": True, "msg": "Status code was -1: Connection "
                                      "refused"})
    result = worker.reconcile()
    assert result["failed"] is True
    assert result["msg"] == (
        "repairs failed: resync_speaker(worker ncn-w002): connect to sw-spine-001 now, not "
        "after its backoff: Status code was -1: Connection refused")
    assert result["done"] == []


@pytest.mark.parametrize("api", ["7473", "localhost", ":7473"])
def test_an_api_that_is_not_address_and_port_is_refused(api: str) -> None:
    with pytest.raises(action.RepairError, match="ADDRESS:PORT"):
        action.api_url(api, "/resync")


def test_ignore_judges_a_pending_service_keyed_by_name() -> None:
    ignored = {action.ip_address("10.92.100.255")}
    assert action.is_ignored("10.92.100.255", ignored)
    assert not action.is_ignored("10.92.100.71", ignored)
    assert not action.is_ignored("istio-system/istio-ingressgateway-cmn", ignored)


def test_a_worker_withdraws_its_own_stale_static_announcement() -> None:
    w003 = Host("ncn-w003")
    result = w003.reconcile()
    assert [call[1]["url"] for call in w003.calls] == [
        "http://127.0.0.1:7473/withdraw?prefix=10.102.10.177%2F32"]
    assert lines(result["done"]) == [
        "ncn-w003: withdraw_static(worker ncn-w003, prefix 10.102.10.177/32): a pool's address "
        "no Service has"]


def test_a_spines_neighbors_become_what_it_resolved_each_layer2_address_to() -> None:
    from spinelb.reconcile import Resolution

    answer = {"routes": {}, "vrfs": ["default"], "received": {}, "sessions": {},
              "neighbors": {"10.102.10.241": {"mac": "02:00:0a:66:0a:0b", "state": "REACHABLE"},
                            "10.102.10.242": {"mac": None, "state": "FAILED"}}}
    observed = action.observation(answer)
    assert observed.resolved == {"10.102.10.241": Resolution("02:00:0a:66:0a:0b", "REACHABLE"),
                                 "10.102.10.242": Resolution(None, "FAILED")}
    assert observed.resolved["10.102.10.242"].failed
    # not asked, or an AOS-CX spine that cannot say: nothing is judged from it
    assert action.observation(dict(answer, neighbors=None)).resolved is None
    del answer["neighbors"]
    assert action.observation(answer).resolved is None
