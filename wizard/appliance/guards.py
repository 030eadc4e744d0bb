"""Guards from the release notes, as catalog checks: what the wizard must not do, or must do differently, on a given
appliance release (reference §10.2).

- ``appliance.upload-auth`` (blocker): before 4.9.14 the appliance took content uploads without authentication
  (Security Advisory 016, PE-8523); the wizard uploads nothing to such a release.
- ``appliance.localui-sync`` (warning): before 4.9.46 content uploaded through the Local UI did not sync to linked
  hosts (PE-9263); the wizard then confirms every host's registry sync status itself after its uploads.
- ``appliance.content`` (blocker when nothing can provide it): releases before 4.9.36 ship a full ISO with the
  content inside, later ones a slim ISO plus a content bundle; the content step is skipped where the nodes already
  hold the content and needs the bundle where they do not.
- ``appliance.version`` (warning): the version could not be read, or the nodes disagree.

The judging (:func:`evaluate`) is a pure function of the identity and of what the project would upload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wizard.appliance.versions import (
    ADVISORY_016,
    LOCALUI_SYNC_FROM,
    PE_9263,
    SLIM_ISO_FROM,
    UPLOAD_AUTH_FROM,
    ApplianceIdentity,
)
from wizard.core.checks.catalog import Category, Check, CheckResult, CheckSeverity, failed, passed

VERSION = "appliance.version"
UPLOAD_AUTH = "appliance.upload-auth"
LOCALUI_SYNC = "appliance.localui-sync"
CONTENT = "appliance.content"

_B, _W = CheckSeverity.BLOCKER, CheckSeverity.WARNING
CHECKS = (
    Check(
        VERSION,
        Category.NODE,
        _W,
        "The appliance's version is known and the same on every node",
        "install every node from the same Appliance ISO; each node's agent version shows on its Palette TUI landing "
        "page and in its Local UI",
        "nodes",
    ),
    Check(
        UPLOAD_AUTH,
        Category.NODE,
        _B,
        "The appliance authenticates content uploads",
        f"install the appliance from a release of {UPLOAD_AUTH_FROM} or newer: before {UPLOAD_AUTH_FROM} content "
        f"upload was possible without authentication ({ADVISORY_016}), so the wizard uploads no content to it",
        "files",
    ),
    Check(
        LOCALUI_SYNC,
        Category.NODE,
        _W,
        "Content uploaded through the Local UI syncs to linked hosts",
        f"use a release of {LOCALUI_SYNC_FROM} or newer: before it, content uploaded through Local UI did not sync "
        f"to linked hosts ({PE_9263}); the wizard confirms each host's registry sync status after its uploads",
        "files",
    ),
    Check(
        CONTENT,
        Category.FILES,
        _B,
        "The nodes get their content (from a full ISO, or the content bundle)",
        f"give the content bundle (files.content_bundle) downloaded with the Appliance ISO: from {SLIM_ISO_FROM} the "
        "appliance ships a slim ISO and the content separately",
        "files",
    ),
)


@dataclass(frozen=True)
class UploadPlan:
    """What the project would upload through the Local UI."""

    content_bundle: bool
    pack_bundles: int
    nodes: int

    @property
    def uploads(self) -> bool:
        return self.content_bundle or self.pack_bundles > 0


def content_needs_upload(identity: ApplianceIdentity) -> bool:
    """Whether the content bundle must be uploaded: not when the nodes already hold the content (a full ISO)."""
    if identity.content_on_nodes is not None:
        return not identity.content_on_nodes
    return identity.full_iso is not True


def evaluate(
    identity: ApplianceIdentity, plan: UploadPlan, notes: tuple[str, ...] = (), target: str = "appliance"
) -> list[CheckResult]:
    """One result per check of :data:`CHECKS`, in that order. ``notes`` say what was odd reading the version."""
    details = {"appliance": identity.to_dict()}
    label = identity.label
    results = []
    if identity.version is None:
        why = "; ".join(notes) or "no node reported an agent version"
        results.append(failed(VERSION, f"{label}: {why}", target, details=details))
    elif notes:
        results.append(failed(VERSION, f"{label}: {'; '.join(notes)}", target, details=details))
    else:
        results.append(passed(VERSION, f"{label} on every node", target, details=details))

    # Uploads the run would make: the content bundle (unless the nodes already hold the content) and pack bundles.
    content_upload = plan.content_bundle and content_needs_upload(identity)
    uploads = (["the content bundle"] if content_upload else []) + (
        [f"{plan.pack_bundles} pack bundle{'s' if plan.pack_bundles != 1 else ''}"] if plan.pack_bundles else []
    )
    before_auth = identity.before(UPLOAD_AUTH_FROM)
    if before_auth and uploads:
        results.append(
            failed(
                UPLOAD_AUTH,
                f"{label} takes content uploads without authentication ({ADVISORY_016}); not uploading "
                + " or ".join(uploads),
                target,
            )
        )
    elif before_auth:
        results.append(passed(UPLOAD_AUTH, f"{label} predates {UPLOAD_AUTH_FROM}, but nothing is uploaded", target))
    elif before_auth is None:
        results.append(passed(UPLOAD_AUTH, "version unknown: uploads go with the session token as always", target))
    else:
        results.append(passed(UPLOAD_AUTH, f"{label} authenticates uploads", target))

    before_sync = identity.before(LOCALUI_SYNC_FROM)
    linked = plan.nodes > 1
    if before_sync is not False and linked and uploads:
        why = f"{label} predates {LOCALUI_SYNC_FROM}" if before_sync else "the version is unknown"
        results.append(
            failed(
                LOCALUI_SYNC,
                f"{why}: Local UI uploads may not sync to linked hosts ({PE_9263}); the wizard confirms every host "
                "itself",
                target,
            )
        )
    elif not linked:
        results.append(passed(LOCALUI_SYNC, "a single node: nothing to sync", target))
    else:
        results.append(passed(LOCALUI_SYNC, f"{label}: Local UI uploads sync to linked hosts", target))

    results.append(_content(identity, plan, label, target))
    return results


def _content(identity: ApplianceIdentity, plan: UploadPlan, label: str, target: str) -> CheckResult:
    iso = {True: "full ISO", False: "slim ISO", None: "ISO of unknown kind"}[identity.full_iso]
    facts = {"content_on_nodes": identity.content_on_nodes, "full_iso": identity.full_iso}
    if not content_needs_upload(identity):
        spare = "; files.content_bundle is not needed and is not uploaded" if plan.content_bundle else ""
        message = f"{label} ({iso}): the content came with the ISO, the content step is skipped{spare}"
        return passed(CONTENT, message, target, details=facts)
    if plan.content_bundle:
        return passed(CONTENT, f"{label} ({iso}): the content bundle is uploaded to the leader", target, details=facts)
    message = f"{label} ({iso}): the nodes hold no content and the project has no content bundle"
    return failed(CONTENT, message, target, details=facts)


def identity_of(results: list[Mapping[str, object]]) -> ApplianceIdentity | None:
    """The identity a recorded ``appliance.version`` result carries (journal facts), or None."""
    for r in results:
        if r.get("check") == VERSION:
            details = r.get("details")
            if isinstance(details, Mapping):
                found = details.get("appliance")
                if isinstance(found, Mapping):
                    return ApplianceIdentity.from_dict(found)
    return None
