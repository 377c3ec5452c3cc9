"""``spinelb status`` (a running speaker's sessions, for a person) and ``spinelb check-config``.

``status`` asks the speaker's local API (``GET /status``) and prints a table;
it exits 0 when every peer is Established, 1 when one is not, 2 when the API
cannot be reached.  ``check-config`` validates a config file without touching
a running speaker: 0 and a one-line summary, or 2 and every problem; with
``--running`` it also says whether applying it needs nothing, a reload or a
restart (the deployment's ``spinelb_config`` module asks it).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from spinelb.config import (
    ConfigDiff,
    ConfigError,
    ControllerConfig,
    SpeakerConfig,
    config_diff,
    load_config,
    load_controller_config,
)
from spinelb.config.document import DocumentError, load_document
from spinelb.config.model import DEFAULT_API_PORT
from spinelb.config.values import parse_host_port

DEFAULT_API = f"127.0.0.1:{DEFAULT_API_PORT}"
REQUEST_TIMEOUT = 5.0
LISTED_ANNOUNCEMENTS = 20  # more than this are summarised


class Unreachable(Exception):
    """The API could not be asked (no address, refused, timed out, not our API)."""


def main(argv: Sequence[str]) -> int:
    """``spinelb status [--api HOST:PORT] [--config FILE] [--json]``."""
    parser = argparse.ArgumentParser(
        prog="spinelb status", description="Show a running speaker's sessions and announcements."
    )
    parser.add_argument(
        "--api", metavar="HOST:PORT", help=f"the speaker's API (default {DEFAULT_API})"
    )
    parser.add_argument("--config", metavar="FILE", help="take the API address from this config")
    parser.add_argument("--json", action="store_true", help="print the raw JSON status")
    args = parser.parse_args(list(argv))
    try:
        api = api_address(args.api, args.config)
        body = fetch_status(api)
        status = json.loads(body)
        if not isinstance(status, dict):
            raise Unreachable(f"{api} did not answer with a status object")
    except (Unreachable, ValueError) as exc:
        print(f"spinelb status: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(body.decode() + "\n")
    else:
        print_status(status, sys.stdout)
    peers = status.get("peers") or []
    return 0 if all(peer.get("state") == "Established" for peer in peers) else 1


def api_address(api: str | None, config_path: str | None) -> str:
    """``host:port`` to ask: ``--api``, else the config's ``api.listen``, else the default.

    The config is only read for its ``api.listen`` (not validated: a status
    must work even when, say, a password file is only readable by the speaker).
    """
    if api:
        return api
    if not config_path:
        return DEFAULT_API
    try:
        data = load_document(Path(config_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, DocumentError) as exc:
        raise Unreachable(f"cannot read {config_path}: {exc}") from None
    section = data.get("api") if isinstance(data, dict) else None
    if not isinstance(section, dict) or "listen" not in section:
        return DEFAULT_API
    listen = section["listen"]
    if listen is None:
        raise Unreachable(f"the API is disabled in {config_path} (api.listen: null)")
    return str(listen)


def fetch_status(api: str) -> bytes:
    """The body of ``GET /status`` from the API at ``api`` (``host:port`` or ``[v6]:port``)."""
    try:
        address, port = parse_host_port(api, DEFAULT_API_PORT)
    except ValueError as exc:
        raise Unreachable(f"bad API address {api!r}: {exc}") from None
    if address.is_unspecified:  # a speaker listening on 0.0.0.0 / :: is reached on loopback
        address = type(address)(1)
    host = f"[{address}]" if address.version == 6 else str(address)
    url = f"http://{host}:{port}/status"
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        raise Unreachable(f"the API at {host}:{port} answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(
            f"cannot reach the speaker's API at {host}:{port} ({reason}); is the speaker running?"
        ) from None


def format_uptime(seconds: float | None) -> str:
    """A duration for a person: "42s", "5m03s", "1h02m", "3d04h"; "-" for none."""
    if seconds is None:
        return "-"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def print_status(status: dict[str, Any], out: TextIO) -> None:
    """The status as a person reads it: identity, a table of peers, the announcements."""
    out.write(
        f"node {status.get('node_name', '?')}  router-id {status.get('router_id', '?')}"
        f"  spinelb {status.get('version', '?')}\n\n"
    )
    header = ("PEER", "ADDRESS", "AS", "STATE", "UPTIME", "ADVERTISED", "RECEIVED", "LAST ERROR")
    rows = [header]
    for peer in status.get("peers") or []:
        rows.append(
            (
                str(peer.get("name", "?")),
                str(peer.get("address", "?")),
                str(peer.get("asn", "?")),
                str(peer.get("state", "?")),
                format_uptime(peer.get("uptime_seconds")),
                str(peer.get("advertised", 0)),
                str(peer.get("received", 0)),
                str(peer.get("last_error") or "-"),
            )
        )
    if len(rows) == 1:
        out.write("no peers configured\n")
    else:
        widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")
    out.write("\n")
    announced = status.get("announced") or []
    v6 = sum(1 for entry in announced if ":" in str(entry.get("prefix", "")))
    total = len(announced)
    out.write(f"announced: {_count(total, 'prefix')} ({total - v6} IPv4, {v6} IPv6)\n")
    if len(announced) <= LISTED_ANNOUNCEMENTS:
        for entry in announced:
            peers = ", ".join(entry.get("peers") or []) or "-"
            out.write(f"  {entry.get('prefix')}  next hop {entry.get('next_hop')}  to {peers}\n")
    else:
        out.write(f"  (more than {LISTED_ANNOUNCEMENTS}: use --json for the list)\n")
    kubernetes = status.get("kubernetes")
    if isinstance(kubernetes, dict):
        out.write("\n")
        print_services(kubernetes, status.get("services") or [], out)


def print_services(kubernetes: dict[str, Any], services: list[dict[str, Any]], out: TextIO) -> None:
    """The Kubernetes source's state and, per Service address, whether and why it is announced."""
    state = "connected" if kubernetes.get("connected") else "not connected"
    synced = "synced" if kubernetes.get("synced") else "not synced yet"
    line = f"kubernetes: {state}, {synced}"
    if kubernetes.get("last_error"):
        line += f" (last error: {kubernetes['last_error']})"
    out.write(line + "\n")
    announced = sum(1 for entry in services if entry.get("announced"))
    out.write(f"service addresses: {len(services)} ({announced} announced)\n")
    if not services:
        return
    header = ("ADDRESS", "POOL", "ANNOUNCED", "REASON", "SERVICES")
    rows = [header]
    for entry in services:
        rows.append(
            (
                str(entry.get("address", "?")),
                str(entry.get("pool") or "-"),
                "yes" if entry.get("announced") else "no",
                str(entry.get("reason") or "-"),
                ", ".join(entry.get("services") or []) or "-",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")


def _count(number: int, noun: str) -> str:
    plural = "es" if noun.endswith("x") else "s"
    return f"{number} {noun}{'' if number == 1 else plural}"


def check_main(argv: Sequence[str]) -> int:
    """``spinelb check-config --config NEW [--running OLD] [--controller] [--json]``.

    Exit 0 when NEW is valid (with ``--running``, also what applying it to a
    process running OLD needs: see :func:`apply_action`), 2 with every problem.
    """
    parser = argparse.ArgumentParser(
        prog="spinelb check-config",
        description="Validate a speaker (or controller) config file, and say what applying it "
        "to a running one needs.",
    )
    parser.add_argument("--config", metavar="FILE", required=True, help="the config to check")
    parser.add_argument("--running", metavar="FILE",
                        help="the config the process runs now: print unchanged, reload or restart")
    parser.add_argument("--controller", action="store_true",
                        help="check it as spinelb controller reads it (any change restarts)")
    parser.add_argument("--json", action="store_true",
                        help='print {"ok": ..., "action": ..., "summary": ...} or the problems')
    args = parser.parse_args(list(argv))
    load: Callable[[str], SpeakerConfig | ControllerConfig] = (
        load_controller_config if args.controller else load_config
    )
    try:
        config = load(args.config)
    except ConfigError as exc:
        if args.json:
            print(json.dumps({"ok": False, "problems": [str(p) for p in exc.problems]}))
        else:
            print(exc, file=sys.stderr)
        return 2
    summary = f"{args.config}: ok: {config_summary(config)}"
    result: dict[str, Any] = {"ok": True, "summary": summary}
    if args.running is not None:
        action, reason = apply_action(args.running, config, load)
        result.update(action=action, summary=f"{summary}; {action}: {reason}")
    if args.json:
        print(json.dumps(result))
    else:
        print(result["summary"])
    return 0


def config_summary(config: SpeakerConfig | ControllerConfig) -> str:
    """One line about a valid config: its node, peers and announcements, or its pools."""
    if isinstance(config, ControllerConfig):
        return f"controller, {_count(len(config.pools), 'pool')}"
    v6 = sum(1 for announcement in config.announcements if announcement.prefix.version == 6)
    total = len(config.announcements)
    return (
        f"node {config.node_name}, {_count(len(config.peers), 'peer')}, "
        f"{_count(total, 'announcement')} ({total - v6} IPv4, {v6} IPv6)"
    )


def apply_action(
    running_path: str,
    new: SpeakerConfig | ControllerConfig,
    load: Callable[[str], SpeakerConfig | ControllerConfig],
) -> tuple[str, str]:
    """What a process running ``running_path`` needs to take ``new``, and why.

    ``unchanged`` (the same settings), ``reload`` (SIGHUP applies the
    difference: the speaker's :func:`spinelb.config.config_diff`) or ``restart``
    (a setting in RESTART_SETTINGS changed, the running config cannot be read,
    or any change to a controller, which does not reload).
    """
    try:
        old = load(running_path)
    except ConfigError as exc:
        count = len(exc.problems)
        return "restart", f"the running config is not valid ({_count(count, 'problem')})"
    if old == new:
        return "unchanged", "the same settings"
    if not isinstance(old, SpeakerConfig) or not isinstance(new, SpeakerConfig):
        return "restart", "the controller's settings changed (it has no reload)"
    diff = config_diff(old, new)
    if diff.restart_required:
        return "restart", f"{', '.join(diff.restart_settings)} changed"
    return "reload", describe_diff(diff, old, new)


def describe_diff(diff: ConfigDiff, old: SpeakerConfig, new: SpeakerConfig) -> str:
    """What a reload changes, for a person (names only; a password is "password")."""
    parts: list[str] = []
    if diff.peers_added:
        parts.append("peers added: " + ", ".join(p.name for p in diff.peers_added))
    if diff.peers_removed:
        parts.append("peers removed: " + ", ".join(p.name for p in diff.peers_removed))
    for change in diff.peers_changed:
        how = "reset" if change.resets_session else "in place"
        parts.append(f"peer {change.name} ({', '.join(change.settings)}; {how})")
    if diff.live_settings:
        parts.append(", ".join(diff.live_settings) + " changed")
    moved = (len(diff.announcements_added), len(diff.announcements_removed),
             len(diff.announcements_changed))
    if any(moved):
        parts.append("announcements: {} added, {} removed, {} changed".format(*moved))
    if old.kubernetes != new.kubernetes:
        parts.append("kubernetes changed")
    if old.pools != new.pools:
        parts.append("pools changed")
    return "; ".join(parts) or "settings changed"
