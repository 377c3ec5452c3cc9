"""Deploying spinelb: the config documents (and Kubernetes manifests) built from the site.

Kubernetes mode: ``spinelb.deploy.manifests.manifests(ManifestOptions(...))``.

Pure functions over :class:`spinelb.spine.Site`, the same model the spine side
is rendered from; the Ansible plugins and roles are thin wrappers::

    site = load_site(site_vars, hostvars, groups)
    speaker = speaker_document(site, "ncn-w001", SpeakerOptions(kubeconfig="/etc/spinelb/kubeconfig"))
    controller = controller_document(site, ControllerOptions())
"""

from __future__ import annotations

# Each public name is re-exported as itself (``X as X``), so a module's names join with
# one import line each: the documents here, Kubernetes mode (.manifests) after them.
from .documents import ControllerOptions as ControllerOptions
from .documents import DocumentError as DocumentError
from .documents import SpeakerOptions as SpeakerOptions
from .documents import controller_document as controller_document
from .documents import peer_name as peer_name
from .documents import speaker_document as speaker_document

# Kubernetes mode: the objects are built by spinelb.deploy.manifests.manifests(options).
from .manifests import ManifestError as ManifestError
from .manifests import ManifestOptions as ManifestOptions
