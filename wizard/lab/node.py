"""A simulated appliance node: accounts, sessions, login throttling, link state and uploaded content.

All state sits behind one lock per node. Time comes from an injectable clock so tests can expire tokens and OTPs
without sleeping. Behaviour follows the published Local UI documentation ("Access Local UI" and the Local
Management API spec): tokens live 2 h (24 h with ``extendedSession``), failed logins are delayed after 3 attempts
and locked after 5.

Fault knobs for the Local UI (plain attributes, settable at any time, also from
:class:`~wizard.lab.lab.NodeFaults`):

- ``token_ttl``: the lifetime of new tokens in seconds (None: the documented 2 h / 24 h);
- ``localui_errors``: the next N requests are answered ``500`` (each one counts it down);
- :meth:`NodeState.stall`: for S seconds requests are accepted and read but never answered (the connection closes
  when the stall ends), as a hung server behaves;
- ``upload_rate``: a bytes-per-second cap on the upload-content body, as a slow link;
- ``upload_errors``: the next N uploads are received whole, then fail with a ``500`` (the node could not store them);
- the node's wall clock (``skew``, from its machine) moves the time fields it reports (and the ``Date`` header);
- ``configure_error``: the next configuration applied through ``userdata``/``configurations`` ends ``Failed`` with
  this message (and leaves the node's settings as they were).

Post-install configuration (Local UI ``userdata`` and ``configurations``, reference §3 "Post-install edit"): a PUT is
accepted at once (status ``In Progress``). Changed user data takes effect on the next boot, as the agent regenerates
its configuration from ``/oem`` at boot: the node reboots through ``reboot`` (its machine's
:meth:`~wizard.lab.machine.Machine.reboot`, wired by the lab, with the machine's scaled timings), or, for a node
without a machine, is unreachable for ``reboot_seconds`` after ``configure_seconds``; it comes back with the new host
name, addresses and proxy and the status ``Configured``. Changed configurations alone (proxy, CA certificates) apply
``configure_seconds`` later without a reboot. The lab cannot move a node to another address: a static address other
than the one the node answers on ends ``Failed``, as does the ``configure_error`` knob.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bcrypt

from wizard.lab.httpfaults import NONE as NO_FAULTS
from wizard.lab.httpfaults import HttpFaults
from wizard.lab.variants import REFERENCE, Variant
from wizard.lab.versions import ApplianceProfile

if TYPE_CHECKING:
    from wizard.appliance.seed import SeedConfig
    from wizard.lab.cluster import ClusterDeployment
    from wizard.lab.timeline import Timeline

DEFAULT_USERNAME = "kairos"
DEFAULT_PASSWORD = "kairos"  # noqa: S105 - the appliance ISO's documented default account
TOKEN_TTL = 2 * 3600.0
EXTENDED_TOKEN_TTL = 24 * 3600.0
UID_FILE = "machine-uid"
DEFAULT_CLUSTER_TIMELINE = 25 * 60.0  # "20–30 min" for a management cluster to reach Running
DEFAULT_UPGRADE_TIMELINE = 25 * 60.0  # an archive update: the lab's guess, as long as a creation (not published)
DEFAULT_NIC = "eth0"
CONFIGURE_SECONDS = 5.0  # lab-clock seconds from accepted configurations (proxy, CA) until they are applied
REBOOT_SECONDS = 60.0  # lab-clock seconds a node without a machine is down to apply user data
#: v1EdgeHostConfigurationStatus states.
NOT_CONFIGURED, CONFIG_IN_PROGRESS, CONFIGURED, CONFIG_FAILED = "Not Configured", "In Progress", "Configured", "Failed"

Clock = Callable[[], float]


class LocalUIError(Exception):
    """A request the node refuses; the server turns it into an HTTP error with the spec's error shape."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class LoginPolicy:
    """``stylus.localUI.login`` defaults: "the delay starts at one second and doubles with each subsequent failed
    attempt … begins after three unsuccessful login attempts … lockout occurs after five consecutive failed attempts
    and lasts for 15 minutes" (Local UI docs, agent ≥ 4.7.16)."""

    delay_after_failures: int = 3
    base_delay: float = 1.0
    lock_after_failures: int = 5
    lock_seconds: float = 15 * 60.0


@dataclass(frozen=True)
class Hardware:
    """What the host reports; defaults are the appliance's documented minimum (8 CPU, 16 GB, two disks)."""

    cpu_cores: int = 8
    memory_mb: int = 16 * 1024
    disks_gb: tuple[int, ...] = (500, 500)
    arch: str = "amd64"


@dataclass
class _Account:
    username: str
    salt: bytes
    digest: bytes
    first_login: bool = True
    ssh_keys: list[str] = field(default_factory=list)
    logins: int = 0  # successful Local UI logins of this account
    crypt: str = ""  # a crypt(3) bcrypt hash, as a seed's ``passwd`` sets it (then salt and digest are unused)

    def check(self, password: str) -> bool:
        if self.crypt:
            try:
                return bcrypt.checkpw(password.encode(), self.crypt.encode())
            except ValueError:
                return False
        return hmac.compare_digest(self.digest, _hash_password(password, self.salt))


@dataclass(frozen=True)
class Session:
    token: str
    username: str
    issued_at: float
    expires_at: float


@dataclass
class _Attempts:
    failures: int = 0
    next_allowed: float = 0.0
    locked_until: float = 0.0


@dataclass(frozen=True)
class UploadedContent:
    file_name: str
    sha256: str
    size: int
    uploaded_at: float
    path: Path
    signature_path: Path | None = None


class LinkRole(StrEnum):
    NONE = "none"
    LEADER = "leader"
    FOLLOWER = "follower"


@dataclass
class LinkOTP:
    value: str
    issued_at: float
    used_by: str | None = None


@dataclass
class LinkState:
    """Link fields of a node. Only :class:`~wizard.lab.links.LinkRegistry` changes them, under its own lock,
    because a link always changes two nodes at once."""

    role: LinkRole = LinkRole.NONE
    leader_uid: str | None = None
    linked_at: float | None = None
    followers: dict[str, float] = field(default_factory=dict)  # follower uid → linked at
    otps: dict[str, LinkOTP] = field(default_factory=dict)
    current_otp: str | None = None


class NodeState:
    """One appliance node as its Local UI sees it. Thread-safe."""

    def __init__(
        self,
        *,
        name: str,
        data_dir: Path,
        ip: str = "127.0.0.1",
        uid: str | None = None,
        clock: Clock = time.time,
        login_policy: LoginPolicy | None = None,
        content_sync_delay: float = 5.0,
        hardware: Hardware | None = None,
        profile: ApplianceProfile | None = None,
        mac: str | None = None,
        cluster_timeline: float = DEFAULT_CLUSTER_TIMELINE,
        facts: Callable[[], Hardware] | None = None,
        skew: Callable[[], float] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.name = name
        self.hostname = name
        self.ip = ip
        self.port: int | None = None  # set by the Local UI server once it is bound
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.uid = uid or self._stable_uid()
        self.clock = clock
        self.login_policy = login_policy or LoginPolicy()
        self.content_sync_delay = content_sync_delay
        self.cluster_timeline = cluster_timeline  # seconds from create to Running
        self.upgrade_timeline = DEFAULT_UPGRADE_TIMELINE  # seconds an archive update takes (see wizard.lab.upgrade)
        self.upgrade_error = ""  # the upgrade-error knob: the next archive update ends in Error with this message
        self.timeline: Timeline | None = None  # the lab's ledger of appliance work (wizard.lab.timeline)
        self.hardware = hardware or Hardware()
        self._facts = facts  # the machine's live facts, when a machine backs this node
        self._skew = skew
        self.token_ttl: float | None = None
        #: Which plausible appliance this node is (:mod:`wizard.lab.variants`) and its transient HTTP faults.
        self.variant: Variant = REFERENCE
        self.http_faults: HttpFaults = NO_FAULTS
        self.logins = 0  # sessions opened through the Local UI login, and closed through its logout
        self.logouts = 0
        self.localui_errors = 0
        self.upload_errors = 0
        self.upload_rate: float | None = None
        self._stall_until = 0.0  # time.monotonic(): stalls are about real client timeouts, not the lab clock
        self.stalled_requests = 0  # how many requests a stall has held (they are never answered)
        #: The appliance release this node plays (version, edition): what it serves and which defects it has.
        self.profile = profile or ApplianceProfile()
        # A QEMU-style MAC derived from the uid, so it is as stable as the uid.
        self.mac = mac or "52:54:00:" + ":".join(f"{b:02x}" for b in hashlib.sha256(self.uid.encode()).digest()[:3])
        self.node_role = "unknown"  # v1NodeRole; set once a cluster assigns one
        self.has_cluster = False
        self.cluster: ClusterDeployment | None = None  # shared by every host of the cluster
        self.configuration_status = "configured"  # v1Configuration: the TUI step is done
        self.disable_password_update = False
        self.nameservers: list[str] = ["127.0.0.53"]
        self.created_at = clock()
        # Post-install configuration: the stored v1CloudInit and v1EdgeHostConfigurations, and what is pending.
        self.user_data: dict[str, Any] = {"hostName": name, "network": {"interfaces": {DEFAULT_NIC: {"type": "dhcp"}}}}
        self.host_configurations: dict[str, Any] = {"httpProxy": "", "httpsProxy": "", "noProxy": "", "caCerts": []}
        self.config_state = NOT_CONFIGURED
        self.config_error = ""
        self.configure_error = ""  # the fault knob (see the module docstring)
        self.configure_seconds = CONFIGURE_SECONDS
        self.reboot_seconds = REBOOT_SECONDS
        #: Schedules a reboot of the node's machine; returns (goes down at, Local UI answers again at) on the lab
        #: clock. None: the node simulates the outage itself.
        self.reboot: Callable[[], tuple[float, float]] | None = None
        self.reboots = 0  # how many reboots applied configurations have caused
        self.gateway = ""
        self.subnet = ""
        self._pending: _PendingConfiguration | None = None
        self._down: tuple[float, float] | None = None  # (from, until): the Local UI is down while it reboots
        self.link = LinkState()
        self._accounts: dict[str, _Account] = {}
        self._attempts: dict[str, _Attempts] = {}
        self._sessions: dict[str, Session] = {}
        self._token_key = secrets.token_bytes(32)
        self._upload: UploadedContent | None = None
        self.set_password(DEFAULT_USERNAME, DEFAULT_PASSWORD, first_login=True)

    def _stable_uid(self) -> str:
        # The uid survives restarts of the same node folder, as a machine identity does.
        path = self.data_dir / UID_FILE
        with contextlib.suppress(FileNotFoundError):
            existing = path.read_text(encoding="utf-8").strip()
            if existing:
                return existing
        uid = "edge-" + secrets.token_hex(16)
        path.write_text(uid + "\n", encoding="utf-8")
        return uid

    @property
    def address(self) -> tuple[str, int]:
        if self.port is None:
            raise RuntimeError(f"node {self.name} has no Local UI port yet")
        return self.ip, self.port

    # -- Accounts and sessions ------------------------------------------------------------------------------------

    def set_password(self, username: str, password: str, *, first_login: bool = False) -> None:
        """Create or change an OS account, as the TUI or ``passwd`` would."""
        salt = secrets.token_bytes(16)
        with self.lock:
            previous = self._accounts.get(username)
            keys = previous.ssh_keys if previous else []
            self._accounts[username] = _Account(username, salt, _hash_password(password, salt), first_login, keys)

    def set_password_hash(self, username: str, crypt_hash: str, *, first_login: bool = True) -> None:
        """Create or change an OS account from a crypt(3) hash, as the installer does with a seed's ``passwd``."""
        with self.lock:
            previous = self._accounts.get(username)
            keys = previous.ssh_keys if previous else []
            self._accounts[username] = _Account(username, b"", b"", first_login, keys, crypt=crypt_hash)

    def apply_seed(self, seed: SeedConfig) -> None:
        """Take the host name, accounts and authorised keys of a seed the machine booted with (``stylus.site``):
        the seed's password replaces the default one, and its keys are the account's authorised keys."""
        with self.lock:
            if seed.hostname:
                self.hostname = seed.hostname
                self.user_data["hostName"] = seed.hostname
            for user in seed.users:
                if user.password_hash:
                    self.set_password_hash(user.name, user.password_hash)
                elif user.name not in self._accounts:
                    continue
                account = self._accounts[user.name]
                account.ssh_keys = [k.strip() for k in user.ssh_keys]

    def check_password(self, username: str, password: str) -> bool:
        """The OS account check sshd does (the Local UI's login throttling does not apply to SSH)."""
        with self.lock:
            account = self._accounts.get(username)
            return account is not None and account.check(password)

    def add_ssh_key(self, username: str, public_key_line: str) -> None:
        """Authorise a public key (an ``authorized_keys`` line) for an existing account."""
        with self.lock:
            account = self._accounts.get(username)
            if account is None:
                raise KeyError(username)
            if public_key_line.strip() not in account.ssh_keys:
                account.ssh_keys.append(public_key_line.strip())

    def accounts(self) -> dict[str, list[str]]:
        """Every OS account with its authorised keys (public keys only; what a kept lab records)."""
        with self.lock:
            return {name: list(account.ssh_keys) for name, account in self._accounts.items()}

    def ssh_keys(self, username: str) -> list[str]:
        with self.lock:
            account = self._accounts.get(username)
            return list(account.ssh_keys) if account else []

    def login(self, username: str, password: str, *, extended: bool = False) -> tuple[Session, bool | None]:
        """Check credentials under the login policy; returns the new session and ``IsFirstLogin``."""
        policy = self.login_policy
        with self.lock:
            now = self.clock()
            attempts = self._attempts.setdefault(username, _Attempts())
            if attempts.locked_until:
                if now < attempts.locked_until:
                    wait = attempts.locked_until - now
                    raise LocalUIError(
                        429,
                        "AccountLocked",
                        f"too many failed logins: user {username!r} is locked for {math.ceil(wait)} more seconds",
                        retry_after=wait,
                    )
                attempts = self._attempts[username] = _Attempts()
            if now < attempts.next_allowed:
                wait = attempts.next_allowed - now
                raise LocalUIError(
                    429,
                    "LoginDelayed",
                    f"too many failed logins: wait {math.ceil(wait)} seconds before trying again",
                    retry_after=wait,
                )
            account = self._accounts.get(username)
            if account is None or not account.check(password):
                attempts.failures += 1
                if attempts.failures >= policy.lock_after_failures:
                    attempts.locked_until = now + policy.lock_seconds
                elif attempts.failures >= policy.delay_after_failures:
                    exponent = attempts.failures - policy.delay_after_failures
                    attempts.next_allowed = now + policy.base_delay * 2**exponent
                raise LocalUIError(401, "Unauthorized", "invalid username or password")
            del self._attempts[username]
            account.logins += 1
            self.logins += 1
            return self._issue(username, extended, now), self._first_login(account)

    def _first_login(self, account: _Account) -> bool | None:
        """``IsFirstLogin`` as this variant of the appliance means it (None: the field is left out)."""
        meaning = self.variant("localui.first-login")
        if meaning == "first-ever":
            return account.logins == 1
        if meaning == "never":
            return False
        if meaning == "absent":
            return None
        return account.first_login

    def _issue(self, username: str, extended: bool, now: float) -> Session:
        ttl = EXTENDED_TOKEN_TTL if extended else TOKEN_TTL
        if self.token_ttl is not None:
            ttl = self.token_ttl
        session = Session(self._make_token(username, now, now + ttl), username, now, now + ttl)
        self._sessions[session.token] = session
        return session

    def _make_token(self, username: str, issued: float, expires: float) -> str:
        # JWT-shaped (HS256) so a client that peeks at it sees what a real one holds; the node still looks tokens
        # up in its table, which is what makes logout effective.
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        claims = {"sub": username, "iat": int(issued), "exp": int(expires), "jti": secrets.token_hex(8)}
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self._token_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64url(signature)}"

    def authenticate(self, token: str | None) -> Session:
        if not token:
            raise LocalUIError(401, "Unauthorized", "missing Authorization header")
        with self.lock:
            session = self._sessions.get(token)
            if session is None:
                raise LocalUIError(401, "Unauthorized", "invalid or revoked token")
            if self.clock() >= session.expires_at:
                del self._sessions[token]
                raise LocalUIError(401, "Unauthorized", "token expired")
            return session

    def renew(self, session: Session, *, extended: bool = False) -> Session:
        """A new token for the same user; the old one stays valid until its own expiry."""
        with self.lock:
            return self._issue(session.username, extended, self.clock())

    def logout(self, session: Session) -> None:
        with self.lock:
            if self._sessions.pop(session.token, None) is not None:
                self.logouts += 1

    def end_sessions(self) -> None:
        """Every session ends, as a reboot of the node ends them."""
        with self.lock:
            self._sessions.clear()

    @property
    def open_sessions(self) -> int:
        with self.lock:
            now = self.clock()
            return sum(1 for s in self._sessions.values() if s.expires_at > now)

    def reset_password(self, username: str, old_password: str, new_password: str) -> None:
        with self.lock:
            account = self._accounts.get(username)
            if account is None or not account.check(old_password):
                raise LocalUIError(401, "Unauthorized", "the old password is not correct")
            if not new_password:
                raise LocalUIError(400, "BadRequest", "the new password must not be empty")
            self.set_password(username, new_password, first_login=False)

    def user_spec(self, username: str) -> dict[str, Any]:
        with self.lock:
            account = self._accounts.get(username)
            keys = list(account.ssh_keys) if account else []
            return {"userName": username, "sshKeys": keys, "disablePasswordUpdate": self.disable_password_update}

    def is_first_login(self, username: str) -> bool:
        with self.lock:
            account = self._accounts.get(username)
            return bool(account and account.first_login)

    # -- Faults and the node's own clock -------------------------------------------------------------------------

    def wall_time(self, ts: float | None = None) -> float:
        """``ts`` (default: now) on the node's own, possibly skewed, wall clock."""
        return (self.clock() if ts is None else ts) + (self._skew() if self._skew is not None else 0.0)

    def stall(self, seconds: float) -> None:
        """Accept requests but answer none of them for ``seconds`` (real time) from now."""
        with self.lock:
            self._stall_until = time.monotonic() + seconds if seconds > 0 else 0.0

    def stall_remaining(self) -> float:
        with self.lock:
            return max(0.0, self._stall_until - time.monotonic())

    def take_upload_error(self) -> bool:
        """Whether this upload is one of the ``upload_errors`` to fail after its body arrived."""
        with self.lock:
            if self.upload_errors > 0:
                self.upload_errors -= 1
                return True
            return False

    def take_error(self) -> bool:
        """Whether this request is one of the ``localui_errors`` to answer with a 500."""
        with self.lock:
            if self.localui_errors > 0:
                self.localui_errors -= 1
                return True
            return False

    @property
    def agent_version(self) -> str:
        return self.profile.agent_version

    @property
    def facts(self) -> Hardware:
        return self._facts() if self._facts is not None else self.hardware

    # -- Host ------------------------------------------------------------------------------------------------------

    def host_info(self) -> dict[str, Any]:
        """v1EdgeHostInfo."""
        with self.lock:
            hw = self.facts
            disks: list[dict[str, Any]] = []
            for i, size in enumerate(hw.disks_gb):
                partitions = (
                    [{"fileSystemType": "ext4", "mountPoint": "/", "totalSpace": size, "usedSpace": 12}]
                    if i == 0
                    else []
                )
                disks.append({"size": size, "controller": "virtio", "vendor": "0x1af4", "partitions": partitions})
            return {
                "metadata": {
                    "id": self.uid,
                    "name": self.hostname,
                    "creationTimestamp": iso8601(self.wall_time(self.created_at)),
                    "labels": {},
                },
                "spec": {
                    "connectionMode": "airgap",
                    "managementMode": "local",
                    "nodeRole": self.node_role,
                    "hostInfo": {"hostState": "Ready", "hostType": "appliance", "secureBoot": False},
                    "networkInfo": [
                        {
                            "nicName": DEFAULT_NIC,
                            "ip": self.ip,
                            "subnet": self.subnet or ("255.0.0.0" if self.ip.startswith("127.") else "255.255.255.0"),
                            **({"gateway": self.gateway} if self.gateway else {}),
                            "dns": list(self.nameservers),
                            "macAddr": self.mac,
                            "isDefault": True,
                        }
                    ],
                    "hardwareSpec": {
                        "archType": hw.arch,
                        "cpu": {"cores": hw.cpu_cores},
                        "memory": {"sizeInMB": hw.memory_mb},
                        "disks": disks,
                        "os": {"family": "ubuntu", "version": "22.04", "kernel": "Linux"},
                    },
                },
                "status": {
                    "agentVersion": self.agent_version,
                    "configurationStatus": (
                        self.variant("localui.host-configuration-status")
                        if self.configuration_status == "configured"
                        else self.configuration_status
                    ),
                    "dns": {"nameservers": list(self.nameservers), "searchDomains": []},
                    "ntp": {"ntpServers": []},
                    "hostName": self.hostname,
                    "isClusterPhase": self.has_cluster,
                },
            }

    def settings(self) -> dict[str, Any]:
        """v1Settings: the appliance ISO installs air-gapped and locally managed; ``applianceType`` from 4.9.38."""
        return self.profile.settings({"installationMode": "airgap", "managementMode": "local", "featureFlags": {}})

    # -- Post-install configuration (userdata, configurations) -----------------------------------------------------

    def get_user_data(self) -> dict[str, Any]:
        """v1CloudInit as the node keeps it (a pending change shows once accepted, as a stored file would)."""
        self.settle_configuration()
        with self.lock:
            data: dict[str, Any] = json.loads(json.dumps(self.user_data))
        credentials = data.get("registryCredentials")
        if isinstance(credentials, dict) and credentials.get("password"):
            credentials["password"] = "********"  # noqa: S105 - "masked in response", as the spec says
        return data

    def get_configurations(self) -> dict[str, Any]:
        self.settle_configuration()
        with self.lock:
            out: dict[str, Any] = json.loads(json.dumps(self.host_configurations))
            return out

    def configuration_state(self) -> dict[str, Any]:
        """v1EdgeHostConfigurationStatus."""
        self.settle_configuration()
        with self.lock:
            words = dict(
                zip(
                    ("Not Configured", "In Progress", "Configured", "Failed"),
                    self.variant("localui.configuration-words"),
                    strict=True,
                )
            )
            status: dict[str, Any] = {"state": words.get(self.config_state, self.config_state)}
            if self.config_error:
                status["errorMessage"] = self.config_error
            return status

    def put_user_data(self, body: dict[str, Any]) -> dict[str, Any]:
        """Accept a v1CloudInit (already spec-checked); 400 for values a node would refuse."""
        self.settle_configuration()
        merged = _check_user_data(body)
        with self.lock:
            if self._pending is not None and self._pending.user_data is not None:
                raise LocalUIError(409, "Conflict", "a user data change is already being applied")
            self._accept(user_data=merged)
        return {"message": "user data accepted; the host reboots to apply it"}

    def put_configurations(self, body: dict[str, Any]) -> dict[str, Any]:
        self.settle_configuration()
        certs = body.get("caCerts") or []
        for i, cert in enumerate(certs):
            if "-----BEGIN CERTIFICATE-----" not in cert:
                raise LocalUIError(400, "BadRequest", f"caCerts[{i}] is not a PEM certificate")
        wanted = {
            "httpProxy": str(body.get("httpProxy") or ""),
            "httpsProxy": str(body.get("httpsProxy") or ""),
            "noProxy": str(body.get("noProxy") or ""),
            "caCerts": [str(c) for c in certs],
        }
        with self.lock:
            self._accept(configurations=wanted)
        return {"message": "configurations accepted"}

    def _accept(self, *, user_data: dict[str, Any] | None = None, configurations: dict[str, Any] | None = None) -> None:
        now = self.clock()
        pending = self._pending or _PendingConfiguration(now + self.configure_seconds)
        if configurations is not None:
            pending.configurations = configurations
            self.host_configurations = configurations
        if user_data is not None:
            pending.user_data = user_data
            self.user_data = user_data
            pending.failure = pending.failure or self.configure_error or self._unmovable(user_data)
            self.configure_error = ""
            if not pending.failure:
                if self.reboot is not None:
                    down, back = self.reboot()
                else:
                    down = now + self.configure_seconds
                    back = down + self.reboot_seconds
                pending.apply_at, pending.back_at = down, back
                self._down = (down, back)
                self.reboots += 1
        if self.timeline is not None and not pending.failure:
            due = pending.back_at if pending.back_at is not None else pending.apply_at
            self.timeline.record("configure", self.name, now, due)
        self._pending = pending
        self.config_state, self.config_error = CONFIG_IN_PROGRESS, ""

    def _unmovable(self, user_data: dict[str, Any]) -> str:
        for iface in ((user_data.get("network") or {}).get("interfaces") or {}).values():
            if iface.get("type") == "static":
                address = ipaddress.IPv4Interface(str(iface["ipAddress"])).ip
                if str(address) != self.ip:
                    return f"cannot move this lab node from {self.ip} to {address}"
        return ""

    def settle_configuration(self) -> None:
        """Apply what the clock says has happened: a pending configuration reaching its apply time, or the node
        coming back from the reboot that applies user data."""
        with self.lock:
            pending = self._pending
            now = self.clock()
            if pending is None:
                return
            due = pending.back_at if pending.back_at is not None else pending.apply_at
            if now < due:
                return
            if pending.user_data is None and self.configure_error:
                pending.failure, self.configure_error = self.configure_error, ""
            self._pending = None
            self._down = None
            if pending.failure:
                self.config_state, self.config_error = CONFIG_FAILED, pending.failure
                return
            if pending.user_data is not None:
                self._apply_user_data(pending.user_data)
                self._sessions.clear()  # the reboot ended every session
            self.config_state = CONFIGURED

    def rebooting_now(self) -> bool:
        """Whether the node is down applying user data (its Local UI must not answer)."""
        self.settle_configuration()
        with self.lock:
            return self._down is not None and self._down[0] <= self.clock() < self._down[1]

    def _apply_user_data(self, data: dict[str, Any]) -> None:
        if data.get("hostName"):
            self.hostname = str(data["hostName"])
        network = data.get("network") or {}
        for iface in (network.get("interfaces") or {}).values():
            if iface.get("type") == "static":
                address = ipaddress.IPv4Interface(str(iface["ipAddress"]))
                self.subnet = str(address.netmask)
                self.gateway = str(iface.get("gateway") or "")
            else:
                self.subnet, self.gateway = "", ""
            if iface.get("nameserver"):
                self.nameservers = [str(n) for n in iface["nameserver"]]
        proxy = {k: str(network.get(k) or "") for k in ("httpProxy", "httpsProxy", "noProxy")}
        if any(proxy.values()) or network.get("caCerts"):
            self.host_configurations = {**proxy, "caCerts": [str(c) for c in network.get("caCerts") or []]}

    # -- Content ---------------------------------------------------------------------------------------------------

    @property
    def content_dir(self) -> Path:
        return self.data_dir / "content"

    @property
    def uploaded(self) -> UploadedContent | None:
        with self.lock:
            return self._upload

    def record_upload(self, content: UploadedContent) -> None:
        """Make ``content`` the last upload; the previous upload's files go, so the lab's disk use stays bounded."""
        with self.lock:
            previous, self._upload = self._upload, content
        if previous is not None:
            for old in (previous.path, previous.signature_path):
                if old is not None and old not in (content.path, content.signature_path):
                    with contextlib.suppress(OSError):
                        old.unlink()

    def uploaded_content_details(self) -> dict[str, Any]:
        """v1UploadedContentDetails; 404 before any upload."""
        content = self.uploaded
        if content is None:
            raise LocalUIError(404, "NotFound", "no content has been uploaded to this host")
        return {
            "fileName": content.file_name,
            "sha256Hash": content.sha256.upper() if self.variant("localui.hash-case") == "upper" else content.sha256,
            "sizeInBytes": content.size,
            "sizeInMiB": round(content.size / 2**20, 2),
            "sizeInGiB": round(content.size / 2**30, 3),
            "uploadDateTime": iso8601(self.wall_time(content.uploaded_at)),
        }


@dataclass
class _PendingConfiguration:
    apply_at: float
    user_data: dict[str, Any] | None = None
    configurations: dict[str, Any] | None = None
    back_at: float | None = None  # when the reboot that applies the user data is over
    failure: str = ""  # why applying it will fail


_HOSTNAME = re.compile(r"(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?", re.IGNORECASE)


def _check_user_data(body: dict[str, Any]) -> dict[str, Any]:
    """What a node refuses beyond the spec's types: a bad host name, a static interface without a usable address,
    a NIC the host does not have."""
    data: dict[str, Any] = json.loads(json.dumps(body))
    name = data.get("hostName")
    if name is not None and not _HOSTNAME.fullmatch(str(name)):
        raise LocalUIError(400, "BadRequest", f"hostName {name!r} is not a valid host name")
    interfaces = (data.get("network") or {}).get("interfaces") or {}
    for nic, iface in interfaces.items():
        if nic != DEFAULT_NIC:
            raise LocalUIError(400, "BadRequest", f"the host has no network interface {nic!r}")
        if iface.get("type") == "static":
            try:
                address = ipaddress.IPv4Interface(str(iface.get("ipAddress") or ""))
            except ValueError:
                raise LocalUIError(
                    400, "BadRequest", f"{nic}: ipAddress must be an IPv4 address with its prefix (a.b.c.d/n)"
                ) from None
            if "/" not in str(iface.get("ipAddress")):
                raise LocalUIError(400, "BadRequest", f"{nic}: ipAddress needs its prefix (a.b.c.d/n)")
            gateway = str(iface.get("gateway") or "")
            try:
                outside = bool(gateway) and ipaddress.IPv4Address(gateway) not in address.network
            except ValueError:
                raise LocalUIError(400, "BadRequest", f"{nic}: gateway {gateway!r} is not an IPv4 address") from None
            if outside:
                raise LocalUIError(400, "BadRequest", f"{nic}: gateway {gateway} is not in {address.network}")
    return data


def http_date(ts: float) -> str:
    """An RFC 9110 ``Date`` header value."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def iso8601(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash_password(password: str, salt: bytes) -> bytes:
    # Few iterations: this is a simulator and logins happen in tight test loops.
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 1_000)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
