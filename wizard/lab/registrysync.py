"""The cluster registry's sync status per host, with PE-9263: before 4.9.46 content uploaded through one host's Local
UI did not sync to the other hosts.

Every pack a host's Local UI imports into the running cluster's registry is recorded on the cluster (shared by its
hosts). On a release with the defect (:attr:`~wizard.lab.versions.ApplianceProfile.uploads_sync` false) the other
hosts list it in ``pendingItems`` of ``/cluster/registry/content/sync-status/details`` — ``pending`` until
:data:`LATE_FACTOR` content-sync delays after the upload (so a rehearsal can finish), or for good with the profile's
``stuck_sync``. The host that took the upload, and every host of a fixed release, has nothing pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wizard.lab import registry as lab_registry
from wizard.lab.node import NodeState, iso8601

LATE_FACTOR = 3.0


@dataclass(frozen=True)
class LocalUpload:
    origin: str  # uid of the host whose Local UI took it
    name: str
    version: str
    size: int
    at: float


def record(node: NodeState, name: str, version: str, size: int) -> None:
    """``node``'s Local UI imported this pack into the cluster registry."""
    deployment = node.cluster
    if deployment is not None:
        deployment.local_uploads.append(LocalUpload(node.uid, name, version, size, node.clock()))


def sync_status(node: NodeState) -> dict[str, Any]:
    """``v1HarborContentsSyncStatus`` as ``node`` sees it."""
    answer = lab_registry.registry_sync_status_details(node)
    deployment = node.cluster
    if deployment is None or node.profile.uploads_sync:
        return answer
    now = node.clock()
    late = LATE_FACTOR * node.content_sync_delay
    pending = [
        {
            "contentType": "pack",
            "name": u.name,
            "version": u.version,
            "size": str(u.size),
            "source": u.origin,
            "target": node.uid,
            "status": "pending",
            "msg": "waiting for the content to reach this host",
            "creationTimestamp": iso8601(node.wall_time(u.at)),
        }
        for u in list(deployment.local_uploads)
        if u.origin != node.uid and (node.profile.stuck_sync or now < u.at + late)
    ]
    if pending:
        answer = {**answer, "pendingItems": [*answer.get("pendingItems", []), *pending]}
        answer["statusMessage"] = f"Syncing content: ({len(pending)}) items are pending"
    return answer
