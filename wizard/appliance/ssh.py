"""SSH to appliance nodes: pinned host keys, key or password auth, timed commands, reconnect with backoff.

The client is built from plain values, so a job can own one per node without sharing anything. Host keys are never
auto-added: the key a node presents goes through :func:`wizard.core.trust.decide` before any credential is sent,
so first contact is confirmed by the operator (or matched against the project's fingerprint) and a changed key stops
with :class:`~wizard.core.trust.TrustChanged`. Every failure becomes a :class:`SSHError` subclass that says what to
do; only :class:`SSHUnreachable` is worth retrying — a wrong password stays wrong however often it is sent.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import paramiko

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.trust import Confirm, TrustKind, TrustStore, decide, ssh_fingerprint


class SSHError(WizardError):
    """Something went wrong talking SSH to a node."""


class SSHUnreachable(SSHError):
    """No SSH session could be set up (refused, timed out, no route, handshake broke); retrying may help."""


class SSHAuthFailed(SSHError):
    """The node refused the credentials. Never retried automatically."""


class SSHKeyError(SSHError):
    """The private key file cannot be read or decrypted."""


class SSHCommandTimeout(SSHError):
    """A command did not finish within its timeout; its channel was closed."""


class SSHDisconnected(SSHError):
    """The session dropped while a command ran (the node rebooted or the network went away)."""


@dataclass(frozen=True)
class SSHCredentials:
    """Who to log in as. A key is tried first, then the password; secrets stay out of ``repr``."""

    username: str
    password: str | None = field(default=None, repr=False)
    #: Tried once when ``password`` is refused: a node set up before this session may have the operator's password
    #: already. Whichever works is used first from then on, so a node never sees the refused one again.
    then_password: str | None = field(default=None, repr=False)
    key_path: Path | None = None
    key_passphrase: str | None = field(default=None, repr=False)
    pkey: paramiko.PKey | None = field(default=None, repr=False, compare=False)

    def load_key(self) -> paramiko.PKey | None:
        if self.pkey is not None:
            return self.pkey
        if self.key_path is None:
            return None
        try:
            return paramiko.PKey.from_path(self.key_path, password=self.key_passphrase)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise SSHKeyError(
                "Cannot load SSH key",
                f"{self.key_path} could not be read: {exc}",
                remediation="check the path, the file's permissions and the passphrase",
            ) from exc


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0


class Backoff:
    """Exponential delays ``initial, initial*factor, …`` capped at ``maximum``; ``reset`` after a success."""

    def __init__(self, initial: float = 1.0, maximum: float = 30.0, factor: float = 2.0) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return delay

    def reset(self) -> None:
        self._next = self.initial


class SSHClient:
    """One SSH session to ``host:port`` at a time; thread-safe, reconnects on demand.

    ``connect`` is idempotent; ``run`` connects when needed and reports a dropped session as
    :class:`SSHDisconnected` (the next ``run`` reconnects).
    """

    def __init__(
        self,
        host: str,
        port: int,
        credentials: SSHCredentials,
        *,
        trust: TrustStore,
        confirm: Confirm | None = None,
        expected_fingerprint: str = "",
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
        keepalive: float = 15.0,
        verify_host: Callable[[paramiko.PKey, str], None] | None = None,
    ) -> None:
        """``verify_host(key, fingerprint)`` replaces the trust store's check (it must raise to refuse the key);
        the install monitor uses it to follow a node from its live installer's key to its installed system's."""
        self.host = host
        self.verify_host = verify_host
        self.port = port
        self.credentials = credentials
        self.trust = trust
        self.confirm = confirm
        self.expected_fingerprint = expected_fingerprint
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.keepalive = keepalive
        self._transport: paramiko.Transport | None = None
        self._fingerprint = ""
        #: How the current (or last) session logged in: "publickey" or "password" ("" before a login).
        self.auth_method = ""
        # One lock for the session's lifecycle; commands open their own channels and run concurrently.
        self._lock = threading.RLock()

    @property
    def where(self) -> str:
        return f"{self.credentials.username}@{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._transport is not None and self._transport.is_active()

    @property
    def host_fingerprint(self) -> str:
        """The fingerprint of the host key of the current (or last) session."""
        return self._fingerprint

    # -- session --------------------------------------------------------------------------------------------
    def connect(self) -> None:
        with self._lock:
            if self.connected:
                return
            self._close_locked()
            pkey = self.credentials.load_key()  # a bad key file fails before the node is even contacted
            sock = self._open_socket()
            transport = paramiko.Transport(sock)
            transport.banner_timeout = self.connect_timeout
            transport.handshake_timeout = self.connect_timeout
            transport.auth_timeout = self.connect_timeout
            try:
                self._handshake(transport)
                self._verify_host_key(transport)
                self._authenticate(transport, pkey)
            except BaseException:
                transport.close()
                raise
            if self.keepalive > 0:
                transport.set_keepalive(max(1, round(self.keepalive)))
            self._transport = transport

    def _open_socket(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            # Each SSH message is one write, and most exchanges are a request waiting for its reply: with Nagle's
            # algorithm a message could wait for the peer's delayed ACK (measured: login 65 ms, 19 ms without).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except ConnectionRefusedError as exc:
            raise SSHUnreachable(
                "SSH connection refused",
                f"{self.host}:{self.port} refused the connection",
                details=str(exc),
                remediation="check that the node is powered on and booted, that sshd runs, and the address and port",
            ) from exc
        except TimeoutError as exc:
            raise SSHUnreachable(
                "SSH connection timed out",
                f"{self.host}:{self.port} did not answer within {self.connect_timeout:g} s",
                details=str(exc),
                remediation="check the node's address, that it is on the network, and firewalls on the way",
            ) from exc
        except OSError as exc:  # no route, unknown host name, network down
            raise SSHUnreachable(
                "Cannot reach node over SSH",
                f"{self.host}:{self.port}: {exc.strerror or exc}",
                details=repr(exc),
                remediation="check the node's address and this machine's network connection",
            ) from exc

    def _handshake(self, transport: paramiko.Transport) -> None:
        try:
            transport.start_client(timeout=self.connect_timeout)
            # start_client returns quietly when its timeout passes; an unfinished key exchange is a failure.
            if not transport.is_active() or not transport.initial_kex_done:
                raise paramiko.SSHException("key exchange did not finish in time")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise SSHUnreachable(
                "SSH handshake failed",
                f"{self.host}:{self.port} accepted the connection but no SSH session could be negotiated",
                details=f"{type(exc).__name__}: {exc}",
                remediation="check that the port is the node's SSH port; if the node is booting, wait and retry",
            ) from exc

    def _verify_host_key(self, transport: paramiko.Transport) -> None:
        # Checked before any credential is sent, so a password never goes to an impostor.
        key = transport.get_remote_server_key()
        presented = ssh_fingerprint(key.asbytes())
        if self.verify_host is not None:
            self.verify_host(key, presented)
            self._fingerprint = presented
            return
        decide(
            self.trust,
            self.confirm,
            TrustKind.SSH,
            self.host,
            self.port,
            presented=presented,
            expected=self.expected_fingerprint,
            subject=key.get_name(),
        )
        self._fingerprint = presented

    def _authenticate(self, transport: paramiko.Transport, pkey: paramiko.PKey | None) -> None:
        creds = self.credentials
        if pkey is None and creds.password is None:
            raise SSHAuthFailed(
                "No SSH credentials",
                f"neither a key nor a password is set for {self.where}",
                remediation="enter the node's password or choose a private key",
            )
        tried: list[str] = []
        reasons: list[str] = []
        try:
            if pkey is not None:
                tried.append(f"key {pkey.get_name()}")
                try:
                    transport.auth_publickey(creds.username, pkey)
                    self.auth_method = "publickey"
                    return
                except paramiko.AuthenticationException as exc:
                    if not transport.is_active():
                        raise paramiko.SSHException(f"the connection closed during key login: {exc}") from exc
                    reasons.append(f"key: {exc}")
            if creds.password is not None:
                tried.append("password")
                try:
                    transport.auth_password(creds.username, creds.password)
                    self.auth_method = "password"
                    return
                except paramiko.AuthenticationException as exc:
                    if creds.then_password is None or not transport.is_active():
                        raise
                    reasons.append(f"password: {exc}")
                tried.append("other password")
                transport.auth_password(creds.username, creds.then_password)
                self.credentials = replace(creds, password=creds.then_password, then_password=None)
                self.auth_method = "password"
                return
        except paramiko.BadAuthenticationType as exc:
            raise SSHAuthFailed(
                "SSH login method refused",
                f"{self.where} does not accept {', '.join(tried)}",
                details=f"the server allows: {', '.join(exc.allowed_types)}",
                remediation="use a method the node allows (the appliance accepts password and key logins)",
            ) from exc
        except paramiko.AuthenticationException as exc:
            if not transport.is_active():
                # paramiko reports a connection that died during login as "Authentication failed"; a refused
                # password leaves the session open. Calling a dropped link a wrong password would stop a monitor
                # that should simply retry (and tempt an operator to change a correct password).
                raise SSHUnreachable(
                    "SSH session dropped",
                    f"{self.where} closed the connection during login",
                    details=str(exc),
                    remediation="retry; if the node is rebooting, wait for it",
                ) from exc
            reasons.append(f"password: {exc}")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise SSHUnreachable(
                "SSH session dropped",
                f"{self.where} closed the connection during login",
                details=str(exc),
                remediation="retry; if the node is rebooting, wait for it",
            ) from exc
        raise SSHAuthFailed(
            "SSH login failed",
            f"{self.where} refused the {' and the '.join(tried)}",
            details="\n".join(reasons),
            remediation="check the user name and password (or that the public key is authorized on the node)",
        )

    def connect_retrying(
        self,
        cancel: CancelToken,
        *,
        within: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        """Connect, retrying unreachable nodes with exponential backoff for up to ``within`` seconds (forever when
        None). Trust and login errors are raised at once; cancelling interrupts the wait."""
        delays = backoff or Backoff()
        deadline = None if within is None else time.monotonic() + within
        while True:
            cancel.raise_if_cancelled()
            try:
                self.connect()
                return
            except SSHUnreachable:
                delay = delays.next()
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise
                    delay = min(delay, remaining)
                cancel.sleep(delay)

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.close()

    def __enter__(self) -> SSHClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands -------------------------------------------------------------------------------------------
    def run(self, command: str, timeout: float | None = None) -> Result:
        """Run ``command`` and wait at most ``timeout`` seconds for it to finish."""
        limit = self.command_timeout if timeout is None else timeout
        self.connect()
        with self._lock:
            transport = self._transport
        if transport is None:  # closed by another thread in between
            raise self._dropped(command, "the session was closed")
        try:
            channel = transport.open_session(timeout=min(limit, self.connect_timeout))
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.close()
            raise self._dropped(command, str(exc)) from exc
        try:
            channel.exec_command(command)
            return self._collect(channel, command, limit)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.close()
            raise self._dropped(command, str(exc)) from exc
        finally:
            # Closing sends a message; on a session that just died that fails, and the result (or error) stands.
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                channel.close()

    def _collect(self, channel: paramiko.Channel, command: str, limit: float) -> Result:
        deadline = time.monotonic() + limit
        out: list[bytes] = []
        err: list[bytes] = []
        while True:
            while channel.recv_ready():
                out.append(channel.recv(65536))
            while channel.recv_stderr_ready():
                err.append(channel.recv_stderr(65536))
            # The exit status arrives after the output, and EOF after both: only then is everything read.
            if channel.exit_status_ready() and (channel.eof_received or channel.closed):
                if not (channel.recv_ready() or channel.recv_stderr_ready()):
                    break
                continue
            if channel.closed or not (self._transport and self._transport.is_active()):
                self.close()
                raise self._dropped(command, "the channel closed without an exit status")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SSHCommandTimeout(
                    "Command timed out",
                    f"`{command}` on {self.host} did not finish within {limit:g} s",
                    details=_decode(b"".join(out))[-2000:],
                    remediation="the node may be overloaded or the command hung; retry, or check the node's console",
                )
            # The channel's fileno becomes readable on data, stderr, EOF and close; cap waits to notice a dead link.
            select.select([channel], [], [], min(remaining, 0.5))
        # paramiko reports a channel closed without an exit status (the session dropped mid-command) as "exited"
        # with -1: that is a drop, not a result, and its output may be cut short.
        code = channel.recv_exit_status()
        if code == -1:
            self.close()
            raise self._dropped(command, "the channel closed without an exit status")
        return Result(code, _decode(b"".join(out)), _decode(b"".join(err)))

    def _dropped(self, command: str, why: str) -> SSHDisconnected:
        return SSHDisconnected(
            "SSH session dropped",
            f"the session to {self.host}:{self.port} ended while running `{command}`",
            details=why,
            remediation="the node may be rebooting; it is retried automatically while monitoring",
        )


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def presented_host_key(host: str, port: int, timeout: float = 5.0) -> tuple[str, str]:
    """The fingerprint and type of the host key ``host:port`` presents: the key exchange only, no credential is
    sent and nothing is trusted. Raises :class:`SSHUnreachable` when no SSH server answers there."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise SSHUnreachable("No SSH server", f"{host}:{port}: {exc.strerror or exc}") from exc
    transport = paramiko.Transport(sock)
    transport.banner_timeout = transport.handshake_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        if not transport.is_active() or not transport.initial_kex_done:
            raise paramiko.SSHException("key exchange did not finish in time")
        key = transport.get_remote_server_key()
        return ssh_fingerprint(key.asbytes()), key.get_name()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise SSHUnreachable("No SSH server", f"{host}:{port} answers, but not as an SSH server ({exc})") from exc
    finally:
        transport.close()
