"""The Local UI's view of the cluster's pack registry: pack bundles uploaded to a node's Local UI (reference §1.7,
"Content → Upload Content") are imported into the Zot registry the cluster at the node's VIP serves (the lab finds
it through :func:`wizard.lab.console.serving`, the way a node reaches the registry at ``<vip>:30003``), and the
Local UI lists the registry's content and its imports (``cluster/registry/content/details``,
``cluster/registry/content/sync-status/details``).

An import takes the console's ``import_seconds`` (lab clock) and can be made to fail (``import_fault``); until it
is done the registry does not list the pack, and the sync status lists it ``pending``. Words and whether finished
items stay listed follow the node's variant (``localui.registry-items``).
"""

from __future__ import annotations

import re
from typing import Any

from wizard.lab import cluster as lab_cluster
from wizard.lab.console import SystemConsoleState, iso8601, serving
from wizard.lab.node import LocalUIError, NodeState, UploadedContent

PACKS_DEPLOYED_AT = next(s.at for s in lab_cluster.STAGES if s.type == "PacksDeployed")
_PACK_VERSION = re.compile(r"(?P<name>.+?)[-_]v?(?P<version>\d[\w.+-]*)")


def pack_identity(file_name: str) -> tuple[str, str] | None:
    """(name, version) of a pack bundle file, or None for anything else.

    Artifact Studio names pack bundles ``<name>.zst`` (reference §1.3) while the content bundle is a ``.tar.zst``;
    how the Local UI reads a pack's name and version is not published, so the lab takes them from the file name
    (``ubuntu-22.04.zst`` → ``ubuntu``, ``22.04``).
    """
    if not file_name.endswith(".zst") or file_name.endswith(".tar.zst"):
        return None
    stem = file_name.removesuffix(".zst")
    m = _PACK_VERSION.fullmatch(stem)
    return (m["name"], m["version"]) if m else (stem, "")


def _cluster_console(node: NodeState) -> SystemConsoleState | None:
    deployment = node.cluster
    if deployment is None or not deployment.running(node.clock()):
        return None
    return serving(deployment.vip)


def import_upload(node: NodeState, content: UploadedContent) -> bool:
    """After an upload to ``node``'s Local UI: a pack bundle goes into the running cluster's registry. True when
    imported; a content bundle, or any upload before the cluster runs, stays the node's content only."""
    identity = pack_identity(content.file_name)
    console = _cluster_console(node)
    if identity is None or console is None:
        return False
    console.start_import(identity[0], identity[1], content.size, content.sha256)
    return True


def registry_content_details(node: NodeState) -> dict[str, Any]:
    """v1HarborContentsDetails: the packs in the cluster's registry (none before the cluster runs)."""
    console = _cluster_console(node)
    packs = console.packs() if console is not None else []
    return {
        "status": [
            {
                "contentType": "pack",
                "name": p.name,
                "version": p.version,
                "size": str(p.size),
                "dateAdded": iso8601(p.added_at),
            }
            for p in packs
        ]
    }


def registry_sync_status_details(node: NodeState) -> dict[str, Any]:
    """v1HarborContentsSyncStatus: every import since the cluster runs, ``pending`` until done, then ``completed``
    or ``failed`` (in this variant's word; a variant that drops finished items lists pending ones only)."""
    console = _cluster_console(node)
    if console is None:
        return {"statusMessage": "registry not installed", "errors": {}, "pendingItems": []}
    done_word, keep_finished = node.variant("localui.registry-items")
    now = node.clock()
    items: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for job in console.imports():
        if job.done_at > now:
            status, message = "pending", "importing into the registry"
        elif job.failure:
            status, message = "failed", job.failure
            errors[f"{job.name}:{job.version}"] = job.failure
        else:
            status, message = done_word, "imported"
        if status != "pending" and not keep_finished:
            continue
        items.append(
            {
                "contentType": "pack",
                "name": job.name,
                "version": job.version,
                "size": str(job.size),
                "status": status,
                "msg": message,
                "source": "upload-content",
                "target": console.registry.endpoint,
                "creationTimestamp": iso8601(job.started_at),
                **({"lastSyncTimestamp": iso8601(job.done_at)} if job.done_at <= now else {}),
            }
        )
    return {"statusMessage": "", "errors": errors, "pendingItems": items}


def registry_health(node: NodeState) -> dict[str, Any]:
    """v1HarborHealthDetails."""
    console = _cluster_console(node)
    if console is None:
        return {"State": "NotInstalled", "Message": "the cluster registry runs once the cluster is up"}
    used = sum(p.size for p in console.packs())
    capacity = 100 * 1024**3  # the profile's default OCI Registry Storage Size (GiB)
    return {
        "State": "Healthy",
        "DiskCapacity": str(capacity),
        "DiskUsed": str(used),
        "DiskAvailable": str(capacity - used),
        "UsagePercentage": f"{100 * used / capacity:.2f}",
        "Message": "",
    }


def cluster_applications(node: NodeState) -> dict[str, Any]:
    """v1ClusterCurrentApplications: the profile's packs, Running once the cluster reports them deployed."""
    deployment = node.cluster
    if deployment is None:
        raise LocalUIError(404, "NotFound", "no cluster on this host")
    now = node.clock()
    deployed_at = deployment.at(PACKS_DEPLOYED_AT)
    running = now >= deployed_at
    packs: list[dict[str, Any]] = [
        {
            "name": name,
            "version": version,
            "layer": layer,
            "status": "Running" if running else "Deploying",
            "startTime": iso8601(deployment.created_at),
            **({"endTime": iso8601(deployed_at)} if running else {}),
            "conditions": [],
            "contents": [],
        }
        for (name, version), layer in zip(lab_cluster.PACKS, ("os", "k8s", "cni", "csi", "addon"), strict=False)
    ]
    return {"clusterProfileTemplates": [{"name": deployment.name, "type": "cluster", "packs": packs}]}
