"""spine_bgp's BFD profile against a real FRR 8.4 (bgpd + bfdd) in a network namespace (needs root).

The module runs as Ansible runs it (``main()`` with its arguments), with the
real ``vtysh -N NS``: the site's render with BFD is pushed, a second run has
nothing to do in every converging state, new timers change only the timers,
and turning BFD off with ``overridden`` removes the profile and the neighbors'
``bfd`` lines, leaving someone else's profile alone.  Takes a few seconds.
"""

from __future__ import annotations

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
    capsys: pytest.CaptureFixture[str], site: Site, state: str
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
