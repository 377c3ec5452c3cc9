# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of spinelb.fabric.spinelb_config: the speaker's or controller's document, rendered.

Builds :class:`spinelb.spine.Site` from the inventory exactly as spine_bgp
does (so a worker's peers are its spines' neighbors), renders the task's
host's speaker document (or the controller's) with :mod:`spinelb.deploy`,
and hands the YAML text to the module, which checks and writes it on the
host.  The document never holds the BGP password (only ``password_file``).
"""

from __future__ import annotations

import dataclasses
import json

from ansible.plugins.action import ActionBase
from ansible_collections.spinelb.fabric.plugins.module_utils.site_inventory import (
    package_missing,
    site_arguments,
)

try:
    import yaml

    from spinelb.deploy import (
        ControllerOptions,
        DocumentError,
        SpeakerOptions,
        controller_document,
        speaker_document,
    )
    from spinelb.spine import SiteError, load_site
except ImportError as exc:  # the controller lacks the package: say so when the task runs
    SPINELB_IMPORT_ERROR = exc
else:
    SPINELB_IMPORT_ERROR = None

MODULE = "spinelb.fabric.spinelb_config"
ARGUMENT_SPEC = dict(
    kind=dict(type="str", default="speaker", choices=["speaker", "controller"]),
    path=dict(type="path", required=True),
    spinelb=dict(type="path", default="spinelb"),
    options=dict(type="dict", default={}),
    owner=dict(type="str"),
    group=dict(type="str"),
    mode=dict(type="raw", default="0640"),
)
HEADER = ("# Written by spinelb.fabric.spinelb_config from the inventory; edits here are "
          "overwritten.\n")


def process_options(kind, given):
    """``given`` as SpeakerOptions or ControllerOptions; ValueError naming an unknown key.

    An empty string stands for "not set" where the field's default is None (a role
    variable left empty: no password file, no load balancer class).
    """
    cls = SpeakerOptions if kind == "speaker" else ControllerOptions
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"options for kind={kind}: unknown {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(known))})")
    values = dict(given)
    for field in dataclasses.fields(cls):  # "" means unset for what defaults to none
        if field.default is None and values.get(field.name) == "":
            values[field.name] = None
    if "announce" in values:
        values["announce"] = tuple(dict(entry) for entry in values["announce"] or ())
    return cls(**values)


def render(site, kind, host, options):
    """The YAML text of ``kind``'s document (the speaker's for ``host``)."""
    if kind == "speaker":
        document = speaker_document(site, host, options)
    else:
        document = controller_document(site, options)
    # plain types: Ansible's values are str/dict subclasses (tagged) that YAML cannot represent
    plain = json.loads(json.dumps(document))
    return HEADER + yaml.safe_dump(plain, sort_keys=False, default_flow_style=False)


class ActionModule(ActionBase):
    """Render on the controller; check, diff and write through the module on the host."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        if package_missing(result, "spinelb_config", SPINELB_IMPORT_ERROR):
            return result
        host = task_vars["inventory_hostname"]
        try:
            options = process_options(args["kind"], args["options"] or {})
            site = load_site(*site_arguments(task_vars, host))
            text = render(site, args["kind"], host, options)
        except (SiteError, DocumentError, ValueError, TypeError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(self._execute_module(
            module_name=MODULE, module_args=dict(args, content=text), task_vars=task_vars))
        return result
