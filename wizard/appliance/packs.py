"""Pack bundles: verify each ``.zst`` against its ``.sig.bin``, upload them one after another to the leader's Local
UI, and confirm each one by its own import into the cluster's pack registry; the registry sync itself is
:class:`wizard.appliance.console.RegistrySyncJob`.

Where packs go (reference §1.7): with the in-cluster Zot registry, the documented path is the leader's Local UI,
"Content → Actions → Upload Content" with the ``.zst`` files, then "Sync" of the OCI Pack Registry in the system
console. That upload is the same ``upload-content`` request as the content bundle, so this module reuses
:class:`wizard.appliance.bundles.UploadContentJob` for signature verification, streaming with byte progress and the
server-side sha256 check.

Confirmation is by the upload's own import, never by a same-named pack being listed: the content bundle brings packs
of its own, possibly of the same name. The Local UI's ``cluster/registry/content/sync-status/details`` lists the
registry's imports (``pendingItems[].status`` ``pending/completed/failed``, spelled as the node likes): an item for
this pack that completed (created after the upload, when it says when) confirms it, one that failed stops the job
with the node's message. A node that drops finished items from that list confirms instead by its content list
(``cluster/registry/content/details``) holding the pack with a ``dateAdded`` not before this upload.

The reference is silent on how the Local UI names a pack it imported; :func:`pack_identity` is the one place that
maps a bundle file to a registry entry (Artifact Studio names them ``<name>.zst``; a trailing ``-<version>`` is
split off). The other documented path, ``palette content push`` to ``<vip>:30003/spectro-content``, would replace
only :class:`UploadPackJob`'s transfer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizard.appliance.bundles import TRANSFER_SFTP, SftpTransfer, UploadContentJob
from wizard.appliance.localui import Clock, Connector, Endpoint, LocalUIClient
from wizard.appliance.statuswords import REGISTRY_ITEM, Outcome
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.progress import Reporter

log = logging.getLogger(__name__)

P_REGISTRY_CONTENT = "/v1/edge-mgmt/cluster/registry/content/details"
P_REGISTRY_SYNC = "/v1/edge-mgmt/cluster/registry/content/sync-status/details"
_VERSIONED = re.compile(r"(?P<name>.+?)[-_]v?(?P<version>\d[\w.+-]*)")


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    version: str
    content_type: str
    size: str = ""
    added_at: str = ""  # dateAdded as the registry wrote it


@dataclass(frozen=True)
class SyncItem:
    """One ``pendingItems`` entry of the registry's sync status."""

    name: str
    version: str
    content_type: str
    status: str  # as the node wrote it
    message: str
    created_at: str = ""


def pack_identity(path: Path) -> tuple[str, str]:
    """(name, version) a pack bundle is expected to show in the registry; version "" when the file name has none."""
    stem = path.name.removesuffix(".zst")
    m = _VERSIONED.fullmatch(stem)
    return (m["name"], m["version"]) if m else (stem, "")


def _names_pack(name: str, version: str, content_type: str, path: Path) -> bool:
    if content_type not in ("", "pack"):
        return False
    stem = path.name.removesuffix(".zst")
    wanted, wanted_version = pack_identity(path)
    return (
        (name, version) == (wanted, wanted_version)
        or name in (stem, path.name)
        or (not wanted_version and name == wanted)
        or (not version and name == wanted)
    )


def find_pack(entries: list[RegistryEntry], path: Path) -> RegistryEntry | None:
    """The registry entry of the pack bundle ``path``, if the registry lists it."""
    return next((e for e in entries if _names_pack(e.name, e.version, e.content_type, path)), None)


def parse_time(text: str) -> float | None:
    """An RFC 3339 timestamp as epoch seconds; None when absent or unreadable."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def registry_content(client: LocalUIClient) -> list[RegistryEntry]:
    """The registry's content as the Local UI's "Content" page lists it."""
    data = client.get_json(P_REGISTRY_CONTENT) or {}
    items = data.get("status")
    return [
        RegistryEntry(
            str(i.get("name") or ""),
            str(i.get("version") or ""),
            str(i.get("contentType") or ""),
            str(i.get("size") or ""),
            str(i.get("dateAdded") or ""),
        )
        for i in items or []
        if isinstance(i, dict)
    ]


def registry_sync_items(client: LocalUIClient) -> list[SyncItem]:
    """The registry's imports (``pendingItems``) as the Local UI reports them."""
    data = client.get_json(P_REGISTRY_SYNC) or {}
    return [
        SyncItem(
            str(i.get("name") or ""),
            str(i.get("version") or ""),
            str(i.get("contentType") or ""),
            str(i.get("status") or ""),
            str(i.get("msg") or ""),
            str(i.get("creationTimestamp") or ""),
        )
        for i in data.get("pendingItems") or []
        if isinstance(i, dict)
    ]


class UploadPackJob(UploadContentJob):
    """One pack bundle: verify, upload to the leader (resent only once the node says it does not hold it), confirm
    the stored sha256, then confirm the pack's own import into the registry. The step runs these one at a time, in
    the project's order: a queue."""

    weight = 1.0

    def __init__(
        self,
        leader: Endpoint,
        bundle: Path,
        connector: Connector,
        *,
        signature: Path | None = None,
        public_key: Path | None = None,
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
            stored = client.uploaded_content()
            # Idempotent: the node's last upload is this very file (its import is confirmed below either way),
            # unless its import failed, when only a new upload can help.
            earlier: set[tuple[str, str, str]] = set()
            if stored is None or stored.sha256 != digest or self._import_failed(client, stored.uploaded_at):
                # What the registry lists now belongs to earlier uploads: only a newer item is this upload's.
                earlier = {(i.name, i.version, i.created_at) for i in registry_sync_items(client)}
                if self.transfer is None:
                    self._upload(client, upload, cancel, digest)
                else:  # staged over SFTP: resumes after drops by itself, then submitted from the node
                    staged = self._stage(digest, upload, cancel)
                self._confirm(client, digest)
                uploaded = True
            upload.finish()
            stored = client.uploaded_content()
            since = parse_time(stored.uploaded_at) if stored is not None else None
            name, version = self._wait_imported(client, since, earlier, report.child(0.9, 0.1), cancel)
        report.finish(f"{self.bundle.name} is in the pack registry as {name} {version}".rstrip())
        facts: dict[str, Any] = {
            "sha256": digest,
            "size": self.bundle.stat().st_size,
            "uploaded": uploaded,
            "registry_name": name,
            "registry_version": version,
        }
        if self.transfer is not None:
            facts["transfer"] = TRANSFER_SFTP
            facts.update(staged)
        return facts

    def _ours(
        self, client: LocalUIClient, since: float | None, earlier: set[tuple[str, str, str]] | None = None
    ) -> list[tuple[Outcome, SyncItem]]:
        """This upload's import items (by the pack's name, not older than the upload, not listed before it) and how
        each one stands."""
        return [
            (REGISTRY_ITEM.classify(i.status), i)
            for i in registry_sync_items(client)
            if _names_pack(i.name, i.version, i.content_type, self.bundle)
            and not _before(i.created_at, since)
            and (i.name, i.version, i.created_at) not in (earlier or set())
        ]

    def _import_failed(self, client: LocalUIClient, uploaded_at: str) -> bool:
        outcomes = [o for o, _ in self._ours(client, parse_time(uploaded_at))]
        return Outcome.FAILED in outcomes and Outcome.DONE not in outcomes

    def _wait_imported(
        self,
        client: LocalUIClient,
        since: float | None,
        earlier: set[tuple[str, str, str]],
        report: Reporter,
        cancel: CancelToken,
    ) -> tuple[str, str]:
        """Until the registry reports this upload's import done; (name, version) as the registry names the pack."""
        deadline = self.clock() + self.appear_timeout
        while True:
            outcomes = self._ours(client, since, earlier)
            ours = [i for _, i in outcomes]
            done = next((i for o, i in outcomes if o is Outcome.DONE), None)
            if done is not None:
                return done.name, done.version
            failed = next((i for o, i in outcomes if o is Outcome.FAILED), None)
            if failed is not None:
                raise WizardError(
                    "Pack import failed",
                    f"{self.leader.name} could not import {self.bundle.name} into its registry: "
                    f"{failed.message or failed.status}",
                    remediation="check the pack bundle (Artifact Studio) and the registry's health in the leader's "
                    "Local UI (Content), then run again: only this pack is uploaded again",
                )
            if not ours and since is not None:
                # Nothing pending for it: a node that drops finished imports lists the pack, added after the upload.
                entry = find_pack([e for e in registry_content(client) if not _before(e.added_at, since)], self.bundle)
                if entry is not None:
                    return entry.name, entry.version
            words = ", ".join(sorted({i.status or "no status" for i in ours})) or "not listed yet"
            if self.clock() >= deadline:
                name, version = pack_identity(self.bundle)
                raise WizardError(
                    "Pack not in the registry",
                    f"{self.leader.name} took {self.bundle.name} but its registry has not imported {name} "
                    f"{version}".rstrip()
                    + f" after {int(self.appear_timeout)} s (import: {words})",
                    remediation="check Content in the leader's Local UI and the registry's health, then run again",
                )
            report.update(0.0, f"Waiting for the registry to import {self.bundle.name} ({words})")
            cancel.sleep(self.poll_interval)


def _before(stamp: str, since: float | None) -> bool:
    """Whether ``stamp`` is known to be earlier than the upload (then it is about an earlier upload)."""
    when = parse_time(stamp)
    # Whole seconds: the node may round the upload's time down and the registry its own.
    return since is not None and when is not None and when < since - 1.0


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
