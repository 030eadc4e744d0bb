"""Uploading the content bundle to the leader's Local UI and waiting until every linked host has it.

Order matters: the signature is checked here first (a tampered bundle never leaves this machine), then the file is
streamed as ``multipart/form-data`` — built here as a generator with a precomputed Content-Length, because bundles
are many gigabytes and neither httpx's ``files=`` nor the lab may hold them in memory, and the node wants a length
rather than chunked encoding. The node's own sha256 of what it stored must equal ours, then the leader syncs the
content to its followers.

With an :class:`SftpTransfer` the bytes take the other road: staged onto the leader over SFTP (resumable, sha256
checked there) and submitted from the leader itself (:mod:`wizard.appliance.staging`); confirming and syncing are
the same for both.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.appliance.localui import Clock, Connector, Endpoint, LocalUIClient
from wizard.appliance.sftpupload import SSHTarget, Tuning
from wizard.appliance.staging import StageAndSubmit, StagingPlan
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.integrity import hash_file, load_public_key, verify_signature
from wizard.core.jobs import Job
from wizard.core.progress import Reporter

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class _Part:
    field: str
    path: Path
    size: int
    head: bytes


class MultipartBody:
    """A ``multipart/form-data`` body of file parts, streamed from disk.

    ``len(body)`` is exact before anything is read, so the request carries a Content-Length. Iterating reads each
    file in :data:`CHUNK` pieces, checks ``cancel`` before every piece and reports the bytes of the *first* part
    (the bundle) through ``on_progress``.
    """

    def __init__(self, files: Mapping[str, Path], *, boundary: str | None = None) -> None:
        self.boundary = boundary or "----palette-wizard-" + secrets.token_hex(16)
        self._parts: list[_Part] = []
        for name, path in files.items():
            head = (
                f"--{self.boundary}\r\n"
                f'Content-Disposition: form-data; name="{name}"; filename="{_quote(path.name)}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            self._parts.append(_Part(name, path, path.stat().st_size, head))
        self._tail = f"--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return sum(len(p.head) + p.size + 2 for p in self._parts) + len(self._tail)

    def stream(self, cancel: CancelToken, on_progress: Callable[[int, int], None] | None = None) -> Iterator[bytes]:
        for index, part in enumerate(self._parts):
            yield part.head
            done = 0
            with part.path.open("rb") as fh:
                while True:
                    cancel.raise_if_cancelled()
                    block = fh.read(CHUNK)
                    if not block:
                        break
                    done += len(block)
                    if done > part.size:
                        break
                    yield block
                    if index == 0 and on_progress is not None:
                        on_progress(done, part.size)
            if done != part.size:
                # The Content-Length is already on the wire; a changed file would corrupt the request.
                raise WizardError(
                    "File changed while uploading",
                    f"{part.path} was {part.size} bytes when the upload began and is now {done}+",
                    remediation="wait until the file is complete and unchanged, then retry",
                )
            yield b"\r\n"
        yield self._tail


def _quote(name: str) -> str:
    # Quoted-string per RFC 7578; control characters and quotes would break the header.
    return "".join("_" if ch in '"\\' or ord(ch) < 32 else ch for ch in name)


TRANSFER_DIRECT = "direct"
TRANSFER_SFTP = "sftp"
TRANSFER_MODES = (TRANSFER_DIRECT, TRANSFER_SFTP)


@dataclass(frozen=True)
class SftpTransfer:
    """Stage over SFTP to the leader (``target``) and submit from there, instead of a direct HTTPS upload."""

    target: SSHTarget
    plan: StagingPlan = field(default_factory=StagingPlan)
    tuning: Tuning = field(default_factory=Tuning)


class UploadContentJob(Job):
    """Verify, upload, confirm and sync one content bundle through the leader's Local UI."""

    id = "content/upload"
    name = "Content bundle"
    weight = 5.0

    def __init__(
        self,
        leader: Endpoint,
        bundle: Path,
        connector: Connector,
        *,
        signature: Path | None = None,
        public_key: Path | None = None,
        poll_interval: float = 10.0,
        sync_timeout: float = 60 * 60.0,
        clock: Clock = time.time,
        transfer: SftpTransfer | None = None,
    ) -> None:
        self.leader = leader
        self.transfer = transfer
        self.bundle = bundle
        self.signature = signature
        self.public_key = public_key
        self.connector = connector
        self.poll_interval = poll_interval
        self.sync_timeout = sync_timeout
        self.clock = clock
        self.node = leader.name

    def fingerprint(self) -> str:
        st = self.bundle.stat() if self.bundle.exists() else None
        parts = [self.leader.where, str(self.bundle), str(st.st_size if st else -1), str(st.st_mtime_ns if st else -1)]
        if self.transfer is not None:  # the direct mode keeps its fingerprint, so existing journals stay valid
            parts.append(TRANSFER_SFTP)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        digest = self._verify(report.child(0.0, 0.15), cancel)
        staged: dict[str, Any] = {}
        with self.connector.open(self.leader, cancel) as client:
            existing = client.uploaded_content()
            if existing is not None and existing.sha256 == digest:
                report.update(0.8, f"{self.bundle.name} is already on {self.leader.name}")
                uploaded = False
            else:
                if self.transfer is None:
                    self._upload(client, report.child(0.15, 0.65), cancel, digest)
                else:
                    staged = self._stage(digest, report.child(0.15, 0.65), cancel)
                uploaded = True
            self._confirm(client, digest)
            peers = self._wait_synced(client, report.child(0.8, 0.2), cancel)
        report.finish(f"{self.bundle.name} uploaded and synced to {peers} host(s)")
        facts: dict[str, Any] = {
            "sha256": digest,
            "size": self.bundle.stat().st_size,
            "uploaded": uploaded,
            "synced_hosts": peers,
        }
        if self.transfer is not None:
            facts["transfer"] = TRANSFER_SFTP
            facts.update(staged)
        return facts

    def _stage(self, digest: str, report: Reporter, cancel: CancelToken) -> dict[str, Any]:
        assert self.transfer is not None
        t = self.transfer
        staging = StageAndSubmit(
            t.target,
            self.leader,
            self.bundle,
            digest,
            trust=self.connector.trust,
            confirm=self.connector.confirm,
            signature=self.signature,
            plan=t.plan,
            tuning=t.tuning,
        )
        log.info("staging %s on %s over SSH", self.bundle.name, t.target.where)
        staging.run(report, cancel)
        last = staging.last
        return {
            "staging_drops": last.drops if last else 0,
            "staging_resumed_from": list(last.resumed_from) if last else [],
            "staging_client": last.client if last else "",  # what carried the bytes: openssh or paramiko
        }

    def _verify(self, report: Reporter, cancel: CancelToken) -> str:
        if self.public_key is not None and self.signature is None:
            raise WizardError(
                "Signature missing",
                f"a public key was given but no signature for {self.bundle.name}",
                remediation="download the bundle's .sig.bin from Artifact Studio and name it in the project",
            )
        key = load_public_key(self.public_key) if self.public_key is not None else None
        report.update(0.0, f"Checking {self.bundle.name}…")
        digest = hash_file(self.bundle, report, cancel)
        if key is not None and self.signature is not None:
            try:
                sig = self.signature.read_bytes()
            except OSError as exc:
                raise WizardError("Signature unreadable", f"{self.signature}: {exc.strerror or exc}") from exc
            verify_signature(key, digest.digest, sig, what=self.bundle.name)
        report.finish(f"{self.bundle.name}: sha256 {digest.sha256[:12]}…" + (" signature OK" if key else ""))
        return digest.sha256

    def _upload(self, client: LocalUIClient, report: Reporter, cancel: CancelToken, digest: str) -> None:
        """Stream the bundle to the node. After an unknown outcome (a 5xx, the connection lost) the node's last
        upload says whether it holds the file; only if not is it sent again."""
        files = {"uploadFile": self.bundle}
        if self.signature is not None:
            files["signature"] = self.signature
        name = self.bundle.name

        def progress(done: int, total: int) -> None:
            report.transfer(done, total, f"Uploading {name} to {self.leader.name}")

        def send() -> bool:
            body = MultipartBody(files)
            # A fresh session first: a 401 halfway through a multi-gigabyte body could not be replayed.
            client.ensure_session()
            client.host_info()
            report.transfer(0, self.bundle.stat().st_size, f"Uploading {name} to {self.leader.name}")
            log.info("uploading %s (%d bytes) to %s", name, len(body), self.leader.where)
            client.upload_content(body.stream(cancel, progress), content_type=body.content_type, length=len(body))
            return True

        def stored() -> bool | None:
            last = client.uploaded_content()
            return True if last is not None and last.sha256 == digest else None

        client.settle(send, stored, f"upload {name}")

    def _confirm(self, client: LocalUIClient, digest: str) -> None:
        stored = client.uploaded_content()
        if stored is None or stored.sha256 != digest:
            got = stored.sha256 if stored is not None else "nothing"
            raise WizardError(
                "Upload damaged",
                f"{self.leader.name} stored {got} but {self.bundle.name} has sha256 {digest}",
                remediation="retry the upload; if it fails again, check the network path to the node",
            )

    def _wait_synced(self, client: LocalUIClient, report: Reporter, cancel: CancelToken) -> int:
        deadline = self.clock() + self.sync_timeout
        while True:
            status = client.link_status()
            if status is None:
                return 1  # a single node: the leader holds the content itself
            pending = [p.name or p.ip for p in status.peers if not p.synced]
            total = len(status.peers)
            words = ", ".join(sorted({p.content_sync or "no status" for p in status.peers if not p.synced}))
            report.update(
                (total - len(pending)) / total,
                f"Content synced to {total - len(pending)}/{total} hosts" + (f" (others: {words})" if words else ""),
            )
            if not pending:
                return total
            if self.clock() >= deadline:
                raise WizardError(
                    "Content not synced",
                    f"after {int(self.sync_timeout)} s still syncing to: {', '.join(pending)}",
                    remediation="check the followers are Ready and Healthy in the leader's Local UI, then retry",
                )
            cancel.sleep(self.poll_interval)
