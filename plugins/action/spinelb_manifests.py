# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""spinelb.fabric.spinelb_manifests: Kubernetes mode's manifests, rendered on the controller.

Builds :class:`spinelb.spine.Site` from the inventory exactly as spine_bgp and
spinelb_config do, renders every worker's speaker document (in-cluster, the
password file in the Secret's mount) and the controller's with
:mod:`spinelb.deploy`, and returns :func:`spinelb.deploy.manifests.manifests`'
objects for ``kubernetes.core.k8s`` to apply.  Nothing is contacted and
nothing changes.  The Secret (the BGP password) is returned only when
``secrets`` is true, by itself, for a task that sets ``no_log``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.plugins.action import ActionBase
from ansible_collections.spinelb.fabric.plugins.module_utils.site_inventory import (
    package_missing,
    site_arguments,
)
from ansible_collections.spinelb.fabric.plugins.module_utils.spinelb_manifests_args import (
    ARGUMENT_SPEC,
)

try:
    from spinelb.deploy import (
        ControllerOptions,
        DocumentError,
        SpeakerOptions,
        controller_document,
        speaker_document,
    )
    from spinelb.deploy.manifests import (
        PASSWORD_FILE,
        ManifestError,
        ManifestOptions,
        manifests,
    )
    from spinelb.spine import SiteError, load_site
except ImportError as exc:  # the controller lacks the package: say so when the task runs
    SPINELB_IMPORT_ERROR = exc
else:
    SPINELB_IMPORT_ERROR = None

# The options of the speakers and the controller a pod may set; the rest is the plugin's
# (in-cluster credentials, the Secret's path, the namespace of the Lease).
SPEAKER_KEYS = ("api_listen", "listen", "log_level", "graceful_restart_time", "announce",
                "load_balancer_class", "connect_retry")
CONTROLLER_KEYS = ("api_listen", "lease_name", "load_balancer_class", "log_level")


def plain(value):
    """``value`` as plain Python data: Ansible's tagged strings and numbers are no YAML."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _chosen(given, known, what):
    """``given`` restricted to ``known`` keys, unset ones (None, "") left out; ValueError naming any other."""
    unknown = sorted(set(given or {}) - set(known))
    if unknown:
        raise ValueError(f"{what}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    return {key: value for key, value in (given or {}).items() if value not in (None, "")}


def manifest_options(site, args):
    """:class:`ManifestOptions` for the site and the task's arguments."""
    args = plain(args)
    speaker = _chosen(args["speaker"], SPEAKER_KEYS, "speaker")
    if "announce" in speaker:
        speaker["announce"] = tuple(dict(entry) for entry in speaker["announce"])
    speaker_options = SpeakerOptions(
        password_file=PASSWORD_FILE if site.bgp.password is not None else None, **speaker)
    controller_options = ControllerOptions(
        namespace=args["namespace"], **_chosen(args["controller"], CONTROLLER_KEYS, "controller"))
    sizes = {key: args[key] for key in ("speaker_resources", "controller_resources")
             if args[key] is not None}
    return ManifestOptions(
        image=args["image"],
        speaker_configs={str(w): plain(speaker_document(site, w, speaker_options))
                         for w in site.workers},
        controller_config=plain(controller_document(site, controller_options)),
        namespace=args["namespace"],
        image_pull_policy=args["image_pull_policy"],
        md5_password=site.bgp.password,
        controller_replicas=args["controller_replicas"],
        labels={str(k): str(v) for k, v in args["labels"].items()},
        **sizes,
    )


class ActionModule(ActionBase):
    """Render the manifests on the controller; no module runs."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        if package_missing(result, "spinelb_manifests", SPINELB_IMPORT_ERROR):
            return result
        try:
            site = load_site(*site_arguments(task_vars, task_vars["inventory_hostname"]))
            options = manifest_options(site, args)
            objects = manifests(options, args["component"])
        except (SiteError, DocumentError, ManifestError, ValueError, TypeError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        wanted = [o for o in objects if (o["kind"] == "Secret") == args["secrets"]]
        result.update(changed=False, manifests=wanted, workers=options.worker_nodes)
        return result
