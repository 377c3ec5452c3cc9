#!/usr/bin/python
# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of spinelb.fabric.spinelb_config: check a rendered config with the host's spinelb, then write it.

The action plugin of the same name renders the document on the controller
(from the inventory, with the ``spinelb`` package) and hands this module its
text.  Here, with the host's own Python and without importing ``spinelb``,
the text is written next to the target file, judged by the host's
``spinelb check-config --running`` (the very code that will load it), and
only then moved over the target: a config the speaker would refuse never
replaces the running one.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: spinelb_config
short_description: Write a speaker's or the controller's config file, validated by spinelb itself
version_added: 0.1.0
description:
  - Renders the C(spinelb speaker) config of the task's host (a worker), or the
    C(spinelb controller) config, from the inventory's C(spinelb_*) variables (the same
    ones the spine side is built from, see C(docs/spine-data.md)).
  - Before anything is replaced, the new text is checked on the host with
    C(spinelb check-config --running), which also says what applying it needs
    (nothing, a reload with SIGHUP, or a restart). A rejected config fails the task and the
    file is left as it was.
  - The BGP password is never in the file (the speaker reads it from the C(password_file) of O(options),
    which the role writes); any C(password) value is redacted in the diff anyway.
author:
  - spinelb maintainers (@spinelb)
requirements:
  - The C(spinelb) Python package on the controller (the action plugin imports it).
  - The C(spinelb) command on the host (O(spinelb)), for the check.
attributes:
  check_mode:
    support: full
    description: Checks the new config and reports RV(action) and the diff without writing.
      When O(spinelb) does not exist yet (a host the same check run would install it on),
      the check is skipped with a warning.
  diff_mode:
    support: full
    description: Shows the file before and after, with every password value redacted.
  action:
    support: full
    description: The action plugin renders the document on the controller.
options:
  kind:
    description:
      - V(speaker) renders the config of the task's host, which must be in group C(workers).
      - V(controller) renders the controller's config (the site's pools).
    type: str
    choices: [speaker, controller]
    default: speaker
  path:
    description:
      - The config file on the host. Its directory must exist.
    type: path
    required: true
  spinelb:
    description:
      - The C(spinelb) executable on the host (for example the virtualenv's C(bin/spinelb)).
    type: path
    default: spinelb
  options:
    description:
      - How the process runs, as keyword arguments of C(spinelb.deploy.SpeakerOptions) (for
        O(kind=speaker)) or C(spinelb.deploy.ControllerOptions) (for O(kind=controller)).
      - "Speaker: C(kubeconfig), C(api_listen), C(listen), C(password_file), C(log_level),
        C(graceful_restart_time), C(announce), C(load_balancer_class), C(connect_retry)."
      - "Controller: C(kubeconfig), C(api_listen), C(namespace), C(lease_name),
        C(load_balancer_class), C(log_level)."
      - C(password_file) is required when the site has a BGP password (C(spinelb_bgp_password)).
      - An empty string leaves a field that defaults to none unset (C(password_file),
        C(kubeconfig) for the in-cluster service account, C(load_balancer_class)).
    type: dict
    default: {}
  owner:
    description:
      - The file's owner; default the user the task runs as.
    type: str
  group:
    description:
      - The file's group; default the user's group.
    type: str
  mode:
    description:
      - The file's permissions.
    type: raw
    default: "0640"
  content:
    description:
      - The rendered document, filled in by the action plugin. Do not set it.
    type: str
notes:
  - The check needs every file the config names (C(kubeconfig), C(password_file)) in place,
    since the speaker reads them when it loads the config; write them first.
seealso:
  - module: spinelb.fabric.spinelb_process
  - name: The speaker's config file
    description: Every key of the document.
    link: https://example.invalid/spinelb/fabric/docs/speaker-config.md
"""

EXAMPLES = r"""
- name: Write the speaker's config
  spinelb.fabric.spinelb_config:
    kind: speaker
    path: /etc/spinelb/speaker.yaml
    spinelb: /opt/spinelb/venv/bin/spinelb
    options:
      kubeconfig: /etc/spinelb/kubeconfig
      password_file: /etc/spinelb/bgp-password
    group: spinelb
  register: speaker_config

- name: Apply it the way the change needs
  spinelb.fabric.spinelb_process:
    name: speaker
    pid_file: /run/spinelb/speaker.pid
    command: [/opt/spinelb/venv/bin/spinelb, speaker, --config, /etc/spinelb/speaker.yaml]
    executable: /opt/spinelb/venv/bin/spinelb
    state: "{{ 'restarted' if speaker_config.action == 'restart' else 'reloaded' }}"
  when: speaker_config.action in ['reload', 'restart']

- name: Write the controller's config
  spinelb.fabric.spinelb_config:
    kind: controller
    path: /etc/spinelb/controller.yaml
    spinelb: /opt/spinelb/venv/bin/spinelb
    options:
      kubeconfig: /etc/spinelb/kubeconfig
"""

RETURN = r"""
action:
  description:
    - What the running process needs for the new file.
    - V(created) when there was no file, V(unchanged) when the settings are the same,
      V(reload) when SIGHUP applies the change, V(restart) when only a restart does
      (a controller always restarts).
  returned: success
  type: str
  sample: reload
summary:
  description: The check's one-line account of the new config and of the change.
  returned: success
  type: str
  sample: "/etc/spinelb/speaker.yaml: ok: node ncn-w001, 4 peers, 0 announcements
    (0 IPv4, 0 IPv6); reload: pools changed"
path:
  description: The config file.
  returned: always
  type: str
  sample: /etc/spinelb/speaker.yaml
problems:
  description: Every problem the check found (secrets redacted), when it rejected the config.
  returned: failure
  type: list
  elements: str
  sample: ["peers[0].password_file: no such file (got '/etc/spinelb/bgp-password')"]
"""

import json  # noqa: E402  (ansible-test wants the documentation first)
import os  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = dict(
    kind=dict(type="str", default="speaker", choices=["speaker", "controller"]),
    path=dict(type="path", required=True),
    spinelb=dict(type="path", default="spinelb"),
    options=dict(type="dict", default={}),
    owner=dict(type="str"),
    group=dict(type="str"),
    mode=dict(type="raw", default="0640"),
    content=dict(type="str"),
)

REDACTED = "<redacted>"
# a ``password`` key (block or flow style) and its value, up to the end of the line or entry
_PASSWORD = re.compile(r"(\bpassword[\"']?\s*:[ \t]*)([^,}\n]*[^,}\s])")


def redact(text):
    """``text`` with the value of every ``password`` key replaced by ``<redacted>``."""
    return _PASSWORD.sub(lambda match: match.group(1) + REDACTED, text)


def passwords(text):
    """The values of the ``password`` keys in ``text`` (as written, and unquoted)."""
    found = set()
    for match in _PASSWORD.finditer(text or ""):
        value = match.group(2).strip()
        found.update({value, value.strip("\"'")})
    return {value for value in found if value}


def read_text(path):
    """The file's text, or None when there is no file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def find_spinelb(module, name):
    """The spinelb executable's path, or None when it is not there (yet)."""
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    return module.get_bin_path(name)


def check(module, spinelb, candidate, running):
    """Run ``spinelb check-config`` on ``candidate``: its JSON verdict (fails the task on error)."""
    argv = [spinelb, "check-config", "--config", candidate, "--json"]
    if running is not None:
        argv += ["--running", running]
    if module.params["kind"] == "controller":
        argv.append("--controller")
    rc, out, err = module.run_command(argv)
    try:
        verdict = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    except ValueError:
        verdict = None
    if not isinstance(verdict, dict) or rc not in (0, 2):
        module.fail_json(msg=f"{spinelb} check-config did not answer (exit {rc}): "
                             f"{(err or out).strip()}", path=module.params["path"])
    return verdict


def write_candidate(path, content):
    """``content`` in a private temporary file next to ``path`` (so the final move is atomic)."""
    directory = os.path.dirname(path) or "."
    handle, candidate = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".new",
                                         dir=directory)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(content)
    return candidate


def set_attributes(module, path, changed):
    """Owner, group and mode of ``path`` as asked; whether anything changed."""
    params = module.params
    changed = module.set_owner_if_different(path, params["owner"], changed)
    changed = module.set_group_if_different(path, params["group"], changed)
    return module.set_mode_if_different(path, params["mode"], changed)


def run(module):
    """Check, diff and (outside check mode) write; the module's result."""
    params = module.params
    path = params["path"]
    content = params["content"]
    if content is None:
        module.fail_json(msg="content is filled in by the action plugin spinelb.fabric.spinelb_config;"
                             " run the module through it", path=path)
    if not os.path.isdir(os.path.dirname(path) or "."):
        module.fail_json(msg=f"the directory of {path} does not exist", path=path)
    before = read_text(path)
    # the action plugin's documents name a password_file; an inline key is still never shown
    module.no_log_values.update(passwords(content) | passwords(before))
    result = {"changed": False, "path": path}
    spinelb = find_spinelb(module, params["spinelb"])
    candidate = None
    try:
        if spinelb is None:
            if not module.check_mode:
                module.fail_json(msg=f"{params['spinelb']}: no such executable; install spinelb on "
                                     "the host first", path=path)
            skipped = f"{params['spinelb']} is not installed yet: the config was not checked"
            module.warn(skipped)
            verdict = {"ok": True, "action": "restart", "summary": skipped}
        else:
            candidate = write_candidate(path, content)
            verdict = check(module, spinelb, candidate, path if before is not None else None)
        if not verdict.get("ok"):
            problems = [redact(str(p)) for p in verdict.get("problems") or []]
            module.fail_json(msg=f"spinelb rejected the new {params['kind']} config; {path} was "
                                 "not changed:\n" + "\n".join(f"  {p}" for p in problems),
                             problems=problems, path=path)
        action = "created" if before is None else verdict.get("action", "restart")
        summary = verdict.get("summary", "")
        result.update(action=action, summary=summary.replace(candidate, path) if candidate else summary)
        if before != content:
            result["changed"] = True
            if not module.check_mode:
                module.atomic_move(candidate, path, keep_dest_attrs=False)
                candidate = None
        if os.path.exists(path):  # in check mode the set_*_if_different helpers only report
            result["changed"] = set_attributes(module, path, result["changed"])
    finally:
        if candidate is not None and os.path.exists(candidate):
            os.unlink(candidate)
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": redact(before or ""), "after": redact(content),
                          "before_header": path, "after_header": path}
    return result


def main():
    """Entry point."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
