"""Pack bundles: verify each ``.zst`` against its ``.sig.bin``, upload them one after another to the leader's Local
UI, and confirm each one reached the cluster's pack registry; the registry sync itself is
:class:`wizard.appliance.console.RegistrySyncJob`.

Where packs go (reference §1.7): with the in-cluster Zot registry, the documented path is the leader's Local UI,
"Content → Actions → Upload Content" with the ``.zst`` files, then "Sync" of the OCI Pack Registry in the system
console; the Local UI's "Content" page (``/v1/edge-mgmt/cluster/registry/content/details``) lists what the
registry holds. That upload is the same ``upload-content`` request as the content bundle, so this module reuses
:class:`wizard.appliance.bundles.UploadContentJob` for signature verification, streaming with byte progress and the
server-side sha256 check.

The reference is silent on how the Local UI names a pack it imported; :func:`pack_identity` is the one place that
maps a bundle file to a registry entry (Artifact Studio names them ``<name>.zst``; a trailing ``-<version>`` is
split off). The other documented path, ``palette content push`` to ``<vip>:30003/spectro-content``, would replace
only :class:`UploadPackJob`'s transfer.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizard.appliance.bundles import TRANSFER_SFTP, SftpTransfer, UploadContentJob
from wizard.appliance.localui import (
    Clock,
    Connector,
    Endpoint,
    LocalUIClient,
    LocalUIError,
    LocalUIServerError,
    LocalUIUnreachable,
)
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.progress import Reporter

log = logging.getLogger(__name__)

P_REGISTRY_CONTENT = "/v1/edge-mgmt/cluster/registry/content/details"
_VERSIONED = re.compile(r"(?P<name>.+?)[-_]v?(?P<version>\d[\w.+-]*)")


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    version: str
    content_type: str
    size: str = ""


def pack_identity(path: Path) -> tuple[str, str]:
    """(name, version) a pack bundle is expected to show in the registry; version "" when the file name has none."""
    stem = path.name.removesuffix(".zst")
    m = _VERSIONED.fullmatch(stem)
    return (m["name"], m["version"]) if m else (stem, "")


def find_pack(entries: list[RegistryEntry], path: Path) -> RegistryEntry | None:
    """The registry entry of the pack bundle ``path``, if the registry lists it."""
    stem = path.name.removesuffix(".zst")
    name, version = pack_identity(path)
    for e in entries:
        if e.content_type not in ("", "pack"):
            continue
        if (e.name, e.version) == (name, version) or e.name == stem or (not version and e.name == name):
            return e
    return None


def registry_content(client: LocalUIClient) -> list[RegistryEntry]:
    """The registry's content as the Local UI's "Content" page lists it."""
    r = client.request("GET", P_REGISTRY_CONTENT, retries=2)
    assert r is not None
    try:
        data = r.json()
    except ValueError as exc:
        raise LocalUIError("Unexpected Local UI answer", f"{client.where}: registry content is not JSON") from exc
    items = data.get("status") if isinstance(data, dict) else None
    return [
        RegistryEntry(
            str(i.get("name") or ""),
            str(i.get("version") or ""),
            str(i.get("contentType") or ""),
            str(i.get("size") or ""),
        )
        for i in items or []
        if isinstance(i, dict)
    ]


class UploadPackJob(UploadContentJob):
    """One pack bundle: verify, upload to the leader (retrying transient failures), confirm the stored sha256 and
    that the registry lists the pack. The step runs these one at a time, in the project's order: a queue."""

    weight = 1.0

    def __init__(
        self,
        leader: Endpoint,
        bundle: Path,
        connector: Connector,
        *,
        signature: Path | None = None,
        public_key: Path | None = None,
        attempts: int = 3,
        retry_backoff: float = 5.0,
        poll_interval: float = 5.0,
        appear_timeout: float = 600.0,
        clock: Clock = time.time,
        transfer: SftpTransfer | None = None,
    ) -> None:
        super().__init__(
            leader,
            bundle,
            connector,
            signature=signature,
            public_key=public_key,
            poll_interval=poll_interval,
            clock=clock,
            transfer=transfer,
        )
        self.id = f"packs/{bundle.name}"
        self.name = bundle.name
        self.attempts = max(1, attempts)
        self.retry_backoff = retry_backoff
        self.appear_timeout = appear_timeout
        try:  # the weight follows the size, so the step's bar moves with the bytes of the whole queue
            self.weight = max(0.1, bundle.stat().st_size / (64 * 1024 * 1024))
        except OSError:
            self.weight = 1.0

    def fingerprint(self) -> str:
        return "pack|" + super().fingerprint()

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        digest = self._verify(report.child(0.0, 0.1), cancel)
        upload = report.child(0.1, 0.8)
        uploaded = False
        staged: dict[str, Any] = {}
        with self.connector.open(self.leader, cancel) as client:
            listed = find_pack(registry_content(client), self.bundle)
            stored = client.uploaded_content()
            # Idempotent: the last upload is this very file and the registry already lists it.
            if listed is None or stored is None or stored.sha256 != digest:
                if self.transfer is None:
                    self._upload_with_retries(client, upload, cancel)
                else:  # staged over SFTP: resumes after drops by itself, then submitted from the node
                    staged = self._stage(digest, upload, cancel)
                self._confirm(client, digest)
                uploaded = True
            upload.finish()
            entry = self._wait_listed(client, report.child(0.9, 0.1), cancel)
        report.finish(f"{self.bundle.name} is in the pack registry as {entry.name} {entry.version}".rstrip())
        facts: dict[str, Any] = {
            "sha256": digest,
            "size": self.bundle.stat().st_size,
            "uploaded": uploaded,
            "registry_name": entry.name,
            "registry_version": entry.version,
        }
        if self.transfer is not None:
            facts["transfer"] = TRANSFER_SFTP
            facts.update(staged)
        return facts

    def _upload_with_retries(self, client: LocalUIClient, report: Reporter, cancel: CancelToken) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                self._upload(client, report, cancel)
                return
            except (LocalUIUnreachable, LocalUIServerError) as exc:
                if attempt == self.attempts:
                    raise WizardError(
                        "Pack upload failed",
                        f"{self.bundle.name} to {self.leader.name}: {exc.message} (after {attempt} attempts)",
                        remediation="run again: packs already uploaded are skipped and only this one is retried",
                    ) from exc
                delay = self.retry_backoff * 2 ** (attempt - 1)
                log.warning("upload of %s failed (%s); retrying in %.0f s", self.bundle.name, exc.message, delay)
                report.warn(f"attempt {attempt} failed: {exc.message}; retrying")
                cancel.sleep(delay)

    def _wait_listed(self, client: LocalUIClient, report: Reporter, cancel: CancelToken) -> RegistryEntry:
        deadline = self.clock() + self.appear_timeout
        while True:
            entry = find_pack(registry_content(client), self.bundle)
            if entry is not None:
                report.finish()
                return entry
            if self.clock() >= deadline:
                name, version = pack_identity(self.bundle)
                raise WizardError(
                    "Pack not in the registry",
                    f"{self.leader.name} took {self.bundle.name} but its registry does not list {name} "
                    f"{version}".rstrip()
                    + f" after {int(self.appear_timeout)} s",
                    remediation="check Content in the leader's Local UI and the registry's health, then run again",
                )
            report.update(0.0, f"Waiting for {self.bundle.name} to appear in the registry")
            cancel.sleep(self.poll_interval)


def packs_inputs(bundles: list[Path]) -> str:
    """Names the set of pack files, so the registry sync runs again when the set changes."""
    parts = []
    for path in bundles:
        try:
            st = path.stat()
            parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{path}:missing")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
