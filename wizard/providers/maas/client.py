"""The MAAS 2.0 API client: OAuth-signed requests, machines, users, power.

Transient faults follow the one :class:`~wizard.core.http.RetryPolicy`: reads are retried below the client (each
attempt signed afresh, so MAAS never sees a nonce twice); allocating, releasing and switching power are resent only
after the machine's state says they did not take effect (:func:`wizard.core.http.settle`).
"""

from __future__ import annotations

import logging
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import httpx
from oauthlib import oauth1

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.http import DEFAULT_RETRY, RESET_ERRORS, AnswerDeadline, RetryPolicy, RetryTransport, settle
from wizard.core.redact import REDACTOR, redact

log = logging.getLogger(__name__)

API_PATH = "api/2.0/"
#: The appliance's minimum per node (Palette Management Appliance requirements).
MIN_CPUS = 8
MIN_MEMORY_MIB = 16 * 1024
# Power parameters whose values are secrets in every MAAS power driver (power_pass, power_key, …).
_SECRET_PARAM = re.compile(r"(?i)pass|secret|key|token")
T = TypeVar("T")


def _unknown(error: WizardError) -> WizardError:
    """Marks ``error`` as leaving open whether the request took effect (see :func:`wizard.core.http.settle`)."""
    error.outcome_unknown = True  # type: ignore[attr-defined]
    return error


class _Signing(httpx.BaseTransport):
    """Signs every attempt afresh (a new OAuth nonce and timestamp), below the retries."""

    def __init__(self, inner: httpx.BaseTransport, sign: Callable[[str, str], dict[str, str]]) -> None:
        self.inner = inner
        self.sign = sign

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get("signed", True):
            request.headers.update(self.sign(request.method, str(request.url)))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class MachineStatus(IntEnum):
    """maasserver.enum.NODE_STATUS."""

    NEW = 0
    COMMISSIONING = 1
    FAILED_COMMISSIONING = 2
    MISSING = 3
    READY = 4
    RESERVED = 5
    DEPLOYED = 6
    RETIRED = 7
    BROKEN = 8
    DEPLOYING = 9
    ALLOCATED = 10
    FAILED_DEPLOYMENT = 11
    RELEASING = 12
    FAILED_RELEASING = 13
    DISK_ERASING = 14
    FAILED_DISK_ERASING = 15
    RESCUE_MODE = 16
    ENTERING_RESCUE_MODE = 17
    FAILED_ENTERING_RESCUE_MODE = 18
    EXITING_RESCUE_MODE = 19
    FAILED_EXITING_RESCUE_MODE = 20
    TESTING = 21
    FAILED_TESTING = 22


@dataclass(frozen=True)
class Machine:
    """The fields of a MAAS machine the wizard uses."""

    system_id: str
    hostname: str
    fqdn: str
    status: int
    status_name: str
    owner: str | None
    zone: str
    pool: str
    tags: tuple[str, ...]
    power_type: str
    power_state: str
    cpu_count: int
    memory_mib: int
    architecture: str = ""
    ip_addresses: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Machine:
        try:
            interfaces = data.get("interface_set") or []
            return cls(
                system_id=str(data["system_id"]),
                hostname=str(data.get("hostname") or ""),
                fqdn=str(data.get("fqdn") or data.get("hostname") or ""),
                status=int(data.get("status", -1)),
                status_name=str(data.get("status_name") or ""),
                owner=str(data["owner"]) if data.get("owner") else None,
                zone=_name(data.get("zone")),
                pool=_name(data.get("pool")),
                tags=tuple(str(t) for t in data.get("tag_names") or ()),
                power_type=str(data.get("power_type") or ""),
                power_state=str(data.get("power_state") or "unknown"),
                cpu_count=int(data.get("cpu_count") or 0),
                memory_mib=int(data.get("memory") or 0),
                architecture=str(data.get("architecture") or ""),
                ip_addresses=tuple(str(ip) for ip in data.get("ip_addresses") or ()),
                macs=tuple(str(i["mac_address"]) for i in interfaces if isinstance(i, dict) and i.get("mac_address")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WizardError(
                "Unexpected MAAS answer",
                f"a machine record could not be read ({exc})",
                remediation="check that the URL points at a MAAS region (2.0 API)",
            ) from exc

    @property
    def label(self) -> str:
        return f"{self.hostname} ({self.system_id})"

    def allocated_to(self, user: str) -> bool:
        return self.status == MachineStatus.ALLOCATED and self.owner == user


def _name(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or "")
    return str(value or "")


@dataclass(frozen=True)
class MaasUser:
    username: str
    is_superuser: bool


def parse_api_key(api_key: str) -> tuple[str, str, str]:
    """``consumer_key:token_key:token_secret`` → its three parts; a clear error otherwise (never echoing the key)."""
    parts = api_key.strip().split(":")
    if len(parts) != 3 or not all(parts):
        raise WizardError(
            "Invalid MAAS API key",
            "a MAAS API key has three parts separated by colons (consumer key, token key, token secret)",
            remediation="copy the whole key from the MAAS UI (your user → API keys) or `maas apikey --username NAME`",
        )
    return parts[0], parts[1], parts[2]


def api_base(url: str) -> str:
    """The API root for a MAAS URL as operators write it (``http://maas:5240/MAAS``) → ``…/MAAS/api/2.0/``."""
    base = url.strip().rstrip("/")
    if base.endswith("/api/2.0"):
        return base + "/"
    return f"{base}/{API_PATH}"


class MaasClient:
    """A synchronous client of the MAAS 2.0 API. Every request is OAuth-signed afresh."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        verify: ssl.SSLContext | bool,
        timeout: float = 30,
        cancel: CancelToken | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        consumer_key, token_key, token_secret = parse_api_key(api_key)
        REDACTOR.add(api_key.strip())
        REDACTOR.add(token_secret)
        self.url = url.strip().rstrip("/")
        self.base = api_base(url)
        scheme = urlsplit(self.base).scheme
        if scheme not in ("http", "https"):
            raise WizardError(
                "Invalid MAAS URL", f"{url!r} is not an http(s) URL", remediation="e.g. http://maas:5240/MAAS"
            )
        if scheme == "https" and verify is False:
            log.warning("TLS verification of %s is switched off by the caller", self.url)
        self._oauth = oauth1.Client(
            consumer_key,
            client_secret="",
            resource_owner_key=token_key,
            resource_owner_secret=token_secret,
            signature_method=oauth1.SIGNATURE_PLAINTEXT,
        )
        # Bounds a whole answer, not each read: a region controller dripping bytes must not hold the job forever.
        deadline = AnswerDeadline(httpx.HTTPTransport(verify=verify), base=4 * timeout)
        self.retry = retry
        transport = RetryTransport(_Signing(deadline, self._sign), retry, cancel=cancel, label=f"MAAS {self.url}")
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)
        self._cancel = cancel

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------------------------
    def _sign(self, method: str, url: str) -> dict[str, str]:
        # oauthlib draws a new nonce and timestamp on every call; PLAINTEXT does not cover the body.
        _, headers, _ = self._oauth.sign(url, http_method=method)
        return {"Authorization": headers["Authorization"]}

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        form: Sequence[tuple[str, str]] = (),
        what: str = "",
        signed: bool = True,
    ) -> Any:
        request = self._http.build_request(
            method,
            self.base + path,
            params=list(params),
            # multipart/form-data with plain fields (no file names), as MAAS documents for POST
            files=[(k, (None, v)) for k, v in form] if form else None,
            extensions={"signed": signed},
        )
        # MAAS answers 503 (or a proxy 429) with Retry-After while the region is busy: the retry policy waits.
        response = self._send(request)
        log.debug(
            "MAAS %s %s -> %s",
            method,
            request.url.path + ("?" + request.url.query.decode() if request.url.query else ""),
            response.status_code,
        )
        if response.status_code >= 400:
            raise self._error(response, what)
        try:
            return response.json()
        except ValueError as exc:
            raise WizardError(
                "Unexpected MAAS answer",
                f"{method} {path} did not return JSON",
                details=redact(response.text[:500]),
                remediation="check that the URL points at a MAAS region controller (…:5240/MAAS)",
            ) from exc

    def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._http.send(request)
        except httpx.TimeoutException as exc:
            error = WizardError(
                "MAAS not answering",
                f"{self.url} did not answer in time ({type(exc).__name__})",
                remediation="check that MAAS is running and not overloaded, then retry",
            )
            raise (error if isinstance(exc, httpx.ConnectTimeout) else _unknown(error)) from exc
        except httpx.TransportError as exc:
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
                raise WizardError(
                    "MAAS certificate not trusted",
                    f"the TLS certificate of {self.url} could not be verified",
                    details=redact(text),
                    remediation="confirm and pin the MAAS certificate's fingerprint, or add its CA to the system",
                ) from exc
            error = WizardError(
                "MAAS unreachable",
                f"cannot connect to {self.url}: {redact(text) or type(exc).__name__}",
                remediation="check the MAAS URL (e.g. http://maas.example.com:5240/MAAS), the network and firewalls",
            )
            raise (_unknown(error) if isinstance(exc, RESET_ERRORS) else error) from exc

    def _error(self, response: httpx.Response, what: str) -> WizardError:
        status = response.status_code
        body = redact(response.text.strip()[:500])
        where = f" ({what})" if what else ""
        if status == 401:
            return WizardError(
                "MAAS refused the API key",
                f"{self.url} answered 401 Unauthorized{where}",
                details=body,
                remediation="check the API key in the keyring: copy it again from the MAAS UI (your user → API keys)",
            )
        if status == 403:
            return WizardError(
                "MAAS permission denied",
                f"the API key's user may not do this{where}",
                details=body,
                remediation="reading BMC credentials needs a MAAS administrator's API key; use one, or boot by hand",
            )
        if status == 404:
            return WizardError(
                "Unknown MAAS machine",
                f"MAAS has no such machine{where}, or it belongs to another user",
                details=body,
                remediation="check the system id or hostname in the MAAS UI (Machines)",
            )
        if status == 409:
            return WizardError(
                "MAAS machine not available",
                f"MAAS refused{where}: {body or 'conflict'}",
                remediation="the machine is taken or in the wrong state; pick a Ready machine or release it in MAAS",
            )
        if status == 410:
            return WizardError(
                "MAAS API version not supported",
                f"{self.url} no longer serves the 2.0 API",
                details=body,
                remediation="use a MAAS release that serves /api/2.0/",
            )
        error = WizardError(
            "MAAS error",
            f"{self.url} answered {status}{where}",
            details=body,
            remediation="see the MAAS region logs (regiond.log); retry once the cause is fixed",
        )
        return _unknown(error) if status in self.retry.statuses else error

    def settle(self, send: Callable[[], T], check: Callable[[], T | None], what: str) -> T:
        """A request that is not idempotent, resent after an unknown outcome only once ``check`` says it did not
        take effect."""
        return settle(self.retry, send, check, what=f"MAAS {self.url}: {what}", cancel=self._cancel)

    # -- API ------------------------------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        """``GET version/`` — anonymous in MAAS, so it proves reachability before the key is tried."""
        data = self._request("GET", "version/", what="version", signed=False)
        return dict(data) if isinstance(data, dict) else {}

    def whoami(self) -> MaasUser:
        data = self._request("GET", "users/", params=[("op", "whoami")], what="current user")
        return MaasUser(str(data.get("username") or ""), bool(data.get("is_superuser")))

    def machines(
        self,
        *,
        tags: Iterable[str] = (),
        pool: str = "",
        zone: str = "",
        hostnames: Iterable[str] = (),
        ids: Iterable[str] = (),
        agent_name: str = "",
    ) -> list[Machine]:
        params: list[tuple[str, str]] = [("hostname", h) for h in hostnames]
        params += [("id", i) for i in ids]
        params += [("tags", t) for t in tags]
        if pool:
            params.append(("pool", pool))
        if zone:
            params.append(("zone", zone))
        if agent_name:
            params.append(("agent_name", agent_name))
        data = self._request("GET", "machines/", params=params, what="machine list")
        if not isinstance(data, list):
            raise WizardError("Unexpected MAAS answer", "the machine list is not a list")
        return [Machine.from_json(m) for m in data]

    def machine(self, id_or_hostname: str) -> Machine:
        """A machine by system id, or else by host name or FQDN."""
        ref = id_or_hostname.strip()
        if re.fullmatch(r"[a-z0-9]+", ref):
            try:
                return Machine.from_json(self._request("GET", f"machines/{ref}/", what=ref))
            except WizardError as exc:
                if exc.title != "Unknown MAAS machine":
                    raise
        short = ref.split(".", 1)[0]
        found = [m for m in self.machines(hostnames={ref, short}) if ref in (m.hostname, m.fqdn)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise WizardError(
                "Ambiguous MAAS machine",
                f"{ref!r} names {len(found)} machines: {', '.join(m.fqdn for m in found)}",
                remediation="use the machine's system id or its full name (FQDN)",
            )
        raise WizardError(
            "Unknown MAAS machine",
            f"MAAS has no machine {ref!r} that this API key's user can see",
            remediation="check the system id or hostname in the MAAS UI (Machines); machines owned by other users "
            "are hidden from non-admin users",
        )

    def allocate(self, system_id: str, comment: str, *, user: str, agent_name: str = "") -> Machine:
        """Allocate exactly this machine to the key's user (``user``), so MAAS hands it to no one else. After an
        unknown outcome the machine's owner says whether it is ours already before it is asked again."""
        form = [("system_id", system_id), ("comment", comment)]
        if agent_name:
            form.append(("agent_name", agent_name))

        def send() -> Machine:
            data = self._request(
                "POST", "machines/", params=[("op", "allocate")], form=form, what=f"allocate {system_id}"
            )
            return Machine.from_json(data)

        def ours() -> Machine | None:
            machine = self.machine(system_id)
            return machine if machine.allocated_to(user) else None

        return self.settle(send, ours, f"allocate {system_id}")

    def release(self, system_id: str, comment: str) -> Machine:
        """Release the machine. After an unknown outcome its state says whether it is released (or releasing)
        before it is asked again."""

        def send() -> Machine:
            data = self._request(
                "POST",
                f"machines/{system_id}/",
                params=[("op", "release")],
                form=[("comment", comment)],
                what=f"release {system_id}",
            )
            return Machine.from_json(data)

        def released() -> Machine | None:
            machine = self.machine(system_id)
            done = {MachineStatus.READY, MachineStatus.RELEASING, MachineStatus.DISK_ERASING}
            return machine if machine.status in done or machine.owner is None else None

        return self.settle(send, released, f"release {system_id}")

    def power_parameters(self, system_id: str) -> dict[str, str]:
        """The BMC settings MAAS keeps for the machine. Holds passwords: never log the result."""
        data = self._request(
            "GET",
            f"machines/{system_id}/",
            params=[("op", "power_parameters")],
            what=f"power parameters of {system_id}",
        )
        if not isinstance(data, dict):
            raise WizardError("Unexpected MAAS answer", f"the power parameters of {system_id} are not a mapping")
        params = {str(k): "" if v is None else str(v) for k, v in data.items()}
        for key, value in params.items():
            if _SECRET_PARAM.search(key):
                REDACTOR.add(value)
        return params

    def power_on(self, system_id: str, comment: str = "") -> Machine:
        return self._power(system_id, "on", comment)

    def power_off(self, system_id: str, comment: str = "") -> Machine:
        return self._power(system_id, "off", comment)

    def _power(self, system_id: str, state: str, comment: str) -> Machine:
        """Switch power; after an unknown outcome the BMC's power state (through MAAS) is read before asking again."""
        form = [("comment", comment)] if comment else []

        def send() -> Machine:
            data = self._request(
                "POST",
                f"machines/{system_id}/",
                params=[("op", f"power_{state}")],
                form=form,
                what=f"power {state} {system_id}",
            )
            return Machine.from_json(data)

        def switched() -> Machine | None:
            return self.machine(system_id) if self.query_power_state(system_id) == state else None

        return self.settle(send, switched, f"power {state} {system_id}")

    def query_power_state(self, system_id: str) -> str:
        """Asks the BMC through MAAS: "on", "off", "unknown" (manual power) or "error"."""
        data = self._request(
            "GET", f"machines/{system_id}/", params=[("op", "query_power_state")], what=f"power state of {system_id}"
        )
        return str(data.get("state") or "unknown") if isinstance(data, dict) else "unknown"

    def wait_power_state(
        self,
        system_id: str,
        want: str,
        cancel: CancelToken,
        *,
        timeout: float = 120.0,
        interval: float = 2.0,
    ) -> str:
        """Poll ``query_power_state`` until it reads ``want``; a BMC takes seconds to switch."""
        deadline = time.monotonic() + timeout
        state = self.query_power_state(system_id)
        while state != want:
            if time.monotonic() >= deadline:
                raise WizardError(
                    "Power state did not change",
                    f"{system_id} is still {state!r} after {timeout:.0f} s (expected {want!r})",
                    remediation="check the machine's BMC in MAAS (Machines → Configuration → Power), then retry",
                )
            cancel.sleep(interval)
            state = self.query_power_state(system_id)
        return state
