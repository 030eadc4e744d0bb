"""MAAS: pick the machines MAAS already knows, allocate them to the operator, boot them from the ISO, release on abort.

Written against the MAAS 2.0 API as published (canonical.com/maas/docs: "API login" for authentication and the
MAAS API v2 reference; the handlers in canonical/maas src/maasserver/api/machines.py, nodes.py and users.py):

* Authentication is 0-legged OAuth 1.0 with the PLAINTEXT method. The operator's API key is
  ``consumer_key:token_key:token_secret``; the consumer secret is empty. Requests are signed by oauthlib with a
  fresh nonce and timestamp each, as MAAS refuses a nonce it has seen.
* ``GET /api/2.0/machines/`` (filters ``id``, ``hostname``, ``zone``, ``pool``, ``tags``, ``agent_name``),
  ``GET machines/{system_id}/``, ``GET users/?op=whoami``.
* ``POST machines/?op=allocate`` with ``system_id`` (409 when that machine is not available), ``comment`` and
  ``agent_name``; ``POST machines/{id}/?op=release|power_on|power_off``; ``GET machines/{id}/?op=power_parameters``
  (admins only: it holds BMC passwords) and ``op=query_power_state`` → ``{"state": "on"|"off"|…}``.
* POST parameters travel as multipart/form-data, as the API documentation asks.
* Machine JSON: ``status`` is maasserver.enum.NODE_STATUS (Ready 4, Allocated 10, Deploying 9, Deployed 6 …),
  ``memory`` is MiB, ``zone``/``pool`` are objects with a ``name``.

Errors are translated here into :class:`~wizard.core.errors.WizardError`; power parameters are never logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote, urlsplit

import httpx
from oauthlib import oauth1

from wizard.core.cancel import CancelToken
from wizard.core.checks.catalog import (
    Category,
    Check,
    CheckResult,
    CheckSeverity,
    errored,
    failed,
    not_applicable,
    passed,
)
from wizard.core.errors import WizardError
from wizard.core.http import AnswerDeadline, retry_after
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.project import Bmc, SecretRef
from wizard.core.redact import REDACTOR, redact
from wizard.core.trust import Confirm, TrustStore

if TYPE_CHECKING:
    from wizard.providers.isoserver import IsoServer
    from wizard.providers.redfish.jobs import RedfishTimeouts

log = logging.getLogger(__name__)

API_PATH = "api/2.0/"
#: The appliance's minimum per node (Palette Management Appliance requirements).
BUSY_WAITS = 3  # 503/429 answers to a read waited out (as Retry-After asks) before the request fails
MIN_CPUS = 8
MIN_MEMORY_MIB = 16 * 1024
# Power parameters whose values are secrets in every MAAS power driver (power_pass, power_key, …).
_SECRET_PARAM = re.compile(r"(?i)pass|secret|key|token")


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
        transport = AnswerDeadline(httpx.HTTPTransport(verify=verify), base=4 * timeout)
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
        )
        for busy in range(BUSY_WAITS + 1):
            if signed:  # a fresh nonce and timestamp for every attempt
                request.headers.update(self._sign(method, str(request.url)))
            response = self._send(request)
            # MAAS answers 503 (or a proxy 429) with Retry-After while the region is busy; a read is safe to repeat.
            if method != "GET" or response.status_code not in (429, 503) or busy == BUSY_WAITS:
                break
            wait = retry_after(response, 2.0**busy, cap=30.0)
            log.info("MAAS %s busy (%s); asking again in %.0f s", self.url, response.status_code, wait)
            if self._cancel is not None:
                self._cancel.sleep(wait)
            else:
                time.sleep(wait)
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
            raise WizardError(
                "MAAS not answering",
                f"{self.url} did not answer in time ({type(exc).__name__})",
                remediation="check that MAAS is running and not overloaded, then retry",
            ) from exc
        except httpx.TransportError as exc:
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
                raise WizardError(
                    "MAAS certificate not trusted",
                    f"the TLS certificate of {self.url} could not be verified",
                    details=redact(text),
                    remediation="confirm and pin the MAAS certificate's fingerprint, or add its CA to the system",
                ) from exc
            raise WizardError(
                "MAAS unreachable",
                f"cannot connect to {self.url}: {redact(text) or type(exc).__name__}",
                remediation="check the MAAS URL (e.g. http://maas.example.com:5240/MAAS), the network and firewalls",
            ) from exc

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
        return WizardError(
            "MAAS error",
            f"{self.url} answered {status}{where}",
            details=body,
            remediation="see the MAAS region logs (regiond.log); retry once the cause is fixed",
        )

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

    def allocate(self, system_id: str, comment: str, *, agent_name: str = "") -> Machine:
        """Allocate exactly this machine to the key's user, so MAAS hands it to no one else."""
        form = [("system_id", system_id), ("comment", comment)]
        if agent_name:
            form.append(("agent_name", agent_name))
        return Machine.from_json(
            self._request("POST", "machines/", params=[("op", "allocate")], form=form, what=f"allocate {system_id}")
        )

    def release(self, system_id: str, comment: str) -> Machine:
        return Machine.from_json(
            self._request(
                "POST",
                f"machines/{system_id}/",
                params=[("op", "release")],
                form=[("comment", comment)],
                what=f"release {system_id}",
            )
        )

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
        form = [("comment", comment)] if comment else []
        return Machine.from_json(
            self._request(
                "POST", f"machines/{system_id}/", params=[("op", "power_on")], form=form, what=f"power on {system_id}"
            )
        )

    def power_off(self, system_id: str, comment: str = "") -> Machine:
        form = [("comment", comment)] if comment else []
        return Machine.from_json(
            self._request(
                "POST", f"machines/{system_id}/", params=[("op", "power_off")], form=form, what=f"power off {system_id}"
            )
        )

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


# ---------------------------------------------------------------------------------------------------------------
# Selection


class MaasSelectionError(WizardError):
    """Some requested machines cannot be used; ``problems`` maps each node reference to its reason."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        count = len(self.problems)
        super().__init__(
            "MAAS machines not usable",
            f"{count} machine{'s' if count != 1 else ''} cannot be used",
            details="\n".join(f"{ref}: {why}" for ref, why in self.problems.items()),
            remediation="use machines that are Ready in MAAS (or already allocated to you), or fix each one as noted",
        )


_STATUS_ADVICE: dict[int, str] = {
    MachineStatus.NEW: "is New: commission it in MAAS first",
    MachineStatus.COMMISSIONING: "is still commissioning: wait until it is Ready",
    MachineStatus.FAILED_COMMISSIONING: "failed commissioning: fix it and commission it again",
    MachineStatus.MISSING: "is Missing: MAAS cannot reach it",
    MachineStatus.RESERVED: "is Reserved",
    MachineStatus.RETIRED: "is Retired",
    MachineStatus.BROKEN: "is marked Broken: repair it and mark it fixed in MAAS",
    MachineStatus.RELEASING: "is being released: wait until it is Ready",
    MachineStatus.DISK_ERASING: "is erasing its disks: wait until it is Ready",
    MachineStatus.TESTING: "is running tests: wait until it is Ready",
}


def machine_problem(machine: Machine, me: str) -> str | None:
    """Why ``machine`` cannot be used by user ``me``, or None when it is Ready or already allocated to ``me``."""
    if machine.status == MachineStatus.READY and machine.owner in (None, me):
        return None
    if machine.allocated_to(me):
        return None
    if machine.owner and machine.owner != me:
        return f"{machine.label} is {machine.status_name or 'in use'} and belongs to {machine.owner}"
    if machine.status in (MachineStatus.DEPLOYED, MachineStatus.DEPLOYING, MachineStatus.FAILED_DEPLOYMENT):
        return f"{machine.label} is {machine.status_name} (yours): release it in MAAS before installing the appliance"
    advice = _STATUS_ADVICE.get(machine.status)
    if advice:
        return f"{machine.label} {advice}"
    return f"{machine.label} is {machine.status_name or machine.status}, not Ready"


def resolve(client: MaasClient, node_refs: Sequence[str], *, me: str) -> list[Machine]:
    """The machines named by system id or host name, in order; every unusable one is reported at once."""
    problems: dict[str, str] = {}
    found: list[Machine] = []
    seen: dict[str, str] = {}
    for ref in node_refs:
        try:
            machine = client.machine(ref)
        except WizardError as exc:
            if exc.title in ("Unknown MAAS machine", "Ambiguous MAAS machine"):
                problems[ref] = exc.message
                continue
            raise
        if machine.system_id in seen:
            problems[ref] = f"is the same machine as {seen[machine.system_id]!r} ({machine.system_id})"
            continue
        seen[machine.system_id] = ref
        why = machine_problem(machine, me)
        if why:
            problems[ref] = why
        else:
            found.append(machine)
    if problems:
        raise MaasSelectionError(problems)
    return found


_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")


def _label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric."""
    value = _LABEL_VALUE.sub("-", text)[:63]
    return value.strip("._-")


def zone_labels(machine: Machine) -> dict[str, str]:
    """Topology labels for the node from MAAS's grouping.

    A MAAS zone is a physical fault domain (a rack, a room), which is what Kubernetes calls a zone; the MAAS
    resource pool is the wider set of machines the site reserved, used as the region. Empty ones are left out.
    """
    labels: dict[str, str] = {}
    region, zone = _label_value(machine.pool), _label_value(machine.zone)
    if region:
        labels["topology.kubernetes.io/region"] = region
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    return labels


# ---------------------------------------------------------------------------------------------------------------
# Boot plan


@dataclass(frozen=True)
class RedfishTarget:
    """Boot through the BMC with Redfish virtual media, with the credentials MAAS keeps for it.

    ``bmc.password`` only names where the password came from (it is not in the keyring); the value is
    ``password``, kept out of ``repr``.
    """

    system_id: str
    hostname: str
    bmc: Bmc
    password: str = field(repr=False)
    #: MAAS's ``node_id``: the Redfish System member (e.g. "1", "System.Embedded.1"); empty = discover it.
    redfish_system: str = ""

    @property
    def boot_bmc(self) -> Bmc:
        """The BMC as the Redfish jobs take it: MAAS keeps the host in ``power_address`` and the System in
        ``node_id`` (its Redfish driver then uses ``/redfish/v1/Systems/<node_id>``), so the System path joins the
        address unless the address already names one."""
        address = self.bmc.address.strip().rstrip("/")
        if not self.redfish_system or "/Systems/" in address:
            return self.bmc
        if "://" not in address:
            address = f"https://{address}"
        parts = urlsplit(address)
        system = quote(self.redfish_system, safe="")
        return replace(self.bmc, address=f"{parts.scheme}://{parts.netloc}/redfish/v1/Systems/{system}")


@dataclass(frozen=True)
class ManualInstruction:
    """MAAS cannot attach virtual media through this power type: the operator boots the node by hand."""

    system_id: str
    hostname: str
    power_type: str
    bmc_address: str
    text: str
    #: Set when the power type would allow the Redfish path but MAAS lacks what it needs.
    reason: str = ""


def _bmc_address(params: Mapping[str, str]) -> str:
    for key in ("power_address", "power_hostname", "power_ip"):
        if params.get(key):
            return params[key]
    return ""


def boot_route(machine: Machine, params: Mapping[str, str], *, iso_url: str = "") -> RedfishTarget | ManualInstruction:
    """How this machine boots the appliance ISO: our Redfish path when MAAS drives it by Redfish, else by hand."""
    power_type = machine.power_type or "manual"
    address = _bmc_address(params)
    if power_type == "redfish":
        user, password = params.get("power_user", ""), params.get("power_pass", "")
        if address and user and password:
            REDACTOR.add(password)
            return RedfishTarget(
                system_id=machine.system_id,
                hostname=machine.hostname,
                bmc=Bmc(
                    address=address,
                    username=user,
                    password=SecretRef(f"maas:{machine.system_id}:power_pass"),
                ),
                password=password,
                redfish_system=params.get("node_id", ""),
            )
        missing = [k for k, v in (("power_address", address), ("power_user", user), ("power_pass", password)) if not v]
        reason = f"MAAS has no {', '.join(missing)} for its Redfish BMC"
        return _manual(machine, power_type, address, iso_url, reason)
    return _manual(machine, power_type, address, iso_url, "")


def _manual(machine: Machine, power_type: str, address: str, iso_url: str, reason: str) -> ManualInstruction:
    iso = f"the appliance ISO ({iso_url})" if iso_url else "the appliance ISO"
    name = machine.hostname or machine.system_id
    boot = f"choose a one-time UEFI boot from that CD/DVD and power on {name}"
    if reason:
        how = f"{reason}, so the wizard cannot boot it. "
        how += (
            f"Open the BMC's web console at {address}, mount {iso} as virtual media, {boot}."
            if address
            else f"Mount {iso} through the machine's KVM or a USB stick, {boot}."
        )
    elif power_type in ("ipmi", "moonshot", "mscm", "msftocs", "recs_box", "ucsm", "hmc", "openbmc", "wedge"):
        where = f" at {address}" if address else ""
        how = (
            f"{name} is powered by {power_type.upper()}, which cannot attach virtual media. Open its BMC's web "
            f"console or remote KVM{where}, mount {iso} as virtual media (or plug in a USB stick with it), {boot}."
        )
    elif power_type == "amt":
        where = f" at {address}" if address else ""
        how = (
            f"{name} is powered by Intel AMT{where}. Use AMT's KVM with IDE/USB redirection (e.g. MeshCommander) "
            f"to present {iso}, {boot}."
        )
    elif power_type in ("virsh", "lxd", "vmware", "proxmox"):
        where = f" on {address}" if address else ""
        how = (
            f"{name} is a {power_type} virtual machine{where}. Attach {iso} to its virtual CD-ROM, make the CD-ROM "
            f"the first boot device and power it on."
        )
    elif power_type == "manual":
        how = (
            f"MAAS has no power control for {name}. At the machine, connect {iso} as a USB stick or through its "
            f"KVM's virtual media, {boot}."
        )
    else:
        where = f" at {address}" if address else ""
        how = (
            f"{name} is powered by {power_type}{where}, which the wizard cannot use to attach virtual media. "
            f"Mount {iso} through the machine's KVM or a USB stick, {boot}."
        )
    how += " Leave it Allocated in MAAS and do not Deploy it there: MAAS would network-boot and overwrite the disk."
    return ManualInstruction(machine.system_id, machine.hostname, power_type, address, how, reason)


def route_facts(route: RedfishTarget | ManualInstruction) -> dict[str, str]:
    """What the journal may keep of a boot route: everything but the BMC password."""
    if isinstance(route, RedfishTarget):
        return {
            "route": "redfish",
            "system_id": route.system_id,
            "hostname": route.hostname,
            "bmc": route.boot_bmc.address,
        }
    return {
        "route": "manual",
        "system_id": route.system_id,
        "hostname": route.hostname,
        "power_type": route.power_type,
        "bmc": route.bmc_address,
        "instruction": route.text,
    }


def read_boot_routes(
    client: MaasClient, machines: Mapping[str, str], *, iso_hint: str = "", cancel: CancelToken | None = None
) -> dict[str, RedfishTarget | ManualInstruction]:
    """How each node boots, by node name, from its machine (``machines``: node name → system id).

    Reading power parameters takes an administrator's key; with a user's key every machine is booted by hand (the
    preflight check ``maas.power-type`` has said so).
    """
    admin = client.whoami().is_superuser
    routes: dict[str, RedfishTarget | ManualInstruction] = {}
    for node, system_id in machines.items():
        if cancel is not None:
            cancel.raise_if_cancelled()
        machine = client.machine(system_id)
        # Read for every power type: the BMC's address makes the manual instruction concrete.
        params = client.power_parameters(system_id) if admin and machine.power_type not in ("", "manual") else {}
        route = boot_route(machine, params, iso_url=iso_hint)
        if not admin and machine.power_type == "redfish":
            route = _manual(
                machine,
                machine.power_type,
                "",
                iso_hint,
                "only a MAAS administrator's key can read its Redfish BMC credentials",
            )
        routes[node] = route
    return routes


# ---------------------------------------------------------------------------------------------------------------
# Jobs


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:16]


class AllocateMachinesJob(Job):
    """Allocate the project's machines to the key's user (with a comment), keeping those already allocated to it.

    With ``agent_name`` (one per session) a rerun can tell the machines this session allocated from ones the
    operator had allocated beforehand, even when the first run stopped before its facts were recorded: only the
    former are released when the operator aborts.
    """

    id = "maas/allocate"
    name = "MAAS machines allocated"

    def __init__(
        self,
        url: str,
        api_key: str,
        verify: ssl.SSLContext | bool,
        *,
        refs: Sequence[str],
        comment: str,
        agent_name: str = "",
        timeout: float = 30,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.verify = verify
        self.refs = list(refs)
        self.comment = comment
        self.agent_name = agent_name
        self.timeout = timeout
        self.weight = max(1.0, len(self.refs) / 2)

    def fingerprint(self) -> str:
        return _fingerprint(self.url, *self.refs, self.agent_name)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        with MaasClient(self.url, self.api_key, verify=self.verify, timeout=self.timeout, cancel=cancel) as client:
            report.update(0.02, f"Connecting to MAAS at {self.url}…")
            me = client.whoami().username
            machines = resolve(client, self.refs, me=me)
            report.update(0.2, f"{len(machines)} machines usable")
            ours = {m.system_id for m in client.machines(agent_name=self.agent_name)} if self.agent_name else set()
            allocated: list[str] = []
            kept: list[str] = []
            total = max(1, len(machines))
            for i, machine in enumerate(machines):
                cancel.raise_if_cancelled()
                if machine.allocated_to(me):
                    (allocated if machine.system_id in ours else kept).append(machine.system_id)
                    report.update(0.2 + 0.8 * (i + 1) / total, f"{machine.label} is already allocated to {me}")
                    continue
                report.update(0.2 + 0.8 * i / total, f"Allocating {machine.label}…")
                try:
                    got = client.allocate(machine.system_id, self.comment, agent_name=self.agent_name)
                except WizardError as exc:
                    if exc.title != "MAAS machine not available":
                        raise
                    # Taken between the check and the allocation, by us in a lost earlier attempt or by someone else.
                    got = client.machine(machine.system_id)
                    if not got.allocated_to(me):
                        raise WizardError(
                            "MAAS machine taken",
                            f"{machine.label} was allocated to {got.owner or 'someone else'} before the wizard "
                            f"could allocate it ({got.status_name})",
                            details=exc.message,
                            remediation="choose another machine, or ask its owner to release it",
                        ) from exc
                if got.system_id != machine.system_id or not got.allocated_to(me):
                    raise WizardError(
                        "Unexpected MAAS answer",
                        f"allocating {machine.label} returned {got.label} ({got.status_name}, owner {got.owner})",
                    )
                allocated.append(machine.system_id)
                report.update(0.2 + 0.8 * (i + 1) / total, f"{machine.label} allocated")
        report.finish(f"{len(machines)} MAAS machines allocated to {me}")
        return {
            "user": me,
            "machines": {ref: m.system_id for ref, m in zip(self.refs, machines, strict=True)},
            "system_ids": [m.system_id for m in machines],
            "allocated": allocated,
            "kept": kept,
        }


class ReleaseMachinesJob(Job):
    """Release the machines this session allocated (``system_ids`` from the allocate job's facts), e.g. on abort.

    Machines already Ready, or owned by someone else by now, are left alone.
    """

    id = "maas/release"
    name = "MAAS machines released"

    def __init__(
        self,
        url: str,
        api_key: str,
        verify: ssl.SSLContext | bool,
        *,
        system_ids: Sequence[str],
        comment: str,
        agent_name: str = "",
        timeout: float = 30,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.verify = verify
        self.system_ids = list(system_ids)
        self.comment = comment
        #: When given, only machines MAAS lists under this agent name are released: the same user's machines
        #: allocated by another project (or by hand) stay allocated.
        self.agent_name = agent_name
        self.timeout = timeout

    def fingerprint(self) -> str:
        return _fingerprint(self.url, *self.system_ids)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        released: list[str] = []
        skipped: dict[str, str] = {}
        with MaasClient(self.url, self.api_key, verify=self.verify, timeout=self.timeout, cancel=cancel) as client:
            me = client.whoami().username
            ours = {m.system_id for m in client.machines(agent_name=self.agent_name)} if self.agent_name else None
            total = max(1, len(self.system_ids))
            for i, system_id in enumerate(self.system_ids):
                cancel.raise_if_cancelled()
                try:
                    machine = client.machine(system_id)
                except WizardError as exc:
                    if exc.title != "Unknown MAAS machine":
                        raise
                    skipped[system_id] = "not visible to this user any more"
                    continue
                if machine.owner != me or (ours is not None and system_id not in ours):
                    skipped[system_id] = f"{machine.status_name}, owner {machine.owner or 'none'}"
                    report.update((i + 1) / total, f"{machine.label} is not ours any more; left alone")
                    continue
                report.update(i / total, f"Releasing {machine.label}…")
                client.release(system_id, self.comment)
                released.append(system_id)
                report.update((i + 1) / total, f"{machine.label} released")
        report.finish(f"{len(released)} MAAS machines released")
        return {"released": released, "skipped": skipped}


def _redfish_target(client: MaasClient, node: str, system_id: str) -> RedfishTarget:
    machine = client.machine(system_id)
    route = boot_route(machine, client.power_parameters(system_id))
    if isinstance(route, ManualInstruction):
        raise WizardError(
            "MAAS boot route changed",
            f"MAAS no longer drives {machine.label} (node {node}) through Redfish: "
            f"{route.reason or f'its power type is {route.power_type}'}",
            remediation="run again: the wizard then reads the power settings afresh and says what to do by hand",
        )
    return route


class MaasRedfishBootJob(Job):
    """Boot a MAAS machine from the ISO through its Redfish BMC, with the BMC credentials MAAS keeps.

    The credentials are read from MAAS when the job runs and handed to :class:`RedfishBootJob` in memory only: they
    are never journaled or logged (the password is registered with the redactor as it arrives). The BMC's TLS
    certificate is verified by the system store or pinned after the operator confirms, as for the Redfish provider.
    """

    weight = 3.0

    def __init__(
        self,
        node: str,
        url: str,
        api_key: str,
        verify: ssl.SSLContext | bool,
        *,
        system_id: str,
        iso_url: str,
        trust: TrustStore,
        confirm: Confirm | None,
        iso_server: IsoServer | None = None,
        timeouts: RedfishTimeouts | None = None,
        step: str = "boot",
        timeout: float = 30,
        seed_url: str = "",
    ) -> None:
        self.id = f"{step}/{node}"
        self.name = node
        self.node = node
        self.url = url
        self.api_key = api_key
        self.verify = verify
        self.system_id = system_id
        self.iso_url = iso_url
        self.seed_url = seed_url  # the node's NoCloud seed, inserted as a second medium like the Redfish provider
        self.trust = trust
        self.confirm = confirm
        self.iso_server = iso_server
        self.timeouts = timeouts
        self.timeout = timeout

    def fingerprint(self) -> str:
        # The whole URL (token included, hashed): a BMC holding a URL that no longer serves must get the new one.
        return _fingerprint("maas-redfish-boot", self.node, self.url, self.system_id, self.iso_url, self.seed_url)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        from wizard.providers.redfish.jobs import RedfishBootJob

        report.update(0.0, f"{self.node}: reading its BMC settings from MAAS")
        with MaasClient(self.url, self.api_key, verify=self.verify, timeout=self.timeout, cancel=cancel) as client:
            target = _redfish_target(client, self.node, self.system_id)
        cancel.raise_if_cancelled()
        boot = RedfishBootJob(
            self.node,
            target.boot_bmc,
            target.password,
            self.iso_url,
            trust=self.trust,
            confirm=self.confirm,
            iso_server=self.iso_server,
            timeouts=self.timeouts,
            seed_url=self.seed_url,
        )
        facts = dict(boot.run(report.child(0.05, 0.95), cancel) or {})
        report.finish(f"{self.node}: booting from the ISO through its Redfish BMC")
        return {**facts, "route": "redfish", "system_id": self.system_id, "bmc": target.boot_bmc.address}


class MaasRedfishEjectJob(Job):
    """Eject the ISO from a MAAS machine's Redfish BMC and clear the CD boot override (credentials from MAAS)."""

    weight = 0.5

    def __init__(
        self,
        node: str,
        url: str,
        api_key: str,
        verify: ssl.SSLContext | bool,
        *,
        system_id: str,
        trust: TrustStore,
        confirm: Confirm | None,
        timeouts: RedfishTimeouts | None = None,
        step: str = "eject",
        timeout: float = 30,
    ) -> None:
        self.id = f"{step}/{node}"
        self.name = node
        self.node = node
        self.url = url
        self.api_key = api_key
        self.verify = verify
        self.system_id = system_id
        self.trust = trust
        self.confirm = confirm
        self.timeouts = timeouts
        self.timeout = timeout

    def fingerprint(self) -> str:
        return _fingerprint("maas-redfish-eject", self.node, self.url, self.system_id)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        from wizard.providers.redfish.jobs import RedfishEjectJob

        report.update(0.0, f"{self.node}: reading its BMC settings from MAAS")
        with MaasClient(self.url, self.api_key, verify=self.verify, timeout=self.timeout, cancel=cancel) as client:
            target = _redfish_target(client, self.node, self.system_id)
        cancel.raise_if_cancelled()
        eject = RedfishEjectJob(
            self.node, target.boot_bmc, target.password, trust=self.trust, confirm=self.confirm, timeouts=self.timeouts
        )
        facts = dict(eject.run(report.child(0.05, 0.95), cancel) or {})
        return {**facts, "system_id": self.system_id}


# ---------------------------------------------------------------------------------------------------------------
# Preflight checks

_B, _W = CheckSeverity.BLOCKER, CheckSeverity.WARNING
CHECKS: tuple[Check, ...] = (
    Check(
        "maas.reachable",
        Category.PROVIDER,
        _B,
        "MAAS answers and accepts the API key",
        "check the MAAS URL (http://HOST:5240/MAAS) and the API key stored in the keyring",
        "provider",
    ),
    Check(
        "maas.machines",
        Category.PROVIDER,
        _B,
        "Each MAAS machine exists and is Ready (or allocated to you)",
        "pick machines that are Ready in MAAS, or release/commission/fix the one named",
        "provider",
    ),
    Check(
        "maas.power-type",
        Category.PROVIDER,
        _W,
        "MAAS can boot the machine through Redfish",
        "set the machine's power type to Redfish in MAAS (with an admin API key), or boot it by hand when asked",
        "provider",
    ),
    Check(
        "maas.resources",
        Category.PROVIDER,
        _B,
        f"Machine has at least {MIN_CPUS} CPUs and {MIN_MEMORY_MIB // 1024} GiB of memory",
        "choose a machine that meets the appliance's minimum size",
        "provider",
    ),
)


def run_checks(
    url: str,
    api_key: str,
    verify: ssl.SSLContext | bool,
    *,
    refs: Sequence[str],
    timeout: float = 30,
) -> list[CheckResult]:
    """The MAAS preflight checks; nothing in MAAS is changed."""
    results: list[CheckResult] = []
    try:
        client = MaasClient(url, api_key, verify=verify, timeout=timeout)
    except WizardError as exc:
        results.append(failed("maas.reachable", exc.message, url, remediation=exc.remediation))
        return results + _not_checked(refs, "the MAAS settings are invalid")
    with client:
        try:
            version = client.version().get("version", "")
            user = client.whoami()
        except WizardError as exc:
            results.append(failed("maas.reachable", f"{exc.title}: {exc.message}", url, remediation=exc.remediation))
            return results + _not_checked(refs, "MAAS could not be reached")
        role = "administrator" if user.is_superuser else "user"
        results.append(
            passed(
                "maas.reachable",
                f"MAAS {version or '(version unknown)'} accepts the key of {role} {user.username}",
                url,
            )
        )
        for ref in refs:
            results.extend(_check_machine(client, ref, user))
    return results


def _not_checked(refs: Sequence[str], why: str) -> list[CheckResult]:
    out: list[CheckResult] = []
    for ref in refs:
        for check in ("maas.machines", "maas.power-type", "maas.resources"):
            out.append(errored(check, f"not checked: {why}", ref))
    return out


def _check_machine(client: MaasClient, ref: str, user: MaasUser) -> list[CheckResult]:
    try:
        machine = client.machine(ref)
    except WizardError as exc:
        if exc.title not in ("Unknown MAAS machine", "Ambiguous MAAS machine"):
            return [
                errored(c, f"{exc.title}: {exc.message}", ref)
                for c in ("maas.machines", "maas.power-type", "maas.resources")
            ]
        return [
            failed("maas.machines", exc.message, ref, remediation=exc.remediation),
            not_applicable("maas.power-type", "the machine was not found", ref),
            not_applicable("maas.resources", "the machine was not found", ref),
        ]
    out: list[CheckResult] = []
    why = machine_problem(machine, user.username)
    if why:
        out.append(failed("maas.machines", why, ref, details={"system_id": machine.system_id}))
    elif machine.allocated_to(user.username):
        out.append(passed("maas.machines", f"{machine.label} is already allocated to {user.username}", ref))
    else:
        out.append(passed("maas.machines", f"{machine.label} is Ready", ref))
    out.append(_check_power(client, machine, user, ref))
    memory_gib = machine.memory_mib / 1024
    size = f"{machine.cpu_count} CPUs, {memory_gib:.1f} GiB"
    if machine.cpu_count >= MIN_CPUS and machine.memory_mib >= MIN_MEMORY_MIB:
        out.append(passed("maas.resources", f"{machine.label}: {size}", ref))
    else:
        out.append(
            failed(
                "maas.resources",
                f"{machine.label} has {size}; the appliance needs {MIN_CPUS} CPUs and {MIN_MEMORY_MIB // 1024} GiB",
                ref,
                details={"cpu_count": machine.cpu_count, "memory_mib": machine.memory_mib},
            )
        )
    return out


def _check_power(client: MaasClient, machine: Machine, user: MaasUser, ref: str) -> CheckResult:
    if machine.power_type != "redfish":
        return failed(
            "maas.power-type",
            f"{machine.label} is powered by {machine.power_type or 'nothing (manual)'}: the wizard cannot attach "
            "the ISO, so it will be booted by hand",
            ref,
        )
    if not user.is_superuser:
        return failed(
            "maas.power-type",
            f"{machine.label} uses Redfish, but only a MAAS administrator's key can read its BMC credentials; "
            "it will be booted by hand",
            ref,
            remediation="use a MAAS administrator's API key so the wizard can boot it through Redfish",
        )
    try:
        route = boot_route(machine, client.power_parameters(machine.system_id))
    except WizardError as exc:
        return errored("maas.power-type", f"{exc.title}: {exc.message}", ref)
    if isinstance(route, ManualInstruction):
        return failed("maas.power-type", f"{machine.label}: {route.reason}; it will be booted by hand", ref)
    return passed("maas.power-type", f"{machine.label}: Redfish BMC at {route.bmc.address}", ref)
