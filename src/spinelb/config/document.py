"""Turn the config file's text into plain Python data (dicts, lists, scalars), quickly.

The file is YAML, and JSON is YAML, so JSON text is read with :func:`json.loads`
(about 20 ms for 100,000 announcements).  Other YAML goes through libyaml's
event parser with a small constructor of our own: PyYAML's composer and
constructor build a Python node object per scalar and take about 3 s for
100,000 announcements, while the events alone take a fraction of that.  The
constructor resolves plain scalars with PyYAML's own YAML 1.1 resolver (so
``yes`` is True and ``0755`` is octal, exactly as ``yaml.safe_load``) and hands
anything unusual (anchors, aliases, explicit tags, merge keys, complex keys)
to ``yaml.load(..., CSafeLoader)``, so the result always equals ``safe_load``.

Error messages never quote the file's lines: a syntax error on a password's
line must not print the password.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

try:
    from yaml import CSafeLoader as _SafeLoader
    from yaml._yaml import CParser as _Parser

    HAVE_LIBYAML = True
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]
    from yaml.loader import SafeLoader as _Parser  # type: ignore[assignment]

    HAVE_LIBYAML = False


class DocumentError(ValueError):
    """The text is not YAML (or not one YAML document); the message says where, not what."""


class _Unsupported(Exception):
    """A YAML feature the fast constructor leaves to PyYAML's full loader."""


_STR_TAG = "tag:yaml.org,2002:str"
_SIMPLE_TAGS = frozenset(
    "tag:yaml.org,2002:" + name for name in ("null", "bool", "int", "float", "timestamp")
)
_resolver = Resolver()
_constructor = SafeConstructor()
_MISSING = object()


def load_document(text: str) -> Any:
    """The data in ``text`` (JSON or YAML); raises :class:`DocumentError` for bad syntax."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass  # YAML flow style is not always JSON; let the YAML parser judge it
    try:
        try:
            return _construct(_Parser(text))
        except _Unsupported:
            return yaml.load(text, Loader=_SafeLoader)  # CSafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        raise DocumentError(_describe(exc)) from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"not valid YAML: {type(exc).__name__}") from None


def _describe(exc: yaml.MarkedYAMLError) -> str:
    """The error's own words and position, without the snippet of the line it quotes."""
    words = "; ".join(part for part in (exc.context, exc.problem) if part)
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML: {words or 'syntax error'}{where}"


def _plain(value: str, cache: dict[str, Any]) -> Any:
    """A plain (unquoted) scalar's value under YAML 1.1, as SafeLoader resolves it; cached."""
    tag = _resolver.resolve(ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    if tag == _STR_TAG:
        result: Any = value
    elif tag in _SIMPLE_TAGS:
        result = _constructor.construct_object(ScalarNode(tag, value), deep=True)
    else:  # merge key "<<", value "=": leave to the full loader
        raise _Unsupported(tag)
    cache[value] = result
    return result


def _construct(parser: Any) -> Any:
    """Build the single document's data from parser events (see the module docstring).

    One flat loop with the innermost container and its pending key in locals:
    this runs once per scalar of a 100,000-announcement file.
    """
    cache: dict[str, Any] = {}  # plain scalar text -> value (keys, next hops, ...)
    stack: list[tuple[Any, Any]] = []  # the enclosing (container, pending key) pairs
    top: Any = None  # the innermost open container
    key: Any = _MISSING  # its pending mapping key
    root: Any = None
    documents = 0
    while True:
        event = parser.get_event()
        kind = type(event)
        if kind is ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Unsupported("anchor or tag")
            value = event.value
            if event.implicit[0] and "/" not in value:  # plain; no YAML 1.1 type has a "/"
                found = cache.get(value, _MISSING)
                value = _plain(value, cache) if found is _MISSING else found
            if top is None:
                root = value
            elif type(top) is list:
                top.append(value)
            elif key is _MISSING:
                key = value
            else:
                top[key] = value
                key = _MISSING
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Unsupported("anchor or tag")
            container: Any = {} if kind is MappingStartEvent else []
            if top is None:
                root = container
            elif type(top) is list:
                top.append(container)
            elif key is _MISSING:
                raise _Unsupported("complex mapping key")
            else:
                top[key] = container
                key = _MISSING
            stack.append((top, key))
            top, key = container, _MISSING
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            top, key = stack.pop()
        elif kind is DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Unsupported("several documents")  # the full loader reports it
        elif kind is StreamEndEvent:
            return root
        elif kind is not DocumentEndEvent and kind is not StreamStartEvent:  # AliasEvent
            raise _Unsupported(kind.__name__)
