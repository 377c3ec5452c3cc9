"""A local HTTP(S) server that answers like an Aruba AOS-CX switch's REST API, for tests.

It keeps the "device": the running config as CLI text, the management interface and
subsystems (which a pushed JSON config must carry, or the switch "locks out" its sessions),
the startup config and named checkpoints.  It serves the calls
:mod:`spinelb.spine.aoscx_rest` makes:

- ``POST login`` (form ``username``/``password``; session cookie ``id``; optional CSRF
  token) and ``POST logout``; any other call without a live session gets 401;
- ``POST/GET configs/running-config?dryrun``: 202, then ``pending`` for
  ``pending_polls`` polls (None: forever), then ``success`` with the candidate in the
  fake's JSON form, or ``error`` with one text per line that starts with one of
  ``invalid_commands``.  A dry-run never changes the device;
- ``GET configs/running-config`` (JSON, or CLI text for ``Accept: text/plain``);
- ``GET fullconfigs`` (name -> URI), ``PUT fullconfigs/<name>`` with a JSON body, and
  ``PUT fullconfigs/<dst>?from=/rest/<v>/fullconfigs/<src>`` (checkpoint, restore, save);
- ``GET system/vrfs`` (name -> URI), ``GET system/vrfs/<vrf>/static_routes`` (prefix ->
  URI, the prefix URL-encoded in the URI as pyaoscx does) and ``DELETE
  system/vrfs/<vrf>/static_routes/<prefix>`` (204; 404 when absent).  Static routes live in
  the running config text as AOS-CX prints them (``ip route P NEXTHOP[ vrf NAME]``), so the
  REST view and the CLI text always agree; :meth:`FakeAoscx.add_static_route` pre-loads one.

The fake's JSON form of a config is ``{"System": {"cli": [lines], "bfd_enable": bool,
"mgmt_intf": {...}, "subsystems": {...}}, "Interface": {"vlan6": {"bfd_min_tx_interval": 500,
...}}}``: an invented stand-in for AOS-CX's schema, opaque to the client except for the two keys
it must preserve.  BFD is held as fields, the way a real switch keeps its configuration in a
database and prints the CLI from it: the global ``bfd`` is ``System.bfd_enable`` (printed
before the first interface) and an SVI's ``bfd min-transmit-interval`` / ``min-receive-interval``
/ ``detect-multiplier`` are fields of that interface (printed last in its block, in that order,
and not at all at AOS-CX's default of 3000 / 3000 / 5).  So a pushed config reads back
normalised, as from a real switch.  ``bfd_enable`` is the real name (AOS-CX's ``bgp_neighbors``
carry one too; ``neighbor X fall-over bfd`` stays a CLI line here); the interface field names
are the fake's own.  The dry-run refuses a timer outside AOS-CX's ranges (transmit 50-20000 ms,
receive 100-20000 ms, multiplier 1-5).  ``fail`` injects HTTP errors for one
(method, path with query): a queue of outcomes, one per request, ``None`` meaning "answer normally";
``{session}`` in an injected text becomes the caller's session cookie (a switch echoing a
secret).  ``resources`` answers further ``GET``s with JSON: the path after ``/rest/v10.09/``
(query included) -> the answer, e.g. ``system/vrfs/default/routes?depth=2`` -> the route
table; any other path is 404.  ``cut_sessions_on_write`` makes a pushed running config end every REST session
(a config that moves the management interface).  ``requests`` records every (method,
path with query) in order.
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API = "/rest/v10.09"
COOKIE = "id"
_STATIC_ROUTE = re.compile(r"^(?:ip|ipv6) route (\S+) .*?(?: vrf (\S+))?$")
_STATIC_ROUTES_PATH = re.compile(r"^system/vrfs/([^/]+)/static_routes(?:/([^/]+))?$")
_SVI = re.compile(r"^interface vlan (\d+)$")
#: CLI timer of an SVI -> (field of the fake's Interface JSON, AOS-CX's default, lowest, highest)
BFD_TIMERS = {
    "bfd min-transmit-interval": ("bfd_min_tx_interval", 3000, 50, 20000),
    "bfd min-receive-interval": ("bfd_min_rx_interval", 3000, 100, 20000),
    "bfd detect-multiplier": ("bfd_detect_multiplier", 5, 1, 5),
}


def _bfd_timer(line: str) -> tuple[str, int] | None:
    """(CLI timer, value) of an SVI line setting a BFD timer, else None."""
    words = line.split()
    setting = " ".join(words[:2])
    if len(words) == 3 and setting in BFD_TIMERS and words[2].isdigit():
        return setting, int(words[2])
    return None


def cli_to_json(cli: str) -> dict[str, Any]:
    """CLI text as the fake's JSON: BFD as fields, every other line in ``System.cli``."""
    lines: list[str] = []
    interfaces: dict[str, dict[str, int]] = {}
    enabled = False
    svi: str | None = None
    for line in cli.splitlines():
        if not line.startswith(" "):
            match = _SVI.match(line)
            svi = f"vlan{match.group(1)}" if match else None
            if line == "bfd":
                enabled = True
                continue
        timer = _bfd_timer(line.strip()) if svi is not None and line.startswith(" ") else None
        if timer is None:
            lines.append(line)
            continue
        field_name, default, _, _ = BFD_TIMERS[timer[0]]
        fields = interfaces.setdefault(svi or "", {})
        fields.pop(field_name, None)
        if timer[1] != default:
            fields[field_name] = timer[1]
    return {"System": {"cli": lines, "bfd_enable": enabled},
            "Interface": {name: fields for name, fields in interfaces.items() if fields}}


def json_to_cli(config: dict[str, Any]) -> str:
    """The CLI text a switch prints for the fake's JSON (the inverse of :func:`cli_to_json`)."""
    system = config["System"]
    interfaces = {name: dict(fields) for name, fields in (config.get("Interface") or {}).items()}
    out: list[str] = []

    def timers(name: str) -> list[str]:
        fields = interfaces.pop(name, {})
        return [f"    {setting} {fields[field_name]}"
                for setting, (field_name, _, _, _) in BFD_TIMERS.items() if field_name in fields]

    svi: str | None = None
    for line in system["cli"]:
        if not line.startswith(" "):
            if svi is not None:
                out += timers(svi)
            match = _SVI.match(line)
            svi = f"vlan{match.group(1)}" if match else None
        out.append(line)
    if svi is not None:
        out += timers(svi)
    for name in sorted(interfaces):
        out += [f"interface vlan {name[len('vlan'):]}", *timers(name)]
    if system.get("bfd_enable"):
        at = next((i for i, line in enumerate(out) if line.startswith("interface ")), len(out))
        out.insert(at, "bfd")
    return "".join(f"{line}\n" for line in out)


@dataclass
class Snapshot:
    """One stored config: CLI text plus the system parts that are not CLI here."""

    cli: str
    mgmt_intf: dict[str, Any]
    subsystems: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        config = cli_to_json(self.cli)
        config["System"].update(mgmt_intf=dict(self.mgmt_intf), subsystems=dict(self.subsystems))
        return config


@dataclass
class FakeAoscx:
    """The switch's state and knobs; :meth:`start` serves it on 127.0.0.1:<free port>."""

    username: str = "admin"
    password: str = "s3cret-Pa55"
    running_config: str = "hostname sw-spine-001\n"
    mgmt_intf: dict[str, Any] = field(
        default_factory=lambda: {"mode": "static", "ip": "192.0.2.10/24"}
    )
    subsystems: dict[str, Any] = field(default_factory=lambda: {"chassis,1": {"ok": True}})
    startup_config: str = "hostname sw-spine-001\n"
    checkpoints: dict[str, Snapshot] = field(default_factory=dict)
    pending_polls: int | None = 1
    invalid_commands: tuple[str, ...] = ("bogus",)
    csrf: bool = False
    fail: dict[tuple[str, str], list[tuple[int, str] | None]] = field(default_factory=dict)
    cut_sessions_on_write: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    logins: int = 0
    logouts: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._dryrun: dict[str, Any] | None = None
        self._polls_left = 0
        self._csrf_tokens: dict[str, str] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.tls = False

    # --- lifecycle -----------------------------------------------------------

    def start(self, tls: ssl.SSLContext | None = None) -> int:
        """Serve in a thread; returns the port."""
        fake = self

        class Handler(_Handler):
            switch = fake

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        self.tls = tls is not None
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        self.port = int(server.server_address[1])
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    # --- the device ----------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return Snapshot(self.running_config, dict(self.mgmt_intf), dict(self.subsystems))

    def _restore(self, snap: Snapshot) -> None:
        self.running_config = snap.cli
        self.mgmt_intf = dict(snap.mgmt_intf)
        self.subsystems = dict(snap.subsystems)

    def _stored(self, name: str) -> Snapshot | None:
        if name == "running-config":
            return self.snapshot()
        if name == "startup-config":
            return Snapshot(self.startup_config, dict(self.mgmt_intf), dict(self.subsystems))
        return self.checkpoints.get(name)

    def _store(self, name: str, snap: Snapshot) -> None:
        if name == "running-config":
            self._restore(snap)
            if not snap.mgmt_intf or self.cut_sessions_on_write:
                # A config without the management interface cuts every REST session.
                self.sessions.clear()
        elif name == "startup-config":
            self.startup_config = snap.cli
        else:
            self.checkpoints[name] = snap

    def add_static_route(self, prefix: str, next_hop: str, vrf: str = "default") -> None:
        """Configure a static route by hand, as ``ip route`` in the running config."""
        family = "ipv6" if ":" in prefix else "ip"
        suffix = "" if vrf == "default" else f" vrf {vrf}"
        self.running_config += f"{family} route {prefix} {next_hop}{suffix}\n"

    def static_routes(self) -> dict[str, dict[str, list[str]]]:
        """Per VRF, per prefix, the running config's static route lines."""
        routes: dict[str, dict[str, list[str]]] = {}
        for line in self.running_config.splitlines():
            match = _STATIC_ROUTE.match(line)
            if match:
                vrf = match.group(2) or "default"
                routes.setdefault(vrf, {}).setdefault(match.group(1), []).append(line)
        return routes

    def vrfs(self) -> list[str]:
        """``default``, every ``vrf NAME`` of the running config and every static route's VRF."""
        named = {line.split()[1] for line in self.running_config.splitlines()
                 if line.startswith("vrf ") and len(line.split()) == 2}
        return sorted({"default", *named, *self.static_routes()})

    def _check(self, cli: str) -> list[str]:
        errors = []
        for n, line in enumerate(cli.splitlines(), 1):
            timer = _bfd_timer(line.strip())
            if line.strip().startswith(self.invalid_commands):
                errors.append(f"Line {n}: % Invalid input: {line.strip()}")
            elif timer is not None and not BFD_TIMERS[timer[0]][2] <= timer[1] <= BFD_TIMERS[
                    timer[0]][3]:
                low, high = BFD_TIMERS[timer[0]][2:]
                errors.append(f"Line {n}: % Invalid range: {line.strip()} ({low}-{high})")
        return errors


class _Handler(BaseHTTPRequestHandler):
    switch: FakeAoscx
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing ------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake = self.switch
        with fake._lock:
            target = url.path + (f"?{url.query}" if url.query else "")
            fake.requests.append((method, target))
            queue = fake.fail.get((method, target))
            injected = queue.pop(0) if queue else None
            if injected is not None:
                cookie = SimpleCookie(self.headers.get("Cookie") or "").get(COOKIE)
                text = injected[1].replace("{session}", cookie.value if cookie else "")
                self._reply(injected[0], text.encode(), "text/plain")
                return
            if not url.path.startswith(API + "/"):
                self._json(404, {"message": "unknown API version"})
                return
            path = url.path[len(API) + 1 :]
            if method == "POST" and path == "login":
                self._login(body)
                return
            session = self._session()
            if session is None:
                self._json(401, {"message": "Login required"})
                return
            token = self.headers.get("X-Csrf-Token")
            if method != "GET" and fake.csrf and token != fake._csrf_tokens.get(session):
                self._json(401, {"message": "Invalid or missing CSRF token"})
                return
            self._route(method, path, url.query, body, session)

    def _route(self, method: str, path: str, query: str, body: bytes, session: str) -> None:
        fake = self.switch
        if method == "POST" and path == "logout":
            fake.sessions.discard(session)
            fake.logouts += 1
            self._reply(200, b"", "text/plain", expire=True)
        elif path == "configs/running-config" and query == "dryrun":
            self._dryrun(method, body)
        elif method == "GET" and path in ("configs/running-config", "fullconfigs/running-config"):
            if self.headers.get("Accept") == "text/plain":
                self._reply(200, fake.running_config.encode(), "text/plain")
            else:
                self._json(200, fake.snapshot().as_json())
        elif method == "GET" and path == "fullconfigs":
            names = ["running-config", "startup-config", *fake.checkpoints]
            self._json(200, {n: f"{API}/fullconfigs/{n}" for n in names})
        elif method == "PUT" and path.startswith("fullconfigs/"):
            self._put_config(path.split("/", 1)[1], query, body)
        elif method == "GET" and path == "system/vrfs":
            self._json(200, {vrf: f"{API}/system/vrfs/{vrf}" for vrf in fake.vrfs()})
        elif method in ("GET", "DELETE") and _STATIC_ROUTES_PATH.match(path):
            self._static_routes(method, path)
        elif method == "GET" and (path + (f"?{query}" if query else "")) in fake.resources:
            self._json(200, fake.resources[path + (f"?{query}" if query else "")])
        else:
            self._json(404, {"message": f"no such resource: {method} {path}"})

    def _static_routes(self, method: str, path: str) -> None:
        fake = self.switch
        match = _STATIC_ROUTES_PATH.match(path)
        assert match is not None
        vrf = urllib.parse.unquote_plus(match.group(1))
        if vrf not in fake.vrfs():
            self._json(404, {"message": f"no such VRF: {vrf}"})
            return
        routes = fake.static_routes().get(vrf, {})
        if method == "GET" and match.group(2) is None:
            base = f"{API}/system/vrfs/{match.group(1)}/static_routes/"
            self._json(200, {prefix: base + urllib.parse.quote_plus(prefix, safe="")
                             for prefix in routes})
            return
        prefix = urllib.parse.unquote_plus(match.group(2) or "")
        if prefix not in routes:
            self._json(404, {"message": f"no such static route: {prefix}"})
        elif method == "GET":
            self._json(200, {"prefix": prefix, "address_family":
                             "ipv6" if ":" in prefix else "ipv4"})
        else:
            gone = set(routes[prefix])
            fake.running_config = "".join(
                f"{line}\n" for line in fake.running_config.splitlines() if line not in gone)
            self._reply(204, b"", "text/plain")

    def _login(self, body: bytes) -> None:
        fake = self.switch
        form = urllib.parse.parse_qs(body.decode())
        if form.get("username") != [fake.username] or form.get("password") != [fake.password]:
            self._reply(401, b"Login failed: invalid username or password", "text/plain")
            return
        session = secrets.token_hex(16)
        fake.sessions.add(session)
        fake.logins += 1
        extra = {}
        if fake.csrf:
            fake._csrf_tokens[session] = extra["X-Csrf-Token"] = secrets.token_hex(8)
        self._reply(200, b"", "text/plain", cookie=session, headers=extra)

    def _dryrun(self, method: str, body: bytes) -> None:
        fake = self.switch
        if method == "POST":
            cli = body.decode()
            errors = fake._check(cli)
            candidate = cli_to_json(cli)
            fake._dryrun = (
                {"state": "error", "errors": errors}
                if errors
                else {"state": "success", "configs": {"json": candidate}}
            )
            fake._polls_left = fake.pending_polls if fake.pending_polls is not None else -1
            self._reply(202, b"", "text/plain")
        elif method == "GET":
            if fake._dryrun is None:
                self._json(404, {"message": "no dry-run requested"})
            elif fake._polls_left != 0:
                fake._polls_left -= 1 if fake._polls_left > 0 else 0
                self._json(200, {"state": "pending"})
            else:
                self._json(200, fake._dryrun)
        else:
            self._json(405, {"message": "method not allowed"})

    def _put_config(self, name: str, query: str, body: bytes) -> None:
        fake = self.switch
        source = urllib.parse.parse_qs(query).get("from")
        if source:
            prefix = f"{API}/fullconfigs/"
            snap = fake._stored(source[0][len(prefix) :]) if source[0].startswith(prefix) else None
            if snap is None:
                self._json(404, {"message": f"no such config: {source[0]}"})
                return
        else:
            try:
                config = json.loads(body)
                system = config["System"]
                snap = Snapshot(
                    json_to_cli(config),
                    dict(system.get("mgmt_intf") or {}),
                    dict(system.get("subsystems") or {}),
                )
            except (ValueError, KeyError, TypeError):
                self._json(400, {"message": "malformed configuration JSON"})
                return
        fake._store(name, snap)
        self._reply(200, b"", "text/plain")

    def _session(self) -> str | None:
        cookie = SimpleCookie(self.headers.get("Cookie") or "")
        morsel = cookie.get(COOKIE)
        if morsel is not None and morsel.value in self.switch.sessions:
            return morsel.value
        return None

    def _json(self, status: int, value: object) -> None:
        self._reply(status, json.dumps(value).encode(), "application/json")

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        cookie: str | None = None,
        expire: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        secure = "; Secure" if self.switch.tls else ""
        if cookie is not None:
            self.send_header("Set-Cookie", f"{COOKIE}={cookie}; Path=/; HttpOnly{secure}")
        if expire:
            self.send_header("Set-Cookie", f"{COOKIE}=; Path=/; Max-Age=0{secure}")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
