# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""FRR's BGP configuration as data: parse ``show running-config``, diff it, mask secrets.

This is the device side of ``spinelb.fabric.spine_bgp`` for FRR.  It is plain
Python with no Ansible and no ``spinelb`` import, because it runs on the
target, which need not have the speaker package.

The parsed form (the module's ``before``/``after``/``parsed``) holds only what
the module may touch, each line as FRR prints it::

    {"prefix_lists": {NAME: ["ip prefix-list NAME seq 10 permit P ge 32 le 32"]},
     "route_maps": {NAME: {"route-map NAME permit 10": ["match ...", "set ..."]}},
     "bgp": {"router bgp ASN": {"lines": [...],             # not about one neighbor
                                "neighbors": {ADDR: [...]},
                                "address_families": {"address-family ipv4 unicast":
                                    {"lines": [...], "neighbors": {ADDR: [...]}}}}},
     "static_routes": {VRF: ["ip route P NEXTHOP", "ipv6 route P NEXTHOP"]},
     "bfd_profiles": {"spinelb": ["detect-multiplier 3", "receive-interval 300", ...]}}

``static_routes`` holds every static route, keyed by VRF (``default`` for the
global table, else the ``vrf NAME`` block it sits in).  A static route to a
pool address is drift (the address is BGP's on a spine), so the converging
states remove the ones :class:`Ownership` owns; every other static route is
read but never changed.

``bfd_profiles`` holds the ``bfd`` block's ``profile spinelb``, the one BFD
profile spinelb owns (its neighbors name it with ``neighbor X bfd profile
spinelb``); other profiles and ``peer`` entries are never read.  bfdd leaves a
timer at its default out of ``show running-config``, so the parsed profile
spells every timer out (:data:`BFD_PROFILE_DEFAULTS`), sorted: the rendered
profile and the one read back compare equal.

Everything else in the running configuration (interfaces, other daemons) is
ignored and never changed.  :func:`commands` turns two such documents into
the configuration lines that take the device from one to the other, touching
only objects the data names or, for ``overridden``, objects that spinelb owns
(see :class:`Ownership`).
"""

from __future__ import annotations

import copy
import ipaddress
import re

MASK = "<redacted>"
STATES_WITH_CHANGES = ("merged", "replaced", "overridden", "deleted")
#: The states that converge the spine, and so remove static routes to pool addresses.
STATES_REMOVING_STATIC_ROUTES = ("merged", "replaced", "overridden")
DEFAULT_VRF = "default"
_STATIC_ROUTE = ("ip route ", "ipv6 route ")
_SKIP = ("!", "exit", "exit-address-family", "exit-vrf", "end", "Building configuration...",
         "Current configuration:")
_PASSWORD = re.compile(r"^(neighbor \S+ password )\S+$")
BFD_PROFILE = "spinelb"
#: ``router bgp`` lines (not about one neighbor) that spinelb sets and so, under replaced and
#: overridden, also removes when the data no longer has them: graceful restart's stale-path
#: time (``spinelb_bgp.graceful_restart``).  Any other such line is only ever added.
OWNED_BGP_LINES = ("bgp graceful-restart stalepath-time ",)
#: bfdd's (FRR 8.4) value of each profile timer; a timer with it is not shown in the running
#: configuration.  A timer is changed by setting it: FRR 8.4 has no ``no receive-interval N``.
BFD_PROFILE_DEFAULTS = {"detect-multiplier": "3", "receive-interval": "300",
                        "transmit-interval": "300"}


def empty():
    """A parsed configuration with nothing in it."""
    return {"prefix_lists": {}, "route_maps": {}, "bgp": {}, "static_routes": {},
            "bfd_profiles": {}}


def _bfd_setting(line):
    """What a profile line sets: a timer's name, or the whole line for a flag (``shutdown``)."""
    word = line.split()[0]
    return word if word in BFD_PROFILE_DEFAULTS else line


def _bfd_profile(lines):
    """A profile's lines with every timer spelt out (bfdd omits defaults), sorted."""
    present = {_bfd_setting(line) for line in lines}
    defaults = [f"{timer} {value}" for timer, value in BFD_PROFILE_DEFAULTS.items()
                if timer not in present]
    return sorted(set(lines) | set(defaults))


def _bfd_profiles(body):
    """The owned profile of a ``bfd`` block's ``body`` (indented lines), if it has one."""
    profiles = {}
    current = None
    for raw in body:
        line = raw.strip()
        if not line or line in _SKIP:
            continue
        if not raw.startswith("  "):  # one space: a profile's or a peer's header
            current = None
            if line == f"profile {BFD_PROFILE}":
                current = profiles.setdefault(BFD_PROFILE, [])
        elif current is not None:
            current.append(line)
    return {name: _bfd_profile(lines) for name, lines in profiles.items()}


def _new_instance():
    return {"lines": [], "neighbors": {}, "address_families": {}}


def _add_line(block, line):
    """Put ``line`` into ``block``'s neighbor lines or general lines."""
    words = line.split()
    if len(words) >= 3 and words[0] == "neighbor":
        block["neighbors"].setdefault(words[1], []).append(line)
    else:
        block["lines"].append(line)


def _blocks(text):
    """Yield (header, [body lines with indentation]) for each top-level line of ``text``."""
    lines = [line.rstrip() for line in text.splitlines()]
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip() or line.startswith(" ") or line.strip() in _SKIP:
            continue
        body = []
        while index < len(lines) and (lines[index].startswith(" ") or lines[index] == "exit"):
            if lines[index] == "exit":
                index += 1
                break
            body.append(lines[index])
            index += 1
        yield line, body


def parse(text):
    """The BGP-related part of an FRR configuration ``text`` (running or intended)."""
    config = empty()
    for header, body in _blocks(text):
        if header.startswith("ip prefix-list "):
            config["prefix_lists"].setdefault(header.split()[2], []).append(header)
        elif header.startswith("route-map "):
            name = header.split()[1]
            entries = config["route_maps"].setdefault(name, {})
            entries[header] = [b.strip() for b in body if b.strip() and b.strip() not in _SKIP]
        elif header.startswith(_STATIC_ROUTE):
            config["static_routes"].setdefault(DEFAULT_VRF, []).append(header)
        elif header == "bfd":
            config["bfd_profiles"].update(_bfd_profiles(body))
        elif header.startswith("vrf ") and len(header.split()) == 2:
            routes = [b.strip() for b in body if b.strip().startswith(_STATIC_ROUTE)]
            if routes:
                config["static_routes"].setdefault(header.split()[1], []).extend(routes)
        elif header.startswith("router bgp "):
            instance = config["bgp"].setdefault(header, _new_instance())
            family = None
            for raw in body:
                line = raw.strip()
                if line == "exit-address-family":
                    family = None
                elif not line or line in _SKIP:
                    continue
                elif line.startswith("address-family "):
                    family = instance["address_families"].setdefault(
                        line, {"lines": [], "neighbors": {}})
                else:
                    _add_line(family if family is not None else instance, line)
    return config


def mask(config):
    """A copy of ``config`` with every BGP password replaced by ``<redacted>``."""
    masked = parse("")
    masked["prefix_lists"] = {k: list(v) for k, v in config["prefix_lists"].items()}
    masked["route_maps"] = {k: dict(v) for k, v in config["route_maps"].items()}
    for header, instance in config["bgp"].items():
        copy = _new_instance()
        copy["lines"] = list(instance["lines"])
        copy["neighbors"] = {
            address: [_PASSWORD.sub(r"\g<1>" + MASK, line) for line in lines]
            for address, lines in instance["neighbors"].items()
        }
        copy["address_families"] = {
            af: {"lines": list(fam["lines"]),
                 "neighbors": {a: list(ls) for a, ls in fam["neighbors"].items()}}
            for af, fam in instance["address_families"].items()
        }
        masked["bgp"][header] = copy
    masked["static_routes"] = {vrf: list(lines)
                               for vrf, lines in config.get("static_routes", {}).items()}
    masked["bfd_profiles"] = {name: list(lines)
                              for name, lines in config.get("bfd_profiles", {}).items()}
    return masked


def mask_line(line):
    """``line`` with a BGP password replaced by ``<redacted>`` (indentation kept)."""
    stripped = line.lstrip(" ")
    return line[:len(line) - len(stripped)] + _PASSWORD.sub(r"\g<1>" + MASK, stripped)


def unmask(text, password):
    """Put the real ``password`` where the intended ``text`` says ``<redacted>``."""
    if password is None:
        return text
    return re.sub(r"(neighbor \S+ password )" + re.escape(MASK), lambda m: m.group(1) + password,
                  text)


def to_text(config):
    """``config`` as FRR configuration text, in a stable order (for diffs and ``vtysh -f``)."""
    out = []
    for name in sorted(config["prefix_lists"]):
        out += config["prefix_lists"][name]
    for name in sorted(config["route_maps"]):
        for header, body in config["route_maps"][name].items():
            out += [header] + [" " + line for line in body] + ["exit"]
    for name, lines in sorted(config.get("bfd_profiles", {}).items()):
        out += _bfd_block(name, lines)
    for header, instance in config["bgp"].items():
        out.append(header)
        out += [" " + line for line in instance["lines"]]
        for lines in instance["neighbors"].values():
            out += [" " + line for line in lines]
        for af, family in instance["address_families"].items():
            out.append(" " + af)
            out += ["  " + line for line in family["lines"]]
            for lines in family["neighbors"].values():
                out += ["  " + line for line in lines]
            out.append(" exit-address-family")
        out.append("exit")
    out += static_routes_text(config.get("static_routes", {}))
    return "\n".join(out) + ("\n" if out else "")


def _bfd_block(name, lines):
    """``bfd`` with profile ``name`` setting ``lines`` (FRR keeps what a profile does not say)."""
    return ["bfd", f" profile {name}"] + ["  " + line for line in lines] + [" exit", "exit"]


def _bfd_profile_commands(have, want, state):
    """(lines before BGP, lines after BGP) for the owned BFD profile under ``state``.

    A profile is created or changed before the neighbors that name it, and removed
    after them: by ``deleted`` when the data names it, by ``overridden`` when it does
    not.  ``replaced`` and ``overridden`` also clear a flag the data does not set.
    """
    had, wanted = have.get("bfd_profiles", {}), want.get("bfd_profiles", {})
    if state == "deleted":
        return [], [line for name in wanted if name in had
                    for line in ("bfd", f" no profile {name}", "exit")]
    before, after = [], []
    for name, lines in wanted.items():
        old = had.get(name)
        if old is None:
            before += _bfd_block(name, lines)
            continue
        change = [line for line in lines if line not in old]
        if state in ("replaced", "overridden"):
            change += ["no " + line for line in old
                       if line not in lines and _bfd_setting(line) not in BFD_PROFILE_DEFAULTS]
        if change:
            before += _bfd_block(name, change)
    if state == "overridden":
        after += [line for name in sorted(had) if name not in wanted
                  for line in ("bfd", f" no profile {name}", "exit")]
    return before, after


def _neighbors_leaving_bfd(have, want, state):
    """The kept neighbors whose ``bfd profile spinelb`` ``state`` removes (replaced, overridden).

    A neighbor removed or re-created (new remote AS) is not one: its BGP session ends anyway.
    """
    if state not in ("replaced", "overridden"):
        return []
    leaving = []
    for header, instance in want["bgp"].items():
        had = have["bgp"].get(header)
        if had is None:
            continue
        for address, lines in instance["neighbors"].items():
            named = f"neighbor {address} bfd profile {BFD_PROFILE}"
            if (named in had["neighbors"].get(address, []) and named not in lines
                    and _remote_as(had, address) == _remote_as(instance, address)):
                leaving.append(address)
    return leaving


def _bfd_quiet_commands(have, want, state):
    """(lines before BGP, lines after BGP) that take BFD off neighbors without a BGP flap.

    Removing ``neighbor X bfd`` makes FRR 8.4's bfdd end the session with a Down, which the
    speaker (and any RFC 5882 peer) takes as a path failure and drops BGP.  So the owned
    profile is shut down first: bfdd sends AdminDown, which both its own bgpd and the speaker
    leave BGP alone for (RFC 5882 3.2); the neighbors' lines go next.  Afterwards the profile
    is as it was (``no shutdown``) unless :func:`_bfd_profile_commands` removes it.  Nothing
    when no kept neighbor loses the profile, or it is shut down already.
    """
    if not _neighbors_leaving_bfd(have, want, state):
        return [], []
    had = have.get("bfd_profiles", {}).get(BFD_PROFILE)
    wanted = want.get("bfd_profiles", {}).get(BFD_PROFILE)
    if had is None or "shutdown" in had or (wanted is not None and "shutdown" in wanted):
        return [], []
    removed = state == "overridden" and wanted is None
    return (_bfd_block(BFD_PROFILE, ["shutdown"]),
            [] if removed else _bfd_block(BFD_PROFILE, ["no shutdown"]))


def _vrf_order(vrf):
    """The default VRF first, then the others by name."""
    return (vrf != DEFAULT_VRF, vrf)


def static_routes_text(routes):
    """Static routes (per VRF) as FRR lines: the global ones, then one ``vrf`` block per VRF."""
    out = []
    for vrf in sorted(routes, key=_vrf_order):
        if not routes[vrf]:
            continue
        if vrf == DEFAULT_VRF:
            out += routes[vrf]
        else:
            out += [f"vrf {vrf}"] + [" " + line for line in routes[vrf]] + ["exit-vrf"]
    return out


class Ownership:
    """Which objects on the device spinelb owns, so ``overridden`` may remove them.

    ``prefix_lists`` and ``route_maps`` are regular expressions over names;
    a neighbor is owned when its description or inbound route-map matches
    ``neighbors`` or ``route_maps``.  Only neighbors inside BGP instances the
    data names are candidates.  ``pools`` are the site's pool CIDRs: a static
    route (any VRF) to a host route of an address inside one is spinelb's.
    """

    def __init__(self, prefix_lists="^$", route_maps="^$", neighbors="^$", pools=()):
        self.prefix_lists = re.compile(prefix_lists)
        self.route_maps = re.compile(route_maps)
        self.neighbors = re.compile(neighbors)
        self.pools = [ipaddress.ip_network(pool, strict=False) for pool in pools]

    @classmethod
    def from_owned(cls, owned):
        """From the module's ``owned`` option (as the action plugin fills it)."""
        owned = owned or {}
        return cls(owned.get("prefix_lists") or "^$", owned.get("route_maps") or "^$",
                   owned.get("neighbors") or "^$", owned.get("pools") or ())

    def owns_prefix(self, prefix):
        """Whether ``prefix`` (text) is a host route (/32, /128) of an address in a pool."""
        try:
            network = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            return False
        if network.prefixlen != network.max_prefixlen:
            return False
        return any(network.version == pool.version and network.network_address in pool
                   for pool in self.pools)

    def owns_static_route(self, line):
        """Whether the static route ``line`` (``ip route P ...``) goes to a pool address."""
        words = line.split()
        return (len(words) >= 3 and words[0] in ("ip", "ipv6") and words[1] == "route"
                and self.owns_prefix(words[2]))

    def owns_neighbor(self, address, instance):
        """Whether the neighbor ``address`` of BGP ``instance`` (parsed) is spinelb's."""
        for line in instance["neighbors"].get(address, []):
            words = line.split()
            if words[2] == "description" and self.neighbors.search(" ".join(words[3:])):
                return True
        for family in instance["address_families"].values():
            for line in family["neighbors"].get(address, []):
                words = line.split()
                if (words[2] == "route-map" and len(words) == 5 and words[4] == "in"
                        and self.route_maps.search(words[3])):
                    return True
        return False


def _neighbor_lines(instance, address):
    """Every line of neighbor ``address``: (address family or None, line)."""
    found = [(None, line) for line in instance["neighbors"].get(address, [])]
    for af, family in instance["address_families"].items():
        found += [(af, line) for line in family["neighbors"].get(address, [])]
    return found


def _remote_as(instance, address):
    for line in instance["neighbors"].get(address, []):
        words = line.split()
        if words[2] == "remote-as":
            return words[3]
    return None


def _without_implied(removals):
    """``removals`` less the lines another one takes along.

    ``no neighbor X bfd`` removes the neighbor's ``bfd profile P`` too; sending
    ``no neighbor X bfd profile P`` after it turns BFD back on (FRR 8.4, seen here).
    """
    bfd_off = {line + " " for line in removals
               if line.startswith("no neighbor ") and line.endswith(" bfd")
               and len(line.split()) == 4}
    return [line for line in removals if not line.startswith(tuple(bfd_off))]


def _bgp_commands(header, have, want, state, ownership):
    """Commands for one ``router bgp`` instance (``have`` may be None)."""
    have = have or _new_instance()
    addresses = list(want["neighbors"])
    for family in want["address_families"].values():
        addresses += [a for a in family["neighbors"] if a not in addresses]
    present = set(have["neighbors"])
    for family in have["address_families"].values():
        present |= set(family["neighbors"])

    removals = []  # whole neighbors, and lines outside any address family
    family_removals = {}  # address family -> lines
    if state == "deleted":
        removals = ["no neighbor " + a for a in addresses if a in present]
        return ([header] + [" " + c for c in removals] + ["exit"]) if removals else []
    if state == "overridden":
        removals += ["no neighbor " + address for address in sorted(present - set(addresses))
                     if ownership.owns_neighbor(address, have)]

    recreate = set()
    for address in addresses:
        if address not in present:
            continue
        if _remote_as(have, address) != _remote_as(want, address):
            removals.append("no neighbor " + address)
            recreate.add(address)
        elif state in ("replaced", "overridden"):
            wanted = set(_neighbor_lines(want, address))
            for af, line in _neighbor_lines(have, address):
                if (af, line) in wanted or line.startswith("no "):
                    continue
                if af is None:
                    removals.append("no " + line)
                else:
                    family_removals.setdefault(af, []).append("no " + line)
    if state in ("replaced", "overridden"):
        removals += ["no " + line for line in have["lines"]
                     if line.startswith(OWNED_BGP_LINES) and line not in want["lines"]]
    removals = _without_implied(removals)

    def missing(lines, have_lines, address=None):
        if address in recreate:
            return list(lines)
        return [line for line in lines if line not in have_lines]

    body = [" " + line for line in removals]
    for af, lines in family_removals.items():
        body += [" " + af] + ["  " + line for line in lines] + [" exit-address-family"]
    body += [" " + line for line in missing(want["lines"], have["lines"])]
    for address, lines in want["neighbors"].items():
        body += [" " + line for line in
                 missing(lines, have["neighbors"].get(address, []), address)]
    for af, family in want["address_families"].items():
        had = have["address_families"].get(af, {"lines": [], "neighbors": {}})
        lines = missing(family["lines"], had["lines"])
        for address, neighbor_lines in family["neighbors"].items():
            lines += missing(neighbor_lines, had["neighbors"].get(address, []), address)
        if lines:
            body += [" " + af] + ["  " + line for line in lines] + [" exit-address-family"]
    return ([header, *body, "exit"]) if body else []


def _stale_static_routes(have, want, state, ownership):
    """Per VRF, ``have``'s static routes that ``state`` removes: owned and not in ``want``."""
    if state not in STATES_REMOVING_STATIC_ROUTES:
        return {}
    stale = {}
    for vrf, lines in have.get("static_routes", {}).items():
        wanted = want.get("static_routes", {}).get(vrf, [])
        gone = [line for line in lines
                if ownership.owns_static_route(line) and line not in wanted]
        if gone:
            stale[vrf] = gone
    return stale


def static_route_commands(have, want, state, ownership):
    """The lines removing static routes to pool addresses (``no`` + FRR's own line).

    Empty unless ``state`` converges the spine (merged, replaced, overridden).
    A route of another VRF is removed inside its ``vrf NAME`` block.
    """
    stale = _stale_static_routes(have, want, state, ownership)
    return static_routes_text({vrf: ["no " + line for line in lines]
                               for vrf, lines in stale.items()})


def commands(have, want, state, ownership=None):
    """The configuration lines that take ``have`` to ``want`` under ``state`` (both parsed).

    merged adds what is missing; replaced also removes, inside each object the
    data names, what the data does not say; overridden also removes owned
    objects the data no longer names; deleted removes the objects the data names.
    merged, replaced and overridden also remove static routes to pool
    addresses (:func:`static_route_commands`).

    Order: entries replaced inside named prefix-lists and route-maps go first
    (FRR refuses a second entry with the same sequence), then new prefix-lists
    and route-maps, then BGP (which refers to them), then whole objects that
    are gone, once no neighbor refers to them, then the static routes.  When
    replaced or overridden takes ``bfd profile spinelb`` off kept neighbors,
    the profile is shut down before BGP and, unless removed, brought back
    after it (:func:`_bfd_quiet_commands`).
    """
    if state not in STATES_WITH_CHANGES:
        raise ValueError(f"state {state!r} computes no commands")
    ownership = ownership or Ownership()
    bgp = []
    for header, instance in want["bgp"].items():
        bgp += _bgp_commands(header, have["bgp"].get(header), instance, state, ownership)
    profiles, profiles_gone = _bfd_profile_commands(have, want, state)
    if state == "deleted":
        return (bgp
                + ["no route-map " + n for n in want["route_maps"] if n in have["route_maps"]]
                + ["no ip prefix-list " + n for n in want["prefix_lists"]
                   if n in have["prefix_lists"]]
                + profiles_gone)

    replacing = state in ("replaced", "overridden")
    first, adds, gone = [], [], []
    for name, lines in want["prefix_lists"].items():
        had = have["prefix_lists"].get(name, [])
        if replacing:
            first += ["no " + line for line in had if line not in lines]
        adds += [line for line in lines if line not in had]
    for name, entries in want["route_maps"].items():
        had = have["route_maps"].get(name, {})
        if replacing:
            first += ["no " + h for h in had if h not in entries]
        for header, body in entries.items():
            old = had.get(header)
            if old is None:
                adds += [header] + [" " + line for line in body] + ["exit"]
                continue
            change = [" no " + line for line in old if line not in body] if replacing else []
            change += [" " + line for line in body if line not in old]
            if change:
                adds += [header, *change, "exit"]
    if state == "overridden":
        gone += ["no route-map " + n for n in sorted(have["route_maps"])
                 if n not in want["route_maps"] and ownership.route_maps.search(n)]
        gone += ["no ip prefix-list " + n for n in sorted(have["prefix_lists"])
                 if n not in want["prefix_lists"] and ownership.prefix_lists.search(n)]
    quiet, restored = _bfd_quiet_commands(have, want, state)
    return (first + adds + profiles + quiet + bgp + gone + profiles_gone + restored
            + static_route_commands(have, want, state, ownership))


def changed_view(config, want, ownership, state):
    """The part of ``config`` a diff should show: what the data names, and for overridden what spinelb owns.

    Static routes to pool addresses are shown for the states that remove them.
    """
    view = empty()
    if state in STATES_REMOVING_STATIC_ROUTES:
        for vrf, lines in config.get("static_routes", {}).items():
            owned = [line for line in lines if ownership.owns_static_route(line)]
            if owned:
                view["static_routes"][vrf] = owned
    for name, lines in config["prefix_lists"].items():
        if name in want["prefix_lists"] or (state == "overridden"
                                            and ownership.prefix_lists.search(name)):
            view["prefix_lists"][name] = lines
    for name, entries in config["route_maps"].items():
        if name in want["route_maps"] or (state == "overridden"
                                          and ownership.route_maps.search(name)):
            view["route_maps"][name] = entries
    for header, instance in config["bgp"].items():
        if header in want["bgp"]:
            view["bgp"][header] = instance
    for name, lines in config.get("bfd_profiles", {}).items():
        if name in want.get("bfd_profiles", {}) or state == "overridden":  # all parsed are owned
            view["bfd_profiles"][name] = lines
    return view


def _union(old, new):
    return list(old) + [line for line in new if line not in old]


def _drop_neighbor(instance, address):
    instance["neighbors"].pop(address, None)
    for family in instance["address_families"].values():
        family["neighbors"].pop(address, None)


def predict(have, want, state, ownership):
    """What the device will hold after :func:`commands` (for check mode's diff).

    Lines that replace a value (``timers bgp``) show both old and new under
    merged; the real ``after`` is read back from the device outside check mode.
    """
    after = copy.deepcopy(have)
    after.setdefault("static_routes", {})
    for vrf, lines in _stale_static_routes(have, want, state, ownership).items():
        after["static_routes"][vrf] = [
            line for line in after["static_routes"][vrf] if line not in lines]
        if not after["static_routes"][vrf]:
            del after["static_routes"][vrf]
    replacing = state in ("replaced", "overridden")
    for header, instance in want["bgp"].items():
        addresses = set(instance["neighbors"])
        for family in instance["address_families"].values():
            addresses |= set(family["neighbors"])
        if state == "deleted":
            if header in after["bgp"]:
                for address in addresses:
                    _drop_neighbor(after["bgp"][header], address)
            continue
        had = after["bgp"].setdefault(header, _new_instance())
        if state == "overridden":
            for address in list(had["neighbors"]):
                if address not in addresses and ownership.owns_neighbor(address, had):
                    _drop_neighbor(had, address)
        if replacing:
            had["lines"] = [line for line in had["lines"]
                            if not line.startswith(OWNED_BGP_LINES) or line in instance["lines"]]
        had["lines"] = _union(had["lines"], instance["lines"])
        for address in addresses:
            if replacing or _remote_as(had, address) != _remote_as(instance, address):
                _drop_neighbor(had, address)
        for address, lines in instance["neighbors"].items():
            had["neighbors"][address] = _union(had["neighbors"].get(address, []), lines)
        for af, family in instance["address_families"].items():
            into = had["address_families"].setdefault(af, {"lines": [], "neighbors": {}})
            into["lines"] = _union(into["lines"], family["lines"])
            for address, lines in family["neighbors"].items():
                into["neighbors"][address] = _union(into["neighbors"].get(address, []), lines)
    _predict_bfd_profiles(after, want, state)
    for kind in ("route_maps", "prefix_lists"):
        pattern = ownership.route_maps if kind == "route_maps" else ownership.prefix_lists
        for name in list(after[kind]):
            if (state == "deleted" and name in want[kind]) or (
                    state == "overridden" and name not in want[kind] and pattern.search(name)):
                del after[kind][name]
        if state == "deleted":
            continue
        for name, value in want[kind].items():
            if replacing or name not in after[kind]:
                after[kind][name] = copy.deepcopy(value)
            elif kind == "prefix_lists":
                after[kind][name] = _union(after[kind][name], value)
            else:
                for header, body in value.items():
                    after[kind][name][header] = _union(after[kind][name].get(header, []), body)
    return after


def _predict_bfd_profiles(after, want, state):
    """Apply the profile part of :func:`commands` to ``after`` (a copy of the device's config)."""
    wanted = want.get("bfd_profiles", {})
    if not wanted and not after.get("bfd_profiles"):
        return
    profiles = after.setdefault("bfd_profiles", {})
    for name in list(profiles):
        named = name in wanted
        if (state == "deleted" and named) or (state == "overridden" and not named):
            del profiles[name]
    if state == "deleted":
        return
    for name, lines in wanted.items():
        if state in ("replaced", "overridden") or name not in profiles:
            profiles[name] = list(lines)
        else:  # merged: what the data sets replaces the same timer or flag
            settings = {_bfd_setting(line) for line in lines}
            kept = [line for line in profiles[name] if _bfd_setting(line) not in settings]
            profiles[name] = sorted(kept + list(lines))
