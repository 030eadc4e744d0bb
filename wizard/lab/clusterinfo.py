"""What the newer Local UI API says about a running cluster beyond its details: its certificates
(``cluster/certificates``) and its machine pools (``clusters/current/machinepools``)."""

from __future__ import annotations

from typing import Any

from wizard.lab.cluster import _require
from wizard.lab.node import NodeState, iso8601


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
