"""The Kubernetes API, as plain JSON dicts over the official client's asyncio flavour.

:class:`Kube` sends requests through ``kubernetes.aio``'s ``ApiClient`` (so the
kubeconfig, in-cluster service account, TLS and token handling are the
client's) and parses each response body once with :mod:`json`; no generated
model classes are built, which keeps a thousand Services cheap.

Errors: :class:`ApiUnavailable` when the server cannot be reached (refused,
reset, timed out), :class:`Gone` for a 410 (an expired watch resourceVersion),
:class:`ApiError` for any other failure status, with the Status's reason and
message.  No token or Authorization header ever reaches a log or an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import aiohttp
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config

if TYPE_CHECKING:
    from spinelb.config import KubernetesConfig

log = logging.getLogger("spinelb.k8s")

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=5)
WATCH_READ_SLACK = 10.0  # the client's read timeout exceeds the server's watch timeout by this

#: What a request raises when the server cannot be reached or the connection breaks.
CONNECTION_ERRORS = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    TimeoutError,
    OSError,
)

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


@dataclass(frozen=True)
class Resource:
    """One API resource: where it lives and what its objects are called."""

    group: str  # "" for core
    version: str
    plural: str
    namespaced: bool
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path: /api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]] (or /apis/GROUP/VERSION/...)."""
        parts = ["/api", self.version] if not self.group else ["/apis", self.group, self.version]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


SERVICES = Resource("", "v1", "services", True, "Service")
NODES = Resource("", "v1", "nodes", False, "Node")
EVENTS = Resource("", "v1", "events", True, "Event")
NAMESPACES = Resource("", "v1", "namespaces", False, "Namespace")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True, "EndpointSlice")
LEASES = Resource("coordination.k8s.io", "v1", "leases", True, "Lease")


class ApiError(Exception):
    """The API answered with a failure status (a meta/v1 Status when it sent one)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class Gone(ApiError):
    """410: the resourceVersion asked for is older than the server's history; list again."""


class ApiUnavailable(Exception):
    """The API server could not be reached, or the connection broke."""


def _failure(status: int, body: bytes) -> ApiError:
    reason, message = "", body.decode("utf-8", "replace")[:500]
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        reason = str(doc.get("reason", ""))
        message = str(doc.get("message", message))
        status = int(doc.get("code") or status)
    return Gone(status, reason, message) if status == 410 else ApiError(status, reason, message)


def object_key(obj: Mapping[str, Any]) -> str:
    """The store key of an object: "namespace/name", or "name" when cluster-scoped."""
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def resource_version(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))


async def connect(config: KubernetesConfig) -> Kube:
    """A :class:`Kube` for the config: its kubeconfig file (and context), else in-cluster."""
    # kubernetes.aio's config functions are unannotated: call them through Any.
    aio_config_any = cast(Any, aio_config)
    if config.kubeconfig is not None:
        api = await aio_config_any.new_client_from_config(
            config_file=str(config.kubeconfig), context=config.context, persist_config=False
        )
    else:
        configuration = aio_client.Configuration()
        aio_config_any.load_incluster_config(client_configuration=configuration)
        api = aio_client.ApiClient(configuration)
    return Kube(cast(aio_client.ApiClient, api))


class Kube:
    """A thin async facade over kubernetes.aio's ApiClient; plain dicts in and out."""

    def __init__(self, api: aio_client.ApiClient) -> None:
        self.api = api
        self.server = str(api.configuration.host)

    def __repr__(self) -> str:
        return f"Kube({self.server})"

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT,
    ) -> aiohttp.ClientResponse:
        """Send one request; return the (unread) 2xx response or raise the mapped error."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            serialized = await self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            _, url, header_params, data, _ = serialized
            rest = await self.api.call_api(
                method, url, header_params=header_params, body=data, _request_timeout=timeout
            )
        except CONNECTION_ERRORS as exc:
            raise ApiUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        response = cast(aiohttp.ClientResponse, rest.response)
        if response.status >= 300:
            try:
                payload = await response.read()
            except (aiohttp.ClientError, TimeoutError, OSError):
                payload = b""
            finally:
                response.release()
            raise _failure(response.status, payload)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._send(method, path, **kwargs)
        try:
            payload = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ApiUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        finally:
            response.release()
        doc = json.loads(payload) if payload else {}
        if not isinstance(doc, dict):
            raise ApiError(response.status, "BadResponse", f"{method} {path}: not a JSON object")
        return doc

    @staticmethod
    def _selectors(label_selector: str | None, field_selector: str | None) -> list[tuple[str, str]]:
        query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        return query

    async def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every matching object (kind and apiVersion filled in) and the list's resourceVersion."""
        doc = await self._json(
            "GET", resource.path(namespace), query=self._selectors(label_selector, field_selector)
        )
        items = doc.get("items") or []
        for item in items:
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.kind)
        return items, str(doc.get("metadata", {}).get("resourceVersion", ""))

    async def watch(
        self,
        resource: Resource,
        *,
        resource_version: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events after resource_version until the server ends the stream.

        Yields ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK, "object": {...}}``;
        raises :class:`Gone` on a 410 (HTTP or ERROR event), :class:`ApiError`
        on another ERROR event, :class:`ApiUnavailable` when the connection breaks.
        """
        query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
            *self._selectors(label_selector, field_selector),
        ]
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=5, sock_read=timeout_seconds + WATCH_READ_SLACK
        )
        path = resource.path(namespace)
        response = await self._send("GET", path, query=query, timeout=timeout)
        try:
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise _failure(int(status.get("code") or 500), json.dumps(status).encode())
                yield event
        except CONNECTION_ERRORS as exc:
            raise ApiUnavailable(f"watch {path}: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:
            raise ApiError(200, "BadResponse", f"watch {path}: undecodable event: {exc}") from None
        finally:
            response.close()

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return await self._json("GET", resource.path(namespace, name))

    async def create(
        self, resource: Resource, namespace: str | None, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        return await self._json("POST", resource.path(namespace), body=dict(body))

    async def replace(
        self, resource: Resource, namespace: str | None, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PUT: optimistic concurrency on the body's metadata.resourceVersion (409 when stale)."""
        return await self._json("PUT", resource.path(namespace, name), body=dict(body))

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        patch_type: str = "merge",
    ) -> dict[str, Any]:
        """PATCH the object; patch_type "merge" (RFC 7386), "strategic" or "json" (RFC 6902)."""
        return await self._json(
            "PATCH", resource.path(namespace, name), body=body, content_type=PATCH_TYPES[patch_type]
        )

    async def patch_status(
        self, resource: Resource, namespace: str | None, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """JSON merge patch of the status subresource (only status changes)."""
        return await self._json(
            "PATCH",
            resource.path(namespace, name, "status"),
            body=dict(body),
            content_type=PATCH_TYPES["merge"],
        )

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return await self._json("DELETE", resource.path(namespace, name))

    async def close(self) -> None:
        await cast(Any, self.api).close()  # unannotated in kubernetes.aio
