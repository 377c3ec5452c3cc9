"""Kubernetes Events on objects, so ``kubectl describe`` and ``kubectl get events`` show them.

Events are core/v1 Events in the object's namespace ("default" for a
cluster-scoped object, as client-go does).  A repeat of the same (object,
type, reason, message) within ten minutes PATCHes the earlier Event's count and
lastTimestamp instead of creating another, like client-go's event correlator.
Recording never raises: an Event that cannot be written is logged and dropped.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spinelb.k8s.client import EVENTS, ApiError, ApiUnavailable, Kube

log = logging.getLogger("spinelb.k8s.events")

REPEAT_WINDOW = 600.0  # seconds within which a repeat bumps the count
MESSAGE_LIMIT = 1024  # the API rejects longer Event messages
CACHE_LIMIT = 4096


@dataclass(slots=True)
class _Recorded:
    namespace: str
    name: str
    count: int
    at: float  # monotonic time of the last write


def _timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """core/v1 Events on an object (kubectl describe shows them); repeats bump count."""

    def __init__(self, kube: Kube, component: str, host: str) -> None:
        self.kube = kube
        self.component = component
        self.host = host
        self._recent: dict[tuple[str, ...], _Recorded] = {}
        self._sequence = 0

    def __repr__(self) -> str:
        return f"EventRecorder({self.component}@{self.host})"

    async def record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Record an Event of type_ ("Normal" or "Warning") on obj; never raises."""
        try:
            await self._record(obj, type_, reason, message[:MESSAGE_LIMIT])
        except asyncio.CancelledError:
            raise
        except (ApiError, ApiUnavailable) as exc:
            log.warning("event %s on %s not recorded: %s", reason, _describe(obj), exc)
        except Exception:
            log.exception("event %s on %s not recorded", reason, _describe(obj))

    async def _record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        key = (
            str(obj.get("kind", "")),
            namespace,
            str(meta.get("name", "")),
            str(meta.get("uid", "")),
            type_,
            reason,
            message,
        )
        now, clock = _timestamp(), time.monotonic()
        self._forget(clock)
        earlier = self._recent.get(key)
        if earlier is not None:
            try:
                await self.kube.patch(
                    EVENTS,
                    earlier.namespace,
                    earlier.name,
                    {"count": earlier.count + 1, "lastTimestamp": now},
                )
                earlier.count += 1
                earlier.at = clock
                return
            except ApiError as exc:
                if exc.status != 404:
                    raise
                del self._recent[key]  # the Event expired on the server: create a new one
        self._sequence += 1
        name = f"{meta.get('name', 'unknown')}.{time.time_ns():x}{self._sequence:x}"
        involved = {
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v is not None},
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": self.component,
            "reportingInstance": self.host,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self.kube.create(EVENTS, namespace, body)
        self._recent[key] = _Recorded(namespace, name, 1, clock)

    def _forget(self, clock: float) -> None:
        """Drop repeats older than the window; cap the cache (oldest first)."""
        stale = [k for k, r in self._recent.items() if clock - r.at > REPEAT_WINDOW]
        for k in stale:
            del self._recent[k]
        while len(self._recent) >= CACHE_LIMIT:
            del self._recent[next(iter(self._recent))]


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace")
    name = meta.get("name", "?")
    return (
        f"{obj.get('kind', 'object')} {namespace}/{name}"
        if namespace
        else f"{obj.get('kind', 'object')} {name}"
    )
