"""``spinelb controller``: pool addresses for LoadBalancer Services, one active controller at a time.

    kube = await connect(config.kubernetes)
    await Controller(config, kube, identity).run()     # until cancelled

See :mod:`spinelb.controller.controller` for how it decides and writes.
"""

from __future__ import annotations

from .controller import Controller, Outcome, default_identity, serve
from .metrics import ControllerMetrics

__all__ = ["Controller", "ControllerMetrics", "Outcome", "default_identity", "serve"]
