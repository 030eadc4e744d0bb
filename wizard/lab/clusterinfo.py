"""What the newer Local UI API says about a running cluster beyond its details, and what it changes: its certificates
(``cluster/certificates``) and its machine pools (``clusters/current/machinepools``), where a linked host joins a
running cluster (it installs the cluster's image and is Running a share of the creation's timeline later)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wizard.lab.cluster import ClusterDeployment, ClusterHost, _require
from wizard.lab.node import LocalUIError, NodeState, iso8601

if TYPE_CHECKING:
    from wizard.lab.links import LinkRegistry


def certificate_details(node: NodeState) -> dict[str, Any]:
    """v1CertificateDetails: the cluster's CAs and the certificates they signed, by name and dates (kubeadm's set, a
    year from the cluster's creation); no key material, as the API gives none."""
    d = _require(node)
    issued, expires = iso8601(d.created_at), iso8601(d.created_at + 365 * 86400)
    children = {
        "kubernetes": ["apiserver", "apiserver-kubelet-client"],
        "etcd-ca": ["etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client"],
        "front-proxy-ca": ["front-proxy-client"],
    }
    certificates = [
        {
            "name": ca,
            "issueDate": issued,
            "expirationDate": iso8601(d.created_at + 10 * 365 * 86400),
            "childCerts": [
                {"name": child, "nodeName": host.name, "issueDate": issued, "expirationDate": expires}
                for child in names
                for host in d.hosts
                if host.control_plane
            ],
        }
        for ca, names in children.items()
    ]
    return {"certificates": certificates, "needsRenewal": False, "earliestAutoRenewalTime": expires}


def machine_pools(node: NodeState) -> dict[str, Any]:
    """``{items: [v1EdgeNativeMachinePoolConfig]}``: each pool of the cluster with its hosts, as accepted."""
    d = _require(node)
    spec = (d.config.get("spec") or {}).get("cloudConfig", {}).get("spec") or {}
    requested = {str(p.get("name")): p for p in spec.get("machinePoolConfig") or [] if isinstance(p, dict)}
    items = []
    for pool in d.pools:
        name = str(pool["name"])
        base = dict(requested.get(name) or {})
        hosts = [{"hostUid": h.uid, "hostAddress": h.address, "hostName": h.name} for h in d.hosts if h.pool == name]
        items.append(
            {
                **base,
                "name": name,
                "isControlPlane": bool(pool["isControlPlane"]),
                "machinePoolProperties": {"archType": pool["archType"]},
                "hosts": hosts,
                "size": len(hosts),
            }
        )
    return {"items": items}


def update_pool(node: NodeState, registry: LinkRegistry, pool_name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``PUT clusters/current/machinepools/{poolName}``: the pool's hosts as they should be; a host that is new to it
    joins the running cluster (linked to a member, with the content synced)."""
    d = _require(node)
    pool = next((p for p in d.pools if p["name"] == pool_name), None)
    if pool is None:
        raise LocalUIError(404, "NotFound", f"the cluster has no machine pool {pool_name!r}")
    _join(node, registry, d, pool_name, control=bool(pool["isControlPlane"]), hosts=body.get("hosts") or [])
    return {"message": f"machine pool {pool_name} updated"}


def create_pool(node: NodeState, registry: LinkRegistry, body: dict[str, Any]) -> dict[str, Any]:
    """``POST clusters/current/machinepools``: a worker pool (the control plane is the pool the cluster was made
    with)."""
    d = _require(node)
    name = str(body.get("name") or "")
    if not name:
        raise LocalUIError(400, "BadRequest", "the machine pool needs a name")
    if any(p["name"] == name for p in d.pools):
        raise LocalUIError(400, "PoolExists", f"machine pool {name!r} exists already: update it")
    if body.get("isControlPlane"):
        raise LocalUIError(400, "BadRequest", "the cluster's control plane is its existing control-plane pool")
    arch = (body.get("machinePoolProperties") or {}).get("archType") or "amd64"
    spec = d.config.setdefault("spec", {}).setdefault("cloudConfig", {}).setdefault("spec", {})
    hosts = body.get("hosts") or []
    _join(node, registry, d, name, control=False, hosts=hosts, new_pool={"name": name, "archType": arch})
    spec.setdefault("machinePoolConfig", []).append({**body, "hosts": []})
    return {"message": f"machine pool {name} created"}


def _join(
    node: NodeState,
    registry: LinkRegistry,
    d: ClusterDeployment,
    pool: str,
    *,
    control: bool,
    hosts: list[dict[str, Any]],
    new_pool: dict[str, Any] | None = None,
) -> None:
    wanted = [str(h.get("hostUid") or "") for h in hosts]
    current = [h.uid for h in d.hosts if h.pool == pool]
    if any(uid not in wanted for uid in current):
        raise LocalUIError(400, "BadRequest", "a host leaves a pool through DELETE …/machinepools/{pool}/nodes/{node}")
    members = {m.uid for m in d.members}
    joining: list[ClusterHost] = []
    now = node.clock()
    for entry, uid in zip(hosts, wanted, strict=True):
        if uid in current:
            continue
        host = registry.node(uid)
        if host is None or host.link.leader_uid not in members:
            raise LocalUIError(400, "HostNotLinked", f"host {uid or '(no hostUid)'!r} is not linked to the cluster")
        if host.has_cluster:
            raise LocalUIError(400, "HostInCluster", f"host {uid} is part of a cluster already")
        if str(entry.get("hostAddress") or "") != host.ip:
            raise LocalUIError(400, "HostAddressMismatch", f"host {uid} is at {host.ip}")
        issuer = registry.node(host.link.leader_uid or "")
        synced = node.variant("localui.peer-words")[2]
        if issuer is None or registry.content_sync_status(issuer, host) != synced:
            raise LocalUIError(400, "ContentNotSynced", f"the content is not synced to host {host.hostname} yet")
        joining.append(ClusterHost(uid, host.ip, host.hostname, control, pool, joined_at=now))
    control_count = sum(h.control_plane for h in d.hosts) + (len(joining) if control else 0)
    if control and control_count % 2 == 0:
        raise LocalUIError(
            400, "ControlPlaneCount", f"the control plane needs an odd number of hosts (1, 3, 5 …), got {control_count}"
        )
    if new_pool is not None:
        d.pools.append({"name": new_pool["name"], "isControlPlane": False, "archType": new_pool["archType"]})
    for joined in joining:
        member = registry.node(joined.uid)
        assert member is not None
        with member.lock:
            member.cluster = d
            member.has_cluster = True
            member.node_role = "controlplane" if control else "worker"
        d.members.append(member)
        d.hosts.append(joined)
    spec = (d.config.get("spec") or {}).get("cloudConfig", {}).get("spec") or {}
    for config in spec.get("machinePoolConfig") or []:
        if config.get("name") == pool:
            config["hosts"] = [dict(h) for h in hosts]
