# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of spinelb.fabric.service_prefixes, shared by its action plugin and module."""

from __future__ import annotations

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["checked", "reconciled"], default="checked"),
    kubernetes=dict(type="dict", required=True),
    speakers=dict(type="dict", required=True),
    spines=dict(type="dict", required=True),
    ignore=dict(type="list", elements="str", default=[]),
    speaker_api=dict(type="str", default="127.0.0.1:7473"),
    controller_api=dict(type="str"),
    pathspace=dict(type="str"),
    timeout=dict(type="int", default=15),
)
