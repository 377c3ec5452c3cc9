"""When two Services may hold the same address (MetalLB's sharing rule).

Both carry the same ``allow-shared-ip`` key, they have no (protocol, port) in
common, and, if either uses ``externalTrafficPolicy: Local``, both do and
select the same pods (a node announcing the address for one must have
endpoints of the other too).
"""

from __future__ import annotations

from spinelb.k8s.objects import ServiceInfo


def sharing_conflict(service: ServiceInfo, other: ServiceInfo) -> str | None:
    """Why ``service`` may not share an address with ``other``; None when it may."""
    if service.sharing_key is None or other.sharing_key is None:
        which = [s.key for s in (service, other) if s.sharing_key is None]
        return f"no allow-shared-ip annotation on {' and '.join(which)}"
    if service.sharing_key != other.sharing_key:
        return (
            f"different sharing key ({service.sharing_key!r} here, "
            f"{other.sharing_key!r} on {other.key})"
        )
    clash = sorted(service.ports & other.ports)
    if clash:
        spelled = ", ".join(f"{protocol}/{port}" for protocol, port in clash)
        return f"port clash: both use {spelled}"
    if service.local or other.local:
        if not (service.local and other.local):
            return "externalTrafficPolicy differs (Local on one, Cluster on the other)"
        if service.selector != other.selector:
            return "externalTrafficPolicy Local with different selectors"
    return None
