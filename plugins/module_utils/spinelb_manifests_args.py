# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of spinelb.fabric.spinelb_manifests, shared by its action plugin and module."""

from __future__ import annotations

ARGUMENT_SPEC = dict(
    component=dict(type="str", default="all", choices=["all", "speaker", "controller"]),
    secrets=dict(type="bool", default=False),
    image=dict(type="str", required=True),
    image_pull_policy=dict(type="str", default="IfNotPresent",
                           choices=["Always", "IfNotPresent", "Never"]),
    namespace=dict(type="str", default="spinelb-system"),
    controller_replicas=dict(type="int", default=2),
    speaker=dict(type="dict", default={}),
    controller=dict(type="dict", default={}),
    speaker_resources=dict(type="dict"),
    controller_resources=dict(type="dict"),
    labels=dict(type="dict", default={}),
)
