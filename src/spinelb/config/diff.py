"""What changed between two configs, for a reload on SIGHUP.

The speaker resets only the sessions whose session-affecting settings
changed, applies other peer settings in place, and sends only the
announcements that were added, removed or changed.  A change to the
speaker's identity or sockets (router_id, local_asn, api, listen,
graceful_restart) needs every session restarted.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .model import Announcement, PeerConfig, SpeakerConfig

#: Peer settings whose change needs the session torn down and opened again.
SESSION_SETTINGS = (
    "address",
    "asn",
    "local_asn",
    "source_address",
    "port",
    "hold_time",
    "keepalive",
    "password",
    "passive",
    "multihop_ttl",
    "send_hold_time",
    "bfd",
    "families",
)
#: Speaker settings whose change needs every session restarted.
RESTART_SETTINGS = ("router_id", "local_asn", "api", "listen", "graceful_restart")
#: Speaker settings applied in place.
LIVE_SETTINGS = ("node_name", "log_level")

_PEER_SETTINGS = tuple(
    f.name for f in fields(PeerConfig) if f.name not in ("name", "password_file")
)

AnnouncementKey = tuple[object, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class PeerChange:
    """A peer present in both configs whose settings differ.

    ``settings`` names what changed ("password" when the key changed; never
    its value).  ``resets_session`` is True when one of them is in
    :data:`SESSION_SETTINGS`; otherwise (only ``connect_retry``) the new
    value applies in place.
    """

    name: str
    old: PeerConfig
    new: PeerConfig
    settings: tuple[str, ...]

    @property
    def resets_session(self) -> bool:
        return any(setting in SESSION_SETTINGS for setting in self.settings)


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """The difference from an old config to a new one (peers are matched by name)."""

    peers_added: tuple[PeerConfig, ...]
    peers_removed: tuple[PeerConfig, ...]
    peers_changed: tuple[PeerChange, ...]
    peers_unchanged: tuple[str, ...]
    restart_settings: tuple[str, ...]  # from RESTART_SETTINGS
    live_settings: tuple[str, ...]  # from LIVE_SETTINGS
    announcements_added: tuple[Announcement, ...]
    announcements_removed: tuple[Announcement, ...]
    announcements_changed: tuple[tuple[Announcement, Announcement], ...]  # (old, new)

    @property
    def restart_required(self) -> bool:
        """Whether every session must be restarted (the speaker's identity or sockets changed)."""
        return bool(self.restart_settings)

    @property
    def sessions_to_reset(self) -> tuple[str, ...]:
        """Names of the surviving peers whose session must be reset."""
        return tuple(change.name for change in self.peers_changed if change.resets_session)

    @property
    def empty(self) -> bool:
        return not (
            self.peers_added
            or self.peers_removed
            or self.peers_changed
            or self.restart_settings
            or self.live_settings
            or self.announcements_added
            or self.announcements_removed
            or self.announcements_changed
        )


def config_diff(old: SpeakerConfig, new: SpeakerConfig) -> ConfigDiff:
    """Compare ``old`` with ``new``; announcements are matched by (prefix, peers)."""
    old_peers = {peer.name: peer for peer in old.peers}
    new_peers = {peer.name: peer for peer in new.peers}
    changed: list[PeerChange] = []
    unchanged: list[str] = []
    for name, peer in new_peers.items():
        before = old_peers.get(name)
        if before is None:
            continue
        settings = tuple(s for s in _PEER_SETTINGS if getattr(before, s) != getattr(peer, s))
        if settings:
            changed.append(PeerChange(name, before, peer, settings))
        else:
            unchanged.append(name)

    old_announcements = _by_key(old.announcements)
    new_announcements = _by_key(new.announcements)
    changed_announcements = []
    for key, announcement in new_announcements.items():
        before_announcement = old_announcements.get(key)
        if before_announcement is not None and before_announcement != announcement:
            changed_announcements.append((before_announcement, announcement))

    return ConfigDiff(
        peers_added=tuple(p for name, p in new_peers.items() if name not in old_peers),
        peers_removed=tuple(p for name, p in old_peers.items() if name not in new_peers),
        peers_changed=tuple(changed),
        peers_unchanged=tuple(unchanged),
        restart_settings=tuple(s for s in RESTART_SETTINGS if getattr(old, s) != getattr(new, s)),
        live_settings=tuple(s for s in LIVE_SETTINGS if getattr(old, s) != getattr(new, s)),
        announcements_added=tuple(
            a for key, a in new_announcements.items() if key not in old_announcements
        ),
        announcements_removed=tuple(
            a for key, a in old_announcements.items() if key not in new_announcements
        ),
        announcements_changed=tuple(changed_announcements),
    )


def _by_key(announcements: tuple[Announcement, ...]) -> dict[AnnouncementKey, Announcement]:
    return {(a.prefix, a.peers): a for a in announcements}
