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


def parse(text):
    """The BGP-related part of an AOS-CX configuration ``text``, in ``frr_config``'s form."""
    config = frr_config.empty()
    for header, body in _blocks(text):
        if header.strip() in _SKIP:
            continue
        if header.startswith("ip prefix-list "):
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
    out = _bgp_lines(config)
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


def candidate(running, after):
    """The whole configuration to push: ``running`` with its BGP-related blocks replaced by ``after``.

    The new blocks go where the first BGP-related block was (at the end when there was
    none); a static route ``after`` no longer has is dropped; every other line of
    ``running`` stays as it was, in its place.
    """
    kept, position = [], None
    routes = {line for lines in after.get("static_routes", {}).values() for line in lines}
    for header, body in _blocks(running):
        if header.startswith(_STATIC_ROUTE) and header not in routes:
            continue
        if _owned_block(header):
            if position is None:
                position = len(kept)
            continue
        kept.append([header, *body])
    if position is None:
        position = len(kept)
    owned = _bgp_lines(after)
    lines = [line for block in kept[:position] for line in block] + owned
    lines += [line for block in kept[position:] for line in block]
    return "\n".join(lines) + "\n"
