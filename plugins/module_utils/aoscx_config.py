# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AOS-CX's BGP configuration as data, in the parsed form of ``frr_config``, and the candidate.

AOS-CX's CLI differs from FRR's in shape only: four-space indentation,
``route-map NAME permit seq N``, ``password plaintext|ciphertext SECRET``, and
VRFs as ``vrf NAME`` sections inside ``router bgp ASN``.  :func:`parse` reads
AOS-CX text into ``frr_config``'s parsed form, each VRF section as its own
instance keyed ``router bgp ASN vrf NAME`` (FRR's own spelling), so the diff,
ownership and prediction of ``frr_config`` apply unchanged.  Static routes are
top-level lines with the VRF as a suffix (``ip route P NEXTHOP vrf NAME``);
they are kept verbatim, keyed by that VRF.

AOS-CX is pushed a whole configuration (REST dry-run, checkpoint, write), so
:func:`candidate` builds the full text: the running configuration with its
prefix-lists, route-maps and ``router bgp`` replaced by the predicted result;
every other line is kept as the switch printed it.  Plain Python, no Ansible.

BFD adds two keys to the parsed form::

    {"bfd": ["bfd"],                                  # BFD enabled on the switch, or []
     "bfd_interfaces": {"interface vlan 6": ["bfd min-transmit-interval 500", ...]}}

AOS-CX has BFD timers per interface only, so spinelb sets the three of
:data:`BFD_TIMERS` on each peering network's SVI.  An SVI keeps every other
line (addresses, ``active-gateway``, OSPF): only those three settings are
read and rewritten, and the SVI itself is never created (CANU configures the
SVIs; :func:`missing_svis` names the ones the intent needs and the switch
lacks).  A timer at AOS-CX's default (:data:`BFD_TIMER_DEFAULTS`) is the
absence of its line, in the running config and in the parsed form alike, so
a switch that does not print default values reads back equal to the intent.
The global ``bfd`` is spinelb's only while nothing else on the switch uses
BFD: turning spinelb's BFD off removes it only then (:func:`predict_bfd`).
"""

from __future__ import annotations

import re

from ansible_collections.spinelb.fabric.plugins.module_utils import frr_config

MASK = frr_config.MASK
INDENT = "    "
_ROUTE_MAP_INDENT = "     "
_SKIP = ("!", "exit", "exit-address-family", "end")
_PASSWORD = re.compile(r"^(neighbor \S+ password (?:plaintext |ciphertext )?)\S+$")
_VRF_HEADER = re.compile(r"^(router bgp \S+) vrf (\S+)$")
_STATIC_ROUTE = ("ip route ", "ipv6 route ")
BFD_ENABLE = "bfd"
#: The per-interface BFD timers spinelb sets on a peering network's SVI, in the renderer's order.
BFD_TIMERS = ("bfd min-transmit-interval", "bfd min-receive-interval", "bfd detect-multiplier")
#: AOS-CX 10.x's value of each timer when the interface sets none (the command reference's
#: defaults for the transmit interval and the multiplier; the receive interval's is assumed
#: equal to the transmit one).  ``no bfd min-transmit-interval`` returns a timer to it.
BFD_TIMER_DEFAULTS = {"bfd min-transmit-interval": "3000", "bfd min-receive-interval": "3000",
                      "bfd detect-multiplier": "5"}
_SVI = re.compile(r"^interface vlan (\d+)$")
_BFD_WORD = re.compile(r"(^|\s)bfd(\s|$)")


def static_route_vrf(line):
    """The VRF of an AOS-CX static route line (its ``vrf NAME`` suffix, else the default)."""
    words = line.split()
    if len(words) >= 5 and words[-2] == "vrf":
        return words[-1]
    return frr_config.DEFAULT_VRF


def _owned_block(header):
    """Whether a top-level block is BGP-related (parsed, and rewritten by :func:`candidate`)."""
    return header.startswith(("ip prefix-list ", "ipv6 prefix-list ", "route-map ",
                              "router bgp "))


def _blocks(text):
    """Yield (header, [indented body lines]) for each top-level line of ``text``."""
    lines = [line.rstrip() for line in text.splitlines()]
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip() or line.startswith(" "):
            continue
        body = []
        while index < len(lines) and lines[index].startswith(" "):
            body.append(lines[index])
            index += 1
        yield line, body


def svi_header(vlan):
    """The header of VLAN ``vlan``'s SVI block, as AOS-CX prints it (``interface vlan 6``)."""
    return f"interface vlan {vlan}"


def _timer(line):
    """The timer a line of an interface sets (one of :data:`BFD_TIMERS`), else None."""
    words = line.split()
    setting = " ".join(words[:2])
    return setting if len(words) == 3 and setting in BFD_TIMERS else None


def _timers(lines):
    """The timer lines among ``lines``, less those at the default value, in :data:`BFD_TIMERS` order."""
    found = {}
    for line in lines:
        setting = _timer(line.strip())
        if setting is not None:
            found[setting] = line.strip()
    return [found[s] for s in BFD_TIMERS
            if s in found and found[s].split()[2] != BFD_TIMER_DEFAULTS[s]]


def svis(text):
    """The SVI headers (``interface vlan N``) of a configuration ``text``."""
    return {header for header, _body in _blocks(text) if _SVI.match(header)}


def missing_svis(running, want):
    """The VLANs whose SVI the intent ``want`` sets BFD timers on and ``running`` lacks."""
    present = svis(running)
    return [int(_SVI.match(h).group(1)) for h in want.get("bfd_interfaces", {})
            if h not in present]


def parse(text):
    """The BGP-related part of an AOS-CX configuration ``text``, in ``frr_config``'s form.

    With the BFD keys: ``bfd`` and, per SVI that has one, its BFD timers.
    """
    config = frr_config.empty()
    config.update(bfd=[], bfd_interfaces={})
    for header, body in _blocks(text):
        if header.strip() in _SKIP:
            continue
        if header == BFD_ENABLE:
            config["bfd"] = [BFD_ENABLE]
        elif _SVI.match(header):
            if any(_timer(line.strip()) for line in body):
                config["bfd_interfaces"][header] = _timers(body)
        elif header.startswith("ip prefix-list "):
            config["prefix_lists"].setdefault(header.split()[2], []).append(header)
        elif header.startswith(_STATIC_ROUTE):
            config["static_routes"].setdefault(static_route_vrf(header), []).append(header)
        elif header.startswith("route-map "):
            entries = config["route_maps"].setdefault(header.split()[1], {})
            entries[header] = [b.strip() for b in body if b.strip() and b.strip() not in _SKIP]
        elif header.startswith("router bgp "):
            instance = config["bgp"].setdefault(header, frr_config._new_instance())
            current, family = instance, None
            for raw in body:
                line = raw.strip()
                if not line or line in ("!", "exit"):
                    continue
                if line == "exit-address-family":
                    family = None
                elif line.startswith("vrf ") and len(line.split()) == 2:
                    current = config["bgp"].setdefault(f"{header} {line}",
                                                       frr_config._new_instance())
                    family = None
                elif line.startswith("address-family "):
                    family = current["address_families"].setdefault(
                        line, {"lines": [], "neighbors": {}})
                else:
                    frr_config._add_line(family if family is not None else current, line)
    return config


def mask_line(line):
    """``line`` with a BGP password replaced by ``<redacted>`` (indentation kept)."""
    stripped = line.lstrip(" ")
    return line[:len(line) - len(stripped)] + _PASSWORD.sub(r"\g<1>" + MASK, stripped)


def mask(config):
    """A copy of ``config`` with every BGP password replaced by ``<redacted>``."""
    masked = frr_config.mask(config)
    masked["bfd"] = list(config.get("bfd", []))
    masked["bfd_interfaces"] = {header: list(lines)
                                for header, lines in config.get("bfd_interfaces", {}).items()}
    for instance in masked["bgp"].values():
        instance["neighbors"] = {address: [mask_line(line) for line in lines]
                                 for address, lines in instance["neighbors"].items()}
    return masked


def unmask(text, password):
    """Put the real ``password`` where the intended ``text`` says ``<redacted>``."""
    if password is None:
        return text
    return re.sub(r"(neighbor \S+ password (?:plaintext )?)" + re.escape(MASK),
                  lambda m: m.group(1) + password, text)


def _instance_text(instance, indent):
    out = [indent + line for line in instance["lines"]]
    for lines in instance["neighbors"].values():
        out += [indent + line for line in lines]
    for af, family in instance["address_families"].items():
        out.append(indent + af)
        out += [indent + INDENT + line for line in family["lines"]]
        for lines in family["neighbors"].values():
            out += [indent + INDENT + line for line in lines]
        out.append(indent + "exit-address-family")
    return out


def to_text(config):
    """``config`` as AOS-CX CLI text, in the renderer's order and indentation; static routes last."""
    out = list(config.get("bfd", []))
    for header, lines in config.get("bfd_interfaces", {}).items():
        out += [header] + [INDENT + line for line in lines]
    out += _bgp_lines(config)
    for vrf in sorted(config.get("static_routes", {}), key=frr_config._vrf_order):
        out += config["static_routes"][vrf]
    return "\n".join(out) + ("\n" if out else "")


def _bgp_lines(config):
    """The prefix-lists, route-maps and ``router bgp`` of ``config`` as AOS-CX lines."""
    out = []
    for name in sorted(config["prefix_lists"]):
        out += config["prefix_lists"][name]
    for name in sorted(config["route_maps"]):
        for header, body in config["route_maps"][name].items():
            out += [header] + [_ROUTE_MAP_INDENT + line for line in body]
    vrfs = {}
    for header, instance in config["bgp"].items():
        match = _VRF_HEADER.match(header)
        if match:
            vrfs.setdefault(match.group(1), []).append((match.group(2), instance))
    for header, instance in config["bgp"].items():
        if _VRF_HEADER.match(header):
            continue
        out.append(header)
        out += _instance_text(instance, INDENT)
        for vrf, vrf_instance in vrfs.pop(header, []):
            out.append(f"{INDENT}vrf {vrf}")
            out += _instance_text(vrf_instance, INDENT * 2)
    for header, members in vrfs.items():  # VRF sections whose default instance is empty
        out.append(header)
        for vrf, vrf_instance in members:
            out.append(f"{INDENT}vrf {vrf}")
            out += _instance_text(vrf_instance, INDENT * 2)
    return out


def commands_text(lines):
    """``frr_config.commands`` output in AOS-CX's shape: VRF instances as ``vrf`` sections.

    FRR's ``vrf NAME`` blocks around static routes go: an AOS-CX static route line
    carries its VRF itself.
    """
    out = []
    in_vrf = in_static_vrf = False
    for line in lines:
        match = _VRF_HEADER.match(line)
        if line.startswith("vrf ") or line == "exit-vrf":
            in_static_vrf = line != "exit-vrf"
        elif in_static_vrf:
            out.append(line.strip())
        elif match:
            out += [match.group(1), f"{INDENT}vrf {match.group(2)}"]
            in_vrf = True
        elif line == "exit":
            in_vrf = False
            out.append(line)
        elif line.startswith(" "):
            depth = (len(line) - len(line.lstrip(" "))) + (1 if in_vrf else 0)
            out.append(INDENT * depth + line.strip())
        else:
            out.append(line)
    return [mask_line(line) for line in out]


def _svi_body(body, timers):
    """An SVI's ``body`` with its BFD timers set to ``timers``; every other line kept in place.

    A body already meaning ``timers`` is returned as it is (a switch that prints a
    default value keeps its text).
    """
    if _timers(body) == timers:
        return body
    wanted = {_timer(line): line for line in timers}
    out = []
    for line in body:
        setting = _timer(line.strip())
        if setting is None:
            out.append(line)
        elif setting in wanted:
            out.append(INDENT + wanted.pop(setting))
    return out + [INDENT + line for line in timers if _timer(line) in wanted]


def candidate(running, after):
    """The whole configuration to push: ``running`` with its BGP-related blocks replaced by ``after``.

    The new blocks go where the first BGP-related block was (at the end when there was
    none); a static route ``after`` no longer has is dropped; each SVI's BFD timers are
    ``after``'s and ``bfd`` is there when ``after`` has it (where the running config had
    it, else before the first interface); every other line of ``running`` stays as it
    was, in its place.
    """
    kept, position, bfd_at, first_interface = [], None, None, None
    routes = {line for lines in after.get("static_routes", {}).values() for line in lines}
    timers = after.get("bfd_interfaces", {})
    for header, body in _blocks(running):
        if header.startswith(_STATIC_ROUTE) and header not in routes:
            continue
        if header == BFD_ENABLE:
            bfd_at = len(kept) if bfd_at is None else bfd_at
            continue
        if _owned_block(header):
            if position is None:
                position = len(kept)
            continue
        if header.startswith("interface ") and first_interface is None:
            first_interface = len(kept)
        if _SVI.match(header):
            body = _svi_body(body, timers.get(header, []))
        kept.append([header, *body])
    if position is None:
        position = len(kept)
    if after.get("bfd"):
        at = next(i for i in (bfd_at, first_interface, position) if i is not None)
        kept.insert(at, [BFD_ENABLE])
        if at <= position:
            position += 1
    blocks = [*kept[:position], _bgp_lines(after), *kept[position:]]
    return "\n".join(line for block in blocks for line in block) + "\n"


def _bfd_used_elsewhere(running, after):
    """Whether anything but ``bfd`` itself in the config ``after`` leads to uses BFD.

    ``after`` already lacks what spinelb removes (its SVI timers, its neighbors'
    ``fall-over bfd``); an OSPF interface, another neighbor or a static route with
    BFD keeps the global ``bfd``.
    """
    text = candidate(running, dict(after, bfd=[]))
    return any(_BFD_WORD.search(line.strip()) for line in text.splitlines())


def predict_bfd(running, want, state, vlans, after):
    """Apply ``state``'s BFD part to ``after`` (``frr_config.predict``'s result) in place.

    merged, replaced and overridden set ``bfd`` and the three timers on each SVI the
    intent names.  overridden without BFD in the intent resets the timers of the SVIs of
    ``vlans`` (the peering networks' VLANs: spinelb's) to the default; deleted does that
    for the SVIs the intent names.  Either then removes ``bfd`` unless something else
    on the switch uses BFD.
    """
    wanted = want.get("bfd_interfaces", {})
    interfaces = after.setdefault("bfd_interfaces", {})
    after.setdefault("bfd", [])
    if state in frr_config.STATES_REMOVING_STATIC_ROUTES and want.get("bfd"):
        after["bfd"] = [BFD_ENABLE]
        for header, lines in wanted.items():
            interfaces[header] = list(lines)
        return
    if state == "overridden":
        gone = {svi_header(vlan) for vlan in vlans}
    elif state == "deleted" and want.get("bfd"):
        gone = set(wanted)
    else:
        return
    for header in gone:
        interfaces.pop(header, None)
    if after["bfd"] and not _bfd_used_elsewhere(running, after):
        after["bfd"] = []


def bfd_commands(have, after):
    """The BFD lines taking ``have`` to ``after``, for review: (before BGP, after BGP).

    ``bfd`` and new or changed timers go before the neighbors that use them;
    timers returned to the default and ``no bfd`` after them.
    """
    first, last = [], []
    if after.get("bfd") and not have.get("bfd"):
        first.append(BFD_ENABLE)
    had, will = have.get("bfd_interfaces", {}), after.get("bfd_interfaces", {})
    for header in list(will) + [h for h in had if h not in will]:
        old, new = had.get(header, []), will.get(header, [])
        settings = {_timer(line) for line in new}
        added = [INDENT + line for line in new if line not in old]
        reset = [f"{INDENT}no {_timer(line)}" for line in old if _timer(line) not in settings]
        if added:
            first += [header, *added]
        if reset:
            last += [header, *reset]
    if have.get("bfd") and not after.get("bfd"):
        last.append("no " + BFD_ENABLE)
    return first, last


def changed_view(config, want, ownership, state, vlans=()):
    """``frr_config.changed_view`` with the BFD part a diff should show.

    ``bfd`` and the SVIs the intent names; for overridden also the SVIs of ``vlans``
    and ``bfd`` whatever the intent says.
    """
    view = frr_config.changed_view(config, want, ownership, state)
    shown = set(want.get("bfd_interfaces", {}))
    if state == "overridden":
        shown |= {svi_header(vlan) for vlan in vlans}
    view["bfd"] = list(config.get("bfd", [])) if (
        want.get("bfd") or state == "overridden") else []
    view["bfd_interfaces"] = {header: lines for header, lines
                              in config.get("bfd_interfaces", {}).items() if header in shown}
    return view
