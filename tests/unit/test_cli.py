"""The ``spinelb`` command as a user runs it: a bad config exits 2 with every problem, before any socket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BAD = """\
node_name: ncn-w001
router_id: 10.252.1.10
local_asn: 65531
api: {listen: "127.0.0.1:7473"}
peers:
  - name: sw-spine-001-nmn
    address: 10.252.0.2
    asn: 4294967296
    hold_time: 2
    password: s3cret-md5
    password_file: /etc/spinelb/md5
  - name: sw-spine-001-nmn
    address: 10.252.0.3
    asn: 65533
  - name: sw-spine-002-nmn
    address: 10.252.0.4
    asn: 65533
    colour: blue
announce:
  - prefix: 10.102.10.129/24
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spinelb.cli", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_bad_config_exits_2_listing_every_problem_without_the_password(tmp_path: Path) -> None:
    path = tmp_path / "speaker.yaml"
    path.write_text(BAD)
    result = run("speaker", "--config", str(path))
    assert result.returncode == 2
    err = result.stderr
    for where in (
        "peers[0].asn",
        "peers[0].hold_time",
        "peers[0].password",
        "peers[1].name",
        "peers[2].colour",
        "announce[0].prefix",
    ):
        assert where in err, (where, err)
    assert "s3cret-md5" not in err and "s3cret-md5" not in result.stdout
    assert "speaker running" not in err  # it stopped before starting anything


def test_unreadable_config_exits_2(tmp_path: Path) -> None:
    result = run("speaker", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("spinelb ")


def test_a_speaker_without_kubernetes_never_loads_the_kubernetes_client() -> None:
    """The official client and aiohttp cost ~30 MiB and ~0.5 s of start-up (100,000-prefix
    benchmark: 124 MiB peak instead of 91): only a kubernetes section loads them."""
    code = ("import sys, spinelb.cli, spinelb.speaker.speaker; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'kubernetes', 'aiohttp'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"
