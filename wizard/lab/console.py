"""The Palette system console API that the management cluster serves at its VIP (HTTPS :443 on a real install).

Covers what the wizard drives after the cluster is up: the ``admin``/``admin`` first login with its forced password
reset, activation (the lab plays Spectro support and hands out activation keys), the installed version and the
in-cluster OCI registry (Zot) with its sync. Paths and field names follow palette-sdk-go as quoted in the reference
(§4); where it is silent the choice is commented at the spot.

The console exists only once the management cluster runs (``available``); before that its address answers 503, as
the cluster's ingress does while Palette is not up. The registry's content is shared with the nodes' Local UI: pack
bundles uploaded to a node's Local UI (reference §1.7, "Content → Upload Content") land in the Zot registry the
cluster at the node's VIP serves, and the Local UI lists it (``/v1/edge-mgmt/cluster/registry/content/details``).
The functions at the end of this module are that Local UI side; the lab finds the console of a VIP through
:func:`serving`, the way a node reaches the registry at ``<vip>:30003``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from wizard.lab import cluster as lab_cluster
from wizard.lab.certs import NodeCertificate
from wizard.lab.node import LocalUIError, NodeState, UploadedContent
from wizard.lab.timeline import Timeline
from wizard.lab.tlsserver import BackgroundServer, TLSHTTPServer

log = logging.getLogger(__name__)

ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "admin"  # noqa: S105 - the documented first-login default (reference §1.5)
TOKEN_TTL = 15 * 60.0  # reference §4: "Token valid 15 min"
TRIAL_DAYS = 30  # reference §4: 30-day trial from install
LICENSE_DAYS = 365  # the reference is silent on a key's term; a year is the lab's choice
MIN_PASSWORD_LENGTH = 8
DEFAULT_SYNC_DURATION = 60.0
DEFAULT_PACK_COUNT = 12
DEFAULT_VERSION = "4.7.3"
MAX_JSON_BODY = 1 << 20

ACTIVE, PENDING, INACTIVE = "Active", "Pending", "Inactive"
SYNC_IDLE, SYNC_IN_PROGRESS, SYNC_COMPLETED, SYNC_FAILED = "Idle", "InProgress", "Completed", "Failed"

_KEY_PREFIX = "lab-act-"
PACKS_DEPLOYED_AT = next(s.at for s in lab_cluster.STAGES if s.type == "PacksDeployed")


class ConsoleError(Exception):
    """A refused request; the server replies with ``status`` and a ``{"code","message","status"}`` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def iso8601(ts: float) -> str:
    """Palette's timestamp form, with milliseconds and a ``Z``."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def _object_id() -> str:
    # Palette uids are 24-hex MongoDB ObjectIds.
    return secrets.token_hex(12)


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 1_000)


@dataclass(frozen=True)
class ActivationKey:
    """What the lab's "support" issued: ``key`` is the string the operator pastes into the console."""

    key: str
    key_uid: str
    system_uid: str
    plan_uid: str


@dataclass
class _Session:
    token: str
    username: str
    expires_at: float


@dataclass
class _Sync:
    state: str = SYNC_IDLE
    started_at: float | None = None
    last_run: float | None = None
    last_synced: float | None = None
    fail_message: str | None = None  # captured when the run starts, so flipping the knob mid-run changes nothing
    message: str = ""
    total: int = 0


@dataclass(frozen=True)
class PackContent:
    """One pack bundle imported into the registry."""

    name: str
    version: str
    size: int
    sha256: str
    added_at: float


@dataclass
class _Registry:
    uid: str
    name: str
    endpoint: str
    base_content_path: str
    sync: _Sync = field(default_factory=_Sync)
    packs: dict[tuple[str, str], PackContent] = field(default_factory=dict)


class SystemConsoleState:
    """Everything the system console remembers; every public method is thread-safe and reads time from ``clock``."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        system_uid: str | None = None,
        registry_endpoint: str = "127.0.0.1:30003",
        version: str = DEFAULT_VERSION,
        sync_duration: float = DEFAULT_SYNC_DURATION,
        pack_count: int = DEFAULT_PACK_COUNT,
        available: Callable[[], bool] | None = None,
    ) -> None:
        self.clock = clock
        # False until the management cluster runs; the server then answers every request with 503.
        self.available: Callable[[], bool] = available or (lambda: True)
        self.lock = threading.RLock()
        self.installed_at = clock()
        self.system_uid = system_uid or _object_id()  # shown in the console as the "Product Setup ID"
        self.version = version
        self.sync_duration = sync_duration
        self.timeline: Timeline | None = None  # the lab's ledger of appliance work (wizard.lab.timeline)
        self.pack_count = pack_count
        # Fault knob: while set, a sync started from now on ends Failed with this message.
        self.sync_fault: str | None = None
        self.admin_email = ""
        self._salt = secrets.token_bytes(16)
        self._digest = _hash_password(DEFAULT_ADMIN_PASSWORD, self._salt)
        self._reset_required = True
        self._sessions: dict[str, _Session] = {}
        self._issued: dict[str, ActivationKey] = {}  # key_uid → key, for keys not yet used
        self._used: set[str] = set()
        self._activated_at: float | None = None
        self._license_expires_at: float | None = None
        self._activation_key_uid = ""
        self._plan_uid = ""
        self.registry = _Registry(_object_id(), "Zot", registry_endpoint, "spectro-content")

    # -- Accounts and sessions --

    @property
    def password_reset_required(self) -> bool:
        with self.lock:
            return self._reset_required

    def _check_password(self, password: str) -> bool:
        return hmac.compare_digest(self._digest, _hash_password(password, self._salt))

    def login(self, username: str, password: str) -> tuple[str, bool]:
        """Returns a new token and ``IsPasswordReset`` (true while the default password must still be changed)."""
        with self.lock:
            if username != ADMIN_USERNAME or not self._check_password(password):
                raise ConsoleError(401, "InvalidCredentials", "invalid username or password")
            now = self.clock()
            self._sessions = {t: s for t, s in self._sessions.items() if s.expires_at > now}
            token = secrets.token_urlsafe(32)
            self._sessions[token] = _Session(token, username, now + TOKEN_TTL)
            return token, self._reset_required

    def authenticate(self, token: str | None) -> str:
        """The username behind ``token``; 401 when missing, unknown or past its 15 minutes."""
        if not token:
            raise ConsoleError(401, "Unauthorized", "an Authorization token is required")
        with self.lock:
            session = self._sessions.get(token)
            if session is None:
                raise ConsoleError(401, "Unauthorized", "invalid token")
            if self.clock() >= session.expires_at:
                del self._sessions[token]
                raise ConsoleError(401, "TokenExpired", "the token has expired; log in again")
            return session.username

    def reset_password(self, email: str, old_password: str, new_password: str) -> None:
        with self.lock:
            # 401 for a wrong current password, as the node's Local UI answers the same mistake; the body's code
            # (InvalidCredentials, not TokenExpired) tells a client not to log in again.
            if not self._check_password(old_password):
                raise ConsoleError(401, "InvalidCredentials", "the current password is not correct")
            if "@" not in email.strip("@") or any(c.isspace() for c in email):
                raise ConsoleError(400, "InvalidEmail", "a valid email address is required")
            if len(new_password) < MIN_PASSWORD_LENGTH:
                raise ConsoleError(
                    400, "WeakPassword", f"the new password must have at least {MIN_PASSWORD_LENGTH} characters"
                )
            if new_password == old_password:
                raise ConsoleError(400, "WeakPassword", "the new password must differ from the current one")
            self._salt = secrets.token_bytes(16)
            self._digest = _hash_password(new_password, self._salt)
            self.admin_email = email
            # Tokens issued before the reset stay valid: the gate is the account's state, not the token's.
            self._reset_required = False

    # -- Activation --

    @property
    def trial_expires_at(self) -> float:
        return self.installed_at + TRIAL_DAYS * 86400

    def issue_activation_key(self, *, system_uid: str | None = None) -> ActivationKey:
        """Play Spectro support: a single-use key for this install (or, to test rejection, for ``system_uid``)."""
        target = system_uid or self.system_uid
        key_uid, plan_uid = _object_id(), _object_id()
        payload = json.dumps({"systemUid": target, "keyUid": key_uid, "planUid": plan_uid}, separators=(",", ":"))
        key = _KEY_PREFIX + base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        issued = ActivationKey(key, key_uid, target, plan_uid)
        if target == self.system_uid:
            with self.lock:
                self._issued[key_uid] = issued
        return issued

    def activate(self, key: str) -> None:
        claims = _decode_key(key)
        with self.lock:
            if claims is None:
                raise ConsoleError(400, "InvalidActivationKey", "the activation key is not valid")
            if claims["systemUid"] != self.system_uid:
                raise ConsoleError(400, "InvalidActivationKey", "the activation key was issued for another system")
            if claims["keyUid"] in self._used:
                raise ConsoleError(400, "ActivationKeyUsed", "the activation key has already been used")
            issued = self._issued.pop(claims["keyUid"], None)
            if issued is None or not hmac.compare_digest(issued.key, key):
                raise ConsoleError(400, "InvalidActivationKey", "the activation key is not valid")
            now = self.clock()
            self._used.add(issued.key_uid)
            self._activated_at = now
            self._license_expires_at = now + LICENSE_DAYS * 86400
            self._activation_key_uid = issued.key_uid
            self._plan_uid = issued.plan_uid

    def activation_state(self) -> str:
        # Reading of the SDK's enum: Pending while the trial runs, Inactive once it lapsed unactivated (or the
        # licence ran out), Active after a key was accepted.
        with self.lock:
            now = self.clock()
            if self._license_expires_at is not None:
                return ACTIVE if now < self._license_expires_at else INACTIVE
            return PENDING if now < self.trial_expires_at else INACTIVE

    def activation(self) -> dict[str, Any]:
        with self.lock:
            status: dict[str, Any] = {"state": self.activation_state()}
            if self._activated_at is not None:  # omitted, not null, until the first activation
                status["lastActivatedAt"] = iso8601(self._activated_at)
            spec = {
                "activationKeyUid": self._activation_key_uid,
                "planUid": self._plan_uid,
                "systemUid": self.system_uid,
            }
            return {"spec": spec, "status": status}

    def activation_summary(self) -> dict[str, Any]:
        with self.lock:
            expires = self._license_expires_at if self._license_expires_at is not None else self.trial_expires_at
            return {"status": {"state": self.activation_state(), "expiresAt": iso8601(expires)}}

    # -- Version --

    def installed_version(self) -> dict[str, Any]:
        # The SDK model is not quoted in the reference; version plus install time is what a wizard can use.
        return {"version": self.version, "installedAt": iso8601(self.installed_at)}

    # -- OCI registry and its sync --

    def _advance_sync(self, sync: _Sync, now: float) -> None:
        if sync.state != SYNC_IN_PROGRESS or sync.started_at is None:
            return
        if now - sync.started_at < self.sync_duration:
            return
        if sync.fail_message is not None:
            sync.state, sync.message = SYNC_FAILED, sync.fail_message
        else:
            sync.state, sync.message = SYNC_COMPLETED, f"synced {sync.total} of {sync.total} packs"
            sync.last_synced = sync.started_at + self.sync_duration

    def _registry(self, uid: str) -> _Registry:
        if uid != self.registry.uid:
            raise ConsoleError(404, "RegistryNotFound", f"no OCI registry with uid {uid}")
        return self.registry

    def start_sync(self, uid: str, *, force: bool) -> None:
        with self.lock:
            sync = self._registry(uid).sync
            now = self.clock()
            self._advance_sync(sync, now)
            # A repeated request during a run is a no-op so a retrying client cannot restart it; forceSync restarts.
            if sync.state == SYNC_IN_PROGRESS and not force:
                return
            sync.state, sync.started_at, sync.last_run = SYNC_IN_PROGRESS, now, now
            if self.timeline is not None:
                self.timeline.record("registry-sync", "console", now, now + self.sync_duration)
            # The content bundle's own packs plus every pack bundle uploaded since.
            sync.fail_message, sync.total = self.sync_fault, self.pack_count + len(self.registry.packs)
            sync.message = f"synced 0 of {sync.total} packs"

    def sync_status(self, uid: str) -> dict[str, Any]:
        with self.lock:
            sync = self._registry(uid).sync
            now = self.clock()
            self._advance_sync(sync, now)
            return self._sync_body(sync, now)

    def _sync_body(self, sync: _Sync, now: float) -> dict[str, Any]:
        synced = 0
        if sync.state == SYNC_COMPLETED:
            synced = sync.total
        elif sync.state == SYNC_IN_PROGRESS and sync.started_at is not None and self.sync_duration > 0:
            synced = min(sync.total, math.floor(sync.total * (now - sync.started_at) / self.sync_duration))
            sync.message = f"synced {synced} of {sync.total} packs"
        body: dict[str, Any] = {"isSyncSupported": True, "status": sync.state, "message": sync.message}
        if sync.last_run is not None:
            body["lastRunTime"] = iso8601(sync.last_run)
        if sync.last_synced is not None:
            body["lastSyncedTime"] = iso8601(sync.last_synced)
        # Lab extension beyond the SDK's v1RegistrySyncStatus: the counts the console's progress shows.
        body["totalPacks"], body["syncedPacks"] = sync.total, synced
        return body

    def import_pack(self, name: str, version: str, size: int, sha256: str) -> PackContent:
        """Record a pack bundle in the registry (a re-upload of the same name and version replaces it)."""
        with self.lock:
            pack = PackContent(name, version, size, sha256, self.clock())
            self.registry.packs[(name, version)] = pack
            return pack

    def packs(self) -> list[PackContent]:
        with self.lock:
            return sorted(self.registry.packs.values(), key=lambda p: p.added_at)

    def registries_summary(self) -> dict[str, Any]:
        with self.lock:
            reg = self.registry
            now = self.clock()
            self._advance_sync(reg.sync, now)
            item = {
                "metadata": {"uid": reg.uid, "name": reg.name},
                "spec": {
                    "endpoint": reg.endpoint,
                    "baseContentPath": reg.base_content_path,
                    "isPrivate": True,
                    "providerType": "zot",
                    "scope": "system",
                },
                "status": {"syncStatus": self._sync_body(reg.sync, now)},
            }
            return {"items": [item]}


def _decode_key(key: str) -> dict[str, str] | None:
    if not key.startswith(_KEY_PREFIX):
        return None
    raw = key.removeprefix(_KEY_PREFIX)
    try:
        claims = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict) or not all(isinstance(claims.get(k), str) for k in ("systemUid", "keyUid")):
        return None
    return cast(dict[str, str], claims)


# -- Routes --------------------------------------------------------------------------------------------------------

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


@dataclass
class _Request:
    handler: _Handler
    state: SystemConsoleState
    match: re.Match[str]
    query: dict[str, list[str]]

    def body(self) -> dict[str, Any]:
        return self.handler.read_json_object()


@dataclass
class _Reply:
    status: int
    body: Any = None


_Route = Callable[[_Request], _Reply]
# (method, path regex, public, allowed before the password reset, handler)
_ROUTES: list[tuple[str, re.Pattern[str], bool, bool, _Route]] = []


def _route(
    method: str, pattern: str, *, public: bool = False, before_reset: bool = False
) -> Callable[[_Route], _Route]:
    def register(fn: _Route) -> _Route:
        _ROUTES.append((method, re.compile(pattern + r"\Z"), public, before_reset, fn))
        return fn

    return register


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise ConsoleError(400, "BadRequest", f"{name} is required")
    return value


@_route("POST", r"/v1/auth/syslogin", public=True)
def _syslogin(req: _Request) -> _Reply:
    body = req.body()
    token, reset = req.state.login(_string(body, "username"), _string(body, "password"))
    return _Reply(200, {"Authorization": token, "IsPasswordReset": reset})


@_route("PATCH", r"/v1/system/admin/password/reset", before_reset=True)
def _password_reset(req: _Request) -> _Reply:
    body = req.body()
    req.state.reset_password(_string(body, "email"), _string(body, "oldPassword"), _string(body, "newPassword"))
    return _Reply(204)


@_route("PATCH", r"/v1/system/admin/email")
def _admin_email(req: _Request) -> _Reply:
    email = _string(req.body(), "email")
    with req.state.lock:
        if "@" not in email.strip("@") or any(c.isspace() for c in email):
            raise ConsoleError(400, "InvalidEmail", "a valid email address is required")
        req.state.admin_email = email
    return _Reply(204)


@_route("GET", r"/v1/system/activation")
def _activation(req: _Request) -> _Reply:
    return _Reply(200, req.state.activation())


@_route("GET", r"/v1/activations/system")
def _activation_summary(req: _Request) -> _Reply:
    return _Reply(200, req.state.activation_summary())


@_route("POST", r"/v1/system/activate")
def _activate(req: _Request) -> _Reply:
    req.state.activate(_string(req.body(), "activationKey"))
    return _Reply(200, req.state.activation())


@_route("GET", r"/v1/system/version/installed")
def _version(req: _Request) -> _Reply:
    return _Reply(200, req.state.installed_version())


@_route("GET", r"/v1/registries/oci/summary")
def _registries(req: _Request) -> _Reply:
    return _Reply(200, req.state.registries_summary())


@_route("POST", r"/v1/registries/oci/(?P<uid>[^/]+)/basic/sync")
def _sync(req: _Request) -> _Reply:
    raw = (req.query.get("forceSync") or [""])[0]
    if raw and raw not in _TRUE | _FALSE:
        raise ConsoleError(400, "BadRequest", "forceSync must be true or false")
    req.state.start_sync(req.match["uid"], force=raw in _TRUE)
    return _Reply(202)


@_route("GET", r"/v1/registries/oci/(?P<uid>[^/]+)/basic/sync/status")
def _sync_status(req: _Request) -> _Reply:
    return _Reply(200, req.state.sync_status(req.match["uid"]))


# -- HTTP plumbing -------------------------------------------------------------------------------------------------


def _token(handler: BaseHTTPRequestHandler) -> str | None:
    header = handler.headers.get("Authorization")
    if header and header.strip():
        return header.strip()
    cookie_header = handler.headers.get("Cookie")
    if cookie_header:
        cookies: SimpleCookie = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookies.load(cookie_header)
        morsel = cookies.get("Authorization")
        if morsel is not None and morsel.value:
            return morsel.value
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SystemConsole-lab"
    sys_version = ""
    body_read = False

    @property
    def console(self) -> _TLSServer:
        return cast(_TLSServer, self.server)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("system console: %s", format % args)

    def _length(self) -> int:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ConsoleError(411, "LengthRequired", "send a Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_JSON_BODY:
            self.close_connection = True
            raise ConsoleError(400, "BadRequest", "invalid or too large Content-Length")
        return length

    def read_json_object(self) -> dict[str, Any]:
        length = self._length()
        raw = self.rfile.read(length) if length else b""
        self.body_read = True
        if len(raw) != length:
            self.close_connection = True
            raise ConsoleError(400, "BadRequest", "the request body ended early")
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            raise ConsoleError(400, "BadRequest", f"the request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ConsoleError(400, "BadRequest", "the request body must be a JSON object")
        return body

    def _drain(self) -> None:
        # An unread body would be parsed as the next request on a kept-alive connection.
        if self.body_read:
            return
        self.body_read = True
        try:
            length = self._length()
        except ConsoleError:
            return
        if length:
            self.rfile.read(length)

    def _send(self, reply: _Reply) -> None:
        self._drain()
        payload = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        if reply.body is not None:
            self.send_header("Content-Type", "application/json")
        if reply.status != 204:
            self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _error(self, err: ConsoleError) -> None:
        self._send(_Reply(err.status, {"code": err.code, "message": err.message, "status": err.status}))

    def _dispatch(self) -> None:
        self.body_read = False
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        state = self.console.state
        try:
            if not state.available():
                raise ConsoleError(503, "ServiceUnavailable", "Palette is not running yet")
            found = [(r, m) for r in _ROUTES if (m := r[1].match(path))]
            if not found:
                raise ConsoleError(404, "NotFound", f"no such path: {path}")
            chosen = next(((r, m) for r, m in found if r[0] == self.command), None)
            if chosen is None:
                raise ConsoleError(405, "MethodNotAllowed", f"{self.command} is not allowed on {path}")
            (_, _, public, before_reset, handler), match = chosen
            if not public:
                state.authenticate(_token(self))
                if not before_reset and state.password_reset_required:
                    raise ConsoleError(
                        403, "PasswordResetRequired", "the admin password must be changed before using the console"
                    )
            reply = handler(_Request(self, state, match, parse_qs(url.query, keep_blank_values=True)))
        except ConsoleError as err:
            self._error(err)
        except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
            log.debug("system console: connection lost during %s %s: %s", self.command, path, exc)
            self.close_connection = True
        except Exception:
            log.exception("system console: %s %s failed", self.command, path)
            self.close_connection = True
            self._error(ConsoleError(500, "InternalError", "internal error in the simulated console"))
        else:
            self._send(reply)


class _TLSServer(TLSHTTPServer):
    def __init__(
        self, address: tuple[str, int], context: ssl.SSLContext, state: SystemConsoleState, timeout: float
    ) -> None:
        self.state = state
        super().__init__(address, context, _Handler, socket_timeout=timeout, label="system-console")


class SystemConsoleServer(BackgroundServer):
    """The console over TLS on ``host``; ``port=0`` picks a free port, kept across restarts."""

    def __init__(
        self,
        state: SystemConsoleState,
        certificate: NodeCertificate,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        socket_timeout: float = 30.0,
        netns: str | None = None,
    ) -> None:
        """``netns``: the namespace holding the VIP (the leader's, with the lab on network namespaces); may be
        set later, before :meth:`start`, once the VIP has a holder."""
        super().__init__(host=host, port=port, label="system-console", netns=netns)
        self.state = state
        self.certificate = certificate
        #: Fault knob: the certificate this server presents instead of ``certificate`` (the cluster's own, which the
        #: nodes still see at the VIP): something between the jump host and the VIP answers in Palette's place.
        #: Read when the server (re)starts.
        self.presented: NodeCertificate | None = None
        self.socket_timeout = socket_timeout

    def _make_server(self, address: tuple[str, int]) -> TLSHTTPServer:
        shown = self.presented or self.certificate
        return _TLSServer(address, shown.server_context(), self.state, self.socket_timeout)

    def _started(self) -> None:
        with _DIRECTORY_LOCK:
            _DIRECTORY[self.host] = self.state

    def _stopping(self) -> None:
        with _DIRECTORY_LOCK:
            if _DIRECTORY.get(self.host) is self.state:
                del _DIRECTORY[self.host]


# -- The Local UI's view of the registry -----------------------------------------------------------------------------

# Which console (and so which Zot registry) answers at an address: the lab's stand-in for the network between a node
# and its cluster's VIP. One console per address, registered while its server runs.
_DIRECTORY: dict[str, SystemConsoleState] = {}
_DIRECTORY_LOCK = threading.Lock()
_PACK_VERSION = re.compile(r"(?P<name>.+?)[-_]v?(?P<version>\d[\w.+-]*)")


def serving(host: str) -> SystemConsoleState | None:
    """The console whose server runs at ``host`` (a cluster's VIP), if any."""
    with _DIRECTORY_LOCK:
        return _DIRECTORY.get(host)


def pack_identity(file_name: str) -> tuple[str, str] | None:
    """(name, version) of a pack bundle file, or None for anything else.

    Artifact Studio names pack bundles ``<name>.zst`` (reference §1.3) while the content bundle is a ``.tar.zst``;
    how the Local UI reads a pack's name and version is not published, so the lab takes them from the file name
    (``ubuntu-22.04.zst`` → ``ubuntu``, ``22.04``).
    """
    if not file_name.endswith(".zst") or file_name.endswith(".tar.zst"):
        return None
    stem = file_name.removesuffix(".zst")
    m = _PACK_VERSION.fullmatch(stem)
    return (m["name"], m["version"]) if m else (stem, "")


def _cluster_console(node: NodeState) -> SystemConsoleState | None:
    deployment = node.cluster
    if deployment is None or not deployment.running(node.clock()):
        return None
    return serving(deployment.vip)


def import_upload(node: NodeState, content: UploadedContent) -> bool:
    """After an upload to ``node``'s Local UI: a pack bundle goes into the running cluster's registry. True when
    imported; a content bundle, or any upload before the cluster runs, stays the node's content only."""
    identity = pack_identity(content.file_name)
    console = _cluster_console(node)
    if identity is None or console is None:
        return False
    console.import_pack(identity[0], identity[1], content.size, content.sha256)
    return True


def registry_content_details(node: NodeState) -> dict[str, Any]:
    """v1HarborContentsDetails: the packs in the cluster's registry (none before the cluster runs)."""
    console = _cluster_console(node)
    packs = console.packs() if console is not None else []
    return {
        "status": [
            {
                "contentType": "pack",
                "name": p.name,
                "version": p.version,
                "size": str(p.size),
                "dateAdded": iso8601(p.added_at),
            }
            for p in packs
        ]
    }


def registry_sync_status_details(node: NodeState) -> dict[str, Any]:
    """v1HarborContentsSyncStatus: the lab imports an upload at once, so nothing is ever pending."""
    console = _cluster_console(node)
    return {"statusMessage": "" if console is not None else "registry not installed", "errors": {}, "pendingItems": []}


def registry_health(node: NodeState) -> dict[str, Any]:
    """v1HarborHealthDetails."""
    console = _cluster_console(node)
    if console is None:
        return {"State": "NotInstalled", "Message": "the cluster registry runs once the cluster is up"}
    used = sum(p.size for p in console.packs())
    capacity = 100 * 1024**3  # the profile's default OCI Registry Storage Size (GiB)
    return {
        "State": "Healthy",
        "DiskCapacity": str(capacity),
        "DiskUsed": str(used),
        "DiskAvailable": str(capacity - used),
        "UsagePercentage": f"{100 * used / capacity:.2f}",
        "Message": "",
    }


def cluster_applications(node: NodeState) -> dict[str, Any]:
    """v1ClusterCurrentApplications: the profile's packs, Running once the cluster reports them deployed."""
    deployment = node.cluster
    if deployment is None:
        raise LocalUIError(404, "NotFound", "no cluster on this host")
    now = node.clock()
    deployed_at = deployment.at(PACKS_DEPLOYED_AT)
    running = now >= deployed_at
    packs: list[dict[str, Any]] = [
        {
            "name": name,
            "version": version,
            "layer": layer,
            "status": "Running" if running else "Deploying",
            "startTime": iso8601(deployment.created_at),
            **({"endTime": iso8601(deployed_at)} if running else {}),
            "conditions": [],
            "contents": [],
        }
        for (name, version), layer in zip(lab_cluster.PACKS, ("os", "k8s", "cni", "csi", "addon"), strict=False)
    ]
    return {"clusterProfileTemplates": [{"name": deployment.name, "type": "cluster", "packs": packs}]}
