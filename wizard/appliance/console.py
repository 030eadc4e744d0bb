"""A client for the Palette system console API at the cluster's VIP (``https://<vip>/system``; API under ``/v1``).

Paths and fields follow the reference (§4, from palette-sdk-go): ``POST /v1/auth/syslogin`` returns a token that
goes in ``Authorization`` as is and lives 15 minutes, so the client logs in again shortly before that (by its
injectable clock) and once more when a request still gets a 401. A fresh install only accepts ``admin``/``admin``
and insists on a new password with the admin's email (``PATCH /v1/system/admin/password/reset``) before anything
else. The certificate is self-signed until the operator replaces it, so TLS is verified by the OS store or pinned
per host through :mod:`wizard.core.trust`.

Errors come out as :class:`ConsoleError` subclasses that say what to do. Every method is synchronous and meant for a
worker thread; a client is thread-confined.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.http import AnswerDeadline, error_code, error_message, retry_after
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.trust import (
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
THROTTLE_WAITS = 3  # 429 answers waited out (as Retry-After asks) before the request fails
RENEW_MARGIN = 60.0  # log in again when less than this is left, so a request never races the expiry

P_LOGIN = "/v1/auth/syslogin"
P_PASSWORD_RESET = "/v1/system/admin/password/reset"  # noqa: S105 - a path, not a password
P_ACTIVATION = "/v1/system/activation"
P_ACTIVATION_SUMMARY = "/v1/activations/system"
P_ACTIVATE = "/v1/system/activate"
P_VERSION = "/v1/system/version/installed"
P_REGISTRIES = "/v1/registries/oci/summary"

ACTIVE = "Active"
SYNC_COMPLETED, SYNC_FAILED, SYNC_IN_PROGRESS = "Completed", "Failed", "InProgress"

Clock = Callable[[], float]


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


# -- Typed answers --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activation:
    state: str  # Pending (trial) | Active | Inactive
    product_setup_id: str  # the systemUid the console shows as "Product Setup ID"
    expires_at: str = ""  # the trial's end while Pending, the licence's once Active
    last_activated_at: str = ""

    @property
    def active(self) -> bool:
        return self.state == ACTIVE


@dataclass(frozen=True)
class RegistrySync:
    status: str  # Idle | InProgress | Completed | Failed
    message: str
    last_run: str = ""
    last_synced: str = ""
    total: int | None = None
    synced: int | None = None


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
        retry_backoff: float = 1.0,
        cancel: CancelToken | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self._clock = clock
        self._pinned = pinned
        self._retry_backoff = retry_backoff
        self._cancel = cancel
        self._token: str | None = None
        self._expires_at = 0.0
        #: From the last login: True while the console still insists on a new admin password.
        self.password_reset_required: bool | None = None
        self._http = httpx.Client(
            base_url=f"https://{host}:{port}",
            # Bounds a whole answer, not each read: a dripping peer must not hold the job forever.
            transport=AnswerDeadline(httpx.HTTPTransport(verify=ssl_context), base=4 * timeout),
            timeout=timeout,
            follow_redirects=False,
        )

    @property
    def where(self) -> str:
        return self.host if self.port == DEFAULT_PORT else f"{self.host}:{self.port}"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Sessions --

    def login(self) -> None:
        r = self._send("POST", P_LOGIN, auth=False, json={"username": self.username, "password": self._password})
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
        self.password_reset_required = bool(data.get("IsPasswordReset"))

    def ensure_session(self) -> None:
        if self._token is None or self._expires_at - self._clock() < RENEW_MARGIN:
            self.login()

    def reset_password(self, email: str, new_password: str) -> None:
        """The first-login "Account Info": the admin's email and a new password replacing the one logged in with."""
        body = {"email": email, "oldPassword": self._password, "newPassword": new_password}
        r = self.request("PATCH", P_PASSWORD_RESET, json=body, ok=(200, 204), reset_allowed=True)
        if r.status_code == 400:
            raise ConsoleError(
                "New console password refused",
                f"{self.where}: {error_message(r)}",
                status=400,
                code=error_code(r),
                remediation="store a stronger password (and a valid console.email), then run again",
            )
        self._password = new_password
        self.password_reset_required = False

    # -- Plumbing --

    def _send(self, method: str, path: str, *, auth: bool, **kw: Any) -> httpx.Response:
        headers = {"Authorization": self._token} if auth and self._token else {}
        try:
            return self._http.request(method, path, headers=headers, **kw)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: httpx.TransportError) -> WizardError:
        if is_certificate_change(exc):
            return certificate_changed(self.host, self.port, self._pinned or "")
        what = "did not answer in time" if isinstance(exc, httpx.TimeoutException) else f"cannot be reached ({exc})"
        return ConsoleUnreachable(
            "System console unreachable",
            f"{self.where} {what}",
            remediation="check that the cluster is Running and that port "
            f"{self.port} of the VIP is reachable from this machine",
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200,),
        retries: int = 2,
        reset_allowed: bool = False,
    ) -> httpx.Response:
        """An authenticated request. A 401 logs in again once (the 15-minute token ran out, or Palette restarted);
        5xx answers are retried ``retries`` times with backoff; a 400 is returned to the caller to explain."""
        attempt = throttled = 0
        relogged = False
        while True:
            self.ensure_session()
            r = self._send(method, path, auth=True, json=json, params=params)
            if r.status_code == 401 and not relogged:
                relogged = True
                self.login()
                continue
            if r.status_code == 429 and throttled < THROTTLE_WAITS:
                throttled += 1  # not processed: safe to send again once the wait asked for has passed
                self._wait(retry_after(r, self._retry_backoff * 2 ** (throttled - 1)))
                continue
            if r.status_code >= 500 and attempt < retries:
                attempt += 1
                self._wait(self._retry_backoff * 2 ** (attempt - 1))
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

    def _wait(self, seconds: float) -> None:
        if self._cancel is not None:
            self._cancel.sleep(seconds)
        else:
            time.sleep(seconds)

    def http_error(self, r: httpx.Response, what: str) -> ConsoleError:
        message = error_message(r)
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

    # -- Endpoints --

    def version(self) -> str:
        return str(self._get(P_VERSION).get("version") or "")

    def activation(self) -> Activation:
        """The activation state with the Product Setup ID and when the trial (or the licence) ends."""
        data = self._get(P_ACTIVATION)
        summary = self._get(P_ACTIVATION_SUMMARY).get("status") or {}
        status = data.get("status") or {}
        spec = data.get("spec") or {}
        return Activation(
            state=str(status.get("state") or summary.get("state") or ""),
            product_setup_id=str(spec.get("systemUid") or ""),
            expires_at=str(summary.get("expiresAt") or ""),
            last_activated_at=str(status.get("lastActivatedAt") or ""),
        )

    def activate(self, key: str) -> Activation:
        r = self.request("POST", P_ACTIVATE, json={"activationKey": key.strip()}, ok=(200, 201, 204))
        if r.status_code == 400:
            raise ActivationKeyRejected(
                "Activation key rejected",
                f"{self.where}: {error_message(r)}",
                status=400,
                code=error_code(r),
                remediation=(
                    "keys are single-use and issued for this install's Product Setup ID: check the key from Spectro "
                    "Cloud support, store the right one under activation.key and run again (or defer activation)"
                ),
            )
        return self.activation()

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

    def start_sync(self, uid: str, *, force: bool = False) -> None:
        """The console's "Pack Registries → ⋮ → Sync" (a basic OCI registry sync)."""
        path = f"/v1/registries/oci/{uid}/basic/sync"
        r = self.request("POST", path, params={"forceSync": "true" if force else "false"}, ok=(200, 202, 204))
        if r.status_code == 400:
            raise self.http_error(r, f"start the sync of registry {uid}")

    def sync_status(self, uid: str) -> RegistrySync:
        return _sync(self._get(f"/v1/registries/oci/{uid}/basic/sync/status"))

    def wait_synced(
        self,
        uid: str,
        report: Reporter,
        cancel: CancelToken,
        *,
        previous_run: str,
        poll: float,
        timeout: float,
    ) -> RegistrySync:
        """Poll until the sync run started after ``previous_run`` (the ``lastRunTime`` seen before starting it)
        completed; a Failed run is an error. Comparing the console's own timestamps avoids any clock skew."""
        deadline = self._clock() + timeout
        while True:
            status = self.sync_status(uid)
            current = bool(status.last_run) and status.last_run != previous_run
            if current and status.total and status.synced is not None:
                report.update(status.synced / status.total, f"Registry sync: {status.synced}/{status.total} packs")
            if current and status.status == SYNC_COMPLETED:
                return status
            if current and status.status == SYNC_FAILED:
                raise ConsoleError(
                    "Registry sync failed",
                    f"{self.where}: {status.message or 'the OCI pack registry sync failed'}",
                    remediation="open Administration → Pack Registries in the system console, fix the cause, "
                    "then run again",
                )
            if self._clock() >= deadline:
                raise ConsoleError(
                    "Registry sync not finished",
                    f"after {int(timeout)} s the sync is {status.status or 'not started'}: {status.message}",
                    remediation="check the registry in the system console, then run again",
                )
            cancel.sleep(poll)


def _sync(data: Mapping[str, Any]) -> RegistrySync:
    def count(key: str) -> int | None:
        value = data.get(key)
        return value if isinstance(value, int) else None

    return RegistrySync(
        status=str(data.get("status") or ""),
        message=str(data.get("message") or ""),
        last_run=str(data.get("lastRunTime") or ""),
        last_synced=str(data.get("lastSyncedTime") or ""),
        total=count("totalPacks"),
        synced=count("syncedPacks"),
    )


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
    retry_backoff: float = 1.0
    clock: Clock = field(default=time.time)
    #: Settles the first contact with the console's certificate through a channel trusted already (a node over
    #: its pinned SSH session: :mod:`wizard.appliance.witness`), so a headless run pins it without a prompt.
    witness: Witness | None = None

    def open(self, endpoint: ConsoleEndpoint, password: str, cancel: CancelToken | None = None) -> ConsoleClient:
        try:
            ctx = system_or_pinned_tls_context(
                self.trust,
                self.confirm,
                endpoint.host,
                endpoint.port,
                expected=endpoint.fingerprint,
                timeout=self.timeout,
                witness=self.witness,
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
            retry_backoff=self.retry_backoff,
            cancel=cancel,
        )


# -- Jobs -----------------------------------------------------------------------------------------------------------


def wait_for_console(
    connector: ConsoleConnector,
    endpoint: ConsoleEndpoint,
    password: str,
    report: Reporter,
    cancel: CancelToken,
    *,
    poll: float,
    timeout: float,
) -> ConsoleClient:
    """A logged-in client once Palette answers at the VIP; it comes up a few minutes after the cluster is Running,
    so "unreachable" and 503 are waited out until ``timeout``. A refused password is not waited out."""
    deadline = connector.clock() + timeout
    while True:
        cancel.raise_if_cancelled()
        client: ConsoleClient | None = None
        try:
            client = connector.open(endpoint, password, cancel)
            client.login()
            return client
        except ConsoleUnreachable as exc:
            if client is not None:
                client.close()
            if connector.clock() >= deadline:
                raise ConsoleUnreachable(
                    "Palette did not come up",
                    f"{endpoint.url} still not answering after {int(timeout)} s: {exc.message}",
                    remediation="check the cluster's applications in the leader's Local UI, then run again",
                ) from exc
            report.update(0.0, f"Waiting for Palette at {endpoint.url}…")
            cancel.sleep(poll)
        except BaseException:
            if client is not None:
                client.close()
            raise


class ConsoleSetupJob(Job):
    """The first login: ``admin``/``admin``, then the forced change to the operator's email and password."""

    id = "console/admin"
    name = "System console"
    weight = 1.0

    def __init__(
        self,
        endpoint: ConsoleEndpoint,
        connector: ConsoleConnector,
        email: str,
        new_password: str,
        *,
        poll: float = 10.0,
        available_timeout: float = 30 * 60.0,
    ) -> None:
        self.endpoint = endpoint
        self.connector = connector
        self.email = email
        self._new_password = new_password
        self.poll = poll
        self.available_timeout = available_timeout

    def fingerprint(self) -> str:
        return f"{self.endpoint.url}|{self.email}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        url = self.endpoint.url
        report.update(0.0, f"Logging in to the system console at {url}/system")
        changed = False
        try:
            client = wait_for_console(
                self.connector,
                self.endpoint,
                DEFAULT_PASSWORD,
                report.child(0.0, 0.5),
                cancel,
                poll=self.poll,
                timeout=self.available_timeout,
            )
        except ConsoleLoginFailed:
            # admin/admin no longer works: the password was changed already (by an earlier run that stopped
            # before recording it, or by hand). The operator's password must work now.
            client = self.connector.open(self.endpoint, self._new_password, cancel)
            try:
                client.login()
            except BaseException:
                client.close()
                raise
        else:
            with client:
                report.update(0.6, f"Changing the admin password of {url}/system")
                client.reset_password(self.email, self._new_password)
                changed = True
            client = self.connector.open(self.endpoint, self._new_password, cancel)
            try:
                client.login()  # proof: the new password is the one that works now
            except BaseException:
                client.close()
                raise
        with client:
            if client.password_reset_required:
                client.reset_password(self.email, self._new_password)  # changed by hand but still flagged
                changed = True
            version = client.version()
        report.finish(f"System console at {url}/system: admin password " + ("changed" if changed else "already set"))
        pin = self.connector.trust.pinned(TrustKind.TLS, self.endpoint.host, self.endpoint.port) or {}
        return {
            "url": url,
            "version": version,
            "email": self.email,
            "password_changed": changed,
            "certificate": {"fingerprint": pin.get("fingerprint", ""), "how": pin.get("how", "")},
        }


class ActivateJob(Job):
    """Activate Palette with the key from Spectro Cloud support, or defer and record when the trial ends."""

    id = "activate/palette"
    name = "Activation"
    weight = 0.5

    def __init__(
        self,
        endpoint: ConsoleEndpoint,
        connector: ConsoleConnector,
        password: str,
        *,
        key: str | None,
    ) -> None:
        self.endpoint = endpoint
        self.connector = connector
        self._password = password
        self._key = key

    def fingerprint(self) -> str:
        # Not the key itself: only whether one is given, so a later key activates a deferred install.
        return f"{self.endpoint.url}|{'key' if self._key else 'defer'}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        client = self.connector.open(self.endpoint, self._password, cancel)
        with client:
            client.login()
            current = client.activation()
            facts: dict[str, Any] = {"product_setup_id": current.product_setup_id}
            if current.active:
                report.finish("Palette is already activated")
                return {**facts, "state": current.state, "expires_at": current.expires_at, "activated": True}
            if self._key is None:
                report.finish(
                    f"Activation deferred: the trial ends {current.expires_at or 'in 30 days'}; send the Product Setup "
                    f"ID {current.product_setup_id} to Spectro Cloud support for a key"
                )
                return {**facts, "state": current.state, "trial_ends": current.expires_at, "deferred": True}
            report.update(0.3, f"Activating Palette (Product Setup ID {current.product_setup_id})")
            result = client.activate(self._key)
            cancel.raise_if_cancelled()
            if not result.active:
                raise ConsoleError(
                    "Activation not confirmed",
                    f"{self.endpoint.url} accepted the key but reports the state {result.state or 'unknown'}",
                    remediation="check Administration → Activation in the system console, then run again",
                )
        report.finish("Palette activated")
        return {
            **facts,
            "state": result.state,
            "activated": True,
            "activated_at": result.last_activated_at,
            "expires_at": result.expires_at,
        }


class RegistrySyncJob(Job):
    """Trigger the sync of the in-cluster OCI pack registry (Zot) and wait for it to complete."""

    id = "packs/registry-sync"
    name = "Pack registry sync"
    weight = 1.0

    def __init__(
        self,
        endpoint: ConsoleEndpoint,
        connector: ConsoleConnector,
        password: str,
        *,
        inputs: str = "",
        poll: float = 10.0,
        timeout: float = 3600.0,
    ) -> None:
        self.endpoint = endpoint
        self.connector = connector
        self._password = password
        self.inputs = inputs
        self.poll = poll
        self.timeout = timeout

    def fingerprint(self) -> str:
        return f"{self.endpoint.url}|{self.inputs}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        with self.connector.open(self.endpoint, self._password, cancel) as client:
            client.login()
            registries = client.registries()
            if not registries:
                raise ConsoleError(
                    "No pack registry",
                    f"{self.endpoint.url} lists no OCI pack registry",
                    remediation="the cluster profile's In Cluster Registry must be True; check Administration → "
                    "Pack Registries in the system console",
                )
            registry = registries[0]  # the in-cluster Zot registry the appliance sets up
            before = client.sync_status(registry.uid)
            report.update(0.0, f"Syncing the {registry.name} pack registry")
            # A run already under way may have started before the last pack arrived: restart it.
            client.start_sync(registry.uid, force=before.status == SYNC_IN_PROGRESS)
            status = client.wait_synced(
                registry.uid, report, cancel, previous_run=before.last_run, poll=self.poll, timeout=self.timeout
            )
        report.finish(f"Pack registry {registry.name} synced")
        return {
            "registry": registry.name,
            "endpoint": registry.endpoint,
            "synced_packs": status.synced,
            "last_synced": status.last_synced,
        }
