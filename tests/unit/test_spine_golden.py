"""Golden files: the reference site's spine configs as committed under tests/golden/.

``tests/golden/aoscx/`` is ``inventories/reference-site`` (production, AOS-CX)
and ``tests/golden/frr/`` is ``inventories/lab`` (the same site with FRR spines,
VRFs collapsed), both read through ``ansible-inventory`` as the role will read
them.  Any difference fails; after an intended change, regenerate with

    SPINELB_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_spine_golden.py

and review the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from test_spine_model import REPO, ansible_inventory

from spinelb.spine import render, site_from_inventory

GOLDEN = REPO / "tests" / "golden"
UPDATE = os.environ.get("SPINELB_UPDATE_GOLDEN") == "1"
CASES = [
    ("aoscx", "reference-site", "sw-spine-001"),
    ("aoscx", "reference-site", "sw-spine-002"),
    ("frr", "lab", "sw-spine-001"),
    ("frr", "lab", "sw-spine-002"),
]


@pytest.mark.parametrize(("platform", "inventory", "spine"), CASES)
def test_render_matches_golden_file(platform: str, inventory: str, spine: str) -> None:
    site = site_from_inventory(ansible_inventory(inventory))
    assert site.spines[spine].platform == platform
    rendered = render(site, spine, platform)
    path: Path = GOLDEN / platform / f"{spine}.cfg"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered)
    assert path.exists(), (
        f"{path} is missing: regenerate with SPINELB_UPDATE_GOLDEN=1 (see {__name__})"
    )
    expected = path.read_text()
    if rendered != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                f"{path.relative_to(REPO)} (golden)",
                "rendered now",
            )
        )
        pytest.fail(
            f"the rendered config of {spine} ({platform}) differs from its golden file.\n"
            "If the change is intended: SPINELB_UPDATE_GOLDEN=1 .venv/bin/pytest "
            f"tests/unit/test_spine_golden.py, then review and commit tests/golden/.\n{diff}"
        )
