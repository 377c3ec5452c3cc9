"""A reflector: a local copy of one resource's objects, kept current by list and watch.

It lists, then watches from the list's resourceVersion, and keeps ``store``.
A watch that ends (the server's timeout) is resumed from the last
resourceVersion seen, bookmarks included, without listing again.  A 410 Gone
(history too old) or any failure (API unreachable, a broken stream) lists again
and reports only the difference against the store: objects whose
resourceVersion changed and keys that disappeared; never "everything was
deleted".  Failures retry with jittered exponential backoff (0.2 s doubling to
``backoff_max``), reset by a successful list.

:meth:`Reflector.relist` takes that same path on request (an operator's
resynchronisation): the open watch is dropped, the resource listed again, and
only the difference reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from spinelb.k8s.client import (
    ApiError,
    ApiUnavailable,
    Gone,
    Kube,
    Resource,
    object_key,
    resource_version,
)

log = logging.getLogger("spinelb.k8s.reflector")

Changes = dict[str, dict[str, Any] | None]

BACKOFF_START = 0.2
WATCH_TIMEOUT = 300  # seconds the server keeps one watch open


class Backoff:
    """Jittered exponential delays: start, doubling up to a ceiling; ``reset`` starts over."""

    def __init__(self, start: float = BACKOFF_START, ceiling: float = 30.0) -> None:
        self.start, self.ceiling = start, ceiling
        self._next = start

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.ceiling)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._next = self.start


class Reflector:
    """List, then watch from the list's resourceVersion; keep ``store``; report changes.

    ``on_change(changes)`` (key -> new object, or None when deleted) is called
    synchronously from the reflector's task, after ``store`` is updated: once
    per list with every difference (the first list always, even when empty;
    later lists only when something differs), and once per watch event.
    """

    def __init__(
        self,
        kube: Kube,
        resource: Resource,
        on_change: Callable[[Changes], None],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        backoff_max: float = 30.0,
        watch_timeout: int = WATCH_TIMEOUT,
    ) -> None:
        self.kube = kube
        self.resource = resource
        self.on_change = on_change
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout = watch_timeout
        self.store: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.connected = False
        self.last_error: str | None = None
        self.lists = 0  # successful lists so far (the first one and every re-list)
        self._backoff = Backoff(ceiling=backoff_max)
        self._relist_wanted = asyncio.Event()
        self._lists_started = 0  # numbers each list attempt, so relist() knows which one is new
        self._listed_number = 0  # the number of the last list that succeeded
        self._list_done = asyncio.Event()  # set (and replaced) when a list succeeds

    def __repr__(self) -> str:
        return f"Reflector({self.resource.plural}, {len(self.store)} objects, connected={self.connected})"

    async def run(self) -> None:
        """List and watch until cancelled."""
        loop = asyncio.get_running_loop()
        version: str | None = None  # where the next watch resumes; None: list first
        while True:
            try:
                if version is None or self._relist_wanted.is_set():
                    version = await self._list()
                started = loop.time()
                resumed = await self._watch(version)
                if resumed is None:
                    log.info("%s: listing again on request", self.resource.plural)
                    version = None
                    continue
                version, events = resumed
                log.debug("%s: watch ended at %s, resuming", self.resource.plural, version)
                if not events and loop.time() - started < 1.0:
                    await self._pause()  # a server ending watches at once
            except Gone:
                log.info(
                    "%s: resourceVersion %s expired, listing again", self.resource.plural, version
                )
                version = None
            except (ApiUnavailable, ApiError) as exc:
                self._failed(str(exc))
                version = None
                await self._pause()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a malformed object must not end the reflector
                log.exception("%s: unexpected failure", self.resource.plural)
                self._failed(f"{type(exc).__name__}: {exc}")
                version = None
                await self._pause()

    async def relist(self) -> None:
        """List again now, as after a 410 (only the difference is reported); return once listed.

        Waits for a list that started after this call; the caller bounds the
        wait (an unreachable API is retried with the usual backoff).
        """
        wanted = self._lists_started + 1
        self._relist_wanted.set()
        while self._listed_number < wanted:
            await self._list_done.wait()

    async def _watch(self, version: str) -> tuple[str, int] | None:
        """Watch from ``version`` until the stream ends: where to resume and how many events.

        None when :meth:`relist` asked for a list meanwhile (the watch is dropped).
        """
        stream = asyncio.ensure_future(self._follow(version))
        wanted = asyncio.ensure_future(self._relist_wanted.wait())
        try:
            await asyncio.wait((stream, wanted), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stream, wanted):
                task.cancel()
            await asyncio.gather(stream, wanted, return_exceptions=True)
        if stream.cancelled():
            return None
        return stream.result()

    async def _follow(self, version: str) -> tuple[str, int]:
        events = 0
        async for event in self.kube.watch(
            self.resource,
            resource_version=version,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout,
        ):
            version = self._apply(event) or version
            events += 1
        return version, events

    async def _pause(self) -> None:
        """The backoff delay before trying again; a :meth:`relist` request cuts it short."""
        with contextlib.suppress(TimeoutError):  # asyncio.timeout: never swallows a cancel
            async with asyncio.timeout(self._backoff.next()):
                await self._relist_wanted.wait()

    def _failed(self, error: str) -> None:
        if self.connected or self.last_error != error:
            log.warning("%s: %s; retrying", self.resource.plural, error)
        self.connected = False
        self.last_error = error

    async def _list(self) -> str:
        self._relist_wanted.clear()
        self._lists_started += 1
        number = self._lists_started
        items, version = await self.kube.list(
            self.resource,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        fresh = {object_key(obj): obj for obj in items}
        changes: Changes = {
            key: obj
            for key, obj in fresh.items()
            if key not in self.store or resource_version(self.store[key]) != resource_version(obj)
        }
        changes.update({key: None for key in self.store if key not in fresh})
        self.store = fresh
        self.connected = True
        self.last_error = None
        self.lists += 1
        self._backoff.reset()
        first = not self.synced.is_set()
        self.synced.set()
        if changes or first:
            self._report(changes)
        self._listed_number = number
        done, self._list_done = self._list_done, asyncio.Event()
        done.set()
        return version

    def _apply(self, event: Mapping[str, Any]) -> str | None:
        """Apply one watch event to the store; returns its resourceVersion."""
        self.connected = True
        kind = event.get("type")
        obj = event.get("object") or {}
        version = resource_version(obj) or None
        if kind == "BOOKMARK":
            return version
        key = object_key(obj)
        if kind in ("ADDED", "MODIFIED"):
            old = self.store.get(key)
            if old is not None and resource_version(old) == resource_version(obj):
                return version
            self.store[key] = obj
            self._report({key: obj})
        elif kind == "DELETED":
            if self.store.pop(key, None) is not None:
                self._report({key: None})
        else:
            log.warning("%s: ignoring watch event of type %r", self.resource.plural, kind)
        return version

    def _report(self, changes: Changes) -> None:
        try:
            self.on_change(changes)
        except Exception:
            log.exception("%s: on_change failed", self.resource.plural)
