"""Compare the desired state with what the speakers and the spines show: one verdict per address.

Every Service address gets the first verdict that applies, in the order of
:data:`~spinelb.reconcile.report.VERDICTS`; its evidence lists every finding,
so a person sees the cause (a speaker that is down) next to its effect (a
spine with fewer next hops).  Prefixes the spines or the speakers have and no
Service has are ``stale``.  Each finding brings the repair that fits it
(:mod:`spinelb.reconcile.repair`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any

from spinelb.bgp.wire import Prefix
from spinelb.deploy.documents import peer_name
from spinelb.k8s.objects import ServiceInfo, node_info, owned, service_info, slice_info
from spinelb.spine.model import Network, Pool, Site

from .desired import (
    DesiredAddress,
    carrying_vrf,
    delivery_hop,
    desired_addresses,
    eligible_hops,
    hop_names,
    host_pool,
    layer2_addresses,
    wanted_hops,
    worker_sessions,
)
from .layer2 import layer2_report
from .observations import SpineObservation
from .repair import (
    SPINES_PLAYBOOK,
    Action,
    assign,
    needs_person,
    resync_speaker,
    soft_clear,
    withdraw_static,
)
from .report import VERDICTS, PrefixReport, Report, SessionReport, SpineNextHops

#: The verdicts found by comparison, in the order they win (``ok`` when none applies).
_FOUND = ("not_announced", "leaked", "wrong_next_hop", "missing", "not_ecmp")


def compare(
    site: Site,
    *,
    services: Iterable[Mapping[str, Any]],
    nodes: Iterable[Mapping[str, Any]],
    slices: Iterable[Mapping[str, Any]],
    speakers: Mapping[str, Mapping[str, Any] | None],
    spines: Mapping[str, SpineObservation | None],
    load_balancer_class: str | None = None,
) -> Report:
    """The report for ``site`` from the API's objects, the speakers' ``/status`` and the spines.

    ``speakers`` maps a worker to its ``/status`` JSON (None or absent:
    unreachable); ``spines`` maps a spine to what was read off it (None or
    absent: not observed).
    """
    ours = [
        info
        for info in (service_info(obj) for obj in services)
        if owned(info, load_balancer_class)
    ]
    node_map = {info.name: info for info in (node_info(obj) for obj in nodes)}
    slice_list = [info for info in (slice_info(obj) for obj in slices) if info.service_key]
    desired = desired_addresses(site, ours, node_map, slice_list)
    view = _View.of(site, speakers, spines)

    prefixes = [_address_report(view, entry) for entry in desired.values()]
    prefixes += [
        layer2_report(site, entry, view.statuses, view.spines)
        for entry in layer2_addresses(site, ours, node_map, slice_list).values()
    ]
    prefixes += [_pending(site, service) for service in ours if not service.ingress]
    prefixes += _stale(view, {entry.prefix for entry in desired.values()})
    return Report(
        prefixes=tuple(prefixes),
        sessions=tuple(_sessions(site, spines)),
        unobserved_spines=tuple(name for name in site.spines if spines.get(name) is None),
        unreachable_speakers=tuple(name for name in site.workers if view.statuses[name] is None),
    )


@dataclass(frozen=True)
class _View:
    """The observations, indexed for the comparison."""

    site: Site
    statuses: dict[str, Mapping[str, Any] | None]
    entries: dict[str, dict[str, Mapping[str, Any]]]  # worker -> address -> /status services entry
    static: dict[str, dict[Prefix, list[str]]]  # worker -> static prefix -> peers
    spines: dict[str, SpineObservation]
    sessions: dict[str, tuple[str, Network]]  # worker session address -> (worker, network)
    spine_addresses: frozenset[str]
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        site: Site,
        speakers: Mapping[str, Mapping[str, Any] | None],
        spines: Mapping[str, SpineObservation | None],
    ) -> _View:
        statuses = {worker: speakers.get(worker) for worker in site.workers}
        entries: dict[str, dict[str, Mapping[str, Any]]] = {}
        static: dict[str, dict[Prefix, list[str]]] = {}
        for worker, status in statuses.items():
            entries[worker] = {
                str(entry.get("address")): entry
                for entry in (status or {}).get("services") or []
                if isinstance(entry, Mapping)
            }
            static[worker] = {}
            for entry in (status or {}).get("announced") or []:
                if isinstance(entry, Mapping) and (prefix := _prefix(entry.get("prefix"))):
                    static[worker][prefix] = [str(p) for p in entry.get("peers") or []]
        return cls(
            site=site,
            statuses=statuses,
            entries=entries,
            static=static,
            spines={name: obs for name, obs in spines.items() if obs is not None},
            sessions=worker_sessions(site),
            spine_addresses=frozenset(
                str(address) for spine in site.spines.values()
                for address in spine.addresses.values()
            ),
            names=hop_names(site),
        )

    def named(self, hops: Iterable[str]) -> str:
        """Next hops with the worker and network each belongs to, for evidence."""
        parts = [f"{hop} ({self.names[hop]})" if hop in self.names else hop for hop in hops]
        return ", ".join(parts) or "none"

    def announces(self, worker: str, prefix: Prefix) -> bool:
        """Whether ``worker``'s /status says it announces ``prefix`` (dynamic or static)."""
        entry = self.entries[worker].get(str(prefix.network_address))
        return bool(entry and entry.get("announced")) or prefix in self.static[worker]


@dataclass
class _Findings:
    """What the comparison of one address found, per verdict, and the repairs."""

    lines: dict[str, list[str]] = field(default_factory=lambda: {v: [] for v in VERDICTS})
    repairs: list[Action] = field(default_factory=list)

    def add(self, verdict: str, line: str, *repairs: Action) -> None:
        self.lines[verdict].append(line)
        self.repairs.extend(repairs)

    def verdict(self) -> str:
        return next((verdict for verdict in _FOUND if self.lines[verdict]), "ok")

    def evidence(self) -> tuple[str, ...]:
        return tuple(line for verdict in VERDICTS for line in self.lines[verdict])


def _address_report(view: _View, desired: DesiredAddress) -> PrefixReport:
    site, address = view.site, desired.address
    if desired.pool is None:
        return PrefixReport(
            address=str(address),
            verdict="outside_pools",
            services=desired.services,
            evidence=(f"{address} is in no pool of site {site.name}",),
            repairs=(needs_person(
                f"{address} ({', '.join(desired.services)}) is in no pool: correct the Service's "
                "loadBalancerIP or status; the controller never assigns it"
            ),),
        )
    pool = desired.pool
    findings = _Findings()
    extra = _check_speakers(view, desired, pool, findings)
    spines: dict[str, SpineNextHops] = {}
    vrf = carrying_vrf(site, pool)
    want = wanted_hops(site, desired)
    for name, spine in site.spines.items():
        vrfs = None if spine.collapse_vrfs else {vrf}
        obs = view.spines.get(name)
        if obs is None:
            spines[name] = SpineNextHops((), want, vrf if vrfs else None)
            findings.lines["ok"].append(f"{name}: not observed")
            continue
        have = obs.installed(desired.prefix, vrfs)
        spines[name] = SpineNextHops(have, want, vrf if vrfs else None)
        _check_spine(view, desired, pool, name, obs, have, want, extra, findings)
    return PrefixReport(
        address=str(address),
        verdict=findings.verdict(),
        pool=pool.name,
        services=desired.services,
        workers=desired.announcers,
        spines=spines,
        evidence=findings.evidence(),
        repairs=tuple(findings.repairs),
    )


def _check_speakers(
    view: _View, desired: DesiredAddress, pool: Pool, findings: _Findings
) -> set[str]:
    """Compare each speaker's /status with its decision; return the workers announcing wrongly."""
    site, address = view.site, desired.address
    peering = site.networks[pool.peering]
    wanted_peers = {peer_name(spine, peering) for spine in site.spines.values()}
    extra: set[str] = set()
    if not desired.announcers:
        reasons = "; ".join(f"{w}: {d.reason}" for w, d in desired.decisions.items())
        findings.add(
            "not_announced",
            f"no worker may announce it ({reasons})",
            needs_person(f"no worker may announce {address}: see its Services' endpoints "
                         "and the Nodes"),
        )
    for worker, decision in desired.decisions.items():
        status = view.statuses[worker]
        should = decision.announce
        if status is None:
            if should:
                findings.add(
                    "not_announced",
                    f"{worker}: speaker unreachable; it should announce ({decision.reason})",
                    needs_person(f"the speaker on {worker} does not answer: start it "
                                 "(playbooks/reconcile.yml starts a stopped one)"),
                )
            continue
        entry = view.entries[worker].get(str(address))
        announced = bool(entry and entry.get("announced"))
        resync = resync_speaker(worker, f"its /status disagrees with its decision for {address}")
        if should and entry is None:
            findings.add("not_announced", f"{worker}: its /status does not know {address}",
                         resync)
        elif should and not announced:
            assert entry is not None
            findings.add(
                "not_announced",
                f"{worker}: /status says not announced ({entry.get('reason')}); "
                f"it should be ({decision.reason})",
                resync,
            )
        elif should:
            assert entry is not None
            lacking = sorted(wanted_peers - {str(p) for p in entry.get("peers") or []})
            if lacking:
                findings.add("not_announced",
                             f"{worker}: not announced to {', '.join(lacking)}", resync)
        elif announced:
            extra.add(worker)
            findings.lines["ok"].append(
                f"{worker}: announces it, but should not ({decision.reason})"
            )
            findings.repairs.append(resync)
    return extra


def _check_spine(
    view: _View,
    desired: DesiredAddress,
    pool: Pool,
    spine: str,
    obs: SpineObservation,
    have: tuple[str, ...],
    want: tuple[str, ...],
    extra: set[str],
    findings: _Findings,
) -> None:
    site, prefix = view.site, desired.prefix
    drift = needs_person(f"{spine}: its configuration differs from the site's: {SPINES_PLAYBOOK}")

    for neighbor in obs.received_from(prefix):
        session = view.sessions.get(neighbor)
        if session is None and neighbor in view.spine_addresses:
            continue  # the other spine, over iBGP
        if session is None:
            findings.add("leaked", f"{spine}: received from {neighbor}, no worker session of "
                         "the site", drift)
        elif session[1].name != pool.peering:
            worker, network = session
            findings.add(
                "leaked",
                f"{spine}: received from {worker}-{network.name} ({neighbor}), a "
                f"{network.name} session; pool {pool.name} is carried by {pool.peering} "
                "sessions only",
                drift,
                # once the route-map is right again, apply it to what the session holds now
                soft_clear(spine, neighbor, f"re-apply the route-map of {worker}-{network.name}"),
            )
    vrf = carrying_vrf(site, pool)
    if not site.spines[spine].collapse_vrfs:
        elsewhere = [other for other in obs.vrfs_with(prefix) if other != vrf]
        if elsewhere:
            findings.add("leaked", f"{spine}: installed in VRF {', '.join(elsewhere)}; pool "
                         f"{pool.name} belongs in VRF {vrf}", drift)

    eligible = eligible_hops(site, desired)
    extra_hops = {delivery_hop(site, pool, worker) for worker in extra}
    wrong = [hop for hop in have if hop not in eligible]
    if wrong:
        # a worker's own session address as next hop: its route-map did not rewrite it; once
        # the route-map is right again, a soft clear applies it to what the session holds
        rewrites = [
            soft_clear(spine, hop, f"re-apply the route-map of {worker}-{network.name}")
            for hop in wrong
            if hop not in extra_hops and (session := view.sessions.get(hop)) is not None
            for worker, network in [session]
        ]
        findings.add(
            "wrong_next_hop",
            f"{spine}: next hops {view.named(wrong)} are not among the eligible "
            f"{view.named(eligible)}",
            *([drift] if set(wrong) - extra_hops else []),
            *rewrites,
        )
    elif desired.single_path is not None and len(have) == 1 and have != want:
        findings.add(
            "wrong_next_hop",
            f"{spine}: single-path next hop {view.named(have)}, want {view.named(want)} (the "
            f"first announcing worker of {', '.join(desired.single_path.workers)})",
            drift,
        )
    elif want and not have:
        findings.add("missing", f"{spine}: not installed (want {view.named(want)})")
        for worker in desired.announcers:
            _diagnose_session(view, pool, spine, obs, worker, prefix, "missing", findings)
    elif desired.single_path is not None and len(have) > 1:
        findings.add(
            "not_ecmp",
            f"{spine}: {len(have)} next hops {view.named(have)} for a single-path prefix; "
            f"want {view.named(want)} only",
            drift,
        )
    elif desired.single_path is None and set(want) - set(have):
        lacking = [hop for hop in want if hop not in have]
        findings.add("not_ecmp", f"{spine}: {len(have)} of {len(want)} next hops; lacks "
                     f"{view.named(lacking)}")
        for worker in desired.announcers:
            if delivery_hop(site, pool, worker) in lacking:
                _diagnose_session(view, pool, spine, obs, worker, prefix, "not_ecmp", findings)


def _diagnose_session(
    view: _View,
    pool: Pool,
    spine: str,
    obs: SpineObservation,
    worker: str,
    prefix: Prefix,
    verdict: str,
    findings: _Findings,
) -> None:
    """Why ``spine`` lacks ``worker``'s path: no neighbor, a session down, policy, or stale table."""
    network = pool.peering
    neighbor = str(view.site.workers[worker].addresses[network])
    who = f"{worker}-{network} ({neighbor})"
    # a reachable speaker connects again at once when asked to resynchronise (no backoff)
    reconnect = ([] if view.statuses[worker] is None else
                 [resync_speaker(worker, f"connect to {spine} now, not after its backoff")])
    if neighbor not in obs.sessions:
        findings.add(verdict, f"{spine}: no neighbor {who} configured",
                     needs_person(f"{spine}: neighbor {who} is missing: {SPINES_PLAYBOOK}"),
                     *reconnect)
    elif not obs.established(neighbor):
        state = obs.sessions[neighbor][0]
        check = needs_person(f"{spine}: session with {who} is {state}: check both ends")
        findings.add(verdict, f"{spine}: session with {who} is {state}",
                     *([check, *reconnect] if reconnect else []))
    elif prefix in obs.rejected.get(neighbor, ()):
        findings.add(verdict, f"{spine}: received from {who} but refused by its route-map",
                     needs_person(f"{spine}: route-map drift: {SPINES_PLAYBOOK}"))
    elif prefix in obs.received.get(neighbor, ()):
        findings.add(verdict, f"{spine}: received from {who} but not installed",
                     soft_clear(spine, neighbor, f"a stale table: refresh {who}"))
    else:
        findings.add(verdict, f"{spine}: not received from {who}",
                     soft_clear(spine, neighbor, f"ask {who} to resend its routes"))


def _pending(site: Site, service: ServiceInfo) -> PrefixReport:
    """A Service spinelb serves that has no address yet, and what can be told of why."""
    evidence = ["no address in status"]
    if service.pool is not None and service.pool not in site.pools:
        evidence.append(f"asks for pool {service.pool}, which site {site.name} does not have")
    for address in service.requested:
        pool = host_pool(site, address)
        if pool is None:
            evidence.append(f"requests {address}, which is in no pool")
        elif service.pool is not None and pool.name != service.pool:
            evidence.append(f"requests {address} of pool {pool.name} but names pool "
                            f"{service.pool}")
    evidence += service.problems
    return PrefixReport(
        address=service.key,
        verdict="pending",
        pool=service.pool,
        services=(service.key,),
        evidence=tuple(evidence),
        repairs=(assign(service.key, "no address in status: ask the controller to assign one"),),
    )


def _stale(view: _View, known: set[Prefix]) -> list[PrefixReport]:
    """Prefixes a speaker announces or a spine has, within the pools, that no Service has."""
    site = view.site
    found: dict[Prefix, _Findings] = {}

    def finding(prefix: Prefix) -> _Findings:
        return found.setdefault(prefix, _Findings())

    for worker in site.workers:
        for text, entry in view.entries[worker].items():
            prefix = _prefix(text)
            if prefix is not None and prefix not in known and entry.get("announced"):
                finding(prefix).add(
                    "stale",
                    f"{worker}: its speaker announces it for "
                    f"{', '.join(entry.get('services') or []) or 'no Service'}",
                    resync_speaker(worker, f"it announces {text}, which no Service has"),
                )
        for prefix, peers in view.static[worker].items():
            if prefix not in known and _in_pools(site, prefix):
                finding(prefix).add(
                    "stale",
                    f"{worker}: a static announcement to {', '.join(peers) or 'no peer'}",
                    withdraw_static(worker, str(prefix), "a pool's address no Service has"),
                    needs_person(f"{worker}: remove {prefix} from the speaker's static "
                                 "announcements (speaker_announce) and run playbooks/site.yml, "
                                 "or it returns when the speaker's config is next loaded"),
                )
    for spine, obs in view.spines.items():
        candidates = {
            prefix
            for table in obs.routes.values()
            for prefix in table
            if prefix.prefixlen == prefix.max_prefixlen and _in_pools(site, prefix)
        }
        candidates |= {
            prefix
            for neighbor, paths in obs.received.items()
            if neighbor in view.sessions
            for prefix in paths
        }
        for prefix in sorted(candidates - known, key=_order):
            _stale_on_spine(view, spine, obs, prefix, finding(prefix))
    return [
        PrefixReport(
            address=_text(prefix),
            verdict="leaked" if findings.lines["leaked"] else "stale",
            pool=(pool.name if (pool := _pool(site, prefix)) else None),
            evidence=findings.evidence(),
            repairs=tuple(findings.repairs),
        )
        for prefix, findings in sorted(found.items(), key=lambda item: _order(item[0]))
    ]


def _stale_on_spine(
    view: _View, spine: str, obs: SpineObservation, prefix: Prefix, findings: _Findings
) -> None:
    from_workers = [n for n in obs.received_from(prefix) if n in view.sessions]
    from_spines = [n for n in obs.received_from(prefix) if n in view.spine_addresses]
    have = obs.installed(prefix, None)
    pool = _pool(view.site, prefix)
    for neighbor in from_workers:
        worker, network = view.sessions[neighbor]
        who = f"{worker}-{network.name} ({neighbor})"
        if pool is not None and network.name != pool.peering:
            # accepted on a session that must refuse the pool, Service or not: a leak
            findings.add(
                "leaked",
                f"{spine}: received from {who}, a {network.name} session; pool {pool.name} "
                f"is carried by {pool.peering} sessions only",
                needs_person(f"{spine}: its configuration differs from the site's: "
                             f"{SPINES_PLAYBOOK}"),
                soft_clear(spine, neighbor, f"re-apply the route-map of {worker}-{network.name}"),
            )
        elif view.statuses[worker] is not None and view.announces(worker, prefix):
            findings.add("stale", f"{spine}: received from {who}, which announces it")
        else:
            findings.add("stale", f"{spine}: received from {who}, which does not announce it",
                         soft_clear(spine, neighbor, f"a stale path from {who}"))
    if from_workers:
        return
    if from_spines:
        findings.add("stale", f"{spine}: learned over iBGP from {', '.join(from_spines)}")
    elif have:
        findings.add(
            "stale",
            f"{spine}: installed via {view.named(have)} and received from no BGP neighbor "
            "(a static route)",
            needs_person(f"{spine}: remove the static route to {prefix}, which no Service "
                         "has: run playbooks/spines.yml (spinelb owns static routes to pool "
                         "addresses) or delete it by hand"),
        )


def _sessions(site: Site, spines: Mapping[str, SpineObservation | None]) -> list[SessionReport]:
    """Every session each spine should have (its intent's neighbors) and its state."""
    reports: list[SessionReport] = []
    for name in site.spines:
        obs = spines.get(name)
        for instance in site.intent(name).instances:
            for neighbor in instance.neighbors:
                address = str(neighbor.address)
                state: tuple[str, float | None]
                if obs is None:
                    state = ("unobserved", None)
                else:
                    found = obs.sessions.get(address)
                    state = ("absent", None) if found is None else (found[0].lower(), found[1])
                reports.append(SessionReport(name, neighbor.description, address,
                                             instance.vrf, *state))
    return reports


def _prefix(value: object) -> Prefix | None:
    if not isinstance(value, str):
        return None
    try:
        return ip_network(value, strict=False)
    except ValueError:
        return None


def _pool(site: Site, prefix: Prefix) -> Pool | None:
    if prefix.prefixlen != prefix.max_prefixlen:
        return None
    return host_pool(site, prefix.network_address)


def _in_pools(site: Site, prefix: Prefix) -> bool:
    return _pool(site, prefix) is not None


def _text(prefix: Prefix) -> str:
    """A host route as its address, any other prefix as itself."""
    if prefix.prefixlen == prefix.max_prefixlen:
        return str(prefix.network_address)
    return str(prefix)


def _order(prefix: Prefix) -> tuple[int, int, int]:
    return (prefix.version, int(prefix.network_address), prefix.prefixlen)

