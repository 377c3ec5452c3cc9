"""One consistent read of what reconciliation needs from the API: Services, Nodes, EndpointSlices.

``spinelb k8s-snapshot --config FILE`` prints it as JSON, using the config's
``kubernetes`` section (a speaker's or the controller's file), so the check of
a site reads the cluster from a host that reaches its API, with the
credentials spinelb already has there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from spinelb.config import ConfigError, KubernetesConfig, load_controller_config
from spinelb.k8s.client import ENDPOINTSLICES, NODES, SERVICES, ApiError, ApiUnavailable, connect


async def snapshot(config: KubernetesConfig) -> dict[str, Any]:
    """Every Service, Node and EndpointSlice, as the API's JSON, with the list resourceVersions."""
    kube = await connect(config)
    try:
        result: dict[str, Any] = {}
        for key, resource in (("services", SERVICES), ("nodes", NODES),
                              ("endpointslices", ENDPOINTSLICES)):
            items, version = await kube.list(resource)
            result[key] = items
            result[f"{key}_resource_version"] = version
        result["load_balancer_class"] = config.load_balancer_class
        return result
    finally:
        await kube.close()


def main(argv: Sequence[str]) -> int:
    """``spinelb k8s-snapshot --config FILE``: exit 0 with JSON, 1 if the API fails, 2 on a bad file."""
    parser = argparse.ArgumentParser(
        prog="spinelb k8s-snapshot",
        description="Print the Services, Nodes and EndpointSlices reconciliation compares, as JSON.",
    )
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="a speaker's or the controller's config (its kubernetes section)")
    args = parser.parse_args(list(argv))
    try:
        config = load_controller_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        data = asyncio.run(snapshot(config.kubernetes))
    except (ApiError, ApiUnavailable) as exc:
        print(f"the Kubernetes API failed: {exc}", file=sys.stderr)
        return 1
    json.dump(data, sys.stdout)
    sys.stdout.write("\n")
    return 0
