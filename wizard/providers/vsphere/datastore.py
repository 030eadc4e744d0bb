# pyVmomi's stubs type every managed property as Optional and its data-object constructors as untyped; checking
# those two codes here would mean an assert or a cast on nearly every vCenter call, so only they are off.
# mypy: disable-error-code="union-attr,no-untyped-call"
"""Files on a vCenter datastore over HTTPS (``/folder``), authorised by the SOAP session's cookie.

Uploads stream from disk in chunks (memory stays flat whatever the file's size), report bytes, throughput and ETA,
and check the cancel token between chunks. Whether a file is already there is decided by a small sidecar next to it,
``<name>.palette-wizard.json``: before any byte is sent it is overwritten with ``{"state": "incomplete"}``, and only
after the server holds the whole file (its size confirmed by ``HEAD``) does it become
``{"state": "complete", "sha256": …, "size": …}``. A cancelled or broken upload therefore never looks complete, and a
rerun skips the upload only when the complete record names the same sha256 and size as the local file and the
datastore file still has that size. ``/folder`` has no ranged writes, so an interrupted upload starts over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pyVmomi import vim

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.http import DEFAULT_RETRY, RetryTransport
from wizard.core.progress import Reporter
from wizard.providers.vsphere.errors import VsphereError, os_cause, translate_transport
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
    """``/folder`` transfers for one datacenter, with the session's cookie and TLS context."""

    def __init__(self, session: VsphereSession, dc: vim.Datacenter | None = None, *, timeout: float = 60.0) -> None:
        self.session = session
        self.dc = dc or session.datacenter()
        self.dc_path = inventory_path(self.dc, session.content.rootFolder)
        name, value = session.cookie
        verify: Any = session.ssl_context if session.ssl_context is not None else False
        if session.target.scheme == "https" and session.ssl_context is None:
            raise VsphereError("TLS context missing", "an HTTPS transfer needs the session's verified TLS context")
        # Reads (GET, HEAD) and the sidecar's PUT of a whole small file are retried by the one policy; a streamed
        # upload cannot be replayed, so a failed one is the caller's to resume (it checks the sidecar first).
        transport = RetryTransport(httpx.HTTPTransport(verify=verify), DEFAULT_RETRY, label="vCenter datastore")
        self.http = httpx.Client(
            base_url=session.target.base_url,
            transport=transport,
            cookies={name: value},
            timeout=httpx.Timeout(timeout, read=max(timeout, 600.0)),
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> DatastoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------------------
    def _url(self, f: DatastoreFile) -> tuple[str, dict[str, str]]:
        return "/folder/" + quote(f.path, safe="/"), {"dcPath": self.dc_path, "dsName": f.datastore}

    def _request(self, method: str, f: DatastoreFile, **kw: Any) -> httpx.Response:
        url, params = self._url(f)
        try:
            return self.http.request(method, url, params=params, **kw)
        except httpx.TransportError as exc:
            raise self._transport(exc) from exc

    def _transport(self, exc: httpx.TransportError) -> WizardError:
        t = self.session.target
        if isinstance(exc, httpx.TimeoutException):
            return VsphereError(
                "Datastore transfer timed out",
                f"{t.host}:{t.port} stopped answering during a datastore transfer",
                remediation="check the network path to vCenter and its load, then retry",
            )
        return translate_transport(os_cause(exc), t.host, t.port, self.session.trust)

    def _check(self, response: httpx.Response, f: DatastoreFile, doing: str) -> None:
        if response.is_success:
            return
        code = response.status_code
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
            f"vCenter answered {code} {response.reason_phrase} while {doing} {f}",
            details=response.text[:500],
            remediation="check the datastore has free space and is accessible, then retry",
        )

    # -- operations ----------------------------------------------------------------------------------------
    def size(self, f: DatastoreFile) -> int | None:
        """The file's size on the datastore, or None when it is not there."""
        r = self._request("HEAD", f)
        if r.status_code == 404:
            return None
        self._check(r, f, "looking up")
        length = r.headers.get("content-length")
        return int(length) if length is not None and length.isdigit() else None

    def read_small(self, f: DatastoreFile) -> bytes | None:
        """A small file's bytes (the sidecar), or None when it is not there."""
        r = self._request("GET", f)
        if r.status_code == 404:
            return None
        self._check(r, f, "reading")
        return r.content

    def read_range(self, f: DatastoreFile, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` (inclusive) of a file (a server that ignores Range sends it all: cut here)."""
        r = self._request("GET", f, headers={"Range": f"bytes={start}-{end}"})
        self._check(r, f, "reading")
        return r.content if r.status_code == 206 else r.content[start : end + 1]

    def write_small(self, f: DatastoreFile, data: bytes) -> None:
        r = self._request("PUT", f, content=data, headers={"Content-Type": "application/octet-stream"})
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
        """Streams ``local`` to ``f``; returns the bytes sent. Reports byte progress; cancel stops between chunks."""
        st = local.stat()
        total = st.st_size
        label = label or f"Uploading {local.name} to {f}"
        report.transfer(0, total, label)
        body = _FileBody(
            local,
            size=total,
            mtime_ns=st.st_mtime_ns,
            chunk=chunk,
            cancel=cancel,
            on_progress=lambda done: report.transfer(done, total, label),
        )
        started = time.monotonic()
        r = self._request(
            "PUT",
            f,
            content=body.stream(),
            headers={"Content-Length": str(total), "Content-Type": "application/octet-stream"},
        )
        self._check(r, f, "uploading")
        elapsed = max(time.monotonic() - started, 1e-6)
        log.info("uploaded %s to %s: %d bytes in %.1f s (%.0f MB/s)", local, f, total, elapsed, total / elapsed / 1e6)
        return body.sent


class _FileBody:
    """The request body: the file in chunks, with progress and cancel, refusing a file that changes underway."""

    def __init__(
        self,
        path: Path,
        *,
        size: int,
        mtime_ns: int,
        chunk: int,
        cancel: CancelToken,
        on_progress: Callable[[int], None],
    ) -> None:
        self.path = path
        self.size = size
        self.mtime_ns = mtime_ns
        self.chunk = chunk
        self.cancel = cancel
        self.on_progress = on_progress
        self.sent = 0

    def stream(self) -> Iterator[bytes]:
        with self.path.open("rb", buffering=0) as fh:
            while self.sent < self.size:
                self.cancel.raise_if_cancelled()
                block = fh.read(min(self.chunk, self.size - self.sent))
                if not block:
                    break
                yield block
                self.sent += len(block)
                self.on_progress(self.sent)
            st = os.fstat(fh.fileno())
        if self.sent != self.size or st.st_size != self.size or st.st_mtime_ns != self.mtime_ns:
            # The Content-Length is on the wire already; a file that changed would be stored damaged.
            raise VsphereError(
                "File changed while uploading",
                f"{self.path} changed during the upload ({self.size} bytes expected, {st.st_size} now)",
                remediation="wait until the file is complete and unchanged, verify it again, then retry",
            )


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
