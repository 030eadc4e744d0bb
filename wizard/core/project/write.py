"""Writing a project back to YAML: relative paths, secret references, nothing that is not set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wizard.core.project.model import (
    SCHEMA_VERSION,
    Addressing,
    ClusterSettings,
    ConfigureMode,
    FileRef,
    NodeNetwork,
    Project,
    Proxy,
    TransferMode,
)


def _file_dict(ref: FileRef, base: Path | None) -> dict[str, Any] | str:
    def rel(p: Path) -> str:
        if base is not None:
            try:
                return str(p.relative_to(base))
            except ValueError:
                pass
        return str(p)

    out: dict[str, Any] = {"path": rel(ref.path)}
    if ref.signature is not None:
        out["signature"] = rel(ref.signature)
    if ref.sha256:
        out["sha256"] = ref.sha256
    return out


def _addressing_dict(a: Addressing) -> dict[str, Any]:
    out: dict[str, Any] = {"addressing": a.kind}
    out.update({k: v for k, v in (("ip", a.ip), ("prefix", a.prefix), ("gateway", a.gateway)) if v})
    return out


def _node_network_dict(net: NodeNetwork) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if net.management:
        out["management"] = net.management
    if net.reach:
        out["reach"] = net.reach
    if net.interfaces:
        out["interfaces"] = [{"name": i.name, **_addressing_dict(i.addressing)} for i in net.interfaces]
    if net.bonds:
        out["bonds"] = [
            {
                "name": b.name,
                "members": list(b.members),
                "mode": b.mode,
                **{k: v for k, v in (("hash_policy", b.hash_policy), ("lacp_rate", b.lacp_rate)) if v},
                **({"mii": b.mii} if b.mii is not None else {}),
                **_addressing_dict(b.addressing),
            }
            for b in net.bonds
        ]
    if net.vlans:
        out["vlans"] = [
            {"name": v.name, "parent": v.parent, "id": v.vlan_id, **_addressing_dict(v.addressing)} for v in net.vlans
        ]
    return out


def project_to_dict(project: Project, base: Path | None = None) -> dict[str, Any]:
    """The project as a document ``parse_project`` reads back to an equal project. Holds no secret values."""
    p = project.provider
    provider: dict[str, Any] = {"type": p.type.value}
    if p.vsphere:
        v = p.vsphere
        provider["vsphere"] = {
            "server": v.server,
            "port": v.port,
            "username": v.username,
            "password": v.password.to_dict(),
            "datacenter": v.datacenter,
            "cluster": v.cluster,
            "resource_pool": v.resource_pool,
            "folder": v.folder,
            "datastore": v.datastore,
            "network": v.network,
            "iso_folder": v.iso_folder,
            "tls_fingerprint": v.tls_fingerprint,
            "vm_mode": v.vm_mode.value,
            "vm": {
                "cpus": v.vm.cpus,
                "memory_gb": v.vm.memory_gb,
                "os_disk_gb": v.vm.os_disk_gb,
                "data_disk_gb": v.vm.data_disk_gb,
            },
        }
    if p.redfish:
        provider["redfish"] = {
            "iso_url": p.redfish.iso_url,
            "iso_server_bind": p.redfish.iso_server_bind,
            "iso_server_port": p.redfish.iso_server_port,
        }
    if p.maas:
        provider["maas"] = {
            "url": p.maas.url,
            "api_key": p.maas.api_key.to_dict(),
            "tls_fingerprint": p.maas.tls_fingerprint,
        }
        if p.maas.tags:
            provider["maas"]["tags"] = list(p.maas.tags)
        for key in ("pool", "zone"):
            if getattr(p.maas, key):
                provider["maas"][key] = getattr(p.maas, key)
    nodes = []
    for n in project.nodes:
        nd: dict[str, Any] = {"name": n.name, "hostname": n.hostname, "address_mode": n.address_mode.value}
        keys = ("ip", "gateway", "vm", "maas", "ssh_host_key", "ssh_installer_host_key", "localui_fingerprint", "pool")
        for key in keys:
            if getattr(n, key):
                nd[key] = getattr(n, key)
        if n.ssh_port != 22:
            nd["ssh_port"] = n.ssh_port
        if n.localui_port != 5080:
            nd["localui_port"] = n.localui_port
        if n.prefix is not None:
            nd["prefix"] = n.prefix
        if n.network is not None:
            nd["network"] = _node_network_dict(n.network)
        if n.bmc:
            nd["bmc"] = {
                "address": n.bmc.address,
                "username": n.bmc.username,
                "password": n.bmc.password.to_dict(),
            }
            if n.bmc.tls_fingerprint:
                nd["bmc"]["tls_fingerprint"] = n.bmc.tls_fingerprint
        nodes.append(nd)
    net = project.network
    network: dict[str, Any] = {
        "vip": net.vip,
        "dns": list(net.dns),
        "search_domains": list(net.search_domains),
        "ntp": list(net.ntp),
    }
    if net.proxy != Proxy():
        network["proxy"] = {
            "http": net.proxy.http,
            "https": net.proxy.https,
            "no_proxy": list(net.proxy.no_proxy),
        }
        if net.proxy.ca_certs:
            network["proxy"]["ca_certs"] = [_file_dict(FileRef(p), base)["path"] for p in net.proxy.ca_certs]  # type: ignore[index]
    files: dict[str, Any] = {}
    f = project.files
    if f.iso:
        files["iso"] = _file_dict(f.iso, base)
    if f.content_bundle:
        files["content_bundle"] = _file_dict(f.content_bundle, base)
    if f.pack_bundles:
        files["pack_bundles"] = [_file_dict(ref, base) for ref in f.pack_bundles]
    if f.public_key:
        files["public_key"] = str(_file_dict(FileRef(f.public_key), base)["path"])  # type: ignore[index]
    if f.transfer is not TransferMode.DIRECT:
        files["transfer"] = f.transfer.value
    if f.staging_dir:
        files["staging_dir"] = f.staging_dir
    a = project.appliance
    appliance: dict[str, Any] = {
        "username": a.username,
        "install_disk": a.install_disk,
        "data_disk": a.data_disk,
        "install_timeout_minutes": a.install_timeout_minutes,
    }
    if a.configure is not ConfigureMode.SEED:
        appliance["configure"] = a.configure.value
    if a.boot is not None:
        appliance["boot"] = a.boot.value
    if a.password:
        appliance["password"] = a.password.to_dict()
    if a.leader:
        appliance["leader"] = a.leader
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": project.name,
        "provider": provider,
        "nodes": nodes,
        "network": network,
        "files": files,
        "appliance": appliance,
    }
    c = project.cluster
    if c != ClusterSettings():
        cluster: dict[str, Any] = {}
        if c.variables:
            cluster["variables"] = dict(c.variables)
        if c.secret_variables:
            cluster["secret_variables"] = {name: ref.to_dict() for name, ref in c.secret_variables}
        if c.ssh_keys:
            cluster["ssh_keys"] = list(c.ssh_keys)
        if c.kubeconfig is not None:
            cluster["kubeconfig"] = str(_file_dict(FileRef(c.kubeconfig), base)["path"])  # type: ignore[index]
        if c.two_node:
            cluster["two_node"] = True
        doc["cluster"] = cluster
    if project.console is not None:
        con = project.console
        console: dict[str, Any] = {"email": con.email}
        if con.password is not None:
            console["password"] = con.password.to_dict()
        if con.port != 443:
            console["port"] = con.port
        if con.tls_fingerprint:
            console["tls_fingerprint"] = con.tls_fingerprint
        if con.certificate is not None:
            cert = con.certificate
            files = {"cert": cert.cert, "key": cert.key, **({"ca": cert.ca} if cert.ca is not None else {})}
            console["certificate"] = {k: str(_file_dict(FileRef(v), base)["path"]) for k, v in files.items()}  # type: ignore[index]
        if con.domain:
            console["domain"] = con.domain
        doc["console"] = console
    act = project.activation
    if act.key is not None:
        doc["activation"] = {"key": act.key.to_dict()}
    elif act.defer:
        doc["activation"] = {"defer": True}
    return doc


def save_project(project: Project, path: Path) -> None:
    """Write the project atomically as YAML."""
    from wizard.core.fsutil import atomic_write_text

    doc = project_to_dict(project, base=path.resolve().parent)
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
