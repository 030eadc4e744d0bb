# pyVmomi's stubs type every managed property as Optional and its data-object constructors as untyped; checking
# those two codes here would mean an assert or a cast on nearly every vCenter call, so only they are off.
# mypy: disable-error-code="union-attr,no-untyped-call"
"""Preflight checks against vCenter: login, inventory names, privileges, space, capacity, network, zone tags, VMs.

Nothing is changed here; every check reads. ``CHECKS`` holds their catalog entries (merged into
``wizard.core.checks.catalog``); :func:`run_checks` returns one or more results per check, also when vCenter cannot
be reached (the others then report that they could not run, so the report is complete).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyVmomi import vim

from wizard.core.checks.catalog import (
    Category,
    Check,
    CheckResult,
    CheckSeverity,
    errored,
    failed,
    not_applicable,
    passed,
)
from wizard.core.checks.sizing import size_result, storage_result
from wizard.core.errors import Cancelled, WizardError
from wizard.core.project import BootMode, Node, Project, VmMode, VsphereSettings
from wizard.core.trust import Confirm, TrustStore
from wizard.providers.vsphere import vms
from wizard.providers.vsphere.errors import translate_fault
from wizard.providers.vsphere.session import VsphereSession, connect
from wizard.providers.vsphere.tagging import REGION_CATEGORY, ZONE_CATEGORY, TaggingClient, tagging_client

log = logging.getLogger(__name__)

LOGIN = "vsphere.login"
INVENTORY = "vsphere.inventory"
PRIVILEGES = "vsphere.privileges"
DATASTORE_SPACE = "vsphere.datastore-space"
CAPACITY = "vsphere.capacity"
NETWORK = "vsphere.network"
ZONE_TAGS = "vsphere.zone-tags"
VM_FIRMWARE = "vsphere.vm-firmware"
VM_SPEC = "vsphere.vm-spec"
VM_SIZE = "vsphere.vm-size"

_B, _W = CheckSeverity.BLOCKER, CheckSeverity.WARNING
CHECKS: tuple[Check, ...] = (
    Check(
        LOGIN,
        Category.PROVIDER,
        _B,
        "vCenter answers and accepts the login",
        "check the vCenter address and port, its certificate, the user name and the password in the keyring",
        "provider",
    ),
    Check(
        INVENTORY,
        Category.PROVIDER,
        _B,
        "Datacenter, cluster, resource pool, folder and datastore exist",
        "pick the datacenter, cluster, resource pool, VM folder and datastore from the lists on the vSphere page",
        "provider",
    ),
    Check(
        PRIVILEGES,
        Category.PROVIDER,
        _B,
        "The vCenter user holds every privilege the install needs",
        "grant the listed privileges to the user's role on the named objects (with propagation to children)",
        "provider",
    ),
    Check(
        DATASTORE_SPACE,
        Category.PROVIDER,
        _B,
        "Datastore has room for the ISO and the VM disks",
        "free space on the datastore, choose a larger one, or make the VM disks smaller",
        "provider",
    ),
    Check(
        CAPACITY,
        Category.PROVIDER,
        _W,
        "Cluster has CPU and memory for the nodes",
        "free memory in the cluster, add a host, or lower the nodes' vCPU and memory (8 vCPU and 16 GB are the minimum "
        "the appliance documents)",
        "provider",
    ),
    Check(
        NETWORK,
        Category.PROVIDER,
        _B,
        "The network or port group exists on the cluster's hosts",
        "pick a network or distributed port group that every host of the cluster has",
        "provider",
    ),
    Check(
        ZONE_TAGS,
        Category.PROVIDER,
        _W,
        "Region and zone tags are set (k8s-region on the datacenter, k8s-zone on the cluster or its hosts)",
        "create the tag categories k8s-region and k8s-zone, then attach a region tag to the datacenter and a zone "
        "tag to the compute cluster (or to each host); Palette needs them to deploy workload clusters on vSphere",
        "provider",
    ),
    Check(
        VM_FIRMWARE,
        Category.PROVIDER,
        _B,
        "Existing VMs boot with UEFI",
        "power the VM off and set its firmware to EFI (VM Options → Boot Options); the appliance boots only with UEFI",
        "nodes",
    ),
    Check(
        VM_SPEC,
        Category.PROVIDER,
        _B,
        "The node VMs fit the appliance spec (or their names are free)",
        "adjust the VM (vCPU, memory, two disks, a network adapter on the chosen network) or pick another VM name",
        "nodes",
    ),
    Check(
        VM_SIZE,
        Category.PROVIDER,
        _W,
        "The node VMs are sized as the appliance's sizing table recommends",
        "give each node VM 16 vCPU and 32 GB of memory (the Medium size the docs recommend; Small, 8 / 16, manages up "
        "to 1000 workload nodes) and 750 GB of disk in total",
        "provider",
    ),
)

#: The tag-name form Palette accepts (from its vSphere requirements).
TAG_NAME = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
GIB = 1024**3
MIB = 1024**2


# ---------------------------------------------------------------------------------------------------------------
# Privileges


#: Reading the inventory and tags, and the ISO transfer.
READ = ("System.View", "System.Read")
UPLOAD = ("Datastore.Browse", "Datastore.FileManagement")
#: What creating a node VM needs, per object it touches.
CREATE_ON_FOLDER = (
    "VirtualMachine.Inventory.Create",
    "VirtualMachine.Config.AddNewDisk",
    "VirtualMachine.Config.AdvancedConfig",
    "VirtualMachine.Config.Annotation",
)
CREATE_ON_POOL = ("Resource.AssignVMToPool",)
CREATE_ON_DATASTORE = ("Datastore.AllocateSpace",)
CREATE_ON_NETWORK = ("Network.Assign",)
CLUSTER_RULES = ("Host.Inventory.EditCluster",)
#: Attaching the ISO, boot order, power, eject: on each VM (in create mode, on the folder the VMs inherit from).
OPERATE_VM = (
    "VirtualMachine.Config.AddRemoveDevice",
    "VirtualMachine.Config.AdvancedConfig",
    "VirtualMachine.Config.EditDevice",
    "VirtualMachine.Config.Settings",
    "VirtualMachine.Interact.DeviceConnection",
    "VirtualMachine.Interact.SetCDMedia",
    "VirtualMachine.Interact.PowerOn",
    "VirtualMachine.Interact.Reset",
)
#: ``appliance.boot: keys``: the keys that pick GRUB's automatic installer go in through vSphere's keyboard API.
CONSOLE_KEYS = ("VirtualMachine.Interact.PutUsbScanCodes",)


@dataclass
class PrivilegePlan:
    """Which privileges to ask for on which object: ``(label, entity, privilege ids)``."""

    entries: list[tuple[str, Any, tuple[str, ...]]] = field(default_factory=list)

    def add(self, label: str, entity: Any, privileges: Iterable[str]) -> None:
        self.entries.append((label, entity, tuple(dict.fromkeys(privileges))))


def plan_privileges(
    mode: VmMode,
    *,
    root: Any,
    datastore: Any,
    folder: Any = None,
    pool: Any = None,
    network: Any = None,
    cluster: Any = None,
    vms_by_name: dict[str, Any] | None = None,
    keys: bool = False,
) -> PrivilegePlan:
    """The privileges the chosen operations need: upload always; create or existing VMs; tags are read only; with
    ``keys`` (``appliance.boot: keys``) the keyboard API on the VMs."""
    operate = (*OPERATE_VM, *(CONSOLE_KEYS if keys else ()))
    plan = PrivilegePlan()
    plan.add("vCenter (root)", root, READ)
    plan.add("datastore", datastore, (*UPLOAD, *(CREATE_ON_DATASTORE if mode is VmMode.CREATE else ())))
    if mode is VmMode.CREATE:
        if folder is not None:
            plan.add("VM folder", folder, (*CREATE_ON_FOLDER, *operate))
        if pool is not None:
            plan.add("resource pool", pool, CREATE_ON_POOL)
        if network is not None:
            plan.add("network", network, CREATE_ON_NETWORK)
        if cluster is not None:
            plan.add("cluster", cluster, CLUSTER_RULES)
    else:
        for name, vm in (vms_by_name or {}).items():
            plan.add(f"VM {name}", vm, operate)
    return plan


def missing_privileges(auth: Any, session_key: str, plan: PrivilegePlan) -> list[tuple[str, str]]:
    """(object label, privilege id) pairs the session lacks, asked of vCenter with HasPrivilegeOnEntity."""
    missing: list[tuple[str, str]] = []
    for label, entity, privileges in plan.entries:
        granted = auth.HasPrivilegeOnEntity(entity=entity, sessionId=session_key, privId=list(privileges))
        for priv, ok in zip(privileges, list(granted or []), strict=False):
            if not ok:
                missing.append((label, priv))
        if len(list(granted or [])) != len(privileges):
            # An answer of the wrong length proves nothing; count every privilege without an answer as missing.
            missing.extend((label, p) for p in privileges[len(list(granted or [])) :])
    return missing


# ---------------------------------------------------------------------------------------------------------------
# Running


def vm_name_for(project: Project, node: Node) -> str:
    """The node's VM name: the project's ``vm`` for the node, else ``<project>-<node>``."""
    return node.vm or f"{project.name}-{node.name}"


def _iso_size(project: Project) -> int | None:
    iso = project.files.iso
    if iso is None:
        return None
    try:
        return Path(iso.path).stat().st_size
    except OSError:
        return None


@dataclass
class _Context:
    session: VsphereSession
    settings: VsphereSettings
    project: Project
    password: str
    tag_flavour: str
    objects: dict[str, Any] = field(default_factory=dict)


def run_checks(
    settings: VsphereSettings,
    password: str,
    trust: TrustStore,
    confirm: Confirm | None,
    project: Project,
    *,
    scheme: str = "https",
    tag_flavour: str = "auto",
) -> list[CheckResult]:
    """Every vSphere check's results for ``project``; never raises for a vCenter problem (only on cancel)."""
    target = f"{settings.server}:{settings.port}"
    try:
        with connect(settings, password, trust, confirm, scheme=scheme) as session:
            results = [passed(LOGIN, f"logged in to {session.content.about.fullName} as {settings.username}", target)]
            ctx = _Context(session, settings, project, password, tag_flavour)
            for check_id, fn in _ORDER:
                results.extend(_guard(check_id, fn, ctx))
            return results
    except Cancelled:
        raise
    except WizardError as exc:
        login = exc.title == "vCenter login failed"  # the password is entered on the Credentials page
        results = [
            failed(
                LOGIN,
                exc.message,
                target,
                remediation=exc.remediation,
                details={"title": exc.title},
                fix_step="credentials" if login else "",
            )
        ]
        results += [errored(c, "not checked: vCenter could not be used", target) for c, _ in _ORDER]
        return results


def _guard(check_id: str, fn: Callable[[_Context], list[CheckResult]], ctx: _Context) -> list[CheckResult]:
    try:
        return fn(ctx)
    except Cancelled:
        raise
    except WizardError as exc:
        return [errored(check_id, f"{exc.title}: {exc.message}", remediation=exc.remediation)]
    except Exception as exc:
        if isinstance(exc, vim.fault.NoPermission | vim.fault.VimFault):
            err = translate_fault(exc, f"running check {check_id}")
            return [errored(check_id, f"{err.title}: {err.message}", remediation=err.remediation)]
        log.exception("check %s failed to run", check_id)
        return [errored(check_id, f"the check could not run: {type(exc).__name__}: {exc}")]


def _inventory(ctx: _Context) -> list[CheckResult]:
    s = ctx.session
    dc = s.datacenter()
    cluster = s.cluster(dc)
    pool = s.resource_pool(cluster)
    folder = s.vm_folder(dc)
    ds = s.datastore(dc)
    ctx.objects.update(dc=dc, cluster=cluster, pool=pool, folder=folder, datastore=ds)
    where = f"{dc.name}/{cluster.name}"
    return [
        passed(INVENTORY, f"datacenter {dc.name}, cluster {cluster.name}, pool {pool.name}, datastore {ds.name}", where)
    ]


def _need(ctx: _Context, *names: str) -> list[Any]:
    missing = [n for n in names if n not in ctx.objects]
    if missing:
        raise WizardError("Not checked", f"needs the {', '.join(missing)} from the inventory check, which failed")
    return [ctx.objects[n] for n in names]


def _node_vms(ctx: _Context) -> dict[str, Any]:
    """node name → VM (or None when there is none with that name)."""
    found: dict[str, Any] = {}
    for node in ctx.project.nodes:
        name = vm_name_for(ctx.project, node)
        try:
            found[node.name] = vms.find_vm_or_none(ctx.session, name, node.name, ctx.objects.get("dc"))
        except WizardError:
            found[node.name] = None
    return found


def _privileges(ctx: _Context) -> list[CheckResult]:
    cluster, pool, folder, ds = _need(ctx, "cluster", "pool", "folder", "datastore")
    network = ctx.objects.get("network")
    mode = ctx.settings.vm_mode
    by_node = _node_vms(ctx) if mode is VmMode.EXISTING else {}
    names = {vm_name_for(ctx.project, n): by_node[n.name] for n in ctx.project.nodes if by_node.get(n.name)}
    plan = plan_privileges(
        mode,
        root=ctx.session.content.rootFolder,
        datastore=ds,
        folder=folder,
        pool=pool,
        network=network,
        cluster=cluster,
        vms_by_name=names,
        keys=ctx.project.boot_mode() is BootMode.KEYS,
    )
    missing = missing_privileges(ctx.session.content.authorizationManager, ctx.session.session_key, plan)
    user = ctx.session.user_name
    asked = sum(len(p) for _, _, p in plan.entries)
    if missing:
        lines = [f"{label}: {priv}" for label, priv in missing]
        return [
            failed(
                PRIVILEGES,
                f"{user} lacks {len(missing)} privilege(s): " + ", ".join(sorted({p for _, p in missing})),
                user,
                details={"missing": lines, "mode": mode.value},
            )
        ]
    return [passed(PRIVILEGES, f"{user} holds all {asked} privileges asked for ({mode.value} mode)", user)]


def _datastore_space(ctx: _Context) -> list[CheckResult]:
    (ds,) = _need(ctx, "datastore")
    summary = ds.summary
    if not summary.accessible:
        return [failed(DATASTORE_SPACE, f"datastore {ds.name} is not accessible", ds.name)]
    spec = ctx.settings.vm
    iso = _iso_size(ctx.project) or 0
    nodes = len(ctx.project.nodes)
    disks = 0
    if ctx.settings.vm_mode is VmMode.CREATE:
        # Thin disks grow to their full size as the appliance fills them; the swap file equals the memory size.
        disks = nodes * (spec.os_disk_gb + spec.data_disk_gb + spec.memory_gb) * GIB
    needed = iso + disks
    free = int(summary.freeSpace)
    details = {"free": free, "needed": needed, "iso": iso, "vm_disks_and_swap": disks}
    msg = f"{ds.name}: {free / GIB:.1f} GiB free, {needed / GIB:.1f} GiB needed (ISO {iso / GIB:.1f} GiB"
    msg += f", {nodes} VM(s) {disks / GIB:.0f} GiB)" if disks else ")"
    if free < needed:
        return [failed(DATASTORE_SPACE, msg, ds.name, details=details)]
    return [passed(DATASTORE_SPACE, msg, ds.name, details=details)]


def _capacity(ctx: _Context) -> list[CheckResult]:
    (cluster,) = _need(ctx, "cluster")
    spec = ctx.settings.vm
    hosts = vms.eligible_hosts(cluster)
    if not hosts:
        return [failed(CAPACITY, f"{cluster.name} has no connected host outside maintenance mode", cluster.name)]
    threads = max(int(h.summary.hardware.numCpuThreads) for h in hosts)
    free_by_host = {
        str(h.name): int(h.summary.hardware.memorySize) - int(h.summary.quickStats.overallMemoryUsage or 0) * MIB
        for h in hosts
    }
    free_total = sum(max(0, v) for v in free_by_host.values())
    nodes = len(ctx.project.nodes)
    need_mem = nodes * spec.memory_gb * GIB
    problems = []
    if spec.cpus > threads:
        problems.append(f"{spec.cpus} vCPU per VM, but the largest host has {threads} logical CPUs")
    if need_mem > free_total:
        problems.append(f"{nodes} × {spec.memory_gb} GB memory needed, {free_total / GIB:.1f} GiB free in the cluster")
    if max(free_by_host.values()) < spec.memory_gb * GIB:
        problems.append(f"no host has {spec.memory_gb} GB of free memory for one VM")
    details = {"hosts": len(hosts), "max_threads": threads, "free_memory": free_total, "needed_memory": need_mem}
    if problems:
        return [failed(CAPACITY, "; ".join(problems), cluster.name, details=details)]
    return [
        passed(
            CAPACITY,
            f"{len(hosts)} host(s), up to {threads} logical CPUs each, {free_total / GIB:.1f} GiB memory free for "
            f"{nodes} × {spec.memory_gb} GB",
            cluster.name,
            details=details,
        )
    ]


def _network(ctx: _Context) -> list[CheckResult]:
    dc, cluster = _need(ctx, "dc", "cluster")
    try:
        network = ctx.session.network(dc)
    except WizardError as exc:
        return [failed(NETWORK, exc.message, ctx.settings.network, remediation=exc.remediation)]
    ctx.objects["network"] = network
    kind = "distributed port group" if isinstance(network, vim.dvs.DistributedVirtualPortgroup) else "network"
    # Asked from both sides: either list may be incomplete (vcsim fills only the hosts' side for standard networks).
    on = {h._moId for h in network.host or []}
    lacking = [
        str(h.name)
        for h in vms.eligible_hosts(cluster)
        if h._moId not in on and network._moId not in {n._moId for n in h.network or []}
    ]
    if lacking:
        return [failed(NETWORK, f"{kind} {network.name} is missing on host(s) {', '.join(lacking)}", network.name)]
    return [passed(NETWORK, f"{kind} {network.name} exists on every host of {cluster.name}", network.name)]


def _zone_tags(ctx: _Context) -> list[CheckResult]:
    dc, cluster = _need(ctx, "dc", "cluster")
    with tagging_client(ctx.session, ctx.password, flavour=ctx.tag_flavour) as client:
        return zone_tag_results(client, dc, cluster, vms.eligible_hosts(cluster))


def zone_tag_results(client: TaggingClient, dc: Any, cluster: Any, hosts: list[Any]) -> list[CheckResult]:
    """Region tag on the datacenter, zone tag on the cluster (or on every host), valid tag names."""
    method = (f"tagging API at /{client.flavour}",)
    region = client.category_by_name(REGION_CATEGORY)
    zone = client.category_by_name(ZONE_CATEGORY)
    absent = [n for n, c in ((REGION_CATEGORY, region), (ZONE_CATEGORY, zone)) if c is None]
    if absent or region is None or zone is None:
        return [
            failed(
                ZONE_TAGS, f"tag categor{'ies' if len(absent) > 1 else 'y'} {', '.join(absent)} missing", method=method
            )
        ]

    def tags_on(obj_type: str, obj: Any, category: str) -> list[str]:
        names = []
        for tag_id in client.attached_tags(obj_type, obj._moId):
            tag = client.tag(tag_id)
            if tag.category_id == category:
                names.append(tag.name)
        return names

    results: list[CheckResult] = []
    regions = tags_on("Datacenter", dc, region.id)
    results.append(_tag_result(REGION_CATEGORY, f"datacenter {dc.name}", regions, method))
    zones = tags_on("ClusterComputeResource", cluster, zone.id)
    if zones:
        results.append(_tag_result(ZONE_CATEGORY, f"cluster {cluster.name}", zones, method))
    else:
        untagged = [str(h.name) for h in hosts if not tags_on("HostSystem", h, zone.id)]
        if untagged:
            results.append(
                failed(
                    ZONE_TAGS,
                    f"no {ZONE_CATEGORY} tag on cluster {cluster.name} nor on host(s) {', '.join(untagged)}",
                    f"cluster {cluster.name}",
                    method=method,
                )
            )
        else:
            results.append(passed(ZONE_TAGS, f"every host of {cluster.name} has a {ZONE_CATEGORY} tag", method=method))
    return results


def _tag_result(category: str, target: str, names: list[str], method: tuple[str, ...]) -> CheckResult:
    if not names:
        return failed(ZONE_TAGS, f"no {category} tag on {target}", target, method=method)
    bad = [n for n in names if not TAG_NAME.fullmatch(n)]
    if bad:
        return failed(
            ZONE_TAGS,
            f"{category} tag(s) {', '.join(bad)} on {target} do not match {TAG_NAME.pattern}",
            target,
            remediation="rename the tag: letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
            method=method,
        )
    if len(names) > 1:
        return failed(ZONE_TAGS, f"{target} has several {category} tags: {', '.join(names)}", target, method=method)
    return passed(ZONE_TAGS, f"{target} is tagged {category}={names[0]}", target, method=method)


def _vm_firmware(ctx: _Context) -> list[CheckResult]:
    if ctx.settings.vm_mode is not VmMode.EXISTING:
        return [not_applicable(VM_FIRMWARE, "the wizard creates the VMs with EFI firmware")]
    out = []
    for node, vm in _node_vms(ctx).items():
        name = vm_name_for(ctx.project, ctx.project.node(node))
        if vm is None:
            out.append(failed(VM_FIRMWARE, f"no VM named {name}", node, remediation="correct the node's VM name"))
        elif str(vm.config.firmware) != "efi":
            out.append(failed(VM_FIRMWARE, f"{name} uses {vm.config.firmware} firmware", node))
        else:
            out.append(passed(VM_FIRMWARE, f"{name} uses EFI firmware", node))
    return out


def _vm_spec(ctx: _Context) -> list[CheckResult]:
    network = ctx.objects.get("network") or ctx.session.network()
    out = []
    for node, vm in _node_vms(ctx).items():
        name = vm_name_for(ctx.project, ctx.project.node(node))
        if ctx.settings.vm_mode is VmMode.CREATE:
            if vm is None:
                out.append(passed(VM_SPEC, f"{name} will be created", node))
            elif vms.extra_config(vm).get(vms.MARKER_KEY) != node:
                out.append(
                    failed(
                        VM_SPEC,
                        f"a VM named {name} exists that the wizard did not create",
                        node,
                        remediation="rename or remove that VM, give the node another VM name, or use existing VMs",
                    )
                )
            else:
                problems = vms.validate(vm, ctx.settings.vm, network)
                out.append(
                    failed(VM_SPEC, f"{name} (created earlier): " + "; ".join(problems), node)
                    if problems
                    else passed(VM_SPEC, f"{name} exists from an earlier run and fits", node)
                )
        elif vm is None:
            out.append(failed(VM_SPEC, f"no VM named {name}", node, remediation="correct the node's VM name"))
        else:
            problems = [p for p in vms.validate(vm, ctx.settings.vm, network) if "firmware" not in p]
            out.append(
                failed(VM_SPEC, f"{name}: " + "; ".join(problems), node, details={"problems": problems})
                if problems
                else passed(VM_SPEC, f"{name} fits the appliance spec", node)
            )
    return out


def _vm_size(ctx: _Context) -> list[CheckResult]:
    """The sizing table against the VM spec the wizard creates, or against each existing VM's hardware."""
    spec = ctx.settings.vm
    if ctx.settings.vm_mode is VmMode.CREATE:
        target = f"VM spec ({spec.cpus} vCPU, {spec.memory_gb} GB)"
        return [
            size_result(target, spec.cpus, spec.memory_gb, check=VM_SIZE),
            storage_result(target, spec.os_disk_gb + spec.data_disk_gb, check=VM_SIZE),
        ]
    out = []
    for node, vm in _node_vms(ctx).items():
        if vm is None or vm.config is None:
            continue  # vsphere.vm-spec names the missing VM
        hw = vm.config.hardware
        out.append(size_result(node, int(hw.numCPU), int(hw.memoryMB) / 1024, check=VM_SIZE))
        total = sum(int(d.capacityInKB) for d in vms.disks(vm)) * 1024 / 1000**3
        out.append(storage_result(node, total, check=VM_SIZE))
    return out


# Order matters: later checks reuse the objects the inventory and network checks found.
_ORDER: tuple[tuple[str, Callable[[_Context], list[CheckResult]]], ...] = (
    (INVENTORY, _inventory),
    (NETWORK, _network),
    (PRIVILEGES, _privileges),
    (DATASTORE_SPACE, _datastore_space),
    (CAPACITY, _capacity),
    (ZONE_TAGS, _zone_tags),
    (VM_FIRMWARE, _vm_firmware),
    (VM_SPEC, _vm_spec),
    (VM_SIZE, _vm_size),
)
