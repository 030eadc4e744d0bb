"""Resumable upload of one file onto a node (the transfer half of SFTP staging).

The bytes go as one stream into ``dd`` on the node (:mod:`wizard.appliance.sshstream`): through the jump host's
OpenSSH client when it can log in as the wizard's session did, else on an exec channel of that paramiko session.
The paramiko session does everything else — the host key checked against the pin before any credential is sent,
the staging folder, the part file's size, the final rename — over SFTP. After a drop the upload reconnects with
backoff and carries on from the size the node's part file has, rolled back a little (:attr:`Tuning.rollback`).
"""

from __future__ import annotations

import logging
import os
import posixpath
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from wizard.appliance.ssh import (
    Backoff,
    SSHAuthFailed,
    SSHClient,
    SSHCredentials,
    SSHError,
    SSHKeyError,
    SSHUnreachable,
)
from wizard.appliance.sshstream import (
    BLOCK,
    ClientUnusable,
    Login,
    OpenSSHStream,
    ParamikoStream,
    StreamDropped,
    StreamRefused,
    openssh_client,
)
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.progress import Reporter
from wizard.core.trust import Confirm, TrustStore

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"

# The paramiko session's ciphers (it carries the bytes where OpenSSH cannot): GCM first, since it authenticates while
# it encrypts, about 30 % faster in paramiko than CTR plus HMAC.
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)


class StagingError(WizardError):
    """Staging a file on a node failed in a way retrying the same bytes will not fix."""


class StagedFileDamaged(StagingError):
    """The node's sha256 of the staged file differs from the local one."""


# -- SSH ---------------------------------------------------------------------------------------------------------


class StagingSSH(SSHClient):
    """The project's SSH client (pinned host key, auth, timeouts) with GCM preferred and SFTP channels on tap."""

    def _handshake(self, transport: paramiko.Transport) -> None:
        options = transport.get_security_options()
        available = set(options.ciphers)
        options.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in available) + tuple(
            c for c in options.ciphers if c not in PREFERRED_CIPHERS
        )
        super()._handshake(transport)

    def open_sftp(self, io_timeout: float) -> paramiko.SFTPClient:
        """A new SFTP channel on the session (connecting first when needed)."""
        self.connect()
        with self._lock:
            transport = self._transport
        if transport is None:
            raise _dropped("the session was closed")
        sftp = paramiko.SFTPClient.from_transport(transport)
        if sftp is None:
            raise _dropped("the node refused an SFTP channel")
        # A link that silently stops delivering must end in an error, not a worker blocked forever.
        _channel(sftp).settimeout(io_timeout)
        return sftp

    def open_channel(self, io_timeout: float) -> paramiko.Channel:
        """A new session channel (for a command that streams its input), connecting first when needed."""
        self.connect()
        with self._lock:
            transport = self._transport
        if transport is None:
            raise _dropped("the session was closed")
        channel = transport.open_session(timeout=min(io_timeout, self.connect_timeout))
        channel.settimeout(io_timeout)
        return channel

    def host_key(self) -> paramiko.PKey:
        """The host key of the current session: the one checked against the pin before any credential was sent."""
        with self._lock:
            transport = self._transport
        if transport is None:
            raise _dropped("the session was closed")
        return transport.get_remote_server_key()

    def __enter__(self) -> StagingSSH:
        self.connect()
        return self

    @property
    def cipher(self) -> str:
        with self._lock:
            t = self._transport
        wire: Any = t
        return str(wire.remote_cipher) if t is not None else ""


@dataclass(frozen=True)
class SSHTarget:
    """Plain values to reach one node over SSH."""

    host: str
    port: int
    credentials: SSHCredentials
    trust: TrustStore
    confirm: Confirm | None = None
    expected_fingerprint: str = ""
    connect_timeout: float = 10.0
    command_timeout: float = 30.0

    @property
    def where(self) -> str:
        return f"{self.credentials.username}@{self.host}:{self.port}"

    def client(self) -> StagingSSH:
        return StagingSSH(
            self.host,
            self.port,
            self.credentials,
            trust=self.trust,
            confirm=self.confirm,
            expected_fingerprint=self.expected_fingerprint,
            connect_timeout=self.connect_timeout,
            command_timeout=self.command_timeout,
        )


def _channel(sftp: paramiko.SFTPClient) -> paramiko.Channel:
    channel = sftp.get_channel()
    if channel is None:
        raise _dropped("the SFTP channel is gone")
    return channel


def _dropped(why: str) -> SSHError:
    return SSHError("SSH session dropped", f"the staging connection ended: {why}")


# -- The upload --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tuning:
    """How the upload uses the connection. ``client`` picks the stream's carrier: ``auto`` (OpenSSH when it can
    log in like the session did, else paramiko), ``openssh`` (fail when it cannot) or ``paramiko``. ``rollback``:
    a resume starts this far before the part file's size. Streams leave no holes (see
    :mod:`wizard.appliance.sshstream`); the margin covers part files left by the parallel SFTP writes of earlier
    versions, which could have holes within their last 32 MiB."""

    client: str = "auto"
    #: ``auto`` streams smaller files through paramiko: ssh's own start (~0.2 s) would cost more than it saves.
    openssh_from: int = 16 * 1024 * 1024
    rollback: int = 32 * 1024 * 1024
    io_timeout: float = 60.0
    attempts: int = 8  # consecutive failed attempts (no byte gained) before giving up
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    reconnect_within: float = 120.0

    def __post_init__(self) -> None:
        if self.client not in ("auto", "openssh", "paramiko"):
            raise ValueError(f"unknown SSH client {self.client!r}: auto, openssh or paramiko")


def resume_point(have: int, size: int, rollback: int) -> int:
    """Where a resume starts when the node's part file holds ``have`` bytes: ``rollback`` before it, on a block."""
    return max(0, min(have, size) - rollback) // BLOCK * BLOCK


@dataclass
class UploadResult:
    size: int
    sent: int = 0  # bytes written by this run (re-sent rollback included)
    resumed_from: list[int] = field(default_factory=list)  # the offset each attempt started at
    drops: int = 0
    already_there: bool = False
    seconds: float = 0.0
    cipher: str = ""
    client: str = ""  # what carried the bytes: "openssh" or "paramiko"


class ResumableUpload:
    """Upload ``local`` to ``remote`` on the node; resumable across drops, runs and cancels.

    The bytes go into ``<remote>.part``, which is renamed once it holds them all. Resuming from the part file's size
    is safe because every stream writes contiguously from its start at each byte's own offset (no holes below the
    size, and a late writer from a dropped session writes the right bytes in the right place); the start is rolled
    back by :attr:`Tuning.rollback` all the same. The node's sha256 of the finished file is the proof.
    """

    def __init__(
        self,
        target: SSHTarget,
        local: Path,
        remote: str,
        *,
        tuning: Tuning | None = None,
        label: str = "",
    ) -> None:
        self.target = target
        self.local = local
        self.remote = remote
        self.tuning = tuning or Tuning()
        self.label = label or local.name
        self._openssh_refused = ""  # why OpenSSH could not carry this upload: the rest goes through paramiko

    @property
    def part(self) -> str:
        return self.remote + PART_SUFFIX

    def run(self, report: Reporter, cancel: CancelToken, client: StagingSSH | None = None) -> UploadResult:
        st = self.local.stat()
        size = st.st_size
        result = UploadResult(size)
        owned = client is None
        ssh = client or self.target.client()
        backoff = Backoff(self.tuning.backoff_initial, self.tuning.backoff_max)
        failures = 0
        started = time.monotonic()
        message = f"Staging {self.label} on {self.target.host}"
        try:
            while True:
                cancel.raise_if_cancelled()
                gained_before = result.sent
                try:
                    ssh.connect_retrying(cancel, within=self.tuning.reconnect_within, backoff=backoff)
                    result.cipher = ssh.cipher
                    self._attempt(ssh, st, result, report, message=message, cancel=cancel)
                    break
                except (SSHAuthFailed, SSHKeyError, SSHUnreachable, StagingError):
                    raise  # wrong credentials stay wrong, and connect_retrying already waited for the node
                except (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
                    raise StagingError(
                        "Cannot write the staging folder",
                        f"{self.target.host} refused {self.part}: {exc}",
                        remediation="choose a staging folder the login user can write to (files.staging_dir)",
                    ) from exc
                except (StreamDropped, SSHError, paramiko.SSHException, EOFError, OSError) as exc:
                    if not isinstance(exc, StreamDropped) or not ssh.connected:
                        ssh.close()
                    result.drops += 1
                    failures = 0 if result.sent > gained_before else failures + 1
                    log.info("staging %s to %s dropped (%s); resuming", self.label, self.target.where, exc)
                    if failures >= self.tuning.attempts:
                        raise StagingError(
                            "Staging keeps failing",
                            f"copying {self.label} to {self.target.host} failed {failures} times in a row",
                            details=f"{type(exc).__name__}: {exc}",
                            remediation="check the network path to the node; run again to resume where it stopped",
                        ) from exc
                    if failures == 1:
                        report.warn(f"connection to {self.target.host} dropped; resuming")
                    cancel.sleep(backoff.next())
        finally:
            if owned:
                ssh.close()
        result.seconds = time.monotonic() - started
        report.transfer(size, size, f"Staged {self.label} on {self.target.host}")
        return result

    def _attempt(
        self,
        ssh: StagingSSH,
        st: os.stat_result,
        result: UploadResult,
        report: Reporter,
        *,
        message: str,
        cancel: CancelToken,
    ) -> None:
        size = st.st_size
        carrier = self._carrier(ssh, size)
        try:
            carrier.start()  # OpenSSH connects in the background meanwhile
        except (OSError, ClientUnusable) as exc:  # ssh could not even be started: the built-in client it is
            carrier.close()
            self._refuse_openssh(str(exc))
            carrier = self._carrier(ssh, size)
        try:
            sftp = ssh.open_sftp(self.tuning.io_timeout)
            try:
                _makedirs(sftp, posixpath.dirname(self.remote))
                final = _stat_size(sftp, self.remote)
                if final == size:
                    result.already_there = True  # a finished earlier run; the sha256 check decides
                    return
                start = self._resume_point(sftp, size)
                result.resumed_from.append(start)
                report.transfer(start, size, message)
            finally:
                sftp.close()
            if start < size:
                self._stream(carrier, ssh, st, start, result=result, report=report, message=message, cancel=cancel)
        finally:
            carrier.close()
        sftp = ssh.open_sftp(self.tuning.io_timeout)
        try:
            have = _stat_size(sftp, self.part)
            if have != size:
                raise _dropped(f"the staged part holds {have} of {size} bytes after the upload")
            sftp.posix_rename(self.part, self.remote)
        finally:
            sftp.close()

    def _resume_point(self, sftp: paramiko.SFTPClient, size: int) -> int:
        have = _stat_size(sftp, self.part)
        if have is None:
            with sftp.open(self.part, "wb"):  # created here, where a refused folder gets its own clear error
                pass
            return 0
        start = resume_point(have, size, self.tuning.rollback)
        if have > size:
            sftp.truncate(self.part, start)  # left by a longer file of the same name: what follows it is not ours
        return start

    def _stream(
        self,
        carrier: OpenSSHStream | ParamikoStream,
        ssh: StagingSSH,
        st: os.stat_result,
        start: int,
        *,
        result: UploadResult,
        report: Reporter,
        message: str,
        cancel: CancelToken,
    ) -> None:
        size = st.st_size
        last = [0.0]

        def progress(position: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1:  # the UI needs a few updates a second, not one per buffer
                last[0] = now
                report.transfer(position, size, message)

        fd = os.open(self.local, os.O_RDONLY)
        result.client = carrier.name
        try:
            try:
                sent = carrier.send(fd, self.part, start, size, progress=progress, cancel=cancel)
            except ClientUnusable as exc:
                self._refuse_openssh(str(exc))
                carrier = self._carrier(ssh, size)
                result.client = carrier.name
                sent = carrier.send(fd, self.part, start, size, progress=progress, cancel=cancel)
            except StreamRefused as exc:
                raise StagingError(
                    "The node refused a write",
                    f"writing {self.part} on {self.target.host} failed",
                    details=str(exc),
                    remediation="check the free space and permissions of the staging folder on the node",
                ) from exc
            finally:
                _check_unchanged(self.local, fd, st)
            result.sent += max(0, sent.position - start)
            result.cipher = sent.cipher or result.cipher
            report.transfer(size, size, message)
        except StreamDropped as exc:
            if result.client == "openssh":  # how far ssh read: the node may hold less, the resume point tells
                result.sent += max(0, os.lseek(fd, 0, os.SEEK_CUR) - start)
            raise _dropped(str(exc)) from exc
        finally:
            os.close(fd)

    def _refuse_openssh(self, why: str) -> None:
        """OpenSSH failed here (before any byte went): the rest of this upload goes through paramiko."""
        self._openssh_refused = why
        log.warning("OpenSSH could not stage to %s, using the built-in client: %s", self.target.where, why)
        if self.tuning.client == "openssh":
            raise StagingError("OpenSSH client refused", f"ssh to {self.target.where}: {why}")

    def _carrier(self, ssh: StagingSSH, size: int) -> OpenSSHStream | ParamikoStream:
        """OpenSSH when it can log in as the session did (and has not refused this upload) and the file is big
        enough to repay its setup, else paramiko."""
        tuning = self.tuning
        wanted = tuning.client == "openssh" or (tuning.client == "auto" and size >= tuning.openssh_from)
        if wanted and not self._openssh_refused:
            login = Login.like(ssh.credentials, ssh.auth_method)
            client = openssh_client()
            why = OpenSSHStream.unusable(login, client)
            if not why and isinstance(login, Login) and client is not None:
                return OpenSSHStream(
                    self.target.host,
                    self.target.port,
                    login,
                    ssh.host_key(),
                    io_timeout=tuning.io_timeout,
                    connect_timeout=self.target.connect_timeout,
                    client=client,
                )
            if tuning.client == "openssh":
                raise StagingError("OpenSSH client unusable", f"staging to {self.target.where}: {why}")
            self._openssh_refused = why
            log.info("staging to %s through the built-in SSH client: %s", self.target.where, why)
        return ParamikoStream(
            lambda: ssh.open_channel(tuning.io_timeout), io_timeout=tuning.io_timeout, cipher=ssh.cipher
        )


def _check_unchanged(path: Path, fd: int, before: os.stat_result) -> None:
    now = os.fstat(fd)
    if now.st_size != before.st_size or now.st_mtime_ns != before.st_mtime_ns:
        raise StagingError(
            "File changed while staging",
            f"{path} changed while it was sent ({before.st_size} bytes when staging began, {now.st_size} now)",
            remediation="wait until the file is complete and unchanged, then retry",
        )


def _stat_size(sftp: paramiko.SFTPClient, path: str) -> int | None:
    try:
        st = sftp.stat(path)
    except FileNotFoundError:
        return None
    return int(st.st_size or 0)


def _makedirs(sftp: paramiko.SFTPClient, folder: str) -> None:
    if not folder or folder in (".", "/"):
        return
    try:
        sftp.stat(folder)
        return
    except FileNotFoundError:
        pass
    _makedirs(sftp, posixpath.dirname(folder))
    try:
        sftp.mkdir(folder, 0o700)
    except OSError as exc:
        # A concurrent creation is fine; anything else (permissions, a file in the way) is not.
        if _stat_size(sftp, folder) is None:
            raise StagingError(
                "Cannot create the staging folder",
                f"{folder} could not be created on the node: {exc}",
                remediation="choose a staging folder the login user can write to",
            ) from exc
