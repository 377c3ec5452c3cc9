"""The ``spinelb`` command: ``speaker``, ``controller``, ``status``, ``check-config``, ``supervise``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from spinelb import __version__

_C = TypeVar("_C")


def _load(args: argparse.Namespace, load: Callable[[Path], _C]) -> _C | None:
    """The config at ``--config``, or None after printing every problem (exit status 2)."""
    from spinelb.config import ConfigError

    path = Path(args.config)
    try:
        return load(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
    except OSError as err:
        print(f"{path}: {err.strerror or err}", file=sys.stderr)
    return None


def _speaker(args: argparse.Namespace) -> int:
    from spinelb.config import load_config
    from spinelb.speaker import logfmt
    from spinelb.speaker.speaker import Speaker

    config = _load(args, load_config)
    if config is None:
        return 2
    logfmt.setup(args.log_level or config.log_level)
    return asyncio.run(Speaker(config, config_path=Path(args.config)).run())


def _controller(args: argparse.Namespace) -> int:
    from spinelb.config import load_controller_config
    from spinelb.controller import default_identity, serve
    from spinelb.speaker import logfmt

    config = _load(args, load_controller_config)
    if config is None:
        return 2
    logfmt.setup(args.log_level or config.log_level)
    return asyncio.run(serve(config, args.identity or default_identity()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spinelb", description=__doc__)
    parser.add_argument("--version", action="version", version=f"spinelb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    speaker = sub.add_parser("speaker", help="run the BGP speaker in the foreground")
    speaker.add_argument("--config", required=True, help="the speaker's YAML config file")
    speaker.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    speaker.set_defaults(func=_speaker)

    controller = sub.add_parser(
        "controller", help="assign pool addresses to LoadBalancer Services (leader-elected)"
    )
    controller.add_argument("--config", required=True, help="the YAML config file (with pools)")
    controller.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    controller.add_argument("--identity", help="the Lease holder name (default: host name-pid)")
    controller.set_defaults(func=_controller)

    sub.add_parser("status", help="show a running speaker's sessions and announcements",
                   add_help=False)
    sub.add_parser("check-config", help="validate a speaker or controller config file",
                   add_help=False)
    sub.add_parser("supervise", help="keep a command running behind a pid file (no systemd)",
                   add_help=False)
    sub.add_parser("k8s-snapshot", help="print the Services, Nodes and EndpointSlices as JSON",
                   add_help=False)

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "status":
        from spinelb.status import main as status_main

        return status_main(argv[1:])
    if argv and argv[0] == "check-config":
        from spinelb.status import check_main

        return check_main(argv[1:])
    if argv and argv[0] == "k8s-snapshot":
        from spinelb.k8s.snapshot import main as snapshot_main

        return snapshot_main(argv[1:])
    if argv and argv[0] == "supervise":
        from spinelb.supervise import main as supervise_main

        return supervise_main(argv[1:])
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
