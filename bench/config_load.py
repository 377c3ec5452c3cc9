"""Time loading (read + parse + validate) a speaker config of N announcements, as YAML and as JSON.

    .venv/bin/python bench/config_load.py [N]      # default N = 100000

Writes the two files to a temporary directory, loads each a few times with
``spinelb.config.load_config`` and prints the best time in seconds.  The
target is well under one second for 100,000 announcements (aim: < 0.5 s).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from spinelb.config import load_config

ROUNDS = 3


def speaker_document(count: int) -> dict[str, Any]:
    """A realistic config: two spines (one IPv6-capable), N host routes, some with attributes."""
    announce: list[dict[str, Any]] = []
    for index in range(count):
        prefix = f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}/32"
        if index % 10 == 0:  # one in ten carries communities and a MED
            announce.append(
                {"prefix": prefix, "communities": ["65533:100", "no-export"], "med": 10}
            )
        else:
            announce.append({"prefix": prefix})
    return {
        "node_name": "ncn-w001",
        "router_id": "10.252.1.10",
        "local_asn": 65531,
        "api": {"listen": "127.0.0.1:7473"},
        "peers": [
            {"name": "sw-spine-001-nmn", "address": "10.252.0.2", "asn": 65533, "hold_time": 9},
            {
                "name": "sw-spine-002-nmn",
                "address": "10.252.0.3",
                "asn": 65533,
                "hold_time": 9,
                "families": ["ipv4-unicast", "ipv6-unicast"],
            },
        ],
        "announce": announce,
    }


def best_load_seconds(path: Path) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        config = load_config(path)
        best = min(best, time.perf_counter() - start)
    assert config.announcements, "nothing loaded"
    return best


def main(argv: list[str]) -> int:
    count = int(argv[1]) if len(argv) > 1 else 100_000
    document = speaker_document(count)
    with tempfile.TemporaryDirectory() as directory:
        yaml_path = Path(directory, "speaker.yaml")
        json_path = Path(directory, "speaker.json")
        yaml_path.write_text(yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=False))
        json_path.write_text(json.dumps(document, indent=1))
        for label, path in (("YAML", yaml_path), ("JSON", json_path)):
            size = path.stat().st_size / 1e6
            seconds = best_load_seconds(path)
            print(f"{label}: {count} announcements, {size:.1f} MB, {seconds:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
