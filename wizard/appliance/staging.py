"""SFTP staging: copy a bundle onto a node over SSH, resumably, then have the node submit it to its own Local UI.

For slow or flaky links a single multi-gigabyte HTTPS request is fragile: a drop loses everything sent. Staging
writes the bundle into ``<remote>.part`` on the node; after a drop it reconnects with backoff and carries on from
the size the node already holds, rolled back a little (see :class:`ResumableUpload`; the bytes go through the jump
host's OpenSSH client where it can log in, :mod:`wizard.appliance.sshstream`). The node's own ``sha256sum`` must
then equal ours before the file is handed to the Local UI — by ``curl`` running on the node against
``https://127.0.0.1:<port>``, so the bundle never crosses the network twice.

The transfer itself is :mod:`wizard.appliance.sftpupload`'s.

The Local UI token for the on-node submit: a dedicated session is logged in for it and logged out right after, so
the token lives only for the submit. It reaches the node inside the SSH connection as a header file (mode 0600,
removed afterwards) that ``curl -H @file`` reads — never on a command line, where any local user could read it
from ``ps``. The node's TLS key is pinned for that ``curl`` (``--pinnedpubkey``) from the certificate the wizard
itself pinned, so certificate checking is replaced by an exact key match rather than switched off.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import posixpath
import re
import shlex
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import paramiko
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from paramiko.sftp import (
    CMD_HANDLE,
    CMD_OPEN,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_EXCL,
    SFTP_FLAG_WRITE,
)

from wizard.appliance.localui import P_LOGIN, P_UPLOAD, Endpoint
from wizard.appliance.sftpupload import (
    ResumableUpload,
    SSHTarget,
    StagedFileDamaged,
    StagingError,
    StagingSSH,
    Tuning,
    UploadResult,
)
from wizard.appliance.ssh import (
    SSHClient,
    SSHDisconnected,
    SSHError,
    SSHUnreachable,
)
from wizard.core.cancel import CancelToken
from wizard.core.http import DEFAULT_RETRY, RetryTransport
from wizard.core.progress import Reporter
from wizard.core.redact import REDACTOR
from wizard.core.trust import Confirm, TrustKind, TrustStore, trusted_tls_context

log = logging.getLogger(__name__)

DEFAULT_REMOTE_DIR = "palette-wizard-staging"  # relative: in the login user's home, which persists on the node

P_LOGOUT = "/v1/users/default/logout"

_SHA256 = re.compile(r"^\\?([0-9a-fA-F]{64})\s")

# -- On the node -------------------------------------------------------------------------------------------------


def remote_sha256(client: SSHClient, path: str, *, timeout: float) -> str:
    """``sha256sum`` of ``path`` computed on the node."""
    r = client.run(f"sha256sum -- {shlex.quote(path)}", timeout=timeout)
    m = _SHA256.match(r.stdout)
    if not r.ok or m is None:
        raise StagingError(
            "Cannot check the staged file",
            f"sha256sum of {path} on {client.host} failed (exit {r.code})",
            details=(r.stderr or r.stdout)[-2000:],
            remediation="check that the file exists on the node and that coreutils' sha256sum is available",
        )
    return m.group(1).lower()


def hash_timeout(size: int) -> float:
    """Generous time for ``sha256sum`` on a node: a slow disk still reads 50 MB/s."""
    return 60.0 + size / 50e6


def spki_pin(pem: str) -> str:
    """curl's ``--pinnedpubkey`` value for a certificate: ``sha256//`` + base64 of its public key's SHA-256."""
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


@dataclass(frozen=True)
class SubmitCommand:
    """The ``curl`` the node runs to post a staged file to its own Local UI."""

    url: str
    pin: str
    header_file: str
    upload_file: str
    signature_file: str | None = None
    max_time: int = 0

    def render(self) -> str:
        argv = [
            "curl",
            "--silent",
            "--show-error",
            "--insecure",  # the certificate is self-signed; --pinnedpubkey below is the (stricter) check
            "--pinnedpubkey",
            self.pin,
            "--header",
            "@" + self.header_file,
            "--form",
            "uploadFile=@" + self.upload_file,
        ]
        if self.signature_file is not None:
            argv += ["--form", "signature=@" + self.signature_file]
        if self.max_time > 0:
            argv += ["--max-time", str(self.max_time)]
        argv += ["--write-out", "\\n%{http_code}\\n", self.url]
        return " ".join(shlex.quote(a) for a in argv)


@dataclass(frozen=True)
class SubmitResult:
    status: int
    body: str


def parse_curl_output(stdout: str) -> SubmitResult:
    """curl printed the body, then ``\\n<status>\\n`` (``--write-out``)."""
    text = stdout.rstrip("\n")
    body, _, code = text.rpartition("\n")
    return SubmitResult(int(code) if code.strip().isdigit() else 0, body)


class LocalUISession:
    """A Local UI session of its own, only for the on-node submit; logged out (so its token dies) on exit.

    httpx with the node's pinned certificate, like :class:`~wizard.appliance.localui.LocalUIClient`.
    """

    def __init__(self, endpoint: Endpoint, trust: TrustStore, confirm: Confirm | None, timeout: float = 30.0):
        self.endpoint = endpoint
        self.trust = trust
        self.confirm = confirm
        self.timeout = timeout
        self.token = ""
        self.pem = ""
        self._http: httpx.Client | None = None

    def __enter__(self) -> LocalUISession:
        ep = self.endpoint
        ctx: ssl.SSLContext = trusted_tls_context(
            self.trust, self.confirm, ep.host, ep.port, expected=ep.fingerprint, timeout=self.timeout
        )
        entry = self.trust.pinned(TrustKind.TLS, ep.host, ep.port) or {}
        self.pem = str(entry.get("pem") or "")
        if not self.pem:
            raise StagingError("Node certificate unknown", f"no pinned certificate for {ep.where}")
        # The one retry policy: a login only makes a session, so it is resent after a lost answer.
        transport = RetryTransport(httpx.HTTPTransport(verify=ctx), DEFAULT_RETRY, label=f"Local UI {ep.where}")
        self._http = httpx.Client(base_url=f"https://{ep.host}:{ep.port}", transport=transport, timeout=self.timeout)
        try:
            r = self._http.post(
                P_LOGIN,
                params={"setCookie": "false", "extendedSession": "false"},
                json={"username": ep.username, "password": ep.password},
                extensions={"idempotent": True},
            )
        except httpx.TransportError as exc:
            self._http.close()
            raise StagingError("Local UI unreachable", f"{ep.where}: {exc}") from exc
        token = ""
        if r.status_code == 200:
            with contextlib.suppress(ValueError, AttributeError):
                token = str(r.json().get("Token", {}).get("Authorization") or "")
        if not token:
            self._http.close()
            raise StagingError(
                "Local UI login failed",
                f"{ep.where} answered {r.status_code} to the login for the on-node submit",
                remediation="check the node's account and password",
            )
        REDACTOR.add(token)  # should it surface in an error's details or a log line, it is masked there
        self.token = token
        return self

    def __exit__(self, *exc: object) -> None:
        http, self._http = self._http, None
        if http is None:
            return
        with contextlib.suppress(httpx.HTTPError):
            http.post(P_LOGOUT, headers={"Authorization": self.token})
        http.close()
        self.token = ""


# -- The whole staging path ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagingPlan:
    """Where staging puts things and how the node reaches its own Local UI."""

    remote_dir: str = DEFAULT_REMOTE_DIR
    node_localui_port: int = 0  # 0: the endpoint's port (a NAT'd jump host sees another port than the node)
    keep_staged: bool = False  # remove the staged copy after a confirmed submit (it is a second copy on disk)
    submit_timeout: float = 3600.0  # the node stores a multi-gigabyte body at disk speed


class StageAndSubmit:
    """Stage ``bundle`` (and its signature) on the node, prove its sha256 there, submit it from the node.

    ``run`` returns the node's upload path. The caller confirms the Local UI's ``uploaded-content`` sha256 and
    waits for sync, as for a direct upload.
    """

    def __init__(
        self,
        target: SSHTarget,
        endpoint: Endpoint,
        bundle: Path,
        sha256: str,
        *,
        trust: TrustStore,
        confirm: Confirm | None = None,
        signature: Path | None = None,
        plan: StagingPlan | None = None,
        tuning: Tuning | None = None,
    ) -> None:
        self.target = target
        self.endpoint = endpoint
        self.trust = trust
        self.confirm = confirm
        self.bundle = bundle
        self.sha256 = sha256.lower()
        self.signature = signature
        self.plan = plan or StagingPlan()
        self.tuning = tuning or Tuning()
        self.last: UploadResult | None = None

    def remote_path(self, local: Path) -> str:
        return posixpath.join(self.plan.remote_dir, local.name)

    def run(self, report: Reporter, cancel: CancelToken) -> str:
        # Not connected up front: the upload connects itself, retrying a node that is briefly unreachable.
        ssh = self.target.client()
        try:
            remote = self.stage(report.child(0.0, 0.85), cancel, ssh)
            report.update(0.85, f"Submitting {self.bundle.name} on {self.endpoint.name}")
            ssh.connect_retrying(cancel, within=self.tuning.reconnect_within)
            path = self.submit(ssh, remote, cancel)
            if not self.plan.keep_staged:
                self._cleanup(ssh, remote)
        finally:
            ssh.close()
        report.finish(f"{self.bundle.name} submitted on {self.endpoint.name}")
        return path

    def stage(self, report: Reporter, cancel: CancelToken, ssh: StagingSSH) -> str:
        remote = self.remote_path(self.bundle)
        sig_span = 0.02 if self.signature is not None else 0.0
        upload = ResumableUpload(self.target, self.bundle, remote, tuning=self.tuning, label=self.bundle.name)
        self.last = upload.run(report.child(0.0, 0.9 - sig_span), cancel, ssh)
        if self.signature is not None:
            sig = ResumableUpload(self.target, self.signature, self.remote_path(self.signature), tuning=self.tuning)
            sig.run(report.child(0.9 - sig_span, sig_span), cancel, ssh)
        cancel.raise_if_cancelled()
        report.update(0.9, f"Checking {self.bundle.name} on {self.target.host}")
        size = self.bundle.stat().st_size
        got = ""
        for attempt in range(3):  # a drop while the node hashes is worth a reconnect, not a failed job
            try:
                ssh.connect_retrying(cancel, within=self.tuning.reconnect_within)
                got = remote_sha256(ssh, remote, timeout=hash_timeout(size))
                break
            except (SSHUnreachable, SSHDisconnected):
                if attempt == 2:
                    raise
                cancel.sleep(self.tuning.backoff_initial)
        if got != self.sha256:
            # The staged copy is wrong whatever caused it: remove it so the next run sends it again.
            with contextlib.suppress(SSHError, OSError, paramiko.SSHException):
                sftp = ssh.open_sftp(self.tuning.io_timeout)
                try:
                    sftp.remove(remote)
                finally:
                    sftp.close()
            raise StagedFileDamaged(
                "Staged file damaged",
                f"{self.target.host} holds {got} for {remote} but {self.bundle.name} has sha256 {self.sha256}",
                remediation="run again: the damaged copy was removed and is sent again; if it repeats, check the "
                "node's disk and the network path",
            )
        report.finish(f"{self.bundle.name} staged on {self.target.host}, sha256 matches")
        return remote

    def submit(self, ssh: StagingSSH, remote: str, cancel: CancelToken) -> str:
        cancel.raise_if_cancelled()
        port = self.plan.node_localui_port or self.endpoint.port
        header = posixpath.join(self.plan.remote_dir, f".auth-{os.urandom(8).hex()}")
        with LocalUISession(self.endpoint, self.trust, self.confirm) as session:
            command = SubmitCommand(
                url=f"https://127.0.0.1:{port}{P_UPLOAD}",
                pin=spki_pin(session.pem),
                header_file=header,
                upload_file=remote,
                signature_file=self.remote_path(self.signature) if self.signature is not None else None,
                max_time=int(self.plan.submit_timeout),
            )
            sftp = ssh.open_sftp(self.tuning.io_timeout)
            try:
                self._write_secret(sftp, header, f"Authorization: {session.token}\n".encode())
                r = ssh.run(command.render(), timeout=self.plan.submit_timeout + 30)
            finally:
                with contextlib.suppress(OSError, paramiko.SSHException):
                    sftp.remove(header)
                sftp.close()
        if not r.ok:
            raise StagingError(
                "On-node submit failed",
                f"curl on {self.target.host} could not post {remote} to its Local UI (exit {r.code})",
                details=r.stderr[-2000:],
                remediation="check that the Local UI runs on the node (port "
                f"{port}) and that its certificate did not change",
            )
        result = parse_curl_output(r.stdout)
        if result.status != 201:
            raise StagingError(
                "Node refused the bundle",
                f"the Local UI on {self.endpoint.name} answered {result.status} to the on-node upload",
                details=result.body[-2000:],
                remediation="401: the session ended, run again; 4xx: check the bundle; 5xx: check the node's logs",
            )
        path = ""
        with contextlib.suppress(ValueError):
            data: Any = json.loads(result.body)
            path = str(data.get("uploadPath") or "") if isinstance(data, dict) else ""
        return path

    @staticmethod
    def _write_secret(sftp: paramiko.SFTPClient, path: str, data: bytes) -> None:
        # Created 0600 and exclusively in one request (``sftp.open`` cannot pass a mode): a chmod after creating
        # would leave a moment in which other local users could read the token.
        attrs = paramiko.SFTPAttributes()
        attrs.st_mode = 0o600
        flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_EXCL
        wire: Any = sftp
        t, msg = wire._request(CMD_OPEN, path, flags, attrs)
        if t != CMD_HANDLE or msg is None:
            raise StagingError("Cannot write on the node", f"creating {path} on the node failed")
        with paramiko.SFTPFile(sftp, msg.get_binary(), "wb") as fh:
            fh.write(data)

    def _cleanup(self, ssh: StagingSSH, remote: str) -> None:
        paths = [remote] + ([self.remote_path(self.signature)] if self.signature is not None else [])
        with contextlib.suppress(SSHError, OSError, paramiko.SSHException):
            sftp = ssh.open_sftp(self.tuning.io_timeout)
            try:
                for p in paths:
                    with contextlib.suppress(OSError):
                        sftp.remove(p)
            finally:
                sftp.close()


__all__ = [
    "DEFAULT_REMOTE_DIR",
    "LocalUISession",
    "ResumableUpload",
    "SSHTarget",
    "StageAndSubmit",
    "StagedFileDamaged",
    "StagingError",
    "StagingPlan",
    "StagingSSH",
    "SubmitCommand",
    "Tuning",
    "UploadResult",
    "hash_timeout",
    "remote_sha256",
    "spki_pin",
]
