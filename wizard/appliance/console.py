"""A client for the Palette system console API at the cluster's VIP (``https://<vip>/system``; API under ``/v1``).

Paths and fields follow the reference (§4, from palette-sdk-go): ``POST /v1/auth/syslogin`` returns a token that
goes in ``Authorization`` as is — sent as the header and as the cookie of that name, as the docs show both — and
lives 15 minutes, so the client logs in again shortly before that (by its injectable clock) and once more when a
request still gets a 401. A fresh install only accepts ``admin``/``admin`` and insists on a new password with the
admin's email (``PATCH /v1/system/admin/password/reset``) before anything else. The certificate is self-signed until
the operator replaces it, so TLS is verified by the OS store or pinned per host through :mod:`wizard.core.trust`.
The reference names no logout for the system API (palette-sdk-go has logouts for OIDC and SAML sessions only), so
a session ends with its 15 minutes; a client opened through a connector with the run's pool
(:mod:`wizard.appliance.sessions`) takes a live session from it and hands its own back, so the jobs of one run share
one session per password instead of leaving one behind each.

Transient faults follow the one :class:`~wizard.core.http.RetryPolicy`: idempotent requests are retried below the
client; the password change, the activation and starting a sync are resent only after the state says they did not
take effect (:meth:`ConsoleClient.settle`). Informational reads (the installed version, the activation summary)
degrade to "unknown" with a log line. The registry sync's status words are not documented: they are read as
:data:`wizard.appliance.statuswords.REGISTRY_SYNC` does, an unknown word is waited on and shown as written, and
``isSyncSupported: false`` means there is nothing to wait for.

Errors come out as :class:`ConsoleError` subclasses that say what to do. Every method is synchronous and meant for a
worker thread; a client is thread-confined. The jobs built on it are in :mod:`wizard.appliance.console_jobs`.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from wizard.appliance.sessions import PooledSession, SessionPool, session_key
from wizard.appliance.statuswords import REGISTRY_SYNC, Outcome
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.http import (
    DEFAULT_RETRY,
    RESET_ERRORS,
    TIMEOUT_ERRORS,
    AnswerDeadline,
    RetryPolicy,
    RetryTransport,
    error_code,
    error_message,
    settle,
)
from wizard.core.progress import Reporter
from wizard.core.redact import REDACTOR
from wizard.core.trust import (
    CancellableWitness,
    Confirm,
    TlsUnreachable,
    TrustKind,
    TrustStore,
    Witness,
    certificate_changed,
    is_certificate_change,
    system_or_pinned_tls_context,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 443
DEFAULT_USERNAME = "admin"
DEFAULT_PASSWORD = "admin"  # noqa: S105 - the documented first-login default (reference §1.5)
TOKEN_LIFETIME = 15 * 60.0  # reference §4
RENEW_MARGIN = 60.0  # log in again when less than this is left, so a request never races the expiry

P_LOGIN = "/v1/auth/syslogin"
P_PASSWORD_RESET = "/v1/system/admin/password/reset"  # noqa: S105 - a path, not a password
P_ACTIVATION = "/v1/system/activation"
P_ACTIVATION_SUMMARY = "/v1/activations/system"
P_ACTIVATE = "/v1/system/activate"
P_VERSION = "/v1/system/version/installed"
P_REGISTRIES = "/v1/registries/oci/summary"
P_DOMAIN_CERTIFICATES = "/v1/system/config/domain/certificates"

ACTIVE = "Active"

Clock = Callable[[], float]
T = TypeVar("T")


# -- Errors ---------------------------------------------------------------------------------------------------------


class ConsoleError(WizardError):
    """The console refused a request; ``status`` is the HTTP status (0 when there was no answer)."""

    def __init__(self, title: str, message: str, *, status: int = 0, code: str = "", **kw: str) -> None:
        super().__init__(title, message, **kw)
        self.status = status
        self.code = code


class ConsoleUnreachable(ConsoleError):
    """No HTTP answer at all, or 502/503/504: Palette is not up (yet) at that address."""


class ConsoleLoginFailed(ConsoleError):
    """The console did not accept the credentials."""


class ActivationKeyRejected(ConsoleError):
    """The console refused the activation key; another key can be tried."""


def _unknown(error: ConsoleError) -> ConsoleError:
    """Marks ``error`` as leaving open whether the request took effect (see :func:`wizard.core.http.settle`)."""
    error.outcome_unknown = True  # type: ignore[attr-defined]
    return error


# -- Typed answers --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activation:
    state: str  # Pending (trial) | Active | Inactive
    product_setup_id: str  # the systemUid the console shows as "Product Setup ID"
    expires_at: str = ""  # the trial's end while Pending, the licence's once Active
    last_activated_at: str = ""

    @property
    def active(self) -> bool:
        return self.state.lower() == ACTIVE.lower()


@dataclass(frozen=True)
class RegistrySync:
    status: str  # as the console wrote it: Completed, Success, InProgress, Failed, Error, … (undocumented)
    message: str
    last_run: str = ""
    last_synced: str = ""
    total: int | None = None
    synced: int | None = None
    supported: bool = True  # isSyncSupported: false means there is no sync to wait for

    @property
    def outcome(self) -> Outcome:
        return REGISTRY_SYNC.classify(self.status)


@dataclass(frozen=True)
class OciRegistry:
    uid: str
    name: str
    endpoint: str
    sync: RegistrySync


# -- The client -----------------------------------------------------------------------------------------------------


class ConsoleClient:
    """The system console of one Palette install."""

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        ssl_context: ssl.SSLContext,
        username: str = DEFAULT_USERNAME,
        timeout: float = 30.0,
        clock: Clock = time.time,
        pinned: str = "",
        retry: RetryPolicy = DEFAULT_RETRY,
        cancel: CancelToken | None = None,
        pool: SessionPool | None = None,
    ) -> None:
        """``pool``: the run's kept sessions: a live one of this console and password is taken instead of a login,
        and this client's is given back when it closes."""
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self._clock = clock
        self._pinned = pinned
        self.retry = retry
        self._cancel = cancel
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._token: str | None = None
        self._expires_at = 0.0
        self._pool = pool
        kept = pool.take(self._pool_key, clock(), RENEW_MARGIN) if pool is not None else None
        if kept is not None:
            self._token, self._expires_at = kept.token, kept.expires_at
        #: From the last login, as the console words it (``IsPasswordReset``); recorded only: whether it means
        #: "must still be reset" or "was reset" is not published, so the client goes by what the console does.
        self.password_reset_flag: bool | None = None
        # Bounds a whole answer, not each read: a dripping peer must not hold the job forever.
        deadline = AnswerDeadline(httpx.HTTPTransport(verify=ssl_context), base=4 * timeout)
        self._http = httpx.Client(
            base_url=f"https://{host}:{port}",
            transport=RetryTransport(deadline, retry, cancel=cancel, label=f"system console {self.where}"),
            timeout=timeout,
            follow_redirects=False,
        )

    @property
    def where(self) -> str:
        return self.host if self.port == DEFAULT_PORT else f"{self.host}:{self.port}"

    @property
    def _pool_key(self) -> str:
        return session_key(self.host, self.port, self.username, self._password)

    def close(self) -> None:
        """Hand a live session to the run's pool (there is no logout to send: one not kept expires by itself);
        close the connection."""
        try:
            if self._pool is not None and self._token is not None and self._expires_at > self._clock():
                self._pool.give(self._pool_key, PooledSession(self._token, self._expires_at, _no_logout))
            self._token = None
        finally:
            self._http.close()

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Sessions --

    def login(self) -> None:
        body = {"username": self.username, "password": self._password}
        # A login only makes a session: safe to send again after a lost answer.
        r = self._send("POST", P_LOGIN, auth=False, json=body, idempotent=True)
        if r.status_code in (401, 403):
            raise ConsoleLoginFailed(
                "System console login failed",
                f"{self.where} refused the password of {self.username!r}: {error_message(r)}",
                status=r.status_code,
                code=error_code(r),
                remediation=(
                    "a fresh install accepts admin/admin once; after the first login the password is the one in "
                    "console.password — store the current one under that keyring name"
                ),
            )
        data = self._json(r, "log in")
        token = str(data.get("Authorization") or "")
        if not token:
            raise ConsoleError("Unexpected system console answer", f"{self.where} returned no token after login")
        self._token = token
        self._expires_at = self._clock() + TOKEN_LIFETIME
        flag = data.get("IsPasswordReset")
        self.password_reset_flag = flag if isinstance(flag, bool) else None

    def ensure_session(self) -> None:
        if self._token is None or self._expires_at - self._clock() < RENEW_MARGIN:
            self.login()

    def reset_password(self, email: str, new_password: str) -> None:
        """The first-login "Account Info": the admin's email and a new password replacing the one logged in with.
        After an unknown outcome, a login with the new password tells whether it took effect before it is resent."""
        body = {"email": email, "oldPassword": self._password, "newPassword": new_password}

        def send() -> bool:
            r = self.request("PATCH", P_PASSWORD_RESET, json=body, ok=(200, 204), reset_allowed=True)
            if r.status_code == 400:
                raise ConsoleError(
                    "New console password refused",
                    f"{self.where}: {error_message(r)}",
                    status=400,
                    code=error_code(r),
                    remediation="store a stronger password (and a valid console.email), then run again",
                )
            return True

        self.settle(send, lambda: self.accepts(new_password) or None, "admin password change")
        self._password = new_password  # and the session is kept under the new one: the old one opens nothing now

    def accepts(self, password: str) -> bool:
        """Whether the console takes ``password`` for this account now (a login of a separate client)."""
        other = ConsoleClient(
            self.host,
            self.port,
            password,
            ssl_context=self._ssl_context,
            username=self.username,
            timeout=self._timeout,
            clock=self._clock,
            pinned=self._pinned,
            retry=self.retry,
            cancel=self._cancel,
        )
        with other:
            try:
                other.login()
            except ConsoleLoginFailed:
                return False
        return True

    def reset_still_required(self) -> bool:
        """Whether the console refuses this session's requests until the admin password is changed (it answers 403
        ``PasswordResetRequired``), as it does after the first login with the default password."""
        try:
            self.activation()
        except ConsoleError as exc:
            if exc.code == "PasswordResetRequired":
                return True
            raise
        return False

    def settle(self, send: Callable[[], T], check: Callable[[], T | None], what: str) -> T:
        """A request that is not idempotent, resent after an unknown outcome only once ``check`` says it did not
        take effect (:func:`wizard.core.http.settle` with this client's policy and cancel token)."""
        return settle(self.retry, send, check, what=f"{self.where}: {what}", cancel=self._cancel)

    # -- Plumbing --

    def _send(self, method: str, path: str, *, auth: bool, idempotent: bool | None = None, **kw: Any) -> httpx.Response:
        headers = {}
        if auth and self._token:
            # Header (VerteX docs) and cookie (Nutanix registration docs): the reference shows both (§4).
            headers = {"Authorization": self._token, "Cookie": f"Authorization={self._token}"}
        extensions = {} if idempotent is None else {"idempotent": idempotent}
        try:
            return self._http.request(method, path, headers=headers, extensions=extensions, **kw)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: httpx.TransportError) -> WizardError:
        if is_certificate_change(exc):
            return certificate_changed(self.host, self.port, self._pinned or "")
        what = "did not answer in time" if isinstance(exc, httpx.TimeoutException) else f"cannot be reached ({exc})"
        error = ConsoleUnreachable(
            "System console unreachable",
            f"{self.where} {what}",
            remediation="check that the cluster is Running and that port "
            f"{self.port} of the VIP is reachable from this machine",
        )
        # A request that got through and lost its answer may have taken effect; one that never connected did not.
        return _unknown(error) if isinstance(exc, RESET_ERRORS + TIMEOUT_ERRORS) else error

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200,),
        reset_allowed: bool = False,
    ) -> httpx.Response:
        """An authenticated request. A 401 logs in again once (the 15-minute token ran out, or Palette restarted);
        transient faults are the retry policy's; a 400 is returned to the caller to explain."""
        relogged = False
        while True:
            self.ensure_session()
            r = self._send(method, path, auth=True, json=json, params=params)
            if r.status_code == 401 and not relogged:
                relogged = True
                self.login()
                continue
            if r.status_code in ok or r.status_code == 400:
                return r
            if r.status_code == 403 and error_code(r) == "PasswordResetRequired" and not reset_allowed:
                raise ConsoleError(
                    "Console password not changed yet",
                    f"{self.where} insists on the first-login password change before {method} {path}",
                    status=403,
                    code=error_code(r),
                    remediation="run the console step first (it changes the admin password)",
                )
            raise self.http_error(r, f"{method} {path}")

    def http_error(self, r: httpx.Response, what: str) -> ConsoleError:
        message = error_message(r)
        if r.status_code in self.retry.statuses:
            return _unknown(self._server_error(r, what, message))
        return self._server_error(r, what, message)

    def _server_error(self, r: httpx.Response, what: str, message: str) -> ConsoleError:
        if r.status_code in (502, 503, 504):
            return ConsoleUnreachable(
                "Palette not available",
                f"{self.where} answered {r.status_code} to {what}: {message}",
                status=r.status_code,
                code=error_code(r),
                remediation="Palette starts a few minutes after the cluster is Running; wait and retry",
            )
        if r.status_code == 401:
            return ConsoleLoginFailed(
                "System console session refused", f"{self.where}: {message}", status=401, code=error_code(r)
            )
        return ConsoleError(
            "System console refused the request",
            f"{self.where} failed to {what}: {message}",
            status=r.status_code,
            code=error_code(r),
            remediation="retry; if it keeps failing, check the system console in a browser"
            if r.status_code >= 500
            else "",
        )

    def _json(self, r: httpx.Response, what: str) -> dict[str, Any]:
        if r.status_code >= 400:
            raise self.http_error(r, what)
        try:
            data = r.json()
        except ValueError as exc:
            raise ConsoleError("Unexpected system console answer", f"{self.where}: {what}: not JSON") from exc
        if not isinstance(data, dict):
            raise ConsoleError("Unexpected system console answer", f"{self.where}: {what}: not a JSON object")
        return data

    def _get(self, path: str) -> dict[str, Any]:
        return self._json(self.request("GET", path), f"GET {path}")

    def _optional(self, path: str, what: str) -> dict[str, Any] | None:
        """A read that is only informational: a 404, a 5xx the retries did not cure or an unreadable answer means
        "unknown" (None, with a log line), never a failed step."""
        try:
            return self._get(path)
        except ConsoleError as exc:
            if exc.status in (0, 404, 405, 501) or exc.status >= 500 or isinstance(exc, ConsoleUnreachable):
                log.info("%s: %s unknown (%s)", self.where, what, exc.message)
                return None
            raise

    # -- Endpoints --

    def version(self) -> str:
        """The installed Palette version; "" when the console does not say (informational only)."""
        data = self._optional(P_VERSION, "the installed version")
        return str((data or {}).get("version") or "")

    def domain_settings(self) -> dict[str, Any] | None:
        """The system address's root domain and certificate as the console reports them (the reference names only the
        PUT; I: a GET beside it), without any key material; None where the console does not say."""
        data = self._optional(P_DOMAIN_CERTIFICATES, "the domain settings")
        if data is None:
            return None
        certificates = dict(data.get("certificates") or {})
        certificates.pop("keyBase64", None)  # never kept, whatever the console returns
        return {"rootDomain": str(data.get("rootDomain") or ""), "certificates": certificates}

    def set_domain_certificates(self, root_domain: str, cert_pem: str, key_pem: str, ca_pem: str = "") -> None:
        """Install a certificate for the system address and set its root domain (palette-sdk-go's ``PUT
        /v1/system/config/domain/certificates``). A PUT: the retry policy may resend it after a lost answer."""
        import base64

        def b64(text: str) -> str:
            return base64.b64encode(text.encode("ascii")).decode("ascii")

        key = b64(key_pem)
        REDACTOR.add(key)
        certificates = {"certificateBase64": b64(cert_pem), "keyBase64": key}
        if ca_pem:
            certificates["caCertificateBase64"] = b64(ca_pem)
        body = {"rootDomain": root_domain, "certificates": certificates}
        r = self.request("PUT", P_DOMAIN_CERTIFICATES, json=body, ok=(200, 201, 202, 204))
        if r.status_code == 400:
            raise ConsoleError(
                "Certificate refused",
                f"{self.where}: {error_message(r)}",
                status=400,
                code=error_code(r),
                remediation="check the certificate, key and CA files (the key must be the certificate's, the CA its "
                "issuer) and the domain, then run again",
            )

    def activation(self) -> Activation:
        """The activation state with the Product Setup ID and when the trial (or the licence) ends (the summary
        with the end date is informational: without it the end is unknown)."""
        data = self._get(P_ACTIVATION)
        summary = (self._optional(P_ACTIVATION_SUMMARY, "the activation summary") or {}).get("status") or {}
        status = data.get("status") or {}
        spec = data.get("spec") or {}
        return Activation(
            state=str(status.get("state") or summary.get("state") or ""),
            product_setup_id=str(spec.get("systemUid") or ""),
            expires_at=str(summary.get("expiresAt") or ""),
            last_activated_at=str(status.get("lastActivatedAt") or ""),
        )

    def activate(self, key: str) -> Activation:
        """Activate with ``key``. After an unknown outcome the activation state says whether it took effect (a
        single-use key sent twice would be refused the second time) before it is sent again."""

        def send() -> Activation:
            r = self.request("POST", P_ACTIVATE, json={"activationKey": key.strip()}, ok=(200, 201, 204))
            if r.status_code == 400:
                raise ActivationKeyRejected(
                    "Activation key rejected",
                    f"{self.where}: {error_message(r)}",
                    status=400,
                    code=error_code(r),
                    remediation=(
                        "keys are single-use and issued for this install's Product Setup ID: check the key from "
                        "Spectro Cloud support, store the right one under activation.key and run again (or defer "
                        "activation)"
                    ),
                )
            return self.activation()

        def activated() -> Activation | None:
            current = self.activation()
            return current if current.active else None

        return self.settle(send, activated, "activation")

    def registries(self) -> list[OciRegistry]:
        out = []
        for item in self._get(P_REGISTRIES).get("items") or []:
            meta, spec = item.get("metadata") or {}, item.get("spec") or {}
            sync = _sync((item.get("status") or {}).get("syncStatus") or {})
            out.append(
                OciRegistry(
                    str(meta.get("uid") or ""), str(meta.get("name") or ""), str(spec.get("endpoint") or ""), sync
                )
            )
        return out

    def start_sync(self, uid: str, *, before: RegistrySync, force: bool = False) -> None:
        """The console's "Pack Registries → ⋮ → Sync" (a basic OCI registry sync). After an unknown outcome the
        sync status says whether a run started since ``before`` (the status read just before) prior to a resend."""
        path = f"/v1/registries/oci/{uid}/basic/sync"

        def send() -> bool:
            r = self.request("POST", path, params={"forceSync": "true" if force else "false"}, ok=(200, 202, 204))
            if r.status_code == 400:
                raise self.http_error(r, f"start the sync of registry {uid}")
            return True

        def started() -> bool | None:
            now = self.sync_status(uid)
            if now.last_run and now.last_run != before.last_run:
                return True
            return True if not now.last_run and now.outcome is Outcome.RUNNING else None

        self.settle(send, started, f"start the sync of registry {uid}")

    def sync_status(self, uid: str) -> RegistrySync:
        return _sync(self._get(f"/v1/registries/oci/{uid}/basic/sync/status"))

    def wait_synced(
        self,
        uid: str,
        report: Reporter,
        cancel: CancelToken,
        *,
        before: RegistrySync,
        poll: float,
        timeout: float,
        expected: float | None = None,
    ) -> RegistrySync:
        """Poll until the sync run started after ``before`` (the status read before starting it) is done; a failed
        run is an error. The console's own ``lastRunTime`` tells runs apart (no clock skew); a console that gives
        none is trusted once it was seen running, or when no run had ended before. A word no reading knows keeps
        the wait going and is shown as written; past ``expected`` (the soft budget) a warning quotes it."""
        start = self._clock()
        deadline = start + timeout
        soft = start + (expected if expected is not None else timeout / 4)
        warned = False
        seen_running = False
        while True:
            status = self.sync_status(uid)
            if not status.supported:
                log.info("%s: the registry reports isSyncSupported false: nothing to wait for", self.where)
                return status
            outcome = status.outcome
            seen_running = seen_running or outcome is Outcome.RUNNING
            if status.last_run:
                current = status.last_run != before.last_run
            else:
                current = seen_running or before.outcome is not Outcome.DONE
            word = status.status or "no status"
            # A word no reading knows is shown as the console wrote it, so the operator sees what it says.
            shown = f" ({word!r})" if outcome is Outcome.UNKNOWN else ""
            if current and status.total and status.synced is not None:
                report.update(
                    status.synced / status.total, f"Registry sync: {status.synced}/{status.total} packs{shown}"
                )
            elif shown:
                report.update(0.0, f"Registry sync:{shown}")
            if current and outcome is Outcome.DONE:
                return status
            if current and outcome is Outcome.FAILED:
                raise ConsoleError(
                    "Registry sync failed",
                    f"{self.where}: {status.message or f'the OCI pack registry sync ended {word}'}",
                    remediation="open Administration → Pack Registries in the system console, fix the cause, "
                    "then run again",
                )
            now = self._clock()
            if now >= deadline:
                raise ConsoleError(
                    "Registry sync not finished",
                    f"after {int(timeout)} s the sync is {word!r}: {status.message}",
                    remediation="check the registry in the system console, then run again",
                )
            if now >= soft and not warned:
                warned = True
                note = f"registry sync still {word!r} after {int(now - start)} s"
                if outcome is Outcome.UNKNOWN:
                    note += " (a status word the wizard does not know; it keeps waiting)"
                log.warning("%s: %s", self.where, note)
                report.warn(note)
            cancel.sleep(poll)


def _sync(data: Mapping[str, Any]) -> RegistrySync:
    def count(key: str) -> int | None:
        value = data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return RegistrySync(
        status=str(data.get("status") or ""),
        message=str(data.get("message") or ""),
        last_run=str(data.get("lastRunTime") or ""),
        last_synced=str(data.get("lastSyncedTime") or ""),
        total=count("totalPacks"),
        synced=count("syncedPacks"),
        supported=data.get("isSyncSupported") is not False,
    )


def _no_logout(token: str) -> None:
    """The system API names no logout: a kept session is dropped and expires by itself."""


# -- Opening clients from plain values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleEndpoint:
    """Where the system console answers: the cluster's VIP, and the fingerprint the project pins, if any."""

    host: str
    port: int = DEFAULT_PORT
    fingerprint: str = ""

    @property
    def url(self) -> str:
        """The Palette URL people open (the system console is its ``/system`` page)."""
        return f"https://{self.host}" + ("" if self.port == DEFAULT_PORT else f":{self.port}")


@dataclass
class ConsoleConnector:
    """Opens :class:`ConsoleClient`\\ s with TLS verified by the OS store or pinned (asking on first contact)."""

    trust: TrustStore
    confirm: Confirm | None
    timeout: float = 30.0
    retry: RetryPolicy = DEFAULT_RETRY
    clock: Clock = field(default=time.time)
    #: Settles the first contact with the console's certificate through a channel trusted already (a node over
    #: its pinned SSH session: :mod:`wizard.appliance.witness`), so a headless run pins it without a prompt.
    witness: Witness | None = None
    #: The run's kept sessions (:mod:`wizard.appliance.sessions`); None: each client logs in by itself.
    pool: SessionPool | None = None

    def open(self, endpoint: ConsoleEndpoint, password: str, cancel: CancelToken | None = None) -> ConsoleClient:
        witness = self.witness
        if cancel is not None and isinstance(witness, CancellableWitness):  # its waits end with the job
            witness = witness.bound(cancel)
        try:
            ctx = system_or_pinned_tls_context(
                self.trust,
                self.confirm,
                endpoint.host,
                endpoint.port,
                expected=endpoint.fingerprint,
                timeout=self.timeout,
                witness=witness,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConsoleUnreachable(
                "System console unreachable",
                f"{endpoint.url} did not complete a TLS handshake: {exc}",
                remediation="check that the cluster is Running and the VIP is reachable from this machine",
            ) from exc
        except TlsUnreachable as exc:
            raise ConsoleUnreachable(exc.title, exc.message, remediation=exc.remediation) from exc
        entry = self.trust.pinned(TrustKind.TLS, endpoint.host, endpoint.port)
        return ConsoleClient(
            endpoint.host,
            endpoint.port,
            password,
            ssl_context=ctx,
            timeout=self.timeout,
            clock=self.clock,
            pinned=str(entry["fingerprint"]) if entry else endpoint.fingerprint,
            retry=self.retry,
            cancel=cancel,
            pool=self.pool,
        )
