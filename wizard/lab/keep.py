"""A kept lab: what a rehearsal run with ``--keep`` leaves for a later session on the same appliance (an upgrade, a
certificate change, a node added), and how that lab comes back.

The state (``rehearsal.json`` in the rehearsal's folder) records what a real appliance keeps on its disks and the
public material lets a client see: each node's identity and addresses, its accounts' authorised keys, its links and
last upload, the cluster (name, VIP, hosts, pools, its accepted configuration) and the console's identity and
activation. It never holds a secret: sensitive profile values are left out, and the accounts' passwords are not
recorded at all. A kept lab that comes back is re-keyed instead — the session that starts it generates fresh values
for every secret the project names and the lab takes them, as an appliance whose operator holds the passwords.
Certificates, host keys and the cluster's PKI are files in the folder already, so every pinned fingerprint holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wizard.core.errors import WizardError
from wizard.core.fsutil import atomic_write_text
from wizard.lab.cluster import ClusterDeployment, ClusterHost, variables_for
from wizard.lab.lab import Lab
from wizard.lab.node import LinkRole, LinkState, NodeState, UploadedContent

FORMAT = "palette-wizard-kept-lab"
VERSION = 1
STATE_FILE = "rehearsal.json"
REGISTRY_PASSWORD = "ociPackRegistryPassword"  # noqa: S105 - the lab's reference name of the variable


class KeptLabError(WizardError):
    """A state file this lab cannot start from."""


def _refused(path: Path, why: str) -> KeptLabError:
    return KeptLabError(
        "No kept rehearsal",
        f"{path}: {why}",
        remediation="run `palette-wizard run --rehearse --keep` first (a kept rehearsal of the manual provider)",
    )


def node_state(node: NodeState) -> dict[str, Any]:
    upload = node.uploaded
    link = node.link
    return {
        "name": node.name,
        "uid": node.uid,
        "hostname": node.hostname,
        "ip": node.ip,
        "port": node.port,
        "accounts": node.accounts(),
        "link": {
            "role": link.role.value,
            "leader": link.leader_uid or "",
            "followers": sorted(link.followers),
        },
        "upload": None
        if upload is None
        else {
            "file_name": upload.file_name,
            "sha256": upload.sha256,
            "size": upload.size,
            "path": str(upload.path),
            "signature": str(upload.signature_path or ""),
        },
    }


def cluster_state(deployment: ClusterDeployment, node: NodeState) -> dict[str, Any]:
    """The cluster as the appliance keeps it, with every sensitive value left out."""
    sensitive = {v.name for v in variables_for(node) if v.sensitive}
    config = json.loads(json.dumps(deployment.config))
    for item in (config.get("spec") or {}).get("profileVariables") or []:
        if item.get("name") in sensitive:
            item["value"] = ""
    canonical = {v.name: ref for v, ref in zip(variables_for(node), _reference(), strict=True)}
    secret = {canonical[name] for name in sensitive if name in canonical}
    return {
        "name": deployment.name,
        "uid": deployment.uid,
        "vip": deployment.vip,
        "leader": deployment.leader_uid,
        "hosts": [asdict(h) for h in deployment.hosts],
        "pools": deployment.pools,
        "config": config,
        "variables": {k: v for k, v in deployment.variables.items() if k not in secret},
        "applied": deployment.applied,
    }


def _reference() -> list[str]:
    from wizard.lab.cluster import VARIABLES

    return [v.name for v in VARIABLES]


def lab_state(lab: Lab) -> dict[str, Any]:
    """Nodes and cluster of ``lab`` (the first cluster any node is part of)."""
    deployment = next((n.state.cluster for n in lab.nodes if n.state.cluster is not None), None)
    return {
        "nodes": [{**node_state(n.state), "ssh_port": n.ssh.port, "installed": n.machine.installed} for n in lab.nodes],
        # The release the nodes play now (an archive update changes it), not the one the lab was made with.
        "appliance": {
            "version": str(lab.nodes[0].state.profile.version),
            "edition": lab.nodes[0].state.profile.edition.value,
        },
        "cluster": None if deployment is None else cluster_state(deployment, lab.nodes[0].state),
    }


def write_state(folder: Path, state: Mapping[str, Any]) -> Path:
    path = folder / STATE_FILE
    atomic_write_text(path, json.dumps({"format": FORMAT, "version": VERSION, **state}, indent=1, sort_keys=True))
    return path


def read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _refused(path, f"cannot be read ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise _refused(path, "not a kept lab this wizard can start")
    return data


def is_kept(folder: Path) -> bool:
    return (folder / STATE_FILE).is_file()


def restore(
    lab: Lab,
    state: Mapping[str, Any],
    *,
    passwords: Mapping[str, str],
    registry_password: str,
) -> None:
    """Give ``lab`` (built from ``state``'s nodes, not started yet) its kept accounts, links, uploads and cluster;
    ``passwords`` are the accounts' new passwords (the session's re-keyed secrets) and ``registry_password`` the
    registry's."""
    nodes = {n.state.uid: n.state for n in lab.nodes}
    recorded = list(state.get("nodes") or [])
    for entry, node in zip(recorded, lab.nodes, strict=False):
        st = node.state
        if st.uid != entry["uid"]:
            raise _refused(Path(STATE_FILE), f"{st.name} has uid {st.uid}, the state says {entry['uid']}")
        st.hostname = str(entry.get("hostname") or st.name)
        for username, keys in (entry.get("accounts") or {}).items():
            password = passwords.get(username)
            if password is not None:
                st.set_password(username, password, first_login=False)
            elif username not in st.accounts():
                continue
            for key in keys:
                st.add_ssh_key(username, key)
        upload = entry.get("upload")
        if upload and Path(upload["path"]).is_file():
            signature = Path(upload["signature"]) if upload.get("signature") else None
            st.record_upload(
                UploadedContent(
                    upload["file_name"],
                    upload["sha256"],
                    int(upload["size"]),
                    st.clock(),
                    Path(upload["path"]),
                    signature,
                )
            )
    for entry in recorded:
        link = entry.get("link") or {}
        st = nodes[entry["uid"]]
        now = st.clock()
        if link.get("role") == LinkRole.LEADER.value:
            st.link = LinkState(role=LinkRole.LEADER, followers={uid: now for uid in link.get("followers") or []})
        elif link.get("role") == LinkRole.FOLLOWER.value:
            st.link = LinkState(role=LinkRole.FOLLOWER, leader_uid=link.get("leader") or None, linked_at=now)
    cluster = state.get("cluster")
    if cluster:
        _restore_cluster(lab, cluster, nodes, registry_password)


def _restore_cluster(
    lab: Lab, cluster: Mapping[str, Any], nodes: Mapping[str, NodeState], registry_password: str
) -> None:
    leader = nodes[cluster["leader"]]
    hosts = [ClusterHost(**h) for h in cluster["hosts"]]
    variables = {**cluster.get("variables", {}), REGISTRY_PASSWORD: registry_password}
    config = json.loads(json.dumps(cluster["config"]))
    own = {ref: v.name for v, ref in zip(variables_for(leader), _reference(), strict=True)}
    for item in (config.get("spec") or {}).get("profileVariables") or []:
        if item.get("name") == own[REGISTRY_PASSWORD]:
            item["value"] = registry_password
    now = leader.clock()
    deployment = ClusterDeployment(
        name=cluster["name"],
        uid=cluster["uid"],
        created_at=now - leader.cluster_timeline - 1.0,  # it runs already
        timeline=leader.cluster_timeline,
        vip=cluster["vip"],
        leader_uid=leader.uid,
        hosts=hosts,
        pools=list(cluster["pools"]),
        config=config,
        variables=variables,
    )
    deployment.applied = str(cluster.get("applied") or "")
    for host in hosts:
        member = nodes[host.uid]
        with member.lock:
            member.cluster = deployment
            member.has_cluster = True
            member.node_role = "controlplane" if host.control_plane else "worker"
        deployment.members.append(member)
