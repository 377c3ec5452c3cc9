"""The speaker's config file: model, loading, validation and reload diffs.

Independent of the protocol code (it borrows only the wire's types)::

    config = load_config("/etc/spinelb/speaker.yaml")   # raises ConfigError
    diff = config_diff(old, config)                     # on SIGHUP

See docs/speaker-config.md for every key.
"""

from __future__ import annotations

import os
from pathlib import Path

from .diff import ConfigDiff, PeerChange, config_diff
from .document import DocumentError, load_document
from .model import (
    FAMILY_NAMES,
    MODE_BGP,
    MODE_LAYER2,
    POOL_MODES,
    Announcement,
    ApiConfig,
    BfdConfig,
    ConfigError,
    ControllerConfig,
    GracefulRestartConfig,
    KubernetesConfig,
    Layer2Config,
    Layer2Peer,
    ListenConfig,
    PeerConfig,
    PoolConfig,
    Problem,
    RouteAttributes,
    SpeakerConfig,
    family_name,
)
from .validation import collector_paused, parse_config, parse_controller_config, parse_range
from .values import format_community

__all__ = [
    "FAMILY_NAMES",
    "MODE_BGP",
    "MODE_LAYER2",
    "POOL_MODES",
    "Announcement",
    "ApiConfig",
    "BfdConfig",
    "ConfigDiff",
    "ConfigError",
    "ControllerConfig",
    "GracefulRestartConfig",
    "KubernetesConfig",
    "Layer2Config",
    "Layer2Peer",
    "ListenConfig",
    "PeerChange",
    "PeerConfig",
    "PoolConfig",
    "Problem",
    "RouteAttributes",
    "SpeakerConfig",
    "config_diff",
    "family_name",
    "format_community",
    "load_config",
    "load_controller_config",
    "parse_config",
    "parse_controller_config",
    "parse_range",
]


def load_config(path: str | os.PathLike[str]) -> SpeakerConfig:
    """Read, parse and validate the config file at ``path``; raises :class:`ConfigError`.

    A relative ``password_file`` is looked for next to the config file.
    """
    file_path = Path(path)
    source, text = _read(file_path)
    with collector_paused():
        try:
            data = load_document(text)
        except DocumentError as exc:
            raise ConfigError([Problem("<file>", source, str(exc))], source) from None
        return parse_config(data, source=source, base_dir=file_path.parent, consume=True)


def load_controller_config(path: str | os.PathLike[str]) -> ControllerConfig:
    """Read and validate the config file at ``path`` for ``spinelb controller``."""
    file_path = Path(path)
    source, text = _read(file_path)
    try:
        data = load_document(text)
    except DocumentError as exc:
        raise ConfigError([Problem("<file>", source, str(exc))], source) from None
    return parse_controller_config(data, source=source, base_dir=file_path.parent)


def _read(file_path: Path) -> tuple[str, str]:
    source = str(file_path)
    try:
        text = file_path.read_bytes().decode("utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            [Problem("<file>", source, f"cannot read the config: {reason}")], source
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            [Problem("<file>", source, "the config is not UTF-8 text")], source
        ) from None
    return source, text
