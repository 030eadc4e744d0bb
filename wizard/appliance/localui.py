"""A client for a node's Local UI (the Edge Local Management API on port 5080), over pinned TLS.

Sessions: the login token goes in ``Authorization`` as is (the docs' example has no ``Bearer``), and also as the
cookie of that name the Local UI itself sets (reference §10.3), so a node that reads only one of them accepts it. A
token lives 2 h, so the client renews it when less than :data:`RENEW_MARGIN` is left (by its injectable clock) and
logs in again once when a request still gets a 401 (the node rebooted, or someone logged the session out). Closing
the client logs its session out, or hands it to the run's pool (:mod:`wizard.appliance.sessions`).

Transient faults follow the one :class:`~wizard.core.http.RetryPolicy`: idempotent requests are retried below the
client; a request that is not idempotent and whose outcome is unknown is resent only after the state says it did not
take effect (:meth:`LocalUIClient.settle`).

Errors come out as :class:`LocalUIError` subclasses that say what to do; a pinned certificate that no longer matches
is a :class:`~wizard.core.trust.TrustChanged`. Every method is synchronous and meant for a worker thread.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from wizard.appliance.localui_answers import (
    ArchiveDetails,
    ClusterStatus,
    HostInfo,
    LifecycleEvents,
    LinkStatus,
    LinkToken,
    ProfileVariable,
    UploadedContent,
    VariableCheck,
    link_status_from,
    parse_archive,
)
from wizard.appliance.sessions import PooledSession, SessionPool, session_key
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
from wizard.core.trust import (
    Confirm,
    TlsUnreachable,
    TrustKind,
    TrustStore,
    certificate_changed,
    is_certificate_change,
    trusted_tls_context,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 5080
TOKEN_LIFETIME = 2 * 3600.0  # documented lifetime without extendedSession
RENEW_MARGIN = 10 * 60.0
LOGOUT_TIMEOUT = 5.0  # a session left open on a node that went away expires by itself

P_LOGIN = "/v1/users/default/login"
P_LOGOUT = "/v1/users/default/logout"
P_RENEW = "/v1/users/default/token/renewal"
P_PING = "/v1/ping"
P_USER = "/v1/users/current"
P_PASSWORD_RESET = "/v1/users/default/password/reset"  # noqa: S105 - a path, not a password
P_HOST = "/v1/edge-mgmt/edgehosts/current"
P_SETTINGS = "/v1/edge-mgmt/settings"
P_LINK_TOKEN = "/v1/edge-mgmt/edgehosts/current/link/generate-token"  # noqa: S105 - a path
P_LINK = "/v1/edge-mgmt/edgehosts/current/link"
P_LINK_STATUS = "/v1/edge-mgmt/edgehosts/current/link/status"
P_UPLOAD = "/v1/edge-mgmt/edgehosts/current/actions/upload-content"
P_UPLOADED = "/v1/edge-mgmt/edgehosts/current/uploaded-content/details"
P_ARCHIVE = "/v1/edge-mgmt/clusters/archive/embedded/details"
P_VALIDATE = "/v1/edge-mgmt/cluster/profiles/variables/validate"
P_CLUSTER = "/v1/edge-mgmt/cluster"
P_CLUSTER_DETAILS = "/v1/edge-mgmt/cluster/details"
P_LIFECYCLE = "/v1/edge-mgmt/events/lifecycle"

Clock = Callable[[], float]
T = TypeVar("T")
TransportWrapper = Callable[[httpx.BaseTransport], httpx.BaseTransport]


__all__ = [
    "DEFAULT_PORT",
    "LOGOUT_TIMEOUT",
    "P_ARCHIVE",
    "P_CLUSTER",
    "P_CLUSTER_DETAILS",
    "P_HOST",
    "P_LIFECYCLE",
    "P_LINK",
    "P_LINK_STATUS",
    "P_LINK_TOKEN",
    "P_LOGIN",
    "P_LOGOUT",
    "P_PASSWORD_RESET",
    "P_PING",
    "P_RENEW",
    "P_SETTINGS",
    "P_UPLOAD",
    "P_UPLOADED",
    "P_USER",
    "P_VALIDATE",
    "RENEW_MARGIN",
    "TOKEN_LIFETIME",
    "ArchiveDetails",
    "Clock",
    "ClusterStatus",
    "Connector",
    "Endpoint",
    "HostInfo",
    "LifecycleEvents",
    "LinkStatus",
    "LinkToken",
    "LocalUIClient",
    "LocalUIError",
    "LocalUILoginFailed",
    "LocalUIServerError",
    "LocalUIUnreachable",
    "ProfileVariable",
    "TransportWrapper",
    "UploadedContent",
    "VariableCheck",
]

# -- Errors ---------------------------------------------------------------------------------------------------------


class LocalUIError(WizardError):
    """The Local UI refused a request; ``status`` is the HTTP status (0 when there was no answer)."""

    def __init__(self, title: str, message: str, *, status: int = 0, code: str = "", **kw: str) -> None:
        super().__init__(title, message, **kw)
        self.status = status
        self.code = code


class LocalUIUnreachable(LocalUIError):
    """No HTTP answer at all: refused, reset, timed out. Expected while nodes reboot during cluster creation."""


class LocalUILoginFailed(LocalUIError):
    """The node did not accept the credentials (or is throttling logins)."""


class LocalUIServerError(LocalUIError):
    """A 5xx: the node failed; often worth retrying."""


def _unknown(error: LocalUIError) -> LocalUIError:
    """Marks ``error`` as leaving open whether the request took effect (see :func:`wizard.core.http.settle`)."""
    error.outcome_unknown = True  # type: ignore[attr-defined]
    return error

    def timeline(self) -> list[tuple[str, str, str]]:
        """(label, ``done``/``current``/``pending``, detail): the conditions reached, in the order they were
        reached — the latest is where the cluster is now (``current``) until every expected one is reached — then
        the ones still expected. The expected order lists the cluster's and the hosts' conditions apart, so which
        comes next is not known; where it is now is. Conditions the node reports but the expected order does not
        name are shown too (a newer appliance may add some)."""
        reached = set(self.reached)
        waiting = [key for key in self.expected if key not in reached]
        out = []
        for i, key in enumerate(self.reached):
            state = "current" if waiting and i == len(self.reached) - 1 else "done"
            out.append((self.labels.get(key, key.split("/", 1)[-1]), state, self.details.get(key, "")))
        out += [(self.labels.get(key, key.split("/", 1)[-1]), "pending", "") for key in waiting]
        return out


# -- The client -----------------------------------------------------------------------------------------------------


class LocalUIClient:
    """One node's Local UI. Thread-confined: use one client per worker thread."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        ssl_context: ssl.SSLContext,
        timeout: float = 30.0,
        clock: Clock = time.time,
        pinned: str = "",
        wrap_transport: TransportWrapper | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        cancel: CancelToken | None = None,
        pool: SessionPool | None = None,
    ) -> None:
        """``pool``: the run's kept sessions (:mod:`wizard.appliance.sessions`): a live one of this node and
        account is taken instead of logging in, and this client's is handed back instead of logging out."""
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self._pool = pool
        self._pool_key = session_key(host, port, username, password)
        self._clock = clock
        self._pinned = pinned
        self.retry = retry
        self._cancel = cancel  # the job's token: a cancel during a retry wait takes effect at once
        self._token: str | None = None
        self._expires_at = 0.0
        self.first_login: bool | None = None
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._wrap_transport = wrap_transport
        # An answer must arrive within 4 read timeouts plus its size at a slow link's rate: a peer that drips
        # bytes just faster than the read timeout would otherwise hold the job forever.
        transport: httpx.BaseTransport = AnswerDeadline(httpx.HTTPTransport(verify=ssl_context), base=4 * timeout)
        if wrap_transport is not None:
            transport = wrap_transport(transport)  # below the retries: a test sees every attempt
        self._retrying = RetryTransport(transport, retry, cancel=cancel, label=f"Local UI {host}:{port}")
        self._http = httpx.Client(
            base_url=f"https://{host}:{port}", transport=self._retrying, timeout=timeout, follow_redirects=False
        )
        kept = pool.take(self._pool_key, clock(), RENEW_MARGIN) if pool is not None else None
        if kept is not None:
            self._token, self._expires_at = kept.token, kept.expires_at

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def _sibling(self, password: str, *, cancellable: bool = True) -> LocalUIClient:
        """Another client of the same node and account, with ``password`` (never pooled); ``cancellable``: it
        follows this client's cancel token."""
        return LocalUIClient(
            self.host,
            self.port,
            self.username,
            password,
            ssl_context=self._ssl_context,
            timeout=self._timeout,
            clock=self._clock,
            pinned=self._pinned,
            wrap_transport=self._wrap_transport,
            retry=self.retry,
            cancel=self._cancel if cancellable else None,
        )

    def close(self) -> None:
        """Hand a live session to the run's pool, else log it out (once, briefly: a node that went away lets it
        expire); close the connection."""
        try:
            if self._token is not None and self._expires_at > self._clock():
                kept = PooledSession(self._token, self._expires_at, self._logout_kept)
                if self._pool is not None and self._pool.give(self._pool_key, kept):
                    self._token = None  # the pool's now
                else:
                    self.logout()
        finally:
            self._http.close()

    def _logout_kept(self, token: str) -> None:
        """Log out a session this client handed to the pool, through a client of its own (this one is closed)."""
        other = self._sibling(self._password, cancellable=False)  # the run may have been cancelled: log out anyway
        other._token, other._expires_at = token, self._clock() + TOKEN_LIFETIME
        other.close()

    def logout(self) -> None:
        """End this client's session on the node; never raises (the session expires by itself anyway)."""
        if self._token is None:
            return
        try:
            r = self._send("POST", P_LOGOUT, auth=True, idempotent=False, timeout=LOGOUT_TIMEOUT)
            if r.status_code not in (200, 204, 401):
                log.info("Local UI %s kept the session (%s)", self.where, r.status_code)
        except (LocalUIError, WizardError) as exc:
            log.info("Local UI %s: logout not possible (%s); the session expires by itself", self.where, exc)
        self._token = None
        self._expires_at = 0.0

    def __enter__(self) -> LocalUIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Sessions --

    def login(self) -> None:
        body = {"username": self.username, "password": self._password}
        params = {"setCookie": "false"}  # the client sends the token itself; no cookie jar needed
        # A login only makes a session, so sending it again after a lost answer is safe.
        r = self._send("POST", P_LOGIN, json=body, params=params, auth=False, idempotent=True)
        if r.status_code in (401, 403):
            raise LocalUILoginFailed(
                "Local UI login failed",
                f"{self.where} refused the credentials of {self.username!r}",
                status=r.status_code,
                remediation="use the account created in the Palette TUI on that node (it is also the SSH account)",
            )
        if r.status_code == 429:  # waited out below the client as long as the policy allows; longer is a lock
            raise LocalUILoginFailed(
                "Local UI login throttled",
                f"{self.where}: {error_message(r)}",
                status=429,
                remediation="too many failed logins: wait as asked (a lock lasts 15 minutes), then retry",
            )
        data = self._json(r, "log in")
        token = str((data.get("Token") or {}).get("Authorization") or "")
        if not token:
            raise LocalUIError("Unexpected Local UI answer", f"{self.where} returned no token after login")
        if self._token is not None and self._token != token and self._expires_at > self._clock():
            self.logout()  # the live session this one replaces: never leave one open behind
        self._set_token(token)
        # Recorded only: what the flag means is not published (first login ever, or "password still the default").
        first = data.get("IsFirstLogin")
        self.first_login = first if isinstance(first, bool) else None

    def renew(self) -> None:
        r = self._send("POST", P_RENEW, auth=True, idempotent=True)
        if r.status_code == 401:
            self._token = None  # gone on the node: nothing to log out
            self.login()
            return
        token = str(self._json(r, "renew the session").get("Authorization") or "")
        if not token:
            raise LocalUIError("Unexpected Local UI answer", f"{self.where} returned no token on renewal")
        self._set_token(token)

    def _set_token(self, token: str) -> None:
        self._token = token
        self._expires_at = self._clock() + TOKEN_LIFETIME

    def ensure_session(self) -> None:
        """A token with at least :data:`RENEW_MARGIN` left: log in when there is none or it expired, else renew."""
        left = self._expires_at - self._clock()
        if self._token is None or left <= 0:
            self.login()
        elif left < RENEW_MARGIN:
            self.renew()

    # -- Plumbing --

    def _send(
        self,
        method: str,
        path: str,
        *,
        auth: bool,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        content: Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request. ``idempotent`` declares a POST safe to resend (or a PUT not); None goes by the method."""
        hdrs = dict(headers or {})
        if auth and self._token is not None:
            # Header and cookie: which of them a node reads is not published (§2.1 header, §10.3 cookie).
            hdrs["Authorization"] = self._token
            hdrs["Cookie"] = f"Authorization={self._token}"
        extensions = {} if idempotent is None else {"idempotent": idempotent}
        try:
            return self._http.request(
                method,
                path,
                json=json,
                params=params,
                content=content,
                headers=hdrs,
                extensions=extensions,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: httpx.TransportError) -> WizardError:
        if is_certificate_change(exc):
            return certificate_changed(self.host, self.port, self._pinned or "")
        if isinstance(exc, httpx.TimeoutException):
            what = "did not answer in time"
        elif isinstance(exc, httpx.ConnectError):
            what = "refused the connection" if "refused" in str(exc).lower() else f"cannot be reached ({exc})"
        else:
            what = f"dropped the connection ({exc.__class__.__name__}: {exc})"
        error = LocalUIUnreachable(
            "Local UI unreachable",
            f"{self.where} {what}",
            remediation=(
                "check that the node is powered on and has finished booting, and that port "
                f"{self.port} is reachable from this machine (firewall, VLAN, address)"
            ),
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
        missing_ok: bool = False,
        idempotent: bool | None = None,
    ) -> httpx.Response | None:
        """An authenticated request; returns the response for a status in ``ok``, None for 404 when
        ``missing_ok``, and raises otherwise. Transient faults are the retry policy's (see the module docstring);
        ``idempotent`` declares a POST that only reads, so it is retried like a GET."""
        relogged = False
        while True:
            self.ensure_session()
            r = self._send(method, path, auth=True, json=json, params=params, idempotent=idempotent)
            if r.status_code == 401 and not relogged:
                relogged = True  # the node forgot the session (reboot, logout): one fresh login, then give up
                self._token = None  # gone on the node: nothing to log out
                self.login()
                continue
            if r.status_code in ok:
                return r
            if r.status_code == 404 and missing_ok:
                return None
            raise self.http_error(r, f"{method} {path}")

    def settle(self, send: Callable[[], T], check: Callable[[], T | None], what: str) -> T:
        """Send a request that is not idempotent; after an unknown outcome, ``check`` reads whether it took effect
        before it is sent again (:func:`wizard.core.http.settle`, with this client's policy and cancel token)."""
        return settle(self.retry, send, check, what=f"{self.where}: {what}", cancel=self._cancel)

    def http_error(self, r: httpx.Response, what: str) -> LocalUIError:
        message = error_message(r)
        if r.status_code >= 500:
            error = LocalUIServerError(
                "Local UI error",
                f"{self.where} failed to {what}: {message}",
                status=r.status_code,
                code=error_code(r),
                remediation="retry; if it keeps failing, download the node's logs from its Local UI",
            )
            return _unknown(error) if r.status_code in self.retry.statuses else error
        if r.status_code == 401:
            return LocalUILoginFailed(
                "Local UI session refused", f"{self.where}: {message}", status=401, code=error_code(r)
            )
        if 300 <= r.status_code < 400:
            # Redirects are not followed (a loop would never end, and a token must not go elsewhere).
            return LocalUIError(
                "Local UI redirected the request",
                f"{self.where} answered {r.status_code} to {what}, pointing at {r.headers.get('Location') or '?'}",
                status=r.status_code,
                remediation="the Local UI API never redirects: check the node's address and port (another service "
                "or a proxy may be answering there)",
            )
        return LocalUIError(
            "Local UI refused the request", f"{self.where}: {message}", status=r.status_code, code=error_code(r)
        )

    def _json(self, r: httpx.Response, what: str) -> dict[str, Any]:
        if r.status_code >= 400:
            raise self.http_error(r, what)
        try:
            data = r.json()
        except ValueError as exc:
            raise LocalUIError("Unexpected Local UI answer", f"{self.where}: {what}: not JSON") from exc
        if not isinstance(data, dict):
            raise LocalUIError("Unexpected Local UI answer", f"{self.where}: {what}: not a JSON object")
        return data

    def _get(self, path: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        r = self.request("GET", path, missing_ok=missing_ok)
        return None if r is None else self._json(r, f"GET {path}")

    def get_json(self, path: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        """A GET of a JSON object (None for a 404 when ``missing_ok``)."""
        return self._get(path, missing_ok=missing_ok)

    def optional_json(self, path: str, what: str) -> dict[str, Any] | None:
        """A read that is only informational: a 404, a 5xx the retries did not cure, or an answer that is not a JSON
        object means "unknown" (None, with a log line), never a failed step."""
        try:
            r = self.request("GET", path)
            return None if r is None else self._json(r, f"GET {path}")
        except (LocalUIServerError, LocalUIUnreachable) as exc:
            log.info("%s: %s unknown (%s)", self.where, what, exc.message)
        except LocalUIError as exc:
            if exc.status not in (0, 404, 405, 501):
                raise
            log.info("%s: %s unknown (%s)", self.where, what, exc.message)
        return None

    # -- Endpoints --

    def reset_password(self, new_password: str) -> None:
        """Replace the logged-in account's password (``oldPassword`` is the one this client logged in with); later
        logins of this client use the new one. After an unknown outcome, a login with the new password tells
        whether the change took effect before it is sent again."""
        body = {"oldPassword": self._password, "newPassword": new_password}

        def send() -> bool:
            self.request("POST", P_PASSWORD_RESET, json=body, ok=(200, 204))
            return True

        self.settle(send, lambda: self._logs_in_with(new_password) or None, "password change")
        self._password = new_password

    def _logs_in_with(self, password: str) -> bool:
        """Whether the node accepts ``password`` for this account (a separate session, logged out again)."""
        with self._sibling(password) as probe:
            try:
                probe.login()
            except LocalUILoginFailed as exc:
                if exc.status in (401, 403):
                    return False
                raise
        return True

    def ping(self) -> bool:
        """True when the Local UI answers its liveness probe; unreachable is False, not an error."""
        try:
            r = self._send("GET", P_PING, auth=False)
        except LocalUIUnreachable:
            return False
        return r.status_code == 200

    def host_info(self) -> HostInfo:
        data = self._get(P_HOST) or {}
        spec, status = data.get("spec") or {}, data.get("status") or {}
        nics = spec.get("networkInfo") or []
        default = next((n for n in nics if n.get("isDefault")), nics[0] if nics else {})
        return HostInfo(
            uid=str((data.get("metadata") or {}).get("id") or ""),
            name=str(status.get("hostName") or (data.get("metadata") or {}).get("name") or ""),
            ip=str(default.get("ip") or ""),
            in_cluster=bool(status.get("isClusterPhase")),
            agent_version=str(status.get("agentVersion") or ""),
        )

    def settings(self) -> dict[str, Any]:
        """``v1Settings`` as the node answers it (``applianceType`` from 4.9.38 is outside the published schema)."""
        return self._get(P_SETTINGS) or {}

    def generate_link_token(self) -> LinkToken:
        # Safe to resend: a token nobody received is never used, and the leader hands out a fresh one.
        r = self.request("POST", P_LINK_TOKEN, idempotent=True)
        assert r is not None
        data = self._json(r, "generate a link token")
        return LinkToken(
            str(data.get("token") or ""), int(data.get("interval") or 0), int(data.get("remainingTime") or 0)
        )

    def link(self, token: str) -> LinkStatus:
        """Link this host to the leader the token names. After an unknown outcome this host's own link status says
        whether it is linked now (then that is the answer) before the link is sent again."""

        def send() -> LinkStatus:
            r = self.request("POST", P_LINK, json={"token": token})
            assert r is not None
            return link_status_from(self._json(r, "link to the leader"))

        def linked() -> LinkStatus | None:
            status = self.link_status()
            return status if status is not None and any(p.role == "leader" for p in status.peers) else None

        return self.settle(send, linked, "link to the leader")

    def link_status(self) -> LinkStatus | None:
        """None when the host is not linked (the API's 404)."""
        data = self._get(P_LINK_STATUS, missing_ok=True)
        return None if data is None else link_status_from(data)

    def upload_content(self, body: Iterable[bytes], *, content_type: str, length: int) -> str:
        """POST a prepared multipart body (streamed); returns the node's upload path. No re-login mid-stream:
        callers call :meth:`ensure_session` (or any request) right before."""
        self.ensure_session()
        headers = {"Content-Type": content_type, "Content-Length": str(length)}
        r = self._send("POST", P_UPLOAD, auth=True, content=body, headers=headers)
        # 201 as the spec says; a 200 from a node that answers "OK" to a stored upload is as good.
        if r.status_code not in (200, 201):
            raise self.http_error(r, "store the upload")
        if not r.content.strip():
            return ""
        return str(self._json(r, "upload content").get("uploadPath") or "")

    def uploaded_content(self) -> UploadedContent | None:
        data = self._get(P_UPLOADED, missing_ok=True)
        if data is None:
            return None
        return UploadedContent(
            str(data.get("fileName") or ""),
            str(data.get("sha256Hash") or "").lower(),
            int(data.get("sizeInBytes") or 0),
            str(data.get("uploadDateTime") or ""),
        )

    def archive_details(self) -> ArchiveDetails | None:
        """The cluster profile the node's embedded archive holds; None before content is uploaded."""
        data = self._get(P_ARCHIVE, missing_ok=True)
        return None if data is None else parse_archive(data)

    def validate_variables(self, archive_path: str, values: Sequence[Mapping[str, str]]) -> list[VariableCheck]:
        body = {"archiveUploadPath": archive_path, "variables": [dict(v) for v in values]}
        r = self.request("POST", P_VALIDATE, json=body, idempotent=True)  # a check: changes nothing
        assert r is not None
        return [
            VariableCheck(str(v.get("name") or ""), bool(v.get("isValid")), str(v.get("validationFailureReason") or ""))
            for v in self._json(r, "validate the variables").get("variables") or []
        ]

    def create_cluster(self, configuration: Mapping[str, Any]) -> str:
        """Create the cluster. After an unknown outcome the leader's cluster details say whether it exists now
        (then that is the answer) before the request is sent again; a resend the node refuses because the cluster
        exists by then counts as created too."""
        name = str((configuration.get("metadata") or {}).get("name") or "")

        def created() -> str | None:
            status = self.cluster_status()
            return f"cluster {name} exists" if status is not None and status.name == name else None

        def send() -> str:
            try:
                r = self.request("POST", P_CLUSTER, json=configuration, ok=(200, 201, 202))
            except LocalUIError as exc:
                if exc.status == 400 and (done := created()) is not None:
                    return done
                raise
            assert r is not None
            if not r.content.strip():
                return ""
            return str(self._json(r, "create the cluster").get("message") or "")

        return self.settle(send, created, f"create cluster {name}")

    def cluster_configuration(self) -> dict[str, Any] | None:
        """The accepted v1ClusterConfiguration, or None when the host has no cluster."""
        return self._get(P_CLUSTER, missing_ok=True)

    def cluster_status(self) -> ClusterStatus | None:
        data = self._get(P_CLUSTER_DETAILS, missing_ok=True)
        if data is None:
            return None
        meta, status = data.get("metadata") or {}, data.get("status") or {}
        health = status.get("health") or {}
        return ClusterStatus(
            name=str(meta.get("name") or ""),
            uid=str(meta.get("id") or ""),
            state=str(status.get("clusterState") or ""),
            reason=str(status.get("clusterStateReason") or health.get("reason") or ""),
            health=str(health.get("status") or ""),
            reboot_pending=bool(status.get("isRebootPending")),
            kubeconfig=str(status.get("kubeconfig") or ""),
            agent_version=str(status.get("agentVersion") or ""),
        )

    def lifecycle_events(self) -> LifecycleEvents:
        """The deployment's timeline; only informational (it moves the progress bar and the Cluster page's
        timeline), so unknown is empty."""
        data = self.optional_json(P_LIFECYCLE, "the lifecycle events") or {}
        events = [("Cluster", e) for e in data.get("clusterEvents") or []]
        events += [("EdgeHost", e) for e in data.get("edgeHostEvents") or []]
        # In the order they happened (the transition times sort as text: RFC 3339); the node's order otherwise.
        events.sort(key=lambda ce: str(ce[1].get("lastTransitionTime") or ""))
        reached = [f"{category}/{e.get('type')}" for category, e in events]
        details = {
            f"{category}/{e.get('type')}": str(e.get("message") or e.get("reason") or "") for category, e in events
        }
        times = {f"{category}/{e.get('type')}": str(e.get("lastTransitionTime") or "") for category, e in events}
        expected: list[str] = []
        labels: dict[str, str] = {}
        orders = sorted(data.get("expectedOrder") or [], key=lambda o: o.get("order") or 0)
        for o in orders:
            for c in sorted(o.get("conditionsOrder") or [], key=lambda c: c.get("order") or 0):
                key = f"{o.get('category')}/{c.get('type')}"
                expected.append(key)
                labels[key] = str(c.get("typeLabel") or c.get("type") or "")
        return LifecycleEvents(tuple(reached), tuple(expected), labels, details, times)


# -- Opening clients from plain values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """How to reach one node's Local UI; plain values a job can be built from."""

    name: str
    host: str
    username: str
    password: str = field(repr=False)
    port: int = DEFAULT_PORT
    fingerprint: str = ""  # the TLS fingerprint the project file expects, if any

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class Connector:
    """Opens :class:`LocalUIClient`\\ s whose TLS is pinned through the trust store (asking on first contact)."""

    def __init__(
        self,
        trust: TrustStore,
        confirm: Confirm | None,
        *,
        clock: Clock = time.time,
        timeout: float = 30.0,
        wrap_transport: TransportWrapper | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        pool: SessionPool | None = None,
    ) -> None:
        """``pool``: sessions kept for the run, shared by the clients this connector opens (see
        :mod:`wizard.appliance.sessions`); None: each client logs in and out by itself."""
        self.trust = trust
        self.confirm = confirm
        self.clock = clock
        self.timeout = timeout
        self.wrap_transport = wrap_transport
        self.retry = retry
        self.pool = pool

    def open(self, endpoint: Endpoint, cancel: CancelToken | None = None) -> LocalUIClient:
        try:
            ctx = trusted_tls_context(
                self.trust,
                self.confirm,
                endpoint.host,
                endpoint.port,
                expected=endpoint.fingerprint,
                timeout=self.timeout,
            )
        except TlsUnreachable as exc:  # the node is down or rebooting: the same error as a request that got no answer
            raise LocalUIUnreachable(exc.title, exc.message, remediation=exc.remediation) from exc
        entry = self.trust.pinned(TrustKind.TLS, endpoint.host, endpoint.port)
        return LocalUIClient(
            endpoint.host,
            endpoint.port,
            endpoint.username,
            endpoint.password,
            ssl_context=ctx,
            timeout=self.timeout,
            clock=self.clock,
            pinned=str(entry["fingerprint"]) if entry else endpoint.fingerprint,
            wrap_transport=self.wrap_transport,
            retry=self.retry,
            cancel=cancel,
            pool=self.pool,
        )
