"""A fake MAAS region API (version 2.0) on loopback, for rehearsing and testing MAAS sites without MAAS.

No MAAS simulator exists for the 2.0 machines API, so this one is written from MAAS's published API and its
handlers (canonical.com/maas/docs "API login" and the MAAS 2.0 API reference; canonical/maas
src/maasserver/api/machines.py, nodes.py, users.py, auth.py, exceptions.py and enum.py):

* Every call but ``version/`` needs 0-legged OAuth 1.0 with the PLAINTEXT method: the API key is
  ``consumer_key:token_key:token_secret``, the consumer secret is empty, so the signature is ``&`` + token secret.
  Failures answer 401 with MAAS's "Authorization Error: …" texts; a nonce is accepted once.
* ``GET machines/`` filters by ``id``, ``hostname``, ``zone``, ``pool``, ``tags`` and ``agent_name``; a user who is
  not an admin sees only unowned machines and their own (others' answer 404, as in MAAS).
* ``POST machines/?op=allocate`` picks a Ready, unowned machine matching ``system_id``/``name``/``tags``/``zone``/
  ``pool``/``cpu_count``/``mem``, else 409 "No available machine matches constraints"; ``comment`` and
  ``agent_name`` are recorded.
* ``POST machines/{id}/?op=release|deploy|power_on|power_off``, ``GET machines/{id}/?op=power_parameters``
  (admins only, 403 otherwise) and ``op=query_power_state`` (``{"state": "on"|"off"|"unknown"}``). Power changes
  land ``power_delay`` seconds later on the server's clock, as a BMC takes its time; a deploy powers on and
  reaches Deployed ``deploy_delay`` seconds later; a release powers off and the machine is Ready once off.
* Errors are text/plain bodies with MAAS's status codes: 400 unknown op, 403, 404, 409 state conflicts.

Bodies of POST requests are multipart/form-data, as the API documentation asks (urlencoded is accepted too).
This module holds the model and the API's rules; :mod:`wizard.lab.maasserver` serves it over HTTP(S).
"""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from wizard.lab.httpfaults import NONE as NO_FAULTS
from wizard.lab.httpfaults import HttpFaults

API_VERSION = "2.0"
MAAS_VERSION = "3.4.2"
# piston3's OAuthServer default: signed timestamps older or newer than this are refused.
TIMESTAMP_THRESHOLD = 300
MAX_BODY = 1 << 20


class Status(IntEnum):
    """maasserver.enum.NODE_STATUS: the numbers are what the API's ``status`` field carries."""

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


STATUS_NAMES: dict[Status, str] = {
    Status.NEW: "New",
    Status.COMMISSIONING: "Commissioning",
    Status.FAILED_COMMISSIONING: "Failed commissioning",
    Status.MISSING: "Missing",
    Status.READY: "Ready",
    Status.RESERVED: "Reserved",
    Status.DEPLOYED: "Deployed",
    Status.RETIRED: "Retired",
    Status.BROKEN: "Broken",
    Status.DEPLOYING: "Deploying",
    Status.ALLOCATED: "Allocated",
    Status.FAILED_DEPLOYMENT: "Failed deployment",
    Status.RELEASING: "Releasing",
    Status.FAILED_RELEASING: "Releasing failed",
    Status.DISK_ERASING: "Disk erasing",
    Status.FAILED_DISK_ERASING: "Failed disk erasing",
    Status.RESCUE_MODE: "Rescue mode",
    Status.ENTERING_RESCUE_MODE: "Entering rescue mode",
    Status.FAILED_ENTERING_RESCUE_MODE: "Failed to enter rescue mode",
    Status.EXITING_RESCUE_MODE: "Exiting rescue mode",
    Status.FAILED_EXITING_RESCUE_MODE: "Failed to exit rescue mode",
    Status.TESTING: "Testing",
    Status.FAILED_TESTING: "Failed testing",
}

# maasserver.models.node.RELEASABLE_STATUSES
RELEASABLE = frozenset(
    {
        Status.ALLOCATED,
        Status.RESERVED,
        Status.BROKEN,
        Status.DEPLOYING,
        Status.DEPLOYED,
        Status.FAILED_DEPLOYMENT,
        Status.FAILED_DISK_ERASING,
        Status.FAILED_RELEASING,
    }
)
# Power types whose driver cannot query the machine: MAAS reports their state as "unknown".
UNQUERYABLE_POWER_TYPES = frozenset({"manual", ""})

_KEY_ALPHABET = string.ascii_letters + string.digits
_SYSTEM_ID_ALPHABET = string.ascii_lowercase + string.digits


def _token(length: int) -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(length))


class ApiError(Exception):
    """An API failure, answered as MAAS does: a status code and a plain-text message."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, f"Authorization Error: {message}", {"WWW-Authenticate": 'OAuth realm="MAAS API"'})


@dataclass
class MaasUser:
    username: str
    is_superuser: bool
    consumer_key: str
    token_key: str
    token_secret: str
    email: str = ""

    @property
    def api_key(self) -> str:
        """The key as MAAS shows it: ``consumer_key:token_key:token_secret``."""
        return f"{self.consumer_key}:{self.token_key}:{self.token_secret}"

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "email": self.email,
            "is_superuser": self.is_superuser,
            "is_local": True,
            "resource_uri": f"/MAAS/api/{API_VERSION}/users/{self.username}/",
        }


@dataclass(frozen=True)
class MaasEvent:
    """One entry of a machine's event log: who did what, with the comment they gave."""

    time: float
    user: str
    action: str
    comment: str = ""


@dataclass
class MaasMachine:
    system_id: str
    hostname: str
    domain: str = "maas"
    status: Status = Status.READY
    owner: str | None = None
    zone: str = "default"
    pool: str = "default"
    tags: list[str] = field(default_factory=list)
    power_type: str = "manual"
    power_parameters: dict[str, str] = field(default_factory=dict)
    power_state: str = "off"
    cpu_count: int = 8
    memory: int = 16384  # MiB, as MAAS reports it
    architecture: str = "amd64/generic"
    interfaces: list[tuple[str, str]] = field(default_factory=list)  # (name, MAC)
    ip_addresses: list[str] = field(default_factory=list)
    agent_name: str = ""
    osystem: str = ""
    distro_series: str = ""
    events: list[MaasEvent] = field(default_factory=list)
    # A power change on its way: (target state, when it lands on the server clock).
    pending_power: tuple[str, float] | None = None
    deploy_done_at: float | None = None

    @property
    def fqdn(self) -> str:
        return f"{self.hostname}.{self.domain}" if self.domain else self.hostname

    @property
    def status_name(self) -> str:
        return STATUS_NAMES[self.status]

    def comments(self, action: str | None = None) -> list[str]:
        return [e.comment for e in self.events if action is None or e.action == action]

    def to_json(self, prefix: str) -> dict[str, Any]:
        """The machine as ``GET machines/{id}/`` shows it (the subset of DISPLAYED_MACHINE_FIELDS simulated)."""
        interface_set = []
        for i, (name, mac) in enumerate(self.interfaces):
            links = [{"id": i * 10 + 1, "mode": "auto", "ip_address": ip} for ip in self.ip_addresses[i : i + 1]]
            interface_set.append(
                {
                    "id": i + 1,
                    "name": name,
                    "type": "physical",
                    "mac_address": mac,
                    "enabled": True,
                    "links": links,
                    "system_id": self.system_id,
                }
            )
        return {
            "system_id": self.system_id,
            "hostname": self.hostname,
            "fqdn": self.fqdn,
            "domain": {"name": self.domain, "id": 0},
            "owner": self.owner,
            "architecture": self.architecture,
            "cpu_count": self.cpu_count,
            "memory": self.memory,
            "status": int(self.status),
            "status_name": self.status_name,
            "status_message": self.events[-1].action if self.events else "",
            "osystem": self.osystem,
            "distro_series": self.distro_series,
            "power_type": self.power_type,
            "power_state": self.power_state,
            "tag_names": list(self.tags),
            "ip_addresses": list(self.ip_addresses),
            "interface_set": interface_set,
            "boot_interface": interface_set[0] if interface_set else None,
            "zone": {"name": self.zone, "description": "", "id": 0, "resource_uri": f"{prefix}zones/{self.zone}/"},
            "pool": {"name": self.pool, "description": "", "id": 0, "resource_uri": f"{prefix}resourcepool/0/"},
            "node_type": 0,
            "node_type_name": "Machine",
            "resource_uri": f"{prefix}machines/{self.system_id}/",
        }


@dataclass(frozen=True)
class _OAuth:
    consumer_key: str
    token: str
    signature_method: str
    signature: str
    nonce: str
    timestamp: str


_OAUTH_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"')


def _parse_oauth_header(header: str | None) -> _OAuth:
    """RFC 5849 §3.5.1: ``OAuth name="value", …`` with percent-encoded values."""
    if not header or not header.startswith("OAuth "):
        raise _unauthorized("Authentication credentials were not provided.")
    params = {name: unquote(value) for name, value in _OAUTH_PARAM.findall(header[6:])}
    missing = [
        name
        for name in (
            "oauth_consumer_key",
            "oauth_token",
            "oauth_signature_method",
            "oauth_signature",
            "oauth_nonce",
            "oauth_timestamp",
        )
        if not params.get(name)
    ]
    if missing:
        raise _unauthorized(repr(f"Missing OAuth parameters: {', '.join(missing)}"))
    if params.get("oauth_version", "1.0") != "1.0":
        raise _unauthorized(repr(f"OAuth version {params['oauth_version']} not supported."))
    return _OAuth(
        params["oauth_consumer_key"],
        params["oauth_token"],
        params["oauth_signature_method"],
        params["oauth_signature"],
        params["oauth_nonce"],
        params["oauth_timestamp"],
    )


class MaasState:
    """Users, machines and the power and deployment timeline of one fake MAAS. Thread-safe."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        power_delay: float = 2.0,
        deploy_delay: float = 10.0,
        oauth_clock: Callable[[], float] = time.time,
    ) -> None:
        #: Moves power changes and deployments along; a ManualClock makes them deterministic.
        self.clock = clock
        self.http_faults: HttpFaults = NO_FAULTS  # the http-5xx knob (wizard.lab.httpfaults)
        self.power_delay = power_delay
        self.deploy_delay = deploy_delay
        #: OAuth timestamps are the client's wall clock, whatever clock the machines run on.
        self.oauth_clock = oauth_clock
        self._lock = threading.RLock()
        self._users: dict[str, MaasUser] = {}  # by token key
        self._machines: dict[str, MaasMachine] = {}
        self._nonces: dict[tuple[str, str, str], int] = {}  # (consumer, token, nonce) -> timestamp

    # -- seeding ------------------------------------------------------------------------------------------
    def add_user(self, username: str, *, admin: bool = False, email: str = "") -> MaasUser:
        """A user with a fresh API key (MAAS's lengths: 18, 18 and 32 characters)."""
        user = MaasUser(username, admin, _token(18), _token(18), _token(32), email or f"{username}@example.com")
        with self._lock:
            self._users[user.token_key] = user
        return user

    def add_machine(self, hostname: str, *, system_id: str = "", **fields: Any) -> MaasMachine:
        """Seed a machine; ``fields`` are :class:`MaasMachine` attributes (status, owner, zone, pool, tags, …)."""
        with self._lock:
            if not system_id:
                while not system_id or system_id in self._machines:
                    system_id = "".join(secrets.choice(_SYSTEM_ID_ALPHABET) for _ in range(6))
            if system_id in self._machines:
                raise ValueError(f"system id {system_id} already exists")
            if "status" in fields:
                fields["status"] = Status(fields["status"])
            machine = MaasMachine(system_id=system_id, hostname=hostname, **fields)
            if not machine.interfaces:
                machine.interfaces = [("eth0", _mac_for(system_id))]
            self._machines[system_id] = machine
            return machine

    def machine(self, system_id: str) -> MaasMachine:
        """The live record (for tests and the lab to inspect), settled to the current time."""
        with self._lock:
            m = self._machines[system_id]
            self._settle(m)
            return m

    @property
    def machines(self) -> list[MaasMachine]:
        with self._lock:
            for m in self._machines.values():
                self._settle(m)
            return list(self._machines.values())

    # -- time ---------------------------------------------------------------------------------------------
    def _settle(self, m: MaasMachine) -> None:
        """Apply what has happened by now: pending power changes, the end of a deployment, a finished release."""
        now = self.clock()
        if m.pending_power is not None and now >= m.pending_power[1]:
            m.power_state = m.pending_power[0]
            m.pending_power = None
        if m.status is Status.DEPLOYING and m.deploy_done_at is not None and now >= m.deploy_done_at:
            m.status = Status.DEPLOYED
            m.deploy_done_at = None
            m.events.append(MaasEvent(now, m.owner or "", "Deployed"))
        if m.status is Status.RELEASING and m.pending_power is None and m.power_state != "on":
            m.status = Status.READY
            m.events.append(MaasEvent(now, "", "Released"))

    def _power(self, m: MaasMachine, state: str) -> None:
        if m.power_type in UNQUERYABLE_POWER_TYPES:
            return  # MAAS cannot switch a manual machine; someone presses the button
        if m.power_state == state and m.pending_power is None:
            return
        m.pending_power = (state, self.clock() + self.power_delay)

    # -- authentication -------------------------------------------------------------------------------------
    def authenticate(self, header: str | None) -> MaasUser:
        """Verify an ``Authorization: OAuth …`` header signed with PLAINTEXT; raises a 401 :class:`ApiError`."""
        oauth = _parse_oauth_header(header)
        with self._lock:
            user = self._users.get(oauth.token)
            if not any(u.consumer_key == oauth.consumer_key for u in self._users.values()):
                raise _unauthorized("Invalid API key.")
            if user is None or user.consumer_key != oauth.consumer_key:
                raise _unauthorized(repr(f"Invalid access token: {oauth.token}"))
            if oauth.signature_method != "PLAINTEXT":
                raise _unauthorized(repr(f"Signature method {oauth.signature_method} not supported."))
            try:
                stamp = int(oauth.timestamp)
            except ValueError:
                raise _unauthorized(repr(f"Invalid timestamp: {oauth.timestamp}")) from None
            now = int(self.oauth_clock())
            if abs(now - stamp) > TIMESTAMP_THRESHOLD:
                raise _unauthorized(
                    repr(
                        f"Expired timestamp: given {stamp} and now {now} has a greater difference than threshold "
                        f"{TIMESTAMP_THRESHOLD}"
                    )
                )
            # PLAINTEXT (RFC 5849 §3.4.4): encoded consumer secret (empty for MAAS) "&" encoded token secret.
            expected = "&" + quote(user.token_secret, safe="-._~")
            if not secrets.compare_digest(oauth.signature.encode(), expected.encode()):
                raise _unauthorized(repr("Invalid signature."))
            key = (oauth.consumer_key, oauth.token, oauth.nonce)
            if key in self._nonces:
                raise _unauthorized(repr(f"Nonce already used: {oauth.nonce}"))
            self._nonces[key] = stamp
            if len(self._nonces) > 10_000:
                horizon = now - 2 * TIMESTAMP_THRESHOLD
                self._nonces = {k: t for k, t in self._nonces.items() if t >= horizon}
            return user

    # -- API operations -------------------------------------------------------------------------------------
    @staticmethod
    def _visible(m: MaasMachine, user: MaasUser) -> bool:
        return user.is_superuser or m.owner is None or m.owner == user.username

    def _get(self, system_id: str, user: MaasUser, *, edit: bool = False) -> MaasMachine:
        m = self._machines.get(system_id)
        if m is None or not self._visible(m, user):
            raise ApiError(404, "No Machine matches the given query.")
        if edit and not (user.is_superuser or m.owner in (None, user.username)):
            raise ApiError(403, "You do not have permission to edit this machine.")
        self._settle(m)
        return m

    def list_machines(self, user: MaasUser, query: Mapping[str, list[str]]) -> list[MaasMachine]:
        with self._lock:
            out = []
            for m in self._machines.values():
                if not self._visible(m, user):
                    continue
                self._settle(m)
                if "id" in query and m.system_id not in query["id"]:
                    continue
                if "hostname" in query and m.hostname not in query["hostname"] and m.fqdn not in query["hostname"]:
                    continue
                if "zone" in query and m.zone != query["zone"][-1]:
                    continue
                if "pool" in query and m.pool != query["pool"][-1]:
                    continue
                if "agent_name" in query and m.agent_name != query["agent_name"][-1]:
                    continue
                if "tags" in query and not set(query["tags"]) <= set(m.tags):
                    continue
                out.append(m)
            return out

    def read(self, system_id: str, user: MaasUser) -> MaasMachine:
        with self._lock:
            return self._get(system_id, user)

    def power_parameters(self, system_id: str, user: MaasUser) -> dict[str, str]:
        with self._lock:
            if not user.is_superuser:
                raise ApiError(403, "This method is reserved for admin users.")
            m = self._machines.get(system_id)
            if m is None:
                raise ApiError(404, "No Machine matches the given query.")
            return dict(m.power_parameters)

    def query_power_state(self, system_id: str, user: MaasUser) -> str:
        with self._lock:
            m = self._get(system_id, user)
            return "unknown" if m.power_type in UNQUERYABLE_POWER_TYPES else m.power_state

    def allocate(self, user: MaasUser, form: Mapping[str, list[str]]) -> MaasMachine:
        constraints = [(k, v) for k, v in form.items() if k not in ("op", "comment", "agent_name")]
        with self._lock:
            for m in self._machines.values():
                self._settle(m)
                if m.status is not Status.READY or m.owner is not None:
                    continue
                if "system_id" in form and m.system_id != form["system_id"][-1]:
                    continue
                if "name" in form and form["name"][-1] not in (m.hostname, m.fqdn):
                    continue
                if "zone" in form and m.zone != form["zone"][-1]:
                    continue
                if "pool" in form and m.pool != form["pool"][-1]:
                    continue
                if "tags" in form and not set(form["tags"]) <= set(m.tags):
                    continue
                if "cpu_count" in form and m.cpu_count < _number(form["cpu_count"][-1], "cpu_count"):
                    continue
                if "mem" in form and m.memory < _number(form["mem"][-1], "mem"):
                    continue
                m.status = Status.ALLOCATED
                m.owner = user.username
                m.agent_name = form.get("agent_name", [""])[-1]
                m.events.append(MaasEvent(self.clock(), user.username, "Allocated", form.get("comment", [""])[-1]))
                return m
            if not constraints:
                raise ApiError(409, "No machine available.")
            described = ", ".join(f"{k}={','.join(v)}" for k, v in constraints)
            raise ApiError(
                409, f'No available machine matches constraints: {constraints!s} (resolved to "{described}")'
            )

    def release(self, system_id: str, user: MaasUser, comment: str) -> MaasMachine:
        with self._lock:
            m = self._get(system_id, user, edit=True)
            if m.status in (Status.RELEASING, Status.READY):
                return m  # already released or on its way: the postcondition holds
            if m.status not in RELEASABLE:
                raise ApiError(409, f"Machine cannot be released in its current state ('{m.status_name}').")
            m.events.append(MaasEvent(self.clock(), user.username, "Released", comment))
            m.owner = None
            m.agent_name = ""
            m.osystem = m.distro_series = ""
            m.deploy_done_at = None
            if m.power_type in UNQUERYABLE_POWER_TYPES or (m.power_state == "off" and m.pending_power is None):
                m.status = Status.READY
                m.pending_power = None
            else:
                m.status = Status.RELEASING
                self._power(m, "off")
            return m

    def deploy(self, system_id: str, user: MaasUser, form: Mapping[str, list[str]]) -> MaasMachine:
        comment = form.get("comment", [""])[-1]
        with self._lock:
            m = self._get(system_id, user, edit=True)
            if m.status is Status.READY:
                if m.owner is not None and m.owner != user.username:
                    raise ApiError(409, "Can't allocate a machine belonging to another user.")
                m.status = Status.ALLOCATED
                m.owner = user.username
                m.events.append(MaasEvent(self.clock(), user.username, "Allocated", comment))
            if m.status is not Status.ALLOCATED:
                raise ApiError(409, f"Can't deploy a machine that is in the '{m.status_name}' state")
            m.osystem = form.get("osystem", ["ubuntu"])[-1]
            m.distro_series = form.get("distro_series", ["jammy"])[-1]
            m.status = Status.DEPLOYING
            m.deploy_done_at = self.clock() + self.deploy_delay
            m.events.append(MaasEvent(self.clock(), user.username, "Deploying", comment))
            self._power(m, "on")
            return m

    def power_on(self, system_id: str, user: MaasUser, comment: str) -> MaasMachine:
        with self._lock:
            m = self._get(system_id, user, edit=True)
            if m.owner is None:
                raise ApiError(409, "Can't start node: it hasn't been allocated.")
            m.events.append(MaasEvent(self.clock(), user.username, "Powering on", comment))
            self._power(m, "on")
            return m

    def power_off(self, system_id: str, user: MaasUser, comment: str) -> MaasMachine:
        with self._lock:
            m = self._get(system_id, user, edit=True)
            m.events.append(MaasEvent(self.clock(), user.username, "Powering off", comment))
            self._power(m, "off")
            return m


def _number(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ApiError(400, json.dumps({name: ["Invalid number."]})) from None


def _mac_for(system_id: str) -> str:
    digest = sum(ord(c) << (i % 4 * 8) for i, c in enumerate(system_id)) & 0xFFFFFF
    return f"52:54:00:{digest >> 16:02x}:{(digest >> 8) & 0xFF:02x}:{digest & 0xFF:02x}"


def seed_site(state: MaasState, hostnames: Iterable[str], **fields: Any) -> list[MaasMachine]:
    """Seed Ready machines with the same ``fields`` (zone, pool, tags, power type …), one per host name."""
    return [state.add_machine(h, **fields) for h in hostnames]


def redfish_power_parameters(base_url: str, system: str, username: str, password: str) -> dict[str, str]:
    """Power parameters of a machine MAAS drives through a Redfish BMC at ``base_url`` (``https://host:port``, e.g.
    a sushy-tools emulator), as MAAS's Redfish driver keeps them: the BMC's host and port in ``power_address``, the
    System's member id in ``node_id`` (the driver then speaks to ``/redfish/v1/Systems/<node_id>``)."""
    parts = urlsplit(base_url if "://" in base_url else f"https://{base_url}")
    return {"power_address": parts.netloc, "power_user": username, "power_pass": password, "node_id": system}
