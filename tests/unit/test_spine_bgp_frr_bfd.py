"""spine_bgp's BFD profile against a real FRR 8.4 (bgpd + bfdd) in a network namespace (needs root).

The module runs as Ansible runs it (``main()`` with its arguments), with the
real ``vtysh -N NS``: the site's render with BFD is pushed, a second run has
nothing to do in every converging state, new timers change only the timers,
and turning BFD off with ``overridden`` removes the profile and the neighbors'
``bfd`` lines, leaving someone else's profile alone.  Turning it off shuts the profile down
around the neighbors' lines (bfdd says AdminDown first; ``test_bfd_toggle_frr`` shows the
sessions kept), with ``replaced`` too, in check mode alike.  Takes a few seconds.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from ansible.module_utils.testing import patch_module_args
from test_spine_bgp_frr_config import collection_module
from test_spine_render import with_options

from lab.frr import FrrRouter, stop_stale
from lab.netns import Namespace, netns_available
from spinelb.spine import Site, render

spine_bgp: Any = collection_module("plugins.modules.spine_bgp")
action: Any = collection_module("plugins.action.spine_bgp")

NETNS = f"sbfd{os.getpid()}"
SPINE = "sw-spine-001"
# Someone else's BFD profile: spinelb owns the profile named spinelb only.  Traditional
# defaults, as the lab's spines start (datacenter's hide ``no bgp ebgp-requires-policy``).
START = """bfd
 profile other
  detect-multiplier 5
 exit
exit
end
"""


@pytest.fixture(scope="module")
def frr() -> Iterator[FrrRouter]:
    reason = netns_available()
    if reason:
        pytest.skip(f"this test needs network namespaces: {reason}")
    ns = Namespace(NETNS)
    router = FrrRouter(ns, daemons=("zebra", "bgpd", "bfdd"))
    try:
        stop_stale(NETNS)
        ns.create()
        router.start(START)
        yield router
    finally:
        router.cleanup()
        ns.delete()


def spine_bgp_task(
    capsys: pytest.CaptureFixture[str], site: Site, state: str, *, check: bool = False
) -> dict[str, Any]:
    """One run of the module on the namespace's FRR, as the action plugin calls it (with diff)."""
    args = {
        "state": state,
        "config": render(site, SPINE, "frr", mask_secrets=True),
        "platform": "frr",
        "pathspace": NETNS,
        "save": False,
        "owned": action.ownership(site),
        "_ansible_diff": True,
        "_ansible_check_mode": check,
    }
    with patch_module_args(args), pytest.raises(SystemExit):
        spine_bgp.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert not result.get("failed"), result.get("msg")
    return result


def profile(frr: FrrRouter, name: str) -> list[str]:
    """The lines of bfdd's profile ``name`` as ``show running-config`` prints them."""
    lines = frr.vtysh("show running-config").splitlines()
    start = lines.index(f" profile {name}")
    return [line.strip() for line in lines[start + 1 : lines.index(" exit", start)]]


def test_bfd_profile_pushed_idempotent_retimed_and_removed(
    frr: FrrRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    fast = with_options("lab", bfd={"min_rx_ms": 100, "min_tx_ms": 100, "multiplier": 3})
    first = spine_bgp_task(capsys, fast, "merged")
    assert first["changed"]
    assert "profile spinelb" in first["diff"]["after"]
    assert "profile spinelb" not in first["diff"]["before"]
    # bfdd leaves the default multiplier (3) out
    assert profile(frr, "spinelb") == ["transmit-interval 100", "receive-interval 100"]
    running = frr.vtysh("show running-config")
    assert " neighbor 10.252.1.10 bfd profile spinelb" in running
    for state in ("merged", "replaced", "overridden"):
        again = spine_bgp_task(capsys, fast, state)
        assert not again["changed"], (state, again["commands"])

    slower = with_options("lab", bfd={"min_rx_ms": 300, "min_tx_ms": 200, "multiplier": 4})
    retimed = spine_bgp_task(capsys, slower, "merged")
    assert retimed["commands"] == [
        "bfd", " profile spinelb", "  detect-multiplier 4", "  receive-interval 300",
        "  transmit-interval 200", " exit", "exit",
    ]
    assert profile(frr, "spinelb") == ["detect-multiplier 4", "transmit-interval 200"]
    assert not spine_bgp_task(capsys, slower, "overridden")["changed"]

    off = with_options("lab")
    removed = spine_bgp_task(capsys, off, "overridden")
    assert removed["commands"][-3:] == ["bfd", " no profile spinelb", "exit"]
    assert "profile spinelb" in removed["diff"]["before"]
    assert "profile spinelb" not in removed["diff"]["after"]
    running = frr.vtysh("show running-config")
    assert "profile spinelb" not in running and " bfd" not in running.split("router bgp")[1]
    assert profile(frr, "other") == ["detect-multiplier 5"]
    assert not spine_bgp_task(capsys, off, "overridden")["changed"]


# --- turning BFD off without a BGP flap --------------------------------------------------------

fc: Any = collection_module("plugins.module_utils.frr_config")
FAST = {"min_rx_ms": 100, "min_tx_ms": 100, "multiplier": 3}
SHUT = ["bfd", " profile spinelb", "  shutdown", " exit", "exit"]
UNSHUT = ["bfd", " profile spinelb", "  no shutdown", " exit", "exit"]


def parsed(site: Site) -> dict[str, Any]:
    result: dict[str, Any] = fc.parse(render(site, SPINE, "frr"))
    return result


def off_commands(state: str) -> list[str]:
    """The commands taking the lab's spine from BFD on to off under ``state``."""
    lines: list[str] = fc.commands(parsed(with_options("lab", bfd=FAST)),
                                   parsed(with_options("lab")), state,
                                   fc.Ownership.from_owned(action.ownership(with_options("lab"))))
    return lines


def test_replaced_shuts_the_profile_down_around_the_neighbors() -> None:
    """bfdd says AdminDown before ``no neighbor X bfd``, and the profile is left as it was."""
    lines = off_commands("replaced")
    assert lines[:5] == SHUT
    assert lines[-5:] == UNSHUT
    assert " no neighbor 10.252.1.10 bfd" in lines[5:-5]


def test_overridden_shuts_the_profile_down_then_removes_it() -> None:
    lines = off_commands("overridden")
    assert lines[:5] == SHUT
    assert lines[-3:] == ["bfd", " no profile spinelb", "exit"]
    assert "  no shutdown" not in lines


def test_no_shutdown_when_no_neighbor_leaves_bfd() -> None:
    """merged removes nothing; a rerun, deleted and a profile shut down already need no wrap."""
    assert "  shutdown" not in off_commands("merged")
    assert "  shutdown" not in off_commands("deleted")
    on, off = parsed(with_options("lab", bfd=FAST)), parsed(with_options("lab"))
    assert fc.commands(off, off, "replaced") == []
    retimed = parsed(with_options("lab", bfd={**FAST, "multiplier": 4}))
    assert "  shutdown" not in fc.commands(on, retimed, "replaced")
    on["bfd_profiles"]["spinelb"].append("shutdown")
    assert "  shutdown" not in fc.commands(on, off, "replaced")


def test_a_neighbor_removed_whole_is_no_reason_to_shut_down() -> None:
    """A neighbor that goes (or is re-created) loses its BGP session anyway."""
    on = parsed(with_options("lab", bfd=FAST))
    fewer = copy.deepcopy(on)
    for instance in fewer["bgp"].values():
        instance["neighbors"].pop("10.252.1.10")
        for family in instance["address_families"].values():
            family["neighbors"].pop("10.252.1.10", None)
    assert "  shutdown" not in fc.commands(on, fewer, "replaced")


def test_replaced_off_on_frr_check_mode_then_for_real(
    frr: FrrRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check mode reports the wrapped commands and changes nothing; the real run leaves the
    profile (replaced does not remove it) without ``shutdown``; on again is one run."""
    fast = with_options("lab", bfd=FAST)
    spine_bgp_task(capsys, fast, "replaced")
    on_config = frr.vtysh("show running-config")
    checked = spine_bgp_task(capsys, with_options("lab"), "replaced", check=True)
    assert checked["changed"] and checked["commands"][:5] == SHUT
    assert frr.vtysh("show running-config") == on_config
    real = spine_bgp_task(capsys, with_options("lab"), "replaced")
    assert real["commands"] == checked["commands"]
    for side in ("before", "after"):  # FRR orders some lines its own way
        assert set(real["diff"][side].splitlines()) == set(checked["diff"][side].splitlines())
    assert " bfd" not in real["diff"]["after"].split("router bgp")[1]
    running = frr.vtysh("show running-config")
    assert "shutdown" not in running and " bfd" not in running.split("router bgp")[1]
    assert profile(frr, "spinelb") == ["transmit-interval 100", "receive-interval 100"]
    assert not spine_bgp_task(capsys, with_options("lab"), "replaced")["changed"]
    assert spine_bgp_task(capsys, fast, "replaced")["changed"]
    assert not spine_bgp_task(capsys, fast, "replaced")["changed"]
    spine_bgp_task(capsys, with_options("lab"), "overridden")
