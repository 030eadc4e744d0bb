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
- the node's wall clock (``skew``, from its machine) moves the time fields it reports (and the ``Date`` header).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bcrypt

if TYPE_CHECKING:
    from wizard.appliance.seed import SeedConfig
    from wizard.lab.cluster import ClusterDeployment

DEFAULT_USERNAME = "kairos"
DEFAULT_PASSWORD = "kairos"  # noqa: S105 - the appliance ISO's documented default account
TOKEN_TTL = 2 * 3600.0
EXTENDED_TOKEN_TTL = 24 * 3600.0
UID_FILE = "machine-uid"
DEFAULT_CLUSTER_TIMELINE = 25 * 60.0  # "20–30 min" for a management cluster to reach Running

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
        agent_version: str = "4.7.16",
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
        self.hardware = hardware or Hardware()
        self._facts = facts  # the machine's live facts, when a machine backs this node
        self._skew = skew
        self.token_ttl: float | None = None
        self.localui_errors = 0
        self.upload_rate: float | None = None
        self._stall_until = 0.0  # time.monotonic(): stalls are about real client timeouts, not the lab clock
        self.stalled_requests = 0  # how many requests a stall has held (they are never answered)
        self.agent_version = agent_version
        # A QEMU-style MAC derived from the uid, so it is as stable as the uid.
        self.mac = mac or "52:54:00:" + ":".join(f"{b:02x}" for b in hashlib.sha256(self.uid.encode()).digest()[:3])
        self.node_role = "unknown"  # v1NodeRole; set once a cluster assigns one
        self.has_cluster = False
        self.cluster: ClusterDeployment | None = None  # shared by every host of the cluster
        self.configuration_status = "configured"  # v1Configuration: the TUI step is done
        self.disable_password_update = False
        self.nameservers: list[str] = ["127.0.0.53"]
        self.created_at = clock()
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

    def ssh_keys(self, username: str) -> list[str]:
        with self.lock:
            account = self._accounts.get(username)
            return list(account.ssh_keys) if account else []

    def login(self, username: str, password: str, *, extended: bool = False) -> tuple[Session, bool]:
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
            return self._issue(username, extended, now), account.first_login

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
            self._sessions.pop(session.token, None)

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

    def take_error(self) -> bool:
        """Whether this request is one of the ``localui_errors`` to answer with a 500."""
        with self.lock:
            if self.localui_errors > 0:
                self.localui_errors -= 1
                return True
            return False

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
                            "nicName": "eth0",
                            "ip": self.ip,
                            "subnet": "255.0.0.0" if self.ip.startswith("127.") else "255.255.255.0",
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
                    "configurationStatus": self.configuration_status,
                    "dns": {"nameservers": list(self.nameservers), "searchDomains": []},
                    "ntp": {"ntpServers": []},
                    "hostName": self.hostname,
                    "isClusterPhase": self.has_cluster,
                },
            }

    def settings(self) -> dict[str, Any]:
        """v1Settings: the appliance ISO installs air-gapped and locally managed."""
        return {"installationMode": "airgap", "managementMode": "local", "featureFlags": {}}

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
            "sha256Hash": content.sha256,
            "sizeInBytes": content.size,
            "sizeInMiB": round(content.size / 2**20, 2),
            "sizeInGiB": round(content.size / 2**30, 3),
            "uploadDateTime": iso8601(self.wall_time(content.uploaded_at)),
        }


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
