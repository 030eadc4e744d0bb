"""The Local UI calls of day 2 (the newer published API, reference §10.3): the update archive a new content bundle
carries, applying it to the cluster, the cluster's certificates and its machine pools.

Which call applies an update archive is not published (I). The spec has two that take one: ``PUT
/cluster/{clusterName}`` (``v1UpdateClusterConfig``: the whole configuration, profile variables included — what the
Local UI's "Update → Review Changes → Confirm" form re-enters) and ``PUT /cluster/profiles``
(``v1UpdateClusterProfiles``: just ``archiveUploadPath``). :func:`submit_update` sends the first and, when the
appliance refuses or lacks it, the second; what each attempt answered is kept for the error.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from wizard.appliance.localui import LocalUIClient, LocalUIError
from wizard.appliance.localui_answers import ArchiveDetails, parse_archive
from wizard.core.errors import WizardError

log = logging.getLogger(__name__)

P_UPDATE_DETAILS = "/v1/edge-mgmt/clusters/archive/update/details"
P_UPDATE = "/v1/edge-mgmt/clusters/archive/update"
P_PROFILES = "/v1/edge-mgmt/cluster/profiles"
P_CLUSTER_NAMED = "/v1/edge-mgmt/cluster/{name}"
P_CERTIFICATES = "/v1/edge-mgmt/cluster/certificates"
P_MACHINE_POOLS = "/v1/edge-mgmt/clusters/current/machinepools"
P_MACHINE_POOL = "/v1/edge-mgmt/clusters/current/machinepools/{pool}"

#: Statuses that say "not this way" rather than "this request is wrong": try the other call.
_NOT_THIS_WAY = (400, 404, 405, 409, 501)


@dataclass(frozen=True)
class UpdateArchive:
    """What ``clusters/archive/update/details`` describes: the parsed archive and the raw answer (for versions)."""

    details: ArchiveDetails
    raw: Mapping[str, Any]


def update_archive(client: LocalUIClient) -> UpdateArchive | None:
    """The update archive the last uploaded content bundle carried, once the node has parsed it; None before (404)."""
    data = client.get_json(P_UPDATE_DETAILS, missing_ok=True)
    if data is None or not data.get("archiveUploadPath"):
        return None
    return UpdateArchive(parse_archive(data), data)


def reject_update(client: LocalUIClient) -> None:
    """Delete (reject) the pending update archive."""
    client.request("DELETE", P_UPDATE, ok=(200, 202, 204), missing_ok=True)


def cluster_certificates(client: LocalUIClient) -> dict[str, Any] | None:
    """``v1CertificateDetails`` (names and dates; no key material), or None where the appliance has no such read."""
    return client.optional_json(P_CERTIFICATES, "the cluster's certificates")


def update_configuration(
    current: Mapping[str, Any], name: str, archive_path: str, answers: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    """The cluster's configuration as it is, with the update archive and the answers to its variables."""
    spec = copy.deepcopy(dict(current.get("spec") or {}))
    spec["archiveUploadPath"] = archive_path
    spec["profileVariables"] = [dict(a) for a in answers]
    metadata = dict(current.get("metadata") or {})
    # Only what names the cluster: identifiers and timestamps are the appliance's own.
    kept = {k: metadata[k] for k in ("labels", "tags") if isinstance(metadata.get(k), dict)}
    return {"metadata": {"name": name, **kept}, "spec": spec}


def submit_update(
    client: LocalUIClient,
    name: str,
    archive_path: str,
    configuration: Mapping[str, Any],
) -> str:
    """Apply the update archive to cluster ``name``; returns the call that took it (``cluster/{name}`` or
    ``cluster/profiles``). PUTs are idempotent: the retry policy may resend one whose answer was lost, and an
    appliance takes the same archive again while it applies it."""
    attempts: list[str] = []
    named = P_CLUSTER_NAMED.format(name=quote(name, safe=""))
    try:
        client.request("PUT", named, json=dict(configuration), ok=(200, 201, 202))
        return "cluster/{name}"
    except LocalUIError as exc:
        if exc.status not in _NOT_THIS_WAY:
            raise
        attempts.append(f"PUT {named}: {exc.status} {exc.message}")
        log.info("%s: %s; trying cluster/profiles", client.where, attempts[-1])
    body = {"metadata": {"name": name}, "spec": {"archiveUploadPath": archive_path}}
    try:
        client.request("PUT", P_PROFILES, json=body, ok=(200, 201, 202))
        return "cluster/profiles"
    except LocalUIError as exc:
        if exc.status not in _NOT_THIS_WAY:
            raise
        attempts.append(f"PUT {P_PROFILES}: {exc.status} {exc.message}")
    raise WizardError(
        "Update not accepted",
        f"{client.where} took the update archive through neither call",
        details="\n".join(attempts),
        remediation="read the appliance's answers above; apply the update in the Local UI (Cluster → Configuration → "
        "Update → Review Changes) if they name something the wizard cannot fix, then run again to follow it",
    )


def machine_pools(client: LocalUIClient) -> list[dict[str, Any]]:
    """The cluster's machine pools (``v1EdgeNativeMachinePoolConfig`` each, hosts included)."""
    data = client.get_json(P_MACHINE_POOLS) or {}
    return [p for p in data.get("items") or [] if isinstance(p, dict)]


def pool_hosts(pool: Mapping[str, Any]) -> list[str]:
    return [str(h.get("hostUid") or "") for h in pool.get("hosts") or [] if isinstance(h, Mapping)]


def set_pool_hosts(client: LocalUIClient, pool: Mapping[str, Any], hosts: Sequence[Mapping[str, str]]) -> None:
    """The pool as it is with ``hosts`` added (``PUT …/machinepools/{pool}``: idempotent, the whole pool)."""
    body = {k: v for k, v in pool.items() if k not in ("size",)}
    body["hosts"] = [*(dict(h) for h in pool.get("hosts") or []), *(dict(h) for h in hosts)]
    path = P_MACHINE_POOL.format(pool=quote(str(pool.get("name") or ""), safe=""))
    client.request("PUT", path, json=body, ok=(200, 201, 202))


def create_pool(client: LocalUIClient, name: str, hosts: Sequence[Mapping[str, str]], arch: str = "amd64") -> None:
    """A worker pool with ``hosts`` (``POST …/machinepools``). Not idempotent: after an unknown outcome the pools are
    read and the request is sent again only when the pool is not there."""
    body = {
        "name": name,
        "isControlPlane": False,
        "labels": ["worker"],
        "machinePoolProperties": {"archType": arch},
        "hosts": [dict(h) for h in hosts],
    }

    def send() -> bool:
        client.request("POST", P_MACHINE_POOLS, json=body, ok=(200, 201, 202))
        return True

    def made() -> bool | None:
        return True if any(p.get("name") == name for p in machine_pools(client)) else None

    client.settle(send, made, f"create machine pool {name}")
