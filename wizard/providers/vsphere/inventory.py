# pyVmomi's stubs type every managed property as Optional and its data-object constructors as untyped; checking
# those two codes here would mean an assert or a cast on nearly every vCenter call, so only they are off.
# mypy: disable-error-code="union-attr,no-untyped-call"
"""What the vSphere page lists: datacenters, clusters, hosts, pools, folders, datastores, networks and VMs.

Read with one property-collector round trip per object type (a large vCenter has thousands of VMs), into plain
frozen values the page can show without touching pyVmomi.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from wizard.core.project import VsphereSettings
from wizard.core.trust import Confirm, TrustStore
from wizard.providers.vsphere.session import VsphereSession, connect


@dataclass(frozen=True)
class Item:
    moref: str
    name: str
    datacenter: str = ""


@dataclass(frozen=True)
class ClusterInfo(Item):
    drs: bool = False
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostInfo(Item):
    cluster: str = ""
    connected: bool = False
    maintenance: bool = False
    cpu_threads: int = 0
    memory: int = 0  # bytes


@dataclass(frozen=True)
class DatastoreInfo(Item):
    capacity: int = 0  # bytes
    free: int = 0  # bytes
    type: str = ""
    accessible: bool = False


@dataclass(frozen=True)
class NetworkInfo(Item):
    kind: str = "network"  # "network" or "portgroup" (distributed)


@dataclass(frozen=True)
class VmInfo(Item):
    power: str = ""
    firmware: str = ""
    host: str = ""
    cpus: int = 0
    memory_mb: int = 0


@dataclass(frozen=True)
class Inventory:
    datacenters: tuple[Item, ...]
    clusters: tuple[ClusterInfo, ...]
    hosts: tuple[HostInfo, ...]
    resource_pools: tuple[Item, ...]  # name is the path below the cluster's root pool ("" for the root)
    folders: tuple[Item, ...]  # name is the path below the datacenter's VM folder
    datastores: tuple[DatastoreInfo, ...]
    networks: tuple[NetworkInfo, ...]
    vms: tuple[VmInfo, ...]


def read_inventory(session: VsphereSession) -> Inventory:
    """Everything the vSphere page lists, across all datacenters."""
    names: dict[str, str] = {}
    parents: dict[str, Any] = {}

    def collect(kind: type[vim.ManagedEntity], props: list[str]) -> list[tuple[Any, dict[str, Any]]]:
        rows = session.properties(kind, ["name", "parent", *props])
        for obj, p in rows:
            names[obj._moId] = str(p.get("name", ""))
            parents[obj._moId] = p.get("parent")
        return rows

    # Folders first: every other object's path to its datacenter goes through them.
    folder_rows = collect(vim.Folder, [])
    dc_rows = collect(vim.Datacenter, ["vmFolder"])
    cluster_rows = collect(vim.ClusterComputeResource, ["host", "configurationEx"])
    collect(vim.ComputeResource, [])
    host_rows = collect(
        vim.HostSystem,
        [
            "runtime.connectionState",
            "runtime.inMaintenanceMode",
            "summary.hardware.numCpuThreads",
            "summary.hardware.memorySize",
        ],
    )
    pool_rows = collect(vim.ResourcePool, ["owner"])
    ds_rows = collect(vim.Datastore, ["summary"])
    net_rows = collect(vim.Network, [])
    vm_rows = collect(
        vim.VirtualMachine,
        ["runtime.powerState", "runtime.host", "config.firmware", "config.hardware.numCPU", "config.hardware.memoryMB"],
    )

    def datacenter(obj: Any) -> str:
        current = parents.get(obj._moId)
        while current is not None:
            if isinstance(current, vim.Datacenter):
                return names.get(current._moId, "")
            current = parents.get(current._moId)
        return ""

    def path_below(obj: Any, stop: Any) -> str:
        parts: list[str] = []
        current = obj
        while current is not None and current._moId != stop._moId:
            parts.append(names.get(current._moId, ""))
            current = parents.get(current._moId)
        return "/".join(reversed(parts))

    vm_roots = {p["vmFolder"]._moId: dc for dc, p in dc_rows if p.get("vmFolder") is not None}
    folders: list[Item] = []
    for obj, _p in folder_rows:
        root = obj
        while root is not None and root._moId not in vm_roots:
            root = parents.get(root._moId)
        if root is not None:  # a VM folder (host, datastore and network folders are not offered)
            folders.append(Item(obj._moId, path_below(obj, root), datacenter(obj)))

    host_cluster: dict[str, str] = {}
    clusters: list[ClusterInfo] = []
    for obj, p in cluster_rows:
        hosts = tuple(names.get(h._moId, h._moId) for h in p.get("host") or [])
        for h in p.get("host") or []:
            host_cluster[h._moId] = str(p["name"])
        cfg = p.get("configurationEx")
        drs = bool(cfg.drsConfig.enabled) if cfg is not None and getattr(cfg, "drsConfig", None) else False
        clusters.append(ClusterInfo(obj._moId, str(p["name"]), datacenter(obj), drs=drs, hosts=hosts))

    pools: list[Item] = []
    for obj, p in pool_rows:
        owner = p.get("owner")
        root = obj
        while isinstance(parents.get(root._moId), vim.ResourcePool):
            root = parents[root._moId]
        label = path_below(obj, root) if obj._moId != root._moId else ""
        owner_name = names.get(owner._moId, "") if owner is not None else ""
        pools.append(Item(obj._moId, f"{owner_name}/{label}".rstrip("/"), datacenter(obj)))

    return Inventory(
        datacenters=tuple(Item(o._moId, str(p["name"]), str(p["name"])) for o, p in dc_rows),
        clusters=tuple(clusters),
        hosts=tuple(
            HostInfo(
                o._moId,
                str(p["name"]),
                datacenter(o),
                cluster=host_cluster.get(o._moId, ""),
                connected=str(p.get("runtime.connectionState")) == "connected",
                maintenance=bool(p.get("runtime.inMaintenanceMode")),
                cpu_threads=int(p.get("summary.hardware.numCpuThreads") or 0),
                memory=int(p.get("summary.hardware.memorySize") or 0),
            )
            for o, p in host_rows
        ),
        resource_pools=tuple(pools),
        folders=tuple(folders),
        datastores=tuple(
            DatastoreInfo(
                o._moId,
                str(p["name"]),
                datacenter(o),
                capacity=int(p["summary"].capacity or 0),
                free=int(p["summary"].freeSpace or 0),
                type=str(p["summary"].type or ""),
                accessible=bool(p["summary"].accessible),
            )
            for o, p in ds_rows
        ),
        networks=tuple(
            NetworkInfo(
                o._moId,
                str(p["name"]),
                datacenter(o),
                kind="portgroup" if isinstance(o, vim.dvs.DistributedVirtualPortgroup) else "network",
            )
            for o, p in net_rows
        ),
        vms=tuple(
            VmInfo(
                o._moId,
                str(p["name"]),
                datacenter(o),
                power=str(p.get("runtime.powerState") or ""),
                firmware=str(p.get("config.firmware") or ""),
                host=names.get(p["runtime.host"]._moId, "") if p.get("runtime.host") is not None else "",
                cpus=int(p.get("config.hardware.numCPU") or 0),
                memory_mb=int(p.get("config.hardware.memoryMB") or 0),
            )
            for o, p in vm_rows
        ),
    )


def load_inventory(
    settings: VsphereSettings,
    password: str,
    trust: TrustStore,
    confirm: Confirm | None,
    *,
    scheme: str = "https",
) -> Inventory:
    """Logs in, reads the inventory, logs out. Only server, port, user and trust matter in ``settings`` here."""
    with connect(settings, password, trust, confirm, scheme=scheme) as session:
        return read_inventory(session)
