"""Push a whole CLI configuration to an Aruba AOS-CX switch over its REST API.

The pattern is the one HPE CSM uses (Cray-HPE/canu, ``canu/inventory/plays/aruba-aoscx.yml``):

1. ``POST /rest/v10.09/login`` with ``username``/``password`` form fields; the switch sets a
   session cookie (and, on newer firmware, an ``X-Csrf-Token`` header that must be echoed
   on writes).
2. ``POST /rest/v10.09/configs/running-config?dryrun`` with the candidate as ``text/plain``
   CLI; the switch answers 202 and validates in the background.  ``GET`` on the same URL
   is polled until ``state`` is no longer ``"pending"``: ``"success"`` carries the
   candidate translated to the switch's JSON schema under ``configs.json``, ``"error"``
   carries the switch's error texts under ``errors``.  Nothing on the switch changes.
3. The management interface and ``subsystems`` of the running config are copied into that
   JSON (CANU does this too: without them a push can lock the operator out, and a 6300
   wipes itself).
4. A named checkpoint of the running config: ``PUT /rest/v10.09/fullconfigs/<name>?from=
   /rest/v10.09/fullconfigs/running-config`` (how pyaoscx's ``create_checkpoint`` and the
   ``aoscx_checkpoint`` module copy configs).
5. ``PUT /rest/v10.09/fullconfigs/running-config`` with the JSON.
6. Confirm: the switch must still answer on this session; then ``running-config`` is
   copied to ``startup-config`` (CSM's ``checkpoint auto confirm`` + ``write memory``).
   When the switch stops answering or the write fails, the running config is restored
   from the checkpoint (``PUT .../fullconfigs/running-config?from=.../fullconfigs/<name>``).

CSM uploads to ``startup-config`` first and copies it to running, and sets ``checkpoint
auto 2`` over SSH because REST has no such call; this client stays on REST only, applies to
running first and only saves once the switch still answers.

Static routes are REST resources of their own (pyaoscx's ``StaticRoute``):
``GET system/vrfs`` lists the VRFs, ``GET system/vrfs/{vrf}/static_routes`` a VRF's
routes (keys and URIs name the prefix, URL-encoded), and ``DELETE
system/vrfs/{vrf}/static_routes/{prefix}`` removes one prefix with all its
``static_nexthops``.  :meth:`AoscxClient.delete_static_route` is how a stale
static route to a pool address goes without pushing a whole configuration.

The client uses only the standard library (``urllib.request`` + ``http.cookiejar``).  The
password, the session cookie and the CSRF token never appear in a log line, a repr or an
exception text: every text that came from the switch is scrubbed of them before use.
"""

from __future__ import annotations

import copy
import http.cookiejar
import json
import logging
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

log = logging.getLogger("spinelb.spine.aoscx")

DEFAULT_API_VERSION = "v10.09"
DEFAULT_CHECKPOINT = "spinelb-auto"
# Checkpoint names go into a URL path; AOS-CX names are short identifiers.
_CHECKPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_MASK = "********"
# Keys of the running config's ``System`` table that a pushed config must keep as they are.
PRESERVED_SYSTEM_KEYS = ("mgmt_intf", "subsystems")


class AoscxError(Exception):
    """A push step failed; the text names the step, the HTTP status and the switch's words.

    ``status`` is the HTTP status (``None`` when the switch was not reached) and
    ``switch_text`` what the switch said, both already scrubbed of secrets.
    """

    def __init__(self, message: str, *, status: int | None = None, switch_text: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.switch_text = switch_text


class AoscxLoginError(AoscxError):
    """The switch refused the login (wrong credentials, no REST access, too many sessions)."""


class AoscxTimeoutError(AoscxError):
    """The dry-run was still pending when the deadline passed; nothing was applied."""


class AoscxDryRunError(AoscxError):
    """The switch rejected the candidate in the dry-run; nothing was applied.

    ``errors`` holds the switch's error texts, one per problem.
    """

    def __init__(self, message: str, *, errors: list[str]) -> None:
        super().__init__(message, switch_text="\n".join(errors))
        self.errors = errors


class AoscxApplyError(AoscxError):
    """Writing or confirming the new running config failed.

    ``rolled_back`` says whether the running config was restored from ``checkpoint``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        switch_text: str = "",
        checkpoint: str | None = None,
        rolled_back: bool = False,
    ) -> None:
        super().__init__(message, status=status, switch_text=switch_text)
        self.checkpoint = checkpoint
        self.rolled_back = rolled_back


@dataclass(frozen=True)
class DryRunResult:
    """The switch's verdict on a candidate config.

    ``config`` is the candidate in the switch's JSON schema (only when ``ok``).
    """

    ok: bool
    errors: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None


@dataclass(frozen=True)
class ApplyResult:
    """What :meth:`AoscxClient.apply` did.

    ``changed`` is False when the candidate equals the running config (nothing written);
    ``checkpoint`` is the checkpoint taken before writing; ``confirmed`` says the switch
    still answered afterwards and the config was saved to startup-config.
    """

    changed: bool
    checkpoint: str | None = None
    confirmed: bool = False


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    csrf_token: str | None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class AoscxClient:
    """A REST session to one AOS-CX switch; use it as a context manager.

    ``verify`` is True (system CAs), False (no certificate check, like CSM's
    ``validate_certs: false``) or the path of a CA file.  ``timeout`` bounds every single
    HTTP request in seconds.  Proxies from the environment are ignored: a switch's
    management address is reached directly.
    """

    def __init__(
        self,
        host: str,
        *,
        username: str,
        password: str,
        port: int | None = None,
        scheme: str = "https",
        verify: bool | str = True,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 30.0,
    ) -> None:
        if scheme not in ("https", "http"):
            raise ValueError(f"scheme must be 'https' or 'http', not {scheme!r}")
        self.host = host
        self.username = username
        self._password = password
        self.port = port if port is not None else (443 if scheme == "https" else 80)
        self.scheme = scheme
        self.api_version = api_version
        self.timeout = timeout
        self._prefix = f"/rest/{api_version}/"
        netloc_host = f"[{host}]" if ":" in host else host
        self._origin = f"{scheme}://{netloc_host}:{self.port}"
        self._cookies = http.cookiejar.CookieJar()
        self._csrf_token: str | None = None
        self._logged_in = False
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(self._cookies),
        ]
        if scheme == "https":
            handlers.append(urllib.request.HTTPSHandler(context=_tls_context(verify)))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return (
            f"AoscxClient(host={self.host!r}, port={self.port}, scheme={self.scheme!r}, "
            f"username={self.username!r}, api_version={self.api_version!r})"
        )

    # --- session -------------------------------------------------------------

    def __enter__(self) -> Self:
        self.login()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.logout()

    def login(self) -> None:
        """Open a REST session; :class:`AoscxLoginError` when the switch refuses."""
        form = urllib.parse.urlencode({"username": self.username, "password": self._password})
        what = f"login to {self._where()} as {self.username!r}"
        reply = self._send(
            "POST",
            "login",
            body=form.encode(),
            content_type="application/x-www-form-urlencoded",
            what=what,
        )
        if reply.status != 200:
            raise self._failure(AoscxLoginError, what, reply)
        if not any(True for _ in self._cookies):
            raise AoscxLoginError(
                f"{what}: the switch accepted the login but set no session cookie"
            )
        self._csrf_token = reply.csrf_token
        self._logged_in = True
        log.info("logged in to %s as %r", self._where(), self.username)

    def logout(self) -> None:
        """Close the REST session; failures are logged, never raised (the session expires)."""
        if not self._logged_in:
            return
        try:
            reply = self._send("POST", "logout", what=f"logout from {self._where()}")
            if reply.status not in (200, 204):
                log.warning(
                    "logout from %s: HTTP %d: %s",
                    self._where(),
                    reply.status,
                    self._scrub(reply.text()),
                )
        except AoscxError as e:
            log.warning("%s", e)
        finally:
            self._logged_in = False
            self._csrf_token = None
            self._cookies.clear()

    # --- reading -------------------------------------------------------------

    def running_config(self) -> dict[str, Any]:
        """The running config in the switch's JSON schema."""
        return self._get_json("configs/running-config", what="read running-config")

    def running_config_text(self) -> str:
        """The running config as CLI text (the switch answers ``Accept: text/plain``)."""
        what = "read running-config as CLI text"
        reply = self._send("GET", "configs/running-config", accept="text/plain", what=what)
        if reply.status != 200:
            raise self._failure(AoscxError, what, reply)
        return reply.text()

    def checkpoints(self) -> list[str]:
        """Names of the stored configs and checkpoints (``running-config`` included)."""
        return sorted(self._get_json("fullconfigs", what="list checkpoints"))

    def vrfs(self) -> list[str]:
        """Names of the switch's VRFs (``default`` included), sorted."""
        return sorted(self._get_json("system/vrfs", what="list VRFs"))

    def static_routes(self, vrf: str) -> list[str]:
        """The prefixes of ``vrf``'s static routes (``10.92.100.71/32``), sorted."""
        listing = self._get_json(
            f"system/vrfs/{_path_segment(vrf)}/static_routes",
            what=f"list static routes of VRF {vrf!r}",
        )
        return sorted({_static_route_prefix(key, value) for key, value in listing.items()})

    def delete_static_route(self, vrf: str, prefix: str) -> bool:
        """Remove ``vrf``'s static route to ``prefix`` with all its next hops.

        False when the switch has no such route (404): the route is gone either way.
        """
        what = f"delete static route {prefix} of VRF {vrf!r}"
        path = f"system/vrfs/{_path_segment(vrf)}/static_routes/{_path_segment(prefix)}"
        reply = self._send("DELETE", path, what=what)
        if reply.status == 404:
            return False
        if reply.status not in (200, 204):
            raise self._failure(AoscxError, what, reply)
        log.info("deleted static route %s of VRF %r on %s", prefix, vrf, self._where())
        return True

    # --- writing -------------------------------------------------------------

    def dry_run(
        self, config: str, *, poll_interval: float = 0.5, timeout: float = 60.0
    ) -> DryRunResult:
        """Have the switch validate ``config`` (whole CLI text) without applying it.

        Polls every ``poll_interval`` seconds; :class:`AoscxTimeoutError` when the switch
        still says "pending" after ``timeout`` seconds.
        """
        what = "start dry-run"
        reply = self._send(
            "POST",
            "configs/running-config?dryrun",
            body=config.encode(),
            content_type="text/plain",
            what=what,
        )
        if reply.status not in (200, 202):
            raise self._failure(AoscxError, what, reply)
        deadline = time.monotonic() + timeout
        while True:
            status = self._get_json("configs/running-config?dryrun", what="poll dry-run")
            state = status.get("state")
            if state == "success":
                configs = status.get("configs")
                translated = configs.get("json") if isinstance(configs, dict) else None
                if not isinstance(translated, dict):
                    raise AoscxError(
                        f"dry-run on {self._where()} succeeded but returned no JSON config"
                    )
                return DryRunResult(ok=True, config=translated)
            if state == "error":
                errors = [self._scrub(_error_text(e)) for e in status.get("errors") or []]
                return DryRunResult(ok=False, errors=errors or ["(the switch gave no error text)"])
            if state != "pending":
                raise AoscxError(f"dry-run on {self._where()}: unexpected state {state!r}")
            if time.monotonic() >= deadline:
                raise AoscxTimeoutError(
                    f"dry-run on {self._where()} still pending after {timeout:g} s; "
                    "nothing was applied"
                )
            time.sleep(poll_interval)

    def save(self) -> None:
        """Copy running-config to startup-config (``write memory``), after a change by resource."""
        self._copy_config("running-config", "startup-config", what="save running-config to "
                          "startup-config (the change is running but not saved)")

    def checkpoint(self, name: str) -> None:
        """Save the running config as checkpoint ``name`` (replacing one of that name)."""
        self._copy_config(
            "running-config", _checkpoint_name(name), what=f"create checkpoint {name!r}"
        )

    def apply(
        self,
        config: str,
        *,
        checkpoint: str | None = DEFAULT_CHECKPOINT,
        confirm: bool = True,
        poll_interval: float = 0.5,
        dry_run_timeout: float = 60.0,
    ) -> ApplyResult:
        """Replace the running config with ``config`` (whole CLI text), safely.

        Dry-run first: a rejected candidate raises :class:`AoscxDryRunError` with the
        switch's error texts and the switch is left untouched.  A candidate equal to the
        running config writes nothing (``changed=False``).  Otherwise the running config
        is saved as ``checkpoint`` (skipped when None), the candidate is written, and with
        ``confirm`` the switch must still answer before the config is saved to
        startup-config.  A failed write or confirmation restores the checkpoint and raises
        :class:`AoscxApplyError`.  Without ``confirm`` the change stays in running-config
        only: a reload returns to the saved startup-config.
        """
        if checkpoint is not None:
            _checkpoint_name(checkpoint)
        verdict = self.dry_run(config, poll_interval=poll_interval, timeout=dry_run_timeout)
        if not verdict.ok:
            raise AoscxDryRunError(
                f"the switch {self._where()} rejected the config in its dry-run; nothing was "
                "applied:\n" + "\n".join(f"  {e}" for e in verdict.errors),
                errors=verdict.errors,
            )
        assert verdict.config is not None
        running = self.running_config()
        candidate = with_preserved_system(verdict.config, running)
        if candidate == running:
            log.info("running-config of %s already as intended", self._where())
            return ApplyResult(changed=False)
        if checkpoint is not None:
            self.checkpoint(checkpoint)
        what = "write running-config"
        try:
            reply = self._send(
                "PUT",
                "fullconfigs/running-config",
                body=json.dumps(candidate).encode(),
                content_type="application/json",
                what=what,
            )
        except AoscxError as e:
            raise self._rolled_back(what, e.status, e.switch_text, str(e), checkpoint) from e
        if reply.status not in (200, 201, 204):
            text = self._scrub(_switch_message(reply.text()))
            raise self._rolled_back(
                what,
                reply.status,
                text,
                f"{what} on {self._where()}: HTTP {reply.status}: {text}",
                checkpoint,
            )
        if not confirm:
            return ApplyResult(changed=True, checkpoint=checkpoint, confirmed=False)
        try:
            self.running_config()
        except AoscxError as e:
            raise self._rolled_back(
                "confirm",
                e.status,
                e.switch_text,
                f"the switch stopped answering after the write: {e}",
                checkpoint,
            ) from e
        self._copy_config(
            "running-config",
            "startup-config",
            what="save running-config to startup-config (the new config is running but not saved)",
        )
        return ApplyResult(changed=True, checkpoint=checkpoint, confirmed=True)

    # --- internals -----------------------------------------------------------

    def _rolled_back(
        self, what: str, status: int | None, switch_text: str, message: str, checkpoint: str | None
    ) -> AoscxApplyError:
        """Restore ``checkpoint`` after a failed write or confirm and build the error."""
        if checkpoint is None:
            return AoscxApplyError(
                f"{message}\nno checkpoint was taken; check the switch's running-config",
                status=status,
                switch_text=switch_text,
            )
        try:
            self._copy_config(
                checkpoint, "running-config", what=f"restore checkpoint {checkpoint!r}"
            )
        except AoscxError as e:
            return AoscxApplyError(
                f"{message}\nrestoring checkpoint {checkpoint!r} failed too: {e}\n"
                f"on the switch: checkpoint rollback {checkpoint}",
                status=status,
                switch_text=switch_text,
                checkpoint=checkpoint,
            )
        log.warning(
            "%s failed on %s; running-config restored from %r", what, self._where(), checkpoint
        )
        return AoscxApplyError(
            f"{message}\nrunning-config restored from checkpoint {checkpoint!r}",
            status=status,
            switch_text=switch_text,
            checkpoint=checkpoint,
            rolled_back=True,
        )

    def _copy_config(self, source: str, destination: str, *, what: str) -> None:
        source_uri = urllib.parse.quote(f"{self._prefix}fullconfigs/{source}", safe="")
        reply = self._send("PUT", f"fullconfigs/{destination}?from={source_uri}", what=what)
        if reply.status not in (200, 201, 204):
            raise self._failure(AoscxError, what, reply)

    def _get_json(self, path: str, *, what: str) -> dict[str, Any]:
        reply = self._send("GET", path, what=what)
        if reply.status != 200:
            raise self._failure(AoscxError, what, reply)
        try:
            value = json.loads(reply.body)
        except ValueError:
            raise AoscxError(f"{what} on {self._where()}: the answer is not JSON") from None
        if not isinstance(value, dict):
            raise AoscxError(f"{what} on {self._where()}: expected a JSON object")
        return value

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
        what: str,
    ) -> _Reply:
        """One HTTP exchange; non-2xx answers are returned, transport failures raised."""
        headers = {"Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if self._csrf_token is not None and method != "GET":
            headers["X-Csrf-Token"] = self._csrf_token
        request = urllib.request.Request(
            self._origin + self._prefix + path, data=body, headers=headers, method=method
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                reply = _Reply(
                    response.status, response.read(), response.headers.get("X-Csrf-Token")
                )
        except urllib.error.HTTPError as e:
            with e:
                reply = _Reply(e.code, e.read(), None)
        except (urllib.error.URLError, OSError) as e:
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            raise AoscxError(
                f"{what}: cannot reach {self._where()}: {self._scrub(str(reason))}"
            ) from None
        log.debug("%s %s%s -> %d", method, self._prefix, path.split("?")[0], reply.status)
        return reply

    def _failure(self, kind: type[AoscxError], what: str, reply: _Reply) -> AoscxError:
        text = self._scrub(_switch_message(reply.text()))
        where = "" if self._where() in what else f" on {self._where()}"
        return kind(
            f"{what}{where}: HTTP {reply.status}: {text}", status=reply.status, switch_text=text
        )

    def _scrub(self, text: str) -> str:
        """``text`` with the password, session cookies and CSRF token masked."""
        secrets = [self._password, self._csrf_token or ""]
        secrets += [c.value or "" for c in self._cookies]
        for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
            text = text.replace(secret, _MASK)
        return text

    def _where(self) -> str:
        return self._origin.split("://", 1)[1]


def with_preserved_system(candidate: dict[str, Any], running: dict[str, Any]) -> dict[str, Any]:
    """``candidate`` with the running config's management interface and subsystems.

    The dry-run's JSON does not carry a usable ``mgmt_intf``; pushing it as is could cut
    the switch off its management network (CANU grafts the same keys).
    """
    merged = copy.deepcopy(candidate)
    running_system = running.get("System")
    if not isinstance(running_system, dict):
        return merged
    system = merged.setdefault("System", {})
    for key in PRESERVED_SYSTEM_KEYS:
        if key in running_system:
            system[key] = copy.deepcopy(running_system[key])
    return merged


def _path_segment(value: str) -> str:
    """``value`` as one URL path segment (a prefix's ``/`` becomes ``%2F``, as pyaoscx does)."""
    return urllib.parse.quote_plus(value, safe="")


def _static_route_prefix(key: str, value: object) -> str:
    """The prefix of one entry of a static route listing.

    The listing maps an index to the route's URI (``.../static_routes/10.92.100.71%2F32``)
    or, with ``depth``, to the route itself (``{"prefix": ...}``); the index may be
    URL-encoded.
    """
    if isinstance(value, dict) and isinstance(value.get("prefix"), str):
        return str(value["prefix"])
    if isinstance(value, str) and "/static_routes/" in value:
        return urllib.parse.unquote_plus(value.rsplit("/static_routes/", 1)[1])
    return urllib.parse.unquote_plus(key)


def _checkpoint_name(name: str) -> str:
    if not _CHECKPOINT_NAME.fullmatch(name) or name in ("running-config", "startup-config"):
        raise ValueError(f"invalid checkpoint name {name!r}: letters, digits, '_', '-', '.'; 1-32")
    return name


def _error_text(error: object) -> str:
    """One dry-run error as text; AOS-CX gives strings, or objects with a message."""
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        message = error.get("message") or error.get("error")
        line = error.get("line") or error.get("line_number")
        if isinstance(message, str):
            return f"line {line}: {message}" if line is not None else message
    return json.dumps(error, sort_keys=True)


def _switch_message(text: str) -> str:
    """The switch's error text from a body that may be plain text, JSON or an HTML page."""
    text = text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        for key in ("message", "error", "errors"):
            if key in value:
                found = value[key]
                return found if isinstance(found, str) else json.dumps(found, sort_keys=True)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())[:500] or "(no text)"


def _tls_context(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if verify is True:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=verify)
