# pyVmomi's stubs type every managed property as Optional and its data-object constructors as untyped; checking
# those two codes here would mean an assert or a cast on nearly every vCenter call, so only they are off.
# mypy: disable-error-code="union-attr,no-untyped-call"
"""The node VMs: create to spec or validate existing ones, place them, attach the ISO, boot, eject, read the guest.

A VM the wizard creates carries a marker in its advanced settings (``palette-wizard.node = <node>``) and a note in
its annotation, so a rerun finds its own VM by name *and* marker and never creates a second one; a VM with the
same name but without the marker is someone else's and is never touched in create mode. Two more advanced settings
record the boot: ``palette-wizard.boot-iso`` (the datastore path the VM was last booted from) and
``palette-wizard.state`` (``booting`` until the media is ejected, then ``ejected``). They make boot and eject safe
to rerun without the journal:

* boot is skipped when the VM is ``ejected`` after booting this same ISO (it is installed), and when it is powered
  on, ``booting`` this ISO with the ISO still connected (the install is running); otherwise the ISO is attached,
  the boot order set to CD then disk, and the VM powered on — or reset, when it was running something else;
* eject is skipped when no ISO is attached and the boot order is already disk-first.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from wizard.core.cancel import CancelToken
from wizard.core.progress import Reporter
from wizard.core.project import VmSpec, VsphereSettings
from wizard.providers.vsphere.errors import VsphereError, translate_fault
from wizard.providers.vsphere.session import VsphereSession

log = logging.getLogger(__name__)

MARKER_KEY = "palette-wizard.node"
BOOT_KEY = "palette-wizard.boot-iso"
STATE_KEY = "palette-wizard.state"
GUEST_ID = "ubuntu64Guest"  # the appliance is Ubuntu-based (Kairos)
GIB_KB = 1024 * 1024


# ---------------------------------------------------------------------------------------------------------------
# Tasks


def wait_task(
    task: vim.Task,
    doing: str,
    cancel: CancelToken,
    report: Reporter | None = None,
    *,
    poll: float = 0.1,
    max_poll: float = 1.0,
    vm: vim.VirtualMachine | None = None,
) -> Any:
    """Waits for a vCenter task; reports its progress, cancels it (when it can be) on cancel, translates failure.

    With ``vm``, a question the VM asks meanwhile is handled: the guest's CD-ROM door lock (asked when an ISO is
    disconnected from a running Linux guest) is overridden, since ejecting is the point; any other question stops
    with its text, because only the operator can answer it.
    """
    interval = poll
    while True:
        if vm is not None:
            answer_question(vm, doing)
        info = task.info
        state = str(info.state)
        if state == "success":
            if report is not None:
                report.update(1.0)
            return info.result
        if state == "error":
            fault = info.error
            raise translate_fault(fault, doing) if fault is not None else VsphereError("Task failed", doing)
        if report is not None and info.progress is not None:
            report.update(min(0.99, int(info.progress) / 100.0))
        if cancel.cancelled:
            if info.cancelable:
                with contextlib.suppress(Exception):  # it may finish at the same moment; cancel is best effort
                    task.CancelTask()
            cancel.raise_if_cancelled()
        cancel.sleep(interval)
        interval = min(max_poll, interval * 1.5)


# ---------------------------------------------------------------------------------------------------------------
# Reading a VM


def extra_config(vm: vim.VirtualMachine) -> dict[str, str]:
    cfg = vm.config
    if cfg is None:
        return {}
    return {str(o.key): str(o.value) for o in cfg.extraConfig or []}


def devices(vm: vim.VirtualMachine) -> list[vim.vm.device.VirtualDevice]:
    cfg = vm.config
    return list(cfg.hardware.device) if cfg is not None else []


def _slot(dev: vim.vm.device.VirtualDevice, by_key: dict[int, vim.vm.device.VirtualDevice]) -> tuple[int, int, int]:
    ctrl = by_key.get(dev.controllerKey) if dev.controllerKey is not None else None
    kind = 0 if isinstance(ctrl, vim.vm.device.VirtualSCSIController) else 1
    bus = int(getattr(ctrl, "busNumber", 0) or 0)
    return kind, bus, int(dev.unitNumber or 0)


def disks(vm: vim.VirtualMachine) -> list[vim.vm.device.VirtualDisk]:
    """The VM's disks in boot order (SCSI before others, then bus, then unit): the first is the OS disk."""
    devs = devices(vm)
    by_key = {d.key: d for d in devs}
    found = [d for d in devs if isinstance(d, vim.vm.device.VirtualDisk)]
    return sorted(found, key=lambda d: _slot(d, by_key))


def cdroms(vm: vim.VirtualMachine) -> list[vim.vm.device.VirtualCdrom]:
    devs = devices(vm)
    by_key = {d.key: d for d in devs}
    found = [d for d in devs if isinstance(d, vim.vm.device.VirtualCdrom)]
    return sorted(found, key=lambda d: (_slot(d, by_key)[1:], d.key))


def nics(vm: vim.VirtualMachine) -> list[vim.vm.device.VirtualEthernetCard]:
    return [d for d in devices(vm) if isinstance(d, vim.vm.device.VirtualEthernetCard)]


def nic_on_network(nic: vim.vm.device.VirtualEthernetCard, network: vim.Network) -> bool:
    backing = nic.backing
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
        return isinstance(network, vim.dvs.DistributedVirtualPortgroup) and backing.port.portgroupKey == network.key
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
        net = backing.network
        return (net is not None and net == network) or backing.deviceName == network.name
    return False


def boot_order(vm: vim.VirtualMachine) -> list[str]:
    """The boot order as words: ``cdrom``, ``disk:<key>``, ``net:<key>``, ``floppy``."""
    cfg = vm.config
    order = cfg.bootOptions.bootOrder if cfg is not None and cfg.bootOptions is not None else []
    out: list[str] = []
    for b in order or []:
        if isinstance(b, vim.vm.BootOptions.BootableCdromDevice):
            out.append("cdrom")
        elif isinstance(b, vim.vm.BootOptions.BootableDiskDevice):
            out.append(f"disk:{b.deviceKey}")
        elif isinstance(b, vim.vm.BootOptions.BootableEthernetDevice):
            out.append(f"net:{b.deviceKey}")
        else:
            out.append("floppy")
    return out


def iso_backings(vm: vim.VirtualMachine) -> list[str]:
    """The datastore paths of the ISOs attached to the VM's CD/DVD drives, in drive order."""
    return [
        str(cd.backing.fileName)
        for cd in cdroms(vm)
        if isinstance(cd.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo)
    ]


# ---------------------------------------------------------------------------------------------------------------
# Finding a node's VM


def find_vm(session: VsphereSession, vm_name: str, node: str, dc: vim.Datacenter | None = None) -> vim.VirtualMachine:
    """The node's VM: the one with this name (the one with this name and the node's marker when names repeat)."""
    vm = find_vm_or_none(session, vm_name, node, dc)
    if vm is None:
        raise VsphereError(
            "VM not found",
            f"vCenter has no VM named {vm_name!r} in datacenter {session.settings.datacenter}",
            remediation="check the node's VM name, or run the Prepare VMs step to create it",
        )
    return vm


def find_vm_or_none(
    session: VsphereSession, vm_name: str, node: str, dc: vim.Datacenter | None = None
) -> vim.VirtualMachine | None:
    found = session.find_vms(vm_name, dc)
    if len(found) <= 1:
        return found[0] if found else None
    ours = [vm for vm in found if extra_config(vm).get(MARKER_KEY) == node]
    if len(ours) == 1:
        return ours[0]
    raise VsphereError(
        "Several VMs with one name",
        f"{len(found)} VMs are named {vm_name!r} ({len(ours)} of them marked for {node})",
        details="\n".join(f"{vm._moId}" for vm in found),
        remediation="rename or remove the VMs that are not this node's, so the name is unique",
    )


# ---------------------------------------------------------------------------------------------------------------
# Spec


@dataclass(frozen=True)
class Placement:
    pool: vim.ResourcePool
    folder: vim.Folder
    host: vim.HostSystem | None


def eligible_hosts(cluster: vim.ClusterComputeResource) -> list[vim.HostSystem]:
    hosts = []
    for h in cluster.host or []:
        rt = h.runtime
        if str(rt.connectionState) == "connected" and not rt.inMaintenanceMode:
            hosts.append(h)
    return sorted(hosts, key=lambda h: str(h.name))


def choose_host(
    session: VsphereSession, cluster: vim.ClusterComputeResource, index: int | None
) -> vim.HostSystem | None:
    """Spreads the nodes: by the node's index when given, else the host running fewest of the wizard's VMs."""
    hosts = eligible_hosts(cluster)
    if not hosts:
        return None
    if index is not None:
        return hosts[index % len(hosts)]
    load = {h._moId: 0 for h in hosts}
    for obj, props in session.properties(vim.VirtualMachine, ["runtime.host", "config.extraConfig"], cluster):
        del obj
        marked = any(str(o.key) == MARKER_KEY for o in props.get("config.extraConfig") or [])
        host = props.get("runtime.host")
        if marked and host is not None and host._moId in load:
            load[host._moId] += 1
    return min(hosts, key=lambda h: (load[h._moId], str(h.name)))


def nic_backing(network: vim.Network) -> vim.vm.device.VirtualDevice.BackingInfo:
    if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        dvs = network.config.distributedVirtualSwitch
        return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(portgroupKey=network.key, switchUuid=dvs.uuid)
        )
    return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network.name, network=network)


def _add(device: vim.vm.device.VirtualDevice, create_file: bool = False) -> vim.vm.device.VirtualDeviceSpec:
    extra = {"fileOperation": "create"} if create_file else {}
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=device, **extra)


def _edit(device: vim.vm.device.VirtualDevice) -> vim.vm.device.VirtualDeviceSpec:
    return vim.vm.device.VirtualDeviceSpec(operation="edit", device=device)


def _disk(key: int, controller: int, unit: int, gb: int) -> vim.vm.device.VirtualDisk:
    return vim.vm.device.VirtualDisk(
        key=key,
        controllerKey=controller,
        unitNumber=unit,
        capacityInKB=gb * GIB_KB,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", thinProvisioned=True, fileName=""),
    )


def _empty_cd_backing() -> vim.vm.device.VirtualDevice.BackingInfo:
    return vim.vm.device.VirtualCdrom.RemotePassthroughBackingInfo(deviceName="", exclusive=False, useAutoDetect=False)


def marker_annotation(node: str) -> str:
    return (
        f"Palette appliance node {node}, created by palette-wizard. The wizard finds this VM by its name and "
        f"its advanced setting {MARKER_KEY}; keep both."
    )


def create_spec(settings: VsphereSettings, node: str, vm_name: str, network: vim.Network) -> vim.vm.ConfigSpec:
    """The node VM as the appliance docs ask: UEFI, vCPU/RAM, OS + data disk on PVSCSI, VMXNET3, a CD/DVD drive."""
    spec: VmSpec = settings.vm
    scsi = vim.vm.device.ParaVirtualSCSIController(key=-100, busNumber=0, sharedBus="noSharing")
    sata = vim.vm.device.VirtualAHCIController(key=-200, busNumber=0)
    cd = vim.vm.device.VirtualCdrom(
        key=-201,
        controllerKey=-200,
        unitNumber=0,
        backing=_empty_cd_backing(),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(
            startConnected=False, connected=False, allowGuestControl=True
        ),
    )
    nic = vim.vm.device.VirtualVmxnet3(
        key=-300,
        addressType="generated",
        backing=nic_backing(network),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(
            startConnected=True, connected=True, allowGuestControl=True
        ),
    )
    return vim.vm.ConfigSpec(
        name=vm_name,
        guestId=GUEST_ID,
        firmware="efi",
        numCPUs=spec.cpus,
        numCoresPerSocket=spec.cpus,
        memoryMB=spec.memory_gb * 1024,
        annotation=marker_annotation(node),
        files=vim.vm.FileInfo(vmPathName=f"[{settings.datastore}]"),
        deviceChange=[
            _add(scsi),
            _add(_disk(-101, -100, 0, spec.os_disk_gb), create_file=True),
            _add(_disk(-102, -100, 1, spec.data_disk_gb), create_file=True),
            _add(sata),
            _add(cd),
            _add(nic),
        ],
        extraConfig=[
            vim.option.OptionValue(key="disk.EnableUUID", value="TRUE"),
            vim.option.OptionValue(key=MARKER_KEY, value=node),
        ],
    )


def validate(vm: vim.VirtualMachine, spec: VmSpec, network: vim.Network) -> list[str]:
    """What keeps ``vm`` from being an appliance node of ``spec``; empty means it fits."""
    cfg = vm.config
    if cfg is None:
        return ["its configuration cannot be read (is it inaccessible or orphaned?)"]
    problems: list[str] = []
    if str(cfg.firmware) != "efi":
        problems.append(f"firmware is {cfg.firmware}; the appliance boots only with UEFI (EFI)")
    if int(cfg.hardware.numCPU) < spec.cpus:
        problems.append(f"{cfg.hardware.numCPU} vCPU, needs at least {spec.cpus}")
    if int(cfg.hardware.memoryMB) < spec.memory_gb * 1024:
        problems.append(f"{cfg.hardware.memoryMB // 1024} GB memory, needs at least {spec.memory_gb} GB")
    ds = disks(vm)
    if len(ds) < 2:
        problems.append(f"{len(ds)} disk(s); needs an OS disk and a data disk")
    else:
        for what, disk, gb in (("OS disk", ds[0], spec.os_disk_gb), ("data disk", ds[1], spec.data_disk_gb)):
            have = int(disk.capacityInKB) // GIB_KB
            if have < gb:
                problems.append(f"{what} is {have} GB, needs at least {gb} GB")
    if not any(nic_on_network(n, network) for n in nics(vm)):
        problems.append(f"no network adapter on {network.name}")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Operations


def reconfigure(vm: vim.VirtualMachine, spec: vim.vm.ConfigSpec, doing: str, cancel: CancelToken) -> None:
    wait_task(vm.ReconfigVM_Task(spec=spec), doing, cancel, vm=vm)


#: The question vSphere asks when a running guest has locked the CD-ROM door ("msg.cdromdisconnect.locked").
CDROM_LOCK_QUESTION = "cdromdisconnect.locked"


def answer_question(vm: vim.VirtualMachine, doing: str) -> None:
    """Answer the CD-ROM door-lock question with Yes; raise on any other pending question."""
    runtime = vm.runtime
    question = runtime.question if runtime is not None else None
    if question is None:
        return
    messages = [str(m.id) for m in question.message or []]
    text = str(question.text or "")
    if any(CDROM_LOCK_QUESTION in m for m in messages) or "locked the CD-ROM door" in text:
        choices = question.choice.choiceInfo if question.choice is not None else []
        yes = next((c for c in choices if str(c.label).lower() in ("yes", "button.yes")), None)
        if yes is not None:
            vm.AnswerVM(questionId=question.id, answerChoice=str(yes.key))
            return
    raise VsphereError(
        "The VM is waiting for an answer",
        f"while {doing}, {vm.name} asks: {text or ', '.join(messages)}",
        remediation="answer the question on the VM in the vSphere Client, then run again",
    )


def create_vm(
    session: VsphereSession,
    node: str,
    vm_name: str,
    cancel: CancelToken,
    report: Reporter,
    *,
    index: int | None = None,
) -> tuple[vim.VirtualMachine, bool]:
    """The node's VM, created to spec unless a VM of this name with the node's marker exists (then validated).

    Returns the VM and whether it was created now.
    """
    settings = session.settings
    dc = session.datacenter()
    network = session.network(dc)
    session.datastore(dc)
    existing = find_vm_or_none(session, vm_name, node, dc)
    if existing is not None:
        if extra_config(existing).get(MARKER_KEY) != node:
            raise VsphereError(
                "VM name in use",
                f"a VM named {vm_name!r} exists that the wizard did not create for {node}",
                remediation=(
                    "choose another VM name for the node, remove that VM, or switch the project to existing VMs "
                    "(provider.vsphere.vm_mode: existing) to install onto it"
                ),
            )
        problems = validate(existing, settings.vm, network)
        if problems:
            raise VsphereError(
                "VM differs from the spec",
                f"{vm_name} (created earlier for {node}) no longer matches the project",
                details="\n".join(problems),
                remediation="fix the VM's settings in vCenter, or delete it so the wizard creates it again",
            )
        report.update(1.0, f"{vm_name} exists already (marked for {node})")
        return existing, False
    cluster = session.cluster(dc)
    pool = session.resource_pool(cluster)
    folder = session.vm_folder(dc)
    host = choose_host(session, cluster, index)
    spec = create_spec(settings, node, vm_name, network)
    report.update(0.05, f"Creating {vm_name}" + (f" on {host.name}" if host is not None else ""))
    task = session.call(f"creating VM {vm_name}", folder.CreateVM_Task, config=spec, pool=pool, host=host)
    vm = wait_task(task, f"creating VM {vm_name}", cancel, report.child(0.05, 0.95))
    if not isinstance(vm, vim.VirtualMachine):
        raise VsphereError("VM not created", f"vCenter finished creating {vm_name} but returned no VM")
    log.info("created VM %s (%s) for %s", vm_name, vm._moId, node)
    return vm, True


def adopt_existing(
    session: VsphereSession, node: str, vm_name: str, cancel: CancelToken, report: Reporter
) -> vim.VirtualMachine:
    """An operator's VM validated against the spec; its marker and disk UUIDs are set when it is powered off."""
    dc = session.datacenter()
    network = session.network(dc)
    vm = find_vm(session, vm_name, node, dc)
    problems = validate(vm, session.settings.vm, network)
    if problems:
        raise VsphereError(
            "VM does not fit the appliance",
            f"{vm_name} cannot be used for {node}",
            details="\n".join(problems),
            remediation="change the VM in vCenter (power it off first) or pick another VM for the node",
        )
    extra = extra_config(vm)
    wanted = {MARKER_KEY: node, "disk.EnableUUID": "TRUE"}
    missing = {k: v for k, v in wanted.items() if extra.get(k, "").upper() != v.upper()}
    if missing:
        if str(vm.runtime.powerState) != "poweredOff" and "disk.EnableUUID" in missing:
            raise VsphereError(
                "VM must be powered off",
                f"{vm_name} needs disk.EnableUUID=TRUE, which can only be set while it is powered off",
                remediation=f"power off {vm_name} (the install wipes it anyway) and retry",
            )
        report.update(0.5, f"Marking {vm_name} for {node}")
        reconfigure(
            vm,
            vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in missing.items()]),
            f"marking VM {vm_name}",
            cancel,
        )
    report.update(1.0, f"{vm_name} fits the appliance spec")
    return vm


def _controller_with_free_unit(
    vm: vim.VirtualMachine, near: vim.vm.device.VirtualCdrom | None
) -> tuple[int, int] | None:
    """(controller key, unit) for one more CD/DVD drive: next to ``near``, else on any IDE or SATA controller."""
    devs = devices(vm)
    by_key = {d.key: d for d in devs}
    candidates: list[Any] = []
    if near is not None and near.controllerKey in by_key:
        candidates.append(by_key[near.controllerKey])
    candidates += [
        d
        for d in devs
        if isinstance(d, vim.vm.device.VirtualIDEController | vim.vm.device.VirtualAHCIController)
        and d not in candidates
    ]
    for ctrl in candidates:
        limit = 2 if isinstance(ctrl, vim.vm.device.VirtualIDEController) else 30
        # From the devices' side: a controller's own device list is not always filled in (vcsim leaves it empty).
        used = {d.unitNumber for d in devs if d.controllerKey == ctrl.key} | {
            by_key[k].unitNumber for k in ctrl.device or [] if k in by_key
        }
        for unit in range(limit):
            if unit not in used:
                return ctrl.key, unit
    return None


def _iso_cd(cd: vim.vm.device.VirtualCdrom, path: str) -> vim.vm.device.VirtualCdrom:
    cd.backing = vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=path)
    cd.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
        startConnected=True, connected=True, allowGuestControl=True
    )
    return cd


@dataclass(frozen=True)
class BootResult:
    action: str  # "powered-on", "reset", "already-booting", "already-installed"
    isos: tuple[str, ...]
    boot_order: tuple[str, ...]


def attach_and_boot(
    session: VsphereSession,
    vm: vim.VirtualMachine,
    *,
    iso: str,
    seed: str,
    cancel: CancelToken,
    report: Reporter,
) -> BootResult:
    """ISO on drive 1 (seed ISO on drive 2), CD then disk, then power on — or reset a VM running something else."""
    name = vm.name
    extra = extra_config(vm)
    power = str(vm.runtime.powerState)
    attached = iso_backings(vm)
    wanted = [iso, seed] if seed else [iso]
    if extra.get(STATE_KEY) == "ejected" and extra.get(BOOT_KEY) == iso:
        report.update(1.0, f"{name} was installed from this ISO already (media ejected); not booted again")
        return BootResult("already-installed", tuple(attached), tuple(boot_order(vm)))
    cds = cdroms(vm)
    connected = bool(cds) and cds[0].connectable is not None and bool(cds[0].connectable.connected)
    if (
        power == "poweredOn"
        and extra.get(STATE_KEY) == "booting"
        and extra.get(BOOT_KEY) == iso
        and attached[: len(wanted)] == wanted
        and connected
    ):
        report.update(1.0, f"{name} is already running from the ISO")
        return BootResult("already-booting", tuple(attached), tuple(boot_order(vm)))

    os_disks = disks(vm)
    if not os_disks:
        raise VsphereError("VM has no disk", f"{name} has no disk to install onto", remediation="add the OS disk")
    changes: list[vim.vm.device.VirtualDeviceSpec] = []
    next_key = -1000
    for i, path in enumerate(wanted):
        if i < len(cds):
            changes.append(_edit(_iso_cd(cds[i], path)))
            continue
        slot = _controller_with_free_unit(vm, cds[0] if cds else None)
        if slot is None:
            raise VsphereError(
                "No room for a CD/DVD drive",
                f"{name} has no IDE or SATA controller with a free slot for drive {i + 1}",
                remediation="add a SATA controller to the VM, or remove an unused device",
            )
        new = vim.vm.device.VirtualCdrom(key=next_key, controllerKey=slot[0], unitNumber=slot[1])
        next_key -= 1
        changes.append(_add(_iso_cd(new, path)))
        # Reserve the slot for a possible third drive in this same spec (never needed today, cheap to keep right).
        cds.append(new)
    spec = vim.vm.ConfigSpec(
        deviceChange=changes,
        bootOptions=vim.vm.BootOptions(
            bootOrder=[
                vim.vm.BootOptions.BootableCdromDevice(),
                vim.vm.BootOptions.BootableDiskDevice(deviceKey=os_disks[0].key),
            ]
        ),
        extraConfig=[
            vim.option.OptionValue(key=BOOT_KEY, value=iso),
            vim.option.OptionValue(key=STATE_KEY, value="booting"),
        ],
    )
    report.update(0.1, f"Attaching the ISO to {name}")
    reconfigure(vm, spec, f"attaching the ISO to {name}", cancel)
    if power == "poweredOn":
        report.update(0.5, f"Resetting {name} to boot from the ISO")
        wait_task(vm.ResetVM_Task(), f"resetting {name}", cancel, report.child(0.5, 0.5))
        action = "reset"
    else:
        report.update(0.5, f"Powering on {name}")
        wait_task(vm.PowerOnVM_Task(), f"powering on {name}", cancel, report.child(0.5, 0.5))
        action = "powered-on"
    return BootResult(action, tuple(iso_backings(vm)), tuple(boot_order(vm)))


def eject(vm: vim.VirtualMachine, cancel: CancelToken, report: Reporter) -> bool:
    """Disconnects every ISO and makes the OS disk the only boot device; returns False when nothing was to do."""
    name = vm.name
    os_disks = disks(vm)
    disk_first = [f"disk:{os_disks[0].key}"] if os_disks else []
    attached = [cd for cd in cdroms(vm) if isinstance(cd.backing, vim.vm.device.VirtualCdrom.IsoBackingInfo)]
    if not attached and boot_order(vm) == disk_first and extra_config(vm).get(STATE_KEY) == "ejected":
        report.update(1.0, f"{name}: no ISO attached, boots from disk")
        return False
    changes = []
    for cd in attached:
        cd.backing = _empty_cd_backing()
        cd.connectable = vim.vm.device.VirtualDevice.ConnectInfo(
            startConnected=False, connected=False, allowGuestControl=True
        )
        changes.append(_edit(cd))
    order = [vim.vm.BootOptions.BootableDiskDevice(deviceKey=os_disks[0].key)] if os_disks else []
    spec = vim.vm.ConfigSpec(
        deviceChange=changes,
        bootOptions=vim.vm.BootOptions(bootOrder=order),
        extraConfig=[vim.option.OptionValue(key=STATE_KEY, value="ejected")],
    )
    report.update(0.2, f"Ejecting the ISO from {name}")
    reconfigure(vm, spec, f"ejecting the ISO from {name}", cancel)
    report.update(1.0, f"{name}: ISO ejected, boots from disk")
    return True


# ---------------------------------------------------------------------------------------------------------------
# Anti-affinity


@dataclass(frozen=True)
class RuleResult:
    action: str  # "created", "updated", "unchanged", "skipped"
    message: str
    key: int | None = None


def anti_affinity(
    session: VsphereSession, vms: Sequence[vim.VirtualMachine], rule_name: str, cancel: CancelToken
) -> RuleResult:
    """A DRS rule keeping the node VMs on different hosts, when DRS is on and there are hosts enough."""
    cluster = session.cluster()
    cfg: Any = cluster.configurationEx  # a ClusterConfigInfoEx for clusters; the stubs only know the base class
    drs = bool(cfg.drsConfig.enabled) if cfg is not None and cfg.drsConfig is not None else False
    hosts = eligible_hosts(cluster)
    if not drs:
        return RuleResult("skipped", f"DRS is off on {cluster.name}: no anti-affinity rule (spread the VMs by hand)")
    if len(hosts) < len(vms):
        return RuleResult(
            "skipped",
            f"{cluster.name} has {len(hosts)} usable host(s) for {len(vms)} VMs: an anti-affinity rule could not "
            "be satisfied, so none was made",
        )
    wanted = {vm._moId for vm in vms}
    existing = next((r for r in cfg.rule or [] if r.name == rule_name), None)
    if (
        isinstance(existing, vim.cluster.AntiAffinityRuleSpec)
        and {v._moId for v in existing.vm or []} == wanted
        and existing.enabled
    ):
        return RuleResult("unchanged", f"rule {rule_name} already keeps the VMs apart", existing.key)
    info = vim.cluster.AntiAffinityRuleSpec(name=rule_name, enabled=True, mandatory=False, vm=list(vms))
    if existing is not None:
        info.key = existing.key
    op = "edit" if existing is not None else "add"
    spec = vim.cluster.ConfigSpecEx(rulesSpec=[vim.cluster.RuleSpec(operation=op, info=info)])
    wait_task(cluster.ReconfigureComputeResource_Task(spec=spec, modify=True), f"setting DRS rule {rule_name}", cancel)
    after: Any = cluster.configurationEx
    rule = next((r for r in after.rule or [] if r.name == rule_name), None)
    return RuleResult(
        "updated" if existing is not None else "created",
        f"rule {rule_name} keeps {len(vms)} VMs on different hosts",
        rule.key if rule is not None else None,
    )


# ---------------------------------------------------------------------------------------------------------------
# Guest


def _usable_ip(text: str) -> bool:
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(text)
        return not (ip.is_link_local or (ip.is_loopback and ip.version == 6) or ip.is_unspecified)
    return False


def guest_identity(vm: vim.VirtualMachine) -> tuple[str, str]:
    """(IP, host name) as VMware Tools reports them; IPv4 first; empty strings when not known."""
    guest = vm.guest
    if guest is None:
        return "", ""
    candidates: list[str] = []
    if guest.ipAddress:
        candidates.append(str(guest.ipAddress))
    for nic in guest.net or []:
        candidates.extend(str(a) for a in nic.ipAddress or [])
    usable = [c for c in candidates if _usable_ip(c)]
    usable.sort(key=lambda a: ipaddress.ip_address(a).version)
    return (usable[0] if usable else ""), str(guest.hostName or "")


def wait_guest(
    vm: vim.VirtualMachine,
    timeout: float,
    cancel: CancelToken,
    *,
    poll: float = 2.0,
    clock: Any = time.monotonic,
) -> tuple[str, str]:
    """Polls until VMware Tools reports an IP (and, if it comes with it, the host name)."""
    deadline = clock() + timeout
    while True:
        ip, hostname = guest_identity(vm)
        if ip:
            return ip, hostname
        if clock() >= deadline:
            raise VsphereError(
                "No guest address",
                f"{vm.name} reported no IP address within {timeout:.0f} s",
                remediation=(
                    "VMware Tools (open-vm-tools) reports the address once the system is up; check the VM's "
                    "console and network, or enter the node's address in the project"
                ),
            )
        cancel.sleep(poll)


def names(objs: Iterable[vim.ManagedEntity]) -> list[str]:
    return [str(o.name) for o in objs]
