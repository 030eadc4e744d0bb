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
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from wizard.lab.activationkeys import ActivationKey, decode_key, encode_key
from wizard.lab.certs import NodeCertificate, write_certificate
from wizard.lab.consolecerts import PATH as DOMAIN_PATH
from wizard.lab.consolecerts import DomainError, DomainSettings, ServedCertificate
from wizard.lab.consoleregistry import (
    SYNC_COMPLETED,
    SYNC_FAILED,
    SYNC_IDLE,
    SYNC_IN_PROGRESS,
    PackContent,
    PackImport,
    Registry,
    Sync,
)
from wizard.lab.httpfaults import NONE as NO_FAULTS
from wizard.lab.httpfaults import HttpFaults
from wizard.lab.timeline import Timeline
from wizard.lab.tlsserver import BackgroundServer, TLSHTTPServer
from wizard.lab.variants import REFERENCE, Variant

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


@dataclass
class _Session:
    token: str
    username: str
    expires_at: float


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
        bundled: tuple[tuple[str, str], ...] = (),
        variant: Variant = REFERENCE,
        http_faults: HttpFaults = NO_FAULTS,
    ) -> None:
        """``bundled``: (name, version) of packs the content bundle brought, listed from the start."""
        self.clock = clock
        self.variant = variant
        self.http_faults = http_faults
        self.logins = 0
        #: Lab-clock seconds an uploaded pack takes to be imported; ``import_fault`` makes the next import fail.
        self.import_seconds = 0.0
        self.import_fault: str | None = None
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
        self.registry = Registry(_object_id(), "Zot", registry_endpoint, "spectro-content")
        self.domain = DomainSettings()  # the root domain and the operator's certificate (wizard.lab.consolecerts)
        self._uploaded: set[tuple[str, str]] = set()  # packs that came by upload (the bundled ones are in pack_count)
        for name, pack_version in bundled:
            self.registry.packs[(name, pack_version)] = PackContent(name, pack_version, 0, "", self.installed_at)

    # -- Accounts and sessions --

    @property
    def password_reset_required(self) -> bool:
        with self.lock:
            return self._reset_required

    def _check_password(self, password: str) -> bool:
        return hmac.compare_digest(self._digest, _hash_password(password, self._salt))

    def login(self, username: str, password: str) -> tuple[str, bool | None]:
        """Returns a new token and ``IsPasswordReset`` as this variant means it: true while the default password
        must still be changed, or (read literally) true once it was, or None (left out)."""
        with self.lock:
            if username != ADMIN_USERNAME or not self._check_password(password):
                raise ConsoleError(401, "InvalidCredentials", "invalid username or password")
            now = self.clock()
            self._sessions = {t: s for t, s in self._sessions.items() if s.expires_at > now}
            token = secrets.token_urlsafe(32)
            self._sessions[token] = _Session(token, username, now + TOKEN_TTL)
            self.logins += 1
            meaning = self.variant("console.password-reset-flag")
            flag = (
                None
                if meaning == "absent"
                else (not self._reset_required if meaning == "done" else self._reset_required)
            )
            return token, flag

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
        issued = encode_key(target, _object_id(), _object_id())
        if target == self.system_uid:
            with self.lock:
                self._issued[issued.key_uid] = issued
        return issued

    def activate(self, key: str) -> None:
        claims = decode_key(key)
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

    # -- A kept lab (wizard.lab.keep) --

    def kept(self) -> dict[str, Any]:
        """What the console keeps across a restart, no secret among it (the password is re-keyed on return)."""
        with self.lock:
            return {
                "system_uid": self.system_uid,
                "email": self.admin_email,
                "reset_required": self._reset_required,
                "installed_at": self.installed_at,
                "activated_at": self._activated_at,
                "license_expires_at": self._license_expires_at,
                "activation_key_uid": self._activation_key_uid,
                "plan_uid": self._plan_uid,
                "root_domain": self.domain.root_domain,
                "custom_certificate": self.domain.custom is not None,  # its files are in the lab's folder
            }

    def restore(self, kept: dict[str, Any], password: str | None) -> None:
        """Take :meth:`kept`'s record back, with ``password`` as the admin's (None: the default, not reset yet)."""
        with self.lock:
            self.system_uid = str(kept.get("system_uid") or self.system_uid)
            self.admin_email = str(kept.get("email") or "")
            self.installed_at = float(kept.get("installed_at") or self.installed_at)
            self._activated_at = kept.get("activated_at")
            self._license_expires_at = kept.get("license_expires_at")
            self._activation_key_uid = str(kept.get("activation_key_uid") or "")
            self._plan_uid = str(kept.get("plan_uid") or "")
            self.domain.root_domain = str(kept.get("root_domain") or "")
            if password is not None and not kept.get("reset_required", True):
                self._salt = secrets.token_bytes(16)
                self._digest = _hash_password(password, self._salt)
                self._reset_required = False

    # -- Version --

    def installed_version(self) -> dict[str, Any]:
        # The SDK model is not quoted in the reference; version plus install time is what a wizard can use.
        return {"version": self.version, "installedAt": iso8601(self.installed_at)}

    # -- OCI registry and its sync --

    def _advance_sync(self, sync: Sync, now: float) -> None:
        if sync.state != SYNC_IN_PROGRESS or sync.started_at is None:
            return
        if now - sync.started_at < self.sync_duration:
            return
        if sync.fail_message is not None:
            sync.state, sync.message = SYNC_FAILED, sync.fail_message
        else:
            sync.state, sync.message = SYNC_COMPLETED, f"synced {sync.total} of {sync.total} packs"
            sync.last_synced = sync.started_at + self.sync_duration

    def _registry(self, uid: str) -> Registry:
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
            self._settle_imports(now)
            sync.fail_message, sync.total = self.sync_fault, self.pack_count + len(self._uploaded)
            sync.message = f"synced 0 of {sync.total} packs"

    def sync_status(self, uid: str) -> dict[str, Any]:
        with self.lock:
            sync = self._registry(uid).sync
            now = self.clock()
            self._advance_sync(sync, now)
            return self._sync_body(sync, now)

    def _sync_body(self, sync: Sync, now: float) -> dict[str, Any]:
        synced = 0
        if sync.state == SYNC_COMPLETED:
            synced = sync.total
        elif sync.state == SYNC_IN_PROGRESS and sync.started_at is not None and self.sync_duration > 0:
            synced = min(sync.total, math.floor(sync.total * (now - sync.started_at) / self.sync_duration))
            sync.message = f"synced {synced} of {sync.total} packs"
        done, running, failed, idle = self.variant("console.sync-words")
        word = {SYNC_COMPLETED: done, SYNC_IN_PROGRESS: running, SYNC_FAILED: failed, SYNC_IDLE: idle}[sync.state]
        supported = bool(self.variant("console.sync-supported"))
        body: dict[str, Any] = {"isSyncSupported": supported, "status": word, "message": sync.message}
        if sync.last_run is not None:
            body["lastRunTime"] = iso8601(sync.last_run)
        if sync.last_synced is not None:
            body["lastSyncedTime"] = iso8601(sync.last_synced)
        # Lab extension beyond the SDK's v1RegistrySyncStatus: the counts the console's progress shows.
        body["totalPacks"], body["syncedPacks"] = sync.total, synced
        return body

    def import_pack(self, name: str, version: str, size: int, sha256: str) -> PackContent:
        """Record a pack bundle in the registry at once (a re-upload of the same name and version replaces it)."""
        with self.lock:
            pack = PackContent(name, version, size, sha256, self.clock())
            self.registry.packs[(name, version)] = pack
            self._uploaded.add((name, version))
            return pack

    def start_import(self, name: str, version: str, size: int, sha256: str) -> PackImport:
        """An uploaded pack bundle starts its import: listed once ``import_seconds`` have passed (or failed, when
        ``import_fault`` was set)."""
        with self.lock:
            now = self.clock()
            failure, self.import_fault = self.import_fault or "", None
            job = PackImport(name, version, size, sha256, now, now + self.import_seconds, failure)
            self.registry.imports.append(job)
            if self.timeline is not None:
                self.timeline.record("pack-import", "console", now, job.done_at)
            self._settle_imports(now)
            return job

    def _settle_imports(self, now: float) -> None:
        for job in self.registry.imports:
            if job.done_at <= now and not job.failure and not job.listed:
                job.listed = True
                self.registry.packs[(job.name, job.version)] = PackContent(
                    job.name, job.version, job.size, job.sha256, job.done_at
                )
                self._uploaded.add((job.name, job.version))

    def imports(self) -> list[PackImport]:
        with self.lock:
            self._settle_imports(self.clock())
            return list(self.registry.imports)

    def packs(self) -> list[PackContent]:
        with self.lock:
            self._settle_imports(self.clock())
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
    answer: dict[str, Any] = {"Authorization": token}
    if reset is not None:
        answer["IsPasswordReset"] = reset
    return _Reply(200, answer)


@_route("PATCH", r"/v1/system/admin/password/reset", before_reset=True)
def _password_reset(req: _Request) -> _Reply:
    body = req.body()
    req.state.reset_password(_string(body, "email"), _string(body, "oldPassword"), _string(body, "newPassword"))
    return _Reply(req.state.variant("console.write-status")[1])


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
    status = req.state.variant("console.write-status")[0]
    return _Reply(status, None if status == 204 else req.state.activation())


@_route("GET", r"/v1/system/version/installed")
def _version(req: _Request) -> _Reply:
    if not req.state.variant("console.version-endpoint"):
        raise ConsoleError(404, "NotFound", f"no such path: {req.handler.path}")
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


@_route("PUT", DOMAIN_PATH)
def _put_domain(req: _Request) -> _Reply:
    try:
        req.state.domain.put(req.body())
    except DomainError as exc:
        raise ConsoleError(400, "InvalidCertificate", str(exc)) from exc
    return _Reply(204)


@_route("GET", DOMAIN_PATH)
def _get_domain(req: _Request) -> _Reply:
    return _Reply(200, req.state.domain.get())


# -- HTTP plumbing -------------------------------------------------------------------------------------------------


def _token(handler: BaseHTTPRequestHandler, carrier: str = "both") -> str | None:
    """The token from the ``Authorization`` header, the cookie of that name, or either (``carrier``)."""
    header = (handler.headers.get("Authorization") or "").strip() or None
    cookie = None
    cookie_header = handler.headers.get("Cookie")
    if cookie_header:
        cookies: SimpleCookie = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookies.load(cookie_header)
        morsel = cookies.get("Authorization")
        cookie = morsel.value if morsel is not None and morsel.value else None
    if carrier == "header":
        return header
    if carrier == "cookie":
        return cookie
    return header or cookie


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
            fault = state.http_faults.take()
            if fault is not None:  # the http-5xx knob: answered before anything is done
                self.close_connection = True  # the body is not read
                raise ConsoleError(fault, "ServerError", state.http_faults.message(fault))
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
                state.authenticate(_token(self, state.variant("console.token-carrier")))
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
        state.domain.on_change = self._serve

    def _serve(self, given: ServedCertificate) -> None:
        """Serve the operator's certificate from now on: written beside the cluster's own, then the server reloads
        (after this request's answer, on a thread of its own: a stop waits for the request's thread)."""
        self.certificate = write_certificate(
            self.certificate.cert_path.parent / "custom", given.cert_pem, given.key_pem
        )

        def reload() -> None:
            time.sleep(0.2)
            if self.running:
                self.stop()
                self.start()

        threading.Thread(target=reload, name="system-console-reload", daemon=True).start()

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


def serving(host: str) -> SystemConsoleState | None:
    """The console whose server runs at ``host`` (a cluster's VIP), if any."""
    with _DIRECTORY_LOCK:
        return _DIRECTORY.get(host)
