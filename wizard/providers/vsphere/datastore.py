# pyVmomi's stubs type every managed property as Optional and its data-object constructors as untyped; checking
# those two codes here would mean an assert or a cast on nearly every vCenter call, so only they are off.
# mypy: disable-error-code="union-attr,no-untyped-call"
"""Files on a vCenter datastore over HTTPS (``/folder``), authorised by the SOAP session's cookie.

All requests of one client share one kept-alive connection (:mod:`wizard.providers.vsphere.folderhttp`). Uploads
stream from disk through one reusable buffer (memory stays flat whatever the file's size), report bytes, throughput
and ETA, and check the cancel token between buffers; a file that changes underway is refused before its last bytes
go out. Whether a file is already there is decided by a small sidecar next to it,
``<name>.palette-wizard.json``: before any byte is sent it is overwritten with ``{"state": "incomplete"}``, and only
after the server holds the whole file (its size confirmed by ``HEAD``) does it become
``{"state": "complete", "sha256": …, "size": …}``. A cancelled or broken upload therefore never looks complete, and a
rerun skips the upload only when the complete record names the same sha256 and size as the local file and the
datastore file still has that size. ``/folder`` has no ranged writes, so an interrupted upload starts over.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from pyVmomi import vim

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.http import DEFAULT_RETRY, RetryPolicy
from wizard.core.progress import Reporter
from wizard.providers.vsphere.errors import VsphereError, translate_transport
from wizard.providers.vsphere.folderhttp import FileChanged, FolderConnection, Reply, file_changed_check, is_timeout
from wizard.providers.vsphere.session import VsphereSession

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
SIDECAR_SUFFIX = ".palette-wizard.json"


@dataclass(frozen=True)
class DatastoreFile:
    datastore: str
    path: str  # inside the datastore, "/"-separated, no leading slash

    def __str__(self) -> str:
        return f"[{self.datastore}] {self.path}"

    @property
    def sidecar(self) -> DatastoreFile:
        return DatastoreFile(self.datastore, self.path + SIDECAR_SUFFIX)

    @property
    def folder(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""


def datastore_path(datastore: str, folder: str, name: str) -> DatastoreFile:
    parts = [p for p in folder.split("/") if p] + [name]
    return DatastoreFile(datastore, "/".join(parts))


def inventory_path(entity: vim.ManagedEntity, root: vim.ManagedEntity) -> str:
    """``Folder/DC0`` for a datacenter inside a folder: the form ``dcPath`` wants."""
    parts: list[str] = []
    current: Any = entity
    while current is not None and current != root:
        parts.append(str(current.name))
        current = current.parent
    return "/".join(reversed(parts))


class DatastoreClient:
    """``/folder`` transfers for one datacenter, with the session's cookie and TLS context, on one connection."""

    def __init__(
        self,
        session: VsphereSession,
        dc: vim.Datacenter | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        cancel: CancelToken | None = None,
    ) -> None:
        """``cancel``: the job's token, which ends a wait between retries at once."""
        self.session = session
        self.retry = retry
        self.cancel = cancel
        self.dc = dc or session.datacenter()
        self.dc_path = inventory_path(self.dc, session.content.rootFolder)
        t = session.target
        if t.scheme == "https" and session.ssl_context is None:
            raise VsphereError("TLS context missing", "an HTTPS transfer needs the session's verified TLS context")
        self.http = FolderConnection(
            t.scheme, t.host, t.port, cookie=session.cookie, ssl_context=session.ssl_context, timeout=timeout
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> DatastoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------------------
    def _url(self, f: DatastoreFile) -> str:
        query = urlencode({"dcPath": self.dc_path, "dsName": f.datastore}, quote_via=quote)
        return "/folder/" + quote(f.path, safe="/") + "?" + query

    def _request(
        self, method: str, f: DatastoreFile, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        """A small request: a read, or the whole of a small file written (idempotent both), so a transient fault
        (5xx, 429, a reset, a timeout) is ridden out by the one retry policy. A streamed upload is not sent here:
        it cannot be replayed, and its caller resumes it from the sidecar."""
        policy, failures = self.retry, 0
        while True:
            try:
                reply = self.http.request(method, self._url(f), body, headers)
            except (OSError, http.client.HTTPException) as exc:
                failures += 1
                if failures >= policy.attempts:
                    raise self._transport(exc) from exc
                log.warning("%s %s failed (%s); trying again (%d of %d)", method, f, exc, failures, policy.attempts - 1)
                policy.sleep(policy.delay(failures), self.cancel)
                continue
            if reply.status not in policy.statuses and reply.status not in policy.throttled:
                return reply
            failures += 1
            wait = policy.wait_after(reply.headers, failures) if failures < policy.attempts else None
            if wait is None:
                return reply  # the caller says what the last answer was
            log.warning("%s %s answered %d; trying again (%d of %d)", method, f, reply.status, failures,
                        policy.attempts - 1)  # fmt: skip
            policy.sleep(wait, self.cancel)

    def _transport(self, exc: BaseException) -> WizardError:
        t = self.session.target
        if is_timeout(exc):
            return VsphereError(
                "Datastore transfer timed out",
                f"{t.host}:{t.port} stopped answering during a datastore transfer",
                remediation="check the network path to vCenter and its load, then retry",
            )
        if isinstance(exc, http.client.HTTPException) and not isinstance(exc, OSError):
            return VsphereError(
                "Datastore transfer broken",
                f"{t.host}:{t.port} broke off a datastore transfer ({type(exc).__name__}: {exc})",
                remediation="check the network path to vCenter and its load, then retry",
            )
        return translate_transport(exc, t.host, t.port, self.session.trust)

    def _check(self, reply: Reply, f: DatastoreFile, doing: str) -> None:
        if reply.ok:
            return
        code = reply.status
        if code in (401, 403):
            raise VsphereError(
                "Datastore access refused",
                f"vCenter answered {code} while {doing} {f}",
                remediation=(
                    "the user needs Datastore.FileManagement and Datastore.Browse on the datastore; "
                    "check the role on it"
                ),
            )
        if code == 404:
            raise VsphereError(
                "Datastore not found",
                f"vCenter answered 404 while {doing} {f} (datacenter {self.dc_path!r})",
                remediation="check provider.vsphere.datastore and provider.vsphere.datacenter",
            )
        raise VsphereError(
            "Datastore transfer failed",
            f"vCenter answered {code} {reply.reason} while {doing} {f}",
            details=reply.text[:500],
            remediation="check the datastore has free space and is accessible, then retry",
        )

    # -- operations ----------------------------------------------------------------------------------------
    def size(self, f: DatastoreFile) -> int | None:
        """The file's size on the datastore, or None when it is not there."""
        r = self._request("HEAD", f)
        if r.status == 404:
            return None
        self._check(r, f, "looking up")
        length = r.headers.get("content-length")
        return int(length) if length is not None and length.isdigit() else None

    def read_small(self, f: DatastoreFile) -> bytes | None:
        """A small file's bytes (the sidecar), or None when it is not there."""
        r = self._request("GET", f)
        if r.status == 404:
            return None
        self._check(r, f, "reading")
        return r.body

    def read_range(self, f: DatastoreFile, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (inclusive) of a file (a server that ignores Range sends it all: cut here)."""
        r = self._request("GET", f, headers={"Range": f"bytes={start}-{end}"})
        self._check(r, f, "reading")
        return r.body if r.status == 206 else r.body[start : end + 1]

    def write_small(self, f: DatastoreFile, data: bytes) -> None:
        r = self._request("PUT", f, data, {"Content-Type": "application/octet-stream"})
        self._check(r, f, "writing")

    def make_folder(self, folder: str) -> None:
        """Creates ``[datastore] folder`` (and parents); an existing folder is fine."""
        if not folder:
            return
        fm = self.session.content.fileManager
        name = f"[{self.session.settings.datastore}] {folder}"
        with contextlib.suppress(vim.fault.FileAlreadyExists):
            fm.MakeDirectory(name=name, datacenter=self.dc, createParentDirectories=True)

    def upload(
        self,
        local: Path,
        f: DatastoreFile,
        report: Reporter,
        cancel: CancelToken,
        *,
        chunk: int = CHUNK,
        label: str = "",
    ) -> int:
        """Streams ``local`` to ``f``; returns the bytes sent. Reports byte progress about every ``chunk`` bytes;
        cancel stops between buffers; a file whose size or mtime changes underway is refused."""
        label = label or f"Uploading {local.name} to {f}"
        with local.open("rb", buffering=0) as fh:
            st = os.fstat(fh.fileno())
            total = st.st_size
            report.transfer(0, total, label)
            started = time.monotonic()
            try:
                reply, sent = self.http.put_file(
                    self._url(f),
                    fh,
                    total,
                    changed=file_changed_check(fh.fileno(), total, st.st_mtime_ns),
                    cancel=cancel,
                    on_progress=lambda done: report.transfer(done, total, label),
                    every=chunk,
                )
            except FileChanged as exc:
                # The server never got a whole body of it (checked before the last bytes went out), or the
                # file changed after: either way the sidecar stays "incomplete".
                raise VsphereError(
                    "File changed while uploading",
                    f"{local} changed during the upload ({total} bytes expected, {exc.now} now)",
                    remediation="wait until the file is complete and unchanged, verify it again, then retry",
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise self._transport(exc) from exc
        self._check(reply, f, "uploading")
        elapsed = max(time.monotonic() - started, 1e-6)
        log.info("uploaded %s to %s: %d bytes in %.1f s (%.0f MB/s)", local, f, total, elapsed, total / elapsed / 1e6)
        return sent


@dataclass(frozen=True)
class UploadRecord:
    state: str
    sha256: str = ""
    size: int = -1

    @classmethod
    def parse(cls, data: bytes | None) -> UploadRecord | None:
        if data is None:
            return None
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            raw = json.loads(data.decode("utf-8"))
            return cls(str(raw.get("state", "")), str(raw.get("sha256", "")).lower(), int(raw.get("size", -1)))
        return UploadRecord("unreadable")

    def to_bytes(self) -> bytes:
        return json.dumps({"state": self.state, "sha256": self.sha256, "size": self.size}).encode()


def already_uploaded(client: DatastoreClient, f: DatastoreFile, sha256: str, size: int) -> bool:
    """True only when the sidecar says complete with this sha256 and size and the file has that size."""
    record = UploadRecord.parse(client.read_small(f.sidecar))
    if record is None or record.state != "complete":
        return False
    if record.sha256 != sha256.lower() or record.size != size:
        return False
    return client.size(f) == size


def upload_file(
    client: DatastoreClient,
    local: Path,
    f: DatastoreFile,
    *,
    sha256: str,
    report: Reporter,
    cancel: CancelToken,
    chunk: int = CHUNK,
) -> bool:
    """Uploads ``local`` to ``f`` unless it is there already; returns True when bytes were sent."""
    size = local.stat().st_size
    if already_uploaded(client, f, sha256, size):
        report.transfer(size, size, f"{local.name} is already on {f} (sha256 and size match); nothing sent")
        return False
    client.make_folder(f.folder)
    # Claim "incomplete" before the first byte, so an interruption can never leave an older "complete" record
    # next to a partly overwritten file.
    client.write_small(f.sidecar, UploadRecord("incomplete").to_bytes())
    client.upload(local, f, report, cancel, chunk=chunk)
    stored = client.size(f)
    if stored != size:
        raise VsphereError(
            "Upload incomplete",
            f"the datastore holds {stored if stored is not None else 'no'} bytes of {f}, expected {size}",
            remediation="retry the upload; if it fails again, check free space on the datastore",
        )
    client.write_small(f.sidecar, UploadRecord("complete", sha256.lower(), size).to_bytes())
    report.transfer(size, size, f"{local.name} uploaded to {f}")
    return True
