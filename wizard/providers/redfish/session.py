"""A Redfish HTTP session with one BMC: the service root, authentication and the request plumbing.

Authentication: a SessionService session (``X-Auth-Token``) when the service root offers one, deleted again on
``close`` whatever happened; otherwise HTTP basic auth. The password and session token are registered for redaction
and never logged. :class:`~wizard.providers.redfish.client.RedfishClient` builds on this with what a boot needs.

Transient faults follow the one :class:`~wizard.core.http.RetryPolicy`: reads, PATCHes of properties (setting a
value twice sets it once) and session logins are retried below the client; actions are resent only after the
resource's state says they did not take effect (:meth:`RedfishSession.settle`).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import httpx

from wizard.core.errors import WizardError
from wizard.core.http import (
    DEFAULT_RETRY,
    RESET_ERRORS,
    TIMEOUT_ERRORS,
    AnswerDeadline,
    RetryPolicy,
    RetryTransport,
    Sleeper,
    settle,
)
from wizard.core.redact import REDACTOR
from wizard.core.trust import (
    certificate_changed,
    is_certificate_change,
)
from wizard.providers.redfish.errors import (
    AuthRefused,
    BmcUnreachable,
    UnexpectedAnswer,
    bmc_message,
)
from wizard.providers.redfish.quirks import GENERIC, BmcIdentity, VendorQuirks, quirks_for

log = logging.getLogger(__name__)

ROOT = "/redfish/v1/"
DEFAULT_TIMEOUT = 30.0
T = TypeVar("T")


def outcome_unknown_error(error: WizardError) -> WizardError:
    """Marks ``error`` as leaving open whether the request took effect (see :func:`wizard.core.http.settle`)."""
    error.outcome_unknown = True  # type: ignore[attr-defined]
    return error


@dataclass(frozen=True)
class BmcAddress:
    """A BMC address from the project: ``host``, ``host:port`` or a URL, optionally naming the System's path."""

    scheme: str
    host: str
    port: int
    system_path: str = ""

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def where(self) -> str:
        return f"BMC {self.base_url}"


def parse_address(address: str) -> BmcAddress:
    target = address.strip()
    if "://" not in target:
        target = f"https://{target}"
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{address!r} is not a BMC address (host, host:port or https://host[:port][/path])")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path.rstrip("/")
    system = path if "/Systems/" in path else ""
    return BmcAddress(parts.scheme, parts.hostname, port, system)


def odata_id(value: object) -> str:
    if isinstance(value, Mapping):
        link = value.get("@odata.id")
        return str(link) if isinstance(link, str) else ""
    return ""


def members(collection: Mapping[str, Any]) -> list[str]:
    items = collection.get("Members")
    return [p for p in (odata_id(m) for m in items) if p] if isinstance(items, list) else []


def _local_path(url: str) -> str:
    """The path (and query) of a link or Location header; absolute URLs are cut to their path so that credentials
    only ever go to the BMC this client was built for."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class RedfishSession:
    """A session with one BMC. Use as a context manager (``open``/``close``) so a session is always deleted."""

    def __init__(
        self,
        address: str | BmcAddress,
        username: str,
        password: str,
        *,
        verify: ssl.SSLContext | bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        pinned: str = "",
        retry: RetryPolicy = DEFAULT_RETRY,
        cancel: Sleeper | None = None,
    ) -> None:
        self.address = address if isinstance(address, BmcAddress) else parse_address(address)
        self.username = username
        self._password = password
        REDACTOR.add(password)
        self._pinned = pinned
        self.retry = retry
        self.cancel = cancel  # the job's CancelToken, once a job uses the session: retry waits end on a cancel
        # Bounds a whole answer, not each read: a BMC dripping bytes must not hold the job forever.
        deadline = AnswerDeadline(transport or httpx.HTTPTransport(verify=verify), base=4 * timeout)
        self._retrying = RetryTransport(deadline, retry, cancel=cancel, label=self.address.where)
        self._http = httpx.Client(
            base_url=self.address.base_url,
            timeout=timeout,
            transport=self._retrying,
            headers={"Accept": "application/json", "OData-Version": "4.0"},
            follow_redirects=False,
        )
        self.timeout = timeout
        self.root: dict[str, Any] = {}
        self.auth_mode = ""  # "session" or "basic" once open
        self.session_path = ""
        self._token = ""
        self.quirks: VendorQuirks = GENERIC
        self._identity = BmcIdentity()

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Read the service root and authenticate (session when offered, else basic); proves the credentials."""
        r = self._send("GET", ROOT, auth=False)
        if r.status_code in (401, 403):  # a few BMCs protect even the root
            self._http.auth = httpx.BasicAuth(self.username, self._password)
            r = self._send("GET", ROOT, auth=False)
            if r.status_code in (401, 403):
                raise self._auth_refused(r)
        self.root = self._json(r, "the service root")
        if "RedfishVersion" not in self.root and "Systems" not in self.root:
            raise UnexpectedAnswer(
                "Not a Redfish service",
                f"{self.address.where} answered {ROOT} without a Redfish service root",
                remediation="check the BMC address and port; Redfish must be enabled on the BMC",
            )
        oem = self.root.get("Oem")
        self.quirks = quirks_for(
            BmcIdentity(str(self.root.get("Vendor") or ""), tuple(oem) if isinstance(oem, Mapping) else ())
        )
        sessions = self._sessions_path()
        if sessions and not self.quirks.prefer_basic_auth and self._login_session(sessions):
            self.auth_mode = "session"
        else:
            self._http.auth = httpx.BasicAuth(self.username, self._password)
            self.auth_mode = "basic"
        # Prove the credentials on a resource that needs them (the root usually does not).
        systems = odata_id(self.root.get("Systems")) or ROOT + "Systems"
        r = self._send("GET", systems)
        if r.status_code in (401, 403):
            raise self._auth_refused(r)
        self._json(r, "the Systems collection")
        log.info(
            "Redfish: %s open (%s auth, RedfishVersion %s)",
            self.address.where,
            self.auth_mode,
            self.root.get("RedfishVersion", "?"),
        )

    def close(self) -> None:
        """Delete the session (if one was made) and close the connection; never raises."""
        if self.session_path:
            path, self.session_path = self.session_path, ""
            try:
                r = self._http.delete(path, headers=self._auth_headers())
                if r.status_code not in (200, 202, 204, 404):
                    log.warning("Redfish: %s kept the session (%s)", self.address.where, r.status_code)
            except httpx.HTTPError as exc:
                log.warning("Redfish: could not delete the session on %s: %s", self.address.where, exc)
        self._token = ""
        self._http.close()

    def _sessions_path(self) -> str:
        links = self.root.get("Links")
        path = odata_id(links.get("Sessions")) if isinstance(links, Mapping) else ""
        if path:
            return path
        service = odata_id(self.root.get("SessionService"))
        if not service:
            return ""
        r = self._send("GET", service, auth=False)
        if r.status_code != 200:
            return ""  # the service exists but cannot be read without a session: use the standard path
        with contextlib.suppress(UnexpectedAnswer):
            return odata_id(self._json(r, "the SessionService").get("Sessions"))
        return ""

    def _login_session(self, sessions: str) -> bool:
        """True when a session was created; False when the BMC offers none that works here (use basic auth)."""
        body = {"UserName": self.username, "Password": self._password}
        # A session login only makes a session (it expires unused): safe to send again after a lost answer.
        r = self._send("POST", sessions, json=body, auth=False, idempotent=True)
        token = r.headers.get("X-Auth-Token", "")
        if r.status_code in (200, 201) and token:
            REDACTOR.add(token)
            self._token = token
            location = r.headers.get("Location", "")
            if not location:
                with contextlib.suppress(ValueError):
                    body = r.json()
                    location = odata_id(body) if isinstance(body, Mapping) else ""
            self.session_path = _local_path(location) if location else ""
            return True
        if r.status_code in (401, 403):
            # Wrong credentials, or a role that may not create sessions: basic auth decides which (open() checks).
            log.info("Redfish: %s refused a session (%s); trying basic auth", self.address.where, r.status_code)
        else:
            log.info("Redfish: %s offers no usable session (%s); using basic auth", self.address.where, r.status_code)
        return False

    # -- plumbing ------------------------------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self._token} if self._token else {}

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        auth: bool = True,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        hdrs = dict(headers or {})
        if auth:
            hdrs.update(self._auth_headers())
        try:
            return self._http.request(
                method,
                _local_path(path),
                json=json,
                headers=hdrs,
                timeout=timeout if timeout is not None else self.timeout,
                extensions={} if idempotent is None else {"idempotent": idempotent},
            )
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def use_cancel(self, cancel: Sleeper | None) -> None:
        """Retry waits from now on end as soon as ``cancel`` (the job's token) is cancelled."""
        self.cancel = cancel
        self._retrying.cancel = cancel

    def settle(self, send: Callable[[], T], check: Callable[[], T | None], what: str) -> T:
        """An action that is not idempotent, resent after an unknown outcome only once ``check`` says it did not
        take effect (:func:`wizard.core.http.settle`)."""
        return settle(self.retry, send, check, what=f"{self.address.where}: {what}", cancel=self.cancel)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """An authenticated call; 401/403 become :class:`AuthRefused`, other statuses are the caller's to judge.
        ``idempotent`` declares a request safe to resend (a PATCH of properties) or not; None goes by the method."""
        r = self._send(method, path, json=json, headers=headers, timeout=timeout, idempotent=idempotent)
        if r.status_code == 401 and self.auth_mode == "session":
            # The BMC dropped the session (timeout, BMC reset): one fresh login, then the answer stands.
            sessions = self._sessions_path()
            if sessions and self._login_session(sessions):
                r = self._send(method, path, json=json, headers=headers, timeout=timeout, idempotent=idempotent)
        if r.status_code in (401, 403):
            raise self._auth_refused(r, f"{method} {_local_path(path)}")
        return r

    def get(self, path: str) -> dict[str, Any]:
        r = self.request("GET", path)
        if r.status_code != 200:
            raise UnexpectedAnswer(
                "Unexpected BMC answer",
                f"{self.address.where} answered {r.status_code} to GET {_local_path(path)}: {bmc_message(r)}",
            )
        return self._json(r, _local_path(path))

    def get_optional(self, path: str) -> dict[str, Any] | None:
        r = self.request("GET", path)
        if r.status_code in (404, 405, 501):
            return None
        if r.status_code != 200:
            raise UnexpectedAnswer(
                "Unexpected BMC answer",
                f"{self.address.where} answered {r.status_code} to GET {_local_path(path)}: {bmc_message(r)}",
            )
        return self._json(r, _local_path(path))

    def _json(self, r: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = r.json()
        except ValueError as exc:
            raise UnexpectedAnswer(
                "Unexpected BMC answer", f"{self.address.where} sent {what} as something other than JSON"
            ) from exc
        if not isinstance(data, dict):
            raise UnexpectedAnswer("Unexpected BMC answer", f"{self.address.where} sent {what} as a non-object")
        return data

    def _auth_refused(self, r: httpx.Response, what: str = "") -> AuthRefused:
        if r.status_code == 403 and what:
            return AuthRefused(
                "BMC refused the operation",
                f"{self.address.where} refused {what} for {self.username}: {bmc_message(r)}",
                remediation="give the BMC account the Administrator (or Operator with virtual media) role",
            )
        return AuthRefused(
            "BMC login refused",
            f"{self.address.where} refused the user name or password of {self.username} ({r.status_code})",
            remediation="check the BMC user name and the password stored in the keyring, and that the account is "
            "enabled and not locked out",
        )

    def _transport_error(self, exc: httpx.TransportError) -> WizardError:
        if is_certificate_change(exc):
            return certificate_changed(self.address.host, self.address.port, self._pinned or "")
        if isinstance(exc, httpx.TimeoutException):
            what = "did not answer in time"
        elif isinstance(exc, httpx.ConnectError):
            what = "refused the connection" if "refused" in str(exc).lower() else f"cannot be reached ({exc})"
        else:
            what = f"dropped the connection ({exc.__class__.__name__}: {exc})"
        error = BmcUnreachable("BMC unreachable", f"{self.address.where} {what}", remediation=_UNREACHABLE_FIX)
        # A request that got through and lost its answer may have taken effect; one that never connected did not.
        return outcome_unknown_error(error) if isinstance(exc, RESET_ERRORS + TIMEOUT_ERRORS) else error


_UNREACHABLE_FIX = (
    "check the BMC address and port, that the BMC is powered and on the network, and that this machine can reach "
    "it (firewall, VLAN, routing)"
)
