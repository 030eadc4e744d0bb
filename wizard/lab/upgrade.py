"""Archive updates on the lab's cluster: a content bundle of a newer release, uploaded to a member's Local UI, carries
an update archive the leader parses; applying it runs an update on a clock-driven timeline (the nodes reboot, the
consoles are down, the cluster reports an update state) until every node runs the new release.

How the lab tells a bundle's release: a lab content bundle is a tar archive (the lab has no zstd; only its name
follows Artifact Studio's ``.tar.zst``) whose ``palette-content.json`` member names ``version`` (and ``edition``);
:func:`wizard.lab.artifacts.content_bundle` makes one. A bundle without it (the install's random bundle) carries no
update archive. Where the parsed archive says its release, which call applies it and what the cluster reports
meanwhile are the variant's (``localui.update-version``, ``localui.archive-update``, ``localui.upgrade-words``):
the public material is silent on all three.

Applying follows what the docs say the update form does: the variables come again and the OCI Pack Registry
Password must be the install value; an update already being applied takes the same archive again (a resent request)
and refuses another.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from wizard.appliance.versions import Version
from wizard.lab import cluster as lab_cluster
from wizard.lab.console import serving
from wizard.lab.node import LocalUIError, NodeState, UploadedContent

MANIFEST = "palette-content.json"
UPDATE_DIR = "/usr/local/spectrocloud/cluster-config/update"
REGISTRY_PASSWORD = "ociPackRegistryPassword"  # noqa: S105 - the reference name of the variable
#: An archive update's timeline (fractions of the node's ``upgrade_timeline``): the nodes reboot in this window,
#: and an update the ``upgrade-error`` knob spoils ends in Error here.
UPGRADE_REBOOT_WINDOW = (0.30, 0.45)
UPGRADE_ERROR_AT = 0.60
UPGRADE_STAGES = (
    (0.00, "applying the update archive"),
    (0.10, "staging the new provider image"),
    (0.30, "rebooting the hosts into the new image"),
    (0.45, "upgrading Kubernetes and the management plane"),
    (0.80, "redeploying the profile packs"),
)


@dataclass(frozen=True)
class UpdateArchive:
    """The update archive an uploaded content bundle carried, as the leader parsed it (from ``parsed_at`` on)."""

    version: str
    path: str
    file_name: str
    parsed_at: float


@dataclass
class Upgrade:
    """An archive update the cluster applies, from ``started_at`` for ``timeline`` lab seconds."""

    target: str
    path: str
    started_at: float
    timeline: float
    error: str = ""  # the update ends in Error with this message (the ``upgrade-error`` knob)

    def progress(self, now: float) -> float:
        return 1.0 if self.timeline <= 0 else max(0.0, (now - self.started_at) / self.timeline)

    def failed(self, now: float) -> bool:
        return bool(self.error) and self.progress(now) >= UPGRADE_ERROR_AT

    def rebooting(self, now: float) -> bool:
        start, end = UPGRADE_REBOOT_WINDOW
        return not self.failed(now) and start <= self.progress(now) < end

    def reboot_pending(self, now: float) -> bool:
        return self.progress(now) < UPGRADE_REBOOT_WINDOW[0]

    def stage(self, now: float) -> str:
        progress = self.progress(now)
        return [text for at, text in UPGRADE_STAGES if at <= progress][-1]


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A lab content bundle's manifest, or None for any other file."""
    try:
        with tarfile.open(path, "r:") as archive:
            member = archive.getmember(MANIFEST)
            fh = archive.extractfile(member)
            data = json.loads(fh.read(64 * 1024)) if fh is not None else None
    except (tarfile.TarError, KeyError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def offer(node: NodeState, content: UploadedContent) -> bool:
    """After an upload to a cluster member: a bundle naming a release carries an update archive, which the leader
    parses ``content_sync_delay`` later. True when it did."""
    deployment = node.cluster
    if deployment is None:
        return False
    manifest = read_manifest(content.path)
    version = Version.parse((manifest or {}).get("version"))
    if version is None:
        return False
    stem = PurePosixPath(content.file_name).name.removesuffix(".zst").removesuffix(".tar")
    deployment.update = UpdateArchive(
        str(version), f"{UPDATE_DIR}/{stem}.tgz", content.file_name, node.clock() + node.content_sync_delay
    )
    return True


def settle(node: NodeState) -> None:
    """Apply what the clock says: an update that has run its timeline makes every member the new release, and the
    console at the VIP reports it."""
    deployment = node.cluster
    upgrade = deployment.upgrade if deployment is not None else None
    if deployment is None or upgrade is None or upgrade.error or upgrade.progress(node.clock()) < 1.0:
        return
    version = Version.parse(upgrade.target)
    assert version is not None
    for member in deployment.members or [node]:
        with member.lock:
            member.profile = replace(member.profile, version=version)
    console = serving(deployment.vip)
    if console is not None:
        console.version = str(version)
    deployment.applied, deployment.upgrade, deployment.update = upgrade.path, None, None


def update_details(node: NodeState) -> dict[str, Any]:
    """v1ClusterConfigArchiveDetails of the parsed update archive; 404 before there is one."""
    deployment = lab_cluster._require(node)
    update = deployment.update
    if update is None or node.clock() < update.parsed_at:
        raise LocalUIError(404, "NotFound", "no cluster configuration update archive was uploaded")
    details = lab_cluster.archive_details(node)
    details["archiveUploadPath"] = update.path
    profile = details["clusterProfileDetails"][0]
    where = node.variant("localui.update-version")
    if where == "profile-version":
        profile["profileVersion"] = update.version
    elif where == "pack":
        for pack in profile["packs"]:
            if pack["name"] == "spectro-mgmt-plane":
                pack["version"] = update.version
    return details


def reject(node: NodeState) -> dict[str, Any]:
    deployment = lab_cluster._require(node)
    if deployment.upgrade is not None:
        raise LocalUIError(500, "UpdateInProgress", "the update archive is being applied and cannot be rejected")
    deployment.update = None
    return {"message": "update archive rejected"}


def _start(node: NodeState, deployment: lab_cluster.ClusterDeployment, path: str) -> dict[str, Any]:
    """Start applying the archive at ``path``; the same archive again is taken as it is (a resent request)."""
    now = node.clock()
    current = deployment.upgrade
    if (current is not None and current.path == path) or deployment.applied == path:
        return {"message": "the update is being applied"}
    if current is not None:
        raise LocalUIError(409, "UpdateInProgress", f"an update to {current.target} is already being applied")
    update = deployment.update
    if update is None or update.path != path or now < update.parsed_at:
        raise LocalUIError(400, "UnknownArchive", f"archiveUploadPath {path!r} is not an update archive of this host")
    deployment.upgrade = Upgrade(update.version, path, now, node.upgrade_timeline, error=node.upgrade_error)
    return {"message": f"update to {update.version} accepted; it takes about 20–30 minutes"}


def apply_configuration(node: NodeState, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``PUT /cluster/{clusterName}``: a configuration whose archive is the update archive applies it, with its
    variables checked (the registry password must be the install value); the current archive is a no-op."""
    deployment = lab_cluster._require(node)
    if name != deployment.name:
        raise LocalUIError(404, "NotFound", f"no cluster named {name!r} (this host is part of {deployment.name!r})")
    spec = body.get("spec") or {}
    path = str(spec.get("archiveUploadPath") or "")
    if path in ("", lab_cluster.EMBEDDED_ARCHIVE_PATH):
        return {"message": "cluster configuration unchanged"}
    if node.variant("localui.archive-update") != "cluster":
        raise LocalUIError(
            400, "UseProfilesUpdate", "an update archive is applied through PUT /v1/edge-mgmt/cluster/profiles"
        )
    if deployment.upgrade is None and deployment.applied != path:
        values = lab_cluster._checked_variables(node, spec.get("profileVariables") or [])
        if values.get(REGISTRY_PASSWORD) != deployment.variables.get(REGISTRY_PASSWORD):
            raise LocalUIError(
                400,
                "RegistryPasswordMismatch",
                "OCI Pack Registry Password does not match the password the registry was installed with",
            )
    else:
        values = deployment.variables
    answer = _start(node, deployment, path)
    deployment.variables = values
    return answer


def apply_profiles(node: NodeState, body: dict[str, Any]) -> dict[str, Any]:
    """``PUT /cluster/profiles``: the archive path alone; the variables keep their values."""
    deployment = lab_cluster._require(node)
    if node.variant("localui.archive-update") != "profiles":
        raise LocalUIError(
            400,
            "VariablesRequired",
            "this update needs its profile variables reviewed: update the cluster with PUT "
            "/v1/edge-mgmt/cluster/{clusterName}",
        )
    path = str((body.get("spec") or {}).get("archiveUploadPath") or "")
    return _start(node, deployment, path)
