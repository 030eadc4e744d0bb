"""A client for a node's Local UI (the Edge Local Management API on port 5080), over pinned TLS.

Sessions: the login token goes in ``Authorization`` as is (the docs' example has no ``Bearer``). A token lives 2 h,
so the client renews it when less than :data:`RENEW_MARGIN` is left (by its injectable clock) and logs in again
once when a request still gets a 401 (the node rebooted, or someone logged the session out).

Errors come out as :class:`LocalUIError` subclasses that say what to do; a pinned certificate that no longer matches
is a :class:`~wizard.core.trust.TrustChanged`. Every method is synchronous and meant for a worker thread.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.http import AnswerDeadline, error_code, error_message, retry_after
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
THROTTLE_WAITS = 3  # 429 answers waited out (as Retry-After asks) before the request fails

P_LOGIN = "/v1/users/default/login"
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
TransportWrapper = Callable[[httpx.BaseTransport], httpx.BaseTransport]


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


# -- Typed answers --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkToken:
    token: str = field(repr=False)
    interval: int
    remaining: int


@dataclass(frozen=True)
class LinkPeer:
    id: str
    ip: str
    port: str
    role: str  # "leader" | "follower"
    name: str
    status: str  # "Ready" once reachable
    health: str
    health_reason: str
    content_sync: str

    @property
    def ready(self) -> bool:
        return self.status == "Ready" and self.health == "Healthy"


@dataclass(frozen=True)
class LinkStatus:
    status: str
    peers: tuple[LinkPeer, ...]
    error: str = ""

    def peer(self, uid: str) -> LinkPeer | None:
        return next((p for p in self.peers if p.id == uid), None)


@dataclass(frozen=True)
class HostInfo:
    uid: str
    name: str
    ip: str
    in_cluster: bool


@dataclass(frozen=True)
class UploadedContent:
    file_name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ProfileVariable:
    name: str
    display_name: str
    profile_uid: str
    default: str | None
    required: bool
    sensitive: bool
    regex: str = ""

    @property
    def label(self) -> str:
        return (
            f"{self.display_name} ({self.name})" if self.display_name and self.display_name != self.name else self.name
        )


@dataclass(frozen=True)
class ArchiveDetails:
    path: str
    profile_uids: tuple[str, ...]
    variables: tuple[ProfileVariable, ...]


@dataclass(frozen=True)
class VariableCheck:
    name: str
    valid: bool
    reason: str


@dataclass(frozen=True)
class ClusterStatus:
    name: str
    uid: str
    state: str  # Provisioning | Running | Deleting | Error
    reason: str
    health: str
    reboot_pending: bool
    kubeconfig: str = field(repr=False, default="")

    @property
    def done(self) -> bool:
        return self.state == "Running" and self.health == "Healthy"


@dataclass(frozen=True)
class LifecycleEvents:
    reached: tuple[str, ...]  # "<category>/<type>" in the order they happened
    expected: tuple[str, ...]
    #: Readable labels by "<category>/<type>" (the expected order's typeLabel, else the type itself).
    labels: Mapping[str, str] = field(default_factory=dict)
    #: What each reached condition says (its message, else its reason), and when it was reached (as the node wrote it).
    details: Mapping[str, str] = field(default_factory=dict)
    times: Mapping[str, str] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return len(self.reached) / len(self.expected) if self.expected else 0.0

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
        self._cancel = cancel  # the job's token: a cancel during a retry wait takes effect at once
        self._token: str | None = None
        self._expires_at = 0.0
        self.first_login: bool | None = None
        # An answer must arrive within 4 read timeouts plus its size at a slow link's rate: a peer that drips
        # bytes just faster than the read timeout would otherwise hold the job forever.
        transport: httpx.BaseTransport = AnswerDeadline(httpx.HTTPTransport(verify=ssl_context), base=4 * timeout)
        if wrap_transport is not None:
            transport = wrap_transport(transport)
        self._http = httpx.Client(
            base_url=f"https://{host}:{port}", transport=transport, timeout=timeout, follow_redirects=False
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LocalUIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Sessions --

    def login(self) -> None:
        body = {"username": self.username, "password": self._password}
        params = {"setCookie": "false"}  # the token travels in a header; no cookie jar needed
        r = self._send("POST", P_LOGIN, json=body, params=params, auth=False)
        if r.status_code in (401, 403):
            raise LocalUILoginFailed(
                "Local UI login failed",
                f"{self.where} refused the credentials of {self.username!r}",
                status=r.status_code,
                remediation="use the account created in the Palette TUI on that node (it is also the SSH account)",
            )
        if r.status_code == 429:
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
        self._set_token(token)
        self.first_login = bool(data.get("IsFirstLogin"))

    def renew(self) -> None:
        r = self._send("POST", P_RENEW, auth=True)
        if r.status_code == 401:
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
    ) -> httpx.Response:
        hdrs = dict(headers or {})
        if auth and self._token is not None:
            hdrs["Authorization"] = self._token
        try:
            return self._http.request(method, path, json=json, params=params, content=content, headers=hdrs)
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
        return LocalUIUnreachable(
            "Local UI unreachable",
            f"{self.where} {what}",
            remediation=(
                "check that the node is powered on and has finished booting, and that port "
                f"{self.port} is reachable from this machine (firewall, VLAN, address)"
            ),
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200,),
        missing_ok: bool = False,
        retries: int = 0,
    ) -> httpx.Response | None:
        """An authenticated request; returns the response for a status in ``ok``, None for 404 when
        ``missing_ok``, and raises otherwise. 5xx answers are retried ``retries`` times with backoff."""
        attempt = throttled = 0
        relogged = False
        while True:
            self.ensure_session()
            r = self._send(method, path, auth=True, json=json, params=params)
            if r.status_code == 401 and not relogged:
                relogged = True  # the node forgot the session (reboot, logout): one fresh login, then give up
                self.login()
                continue
            if r.status_code == 429 and throttled < THROTTLE_WAITS:
                # Throttled: the request was not processed, so any method may be sent again after the wait asked.
                throttled += 1
                self._wait(retry_after(r, self._retry_backoff * 2 ** (throttled - 1)))
                continue
            if r.status_code >= 500 and attempt < retries:
                attempt += 1
                self._wait(self._retry_backoff * 2 ** (attempt - 1))
                continue
            if r.status_code in ok:
                return r
            if r.status_code == 404 and missing_ok:
                return None
            raise self.http_error(r, f"{method} {path}")

    def _wait(self, seconds: float) -> None:
        if self._cancel is not None:
            self._cancel.sleep(seconds)
        else:
            time.sleep(seconds)

    def http_error(self, r: httpx.Response, what: str) -> LocalUIError:
        message = error_message(r)
        if r.status_code >= 500:
            return LocalUIServerError(
                "Local UI error",
                f"{self.where} failed to {what}: {message}",
                status=r.status_code,
                code=error_code(r),
                remediation="retry; if it keeps failing, download the node's logs from its Local UI",
            )
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

    def _get(self, path: str, *, missing_ok: bool = False, retries: int = 0) -> dict[str, Any] | None:
        r = self.request("GET", path, missing_ok=missing_ok, retries=retries)
        return None if r is None else self._json(r, f"GET {path}")

    # -- Endpoints --

    def reset_password(self, new_password: str) -> None:
        """Replace the logged-in account's password (``oldPassword`` is the one this client logged in with); later
        logins of this client use the new one."""
        body = {"oldPassword": self._password, "newPassword": new_password}
        r = self.request("POST", P_PASSWORD_RESET, json=body, ok=(200, 204))
        assert r is not None
        self._password = new_password

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
        )

    def generate_link_token(self) -> LinkToken:
        r = self.request("POST", P_LINK_TOKEN)
        assert r is not None
        data = self._json(r, "generate a link token")
        return LinkToken(
            str(data.get("token") or ""), int(data.get("interval") or 0), int(data.get("remainingTime") or 0)
        )

    def link(self, token: str) -> LinkStatus:
        r = self.request("POST", P_LINK, json={"token": token})
        assert r is not None
        return _link_status(self._json(r, "link to the leader"))

    def link_status(self) -> LinkStatus | None:
        """None when the host is not linked (the API's 404)."""
        data = self._get(P_LINK_STATUS, missing_ok=True)
        return None if data is None else _link_status(data)

    def upload_content(self, body: Iterable[bytes], *, content_type: str, length: int) -> str:
        """POST a prepared multipart body (streamed); returns the node's upload path. No re-login mid-stream:
        callers call :meth:`ensure_session` (or any request) right before."""
        self.ensure_session()
        headers = {"Content-Type": content_type, "Content-Length": str(length)}
        r = self._send("POST", P_UPLOAD, auth=True, content=body, headers=headers)
        if r.status_code != 201:
            raise self.http_error(r, "store the upload")
        return str(self._json(r, "upload content").get("uploadPath") or "")

    def uploaded_content(self) -> UploadedContent | None:
        data = self._get(P_UPLOADED, missing_ok=True)
        if data is None:
            return None
        return UploadedContent(
            str(data.get("fileName") or ""),
            str(data.get("sha256Hash") or "").lower(),
            int(data.get("sizeInBytes") or 0),
        )

    def archive_details(self) -> ArchiveDetails | None:
        """The cluster profile the node's embedded archive holds; None before content is uploaded."""
        data = self._get(P_ARCHIVE, missing_ok=True)
        if data is None:
            return None
        uids: list[str] = []
        variables: list[ProfileVariable] = []
        for profile in data.get("clusterProfileDetails") or []:
            uid = str(profile.get("profileUid") or "")
            uids.append(uid)
            for v in profile.get("variables") or []:
                default = v.get("defaultValue")
                variables.append(
                    ProfileVariable(
                        name=str(v.get("name") or ""),
                        display_name=str(v.get("displayName") or ""),
                        profile_uid=uid,
                        default=None if default is None else str(default),
                        required=bool(v.get("required")),
                        sensitive=bool(v.get("isSensitive")),
                        regex=str(v.get("regex") or ""),
                    )
                )
        return ArchiveDetails(str(data.get("archiveUploadPath") or ""), tuple(uids), tuple(variables))

    def validate_variables(self, archive_path: str, values: Sequence[Mapping[str, str]]) -> list[VariableCheck]:
        body = {"archiveUploadPath": archive_path, "variables": [dict(v) for v in values]}
        r = self.request("POST", P_VALIDATE, json=body)
        assert r is not None
        return [
            VariableCheck(str(v.get("name") or ""), bool(v.get("isValid")), str(v.get("validationFailureReason") or ""))
            for v in self._json(r, "validate the variables").get("variables") or []
        ]

    def create_cluster(self, configuration: Mapping[str, Any]) -> str:
        r = self.request("POST", P_CLUSTER, json=configuration, ok=(202,))
        assert r is not None
        return str(self._json(r, "create the cluster").get("message") or "")

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
        )

    def lifecycle_events(self) -> LifecycleEvents:
        data = self._get(P_LIFECYCLE) or {}
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


def _link_status(data: Mapping[str, Any]) -> LinkStatus:
    peers = []
    for p in data.get("peers") or []:
        health = p.get("health") or {}
        config = p.get("config") or {}
        name = (config.get("status") or {}).get("hostName") or (config.get("metadata") or {}).get("name") or ""
        peers.append(
            LinkPeer(
                id=str(p.get("id") or ""),
                ip=str(p.get("ip") or ""),
                port=str(p.get("localUIPort") or ""),
                role=str(p.get("role") or ""),
                name=str(name),
                status=str(p.get("status") or ""),
                health=str(health.get("status") or ""),
                health_reason=str(health.get("reason") or ""),
                content_sync=str(p.get("contentSyncStatus") or ""),
            )
        )
    return LinkStatus(str(data.get("status") or ""), tuple(peers), str(data.get("errorMessage") or ""))


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
        retry_backoff: float = 1.0,
    ) -> None:
        self.trust = trust
        self.confirm = confirm
        self.clock = clock
        self.timeout = timeout
        self.wrap_transport = wrap_transport
        self.retry_backoff = retry_backoff

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
            retry_backoff=self.retry_backoff,
            cancel=cancel,
        )
