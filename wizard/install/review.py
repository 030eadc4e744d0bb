"""What an install of a project will touch, in the operator's words: the review before Start.

Plain values from the project alone (nothing is contacted), so the desktop wizard can show it before the operator
confirms, and ``digest`` changes whenever any of it does (a confirmation given for one list does not carry over to
another). Each :class:`Touch` is one kind of change — machines created or booted, disks erased, passwords replaced —
with the things it applies to; ``destructive`` marks what cannot be undone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from wizard.core.project import ConfigureMode, Project, ProviderType, VmMode

#: Where an explanation of each kind of change starts; the pages list them in this order.
KINDS = ("machines", "disks", "nodes", "cluster", "console")


@dataclass(frozen=True)
class Touch:
    kind: str
    what: str
    items: tuple[str, ...] = ()
    destructive: bool = False

    def text(self) -> str:
        return self.what + (": " + ", ".join(self.items) if self.items else "")


def vm_name(project: Project, name: str, vm: str) -> str:
    """A node's VM: its own ``vm``, else ``<project>-<node>`` (as the vSphere provider names it)."""
    return vm or f"{project.name}-{name}"


def _machines(project: Project) -> list[Touch]:
    provider = project.provider
    nodes = project.nodes
    count = f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}"
    out: list[Touch] = []
    if provider.type is ProviderType.VSPHERE and provider.vsphere is not None:
        vs = provider.vsphere
        where = f"vCenter {vs.server}, datacenter {vs.datacenter}" + (f", cluster {vs.cluster}" if vs.cluster else "")
        vms = tuple(vm_name(project, n.name, n.vm) for n in nodes)
        if vs.vm_mode is VmMode.CREATE:
            spec = vs.vm
            out.append(
                Touch(
                    "machines",
                    f"Creates {len(vms)} VM(s) in {where} on datastore {vs.datastore} ({spec.cpus} vCPU, "
                    f"{spec.memory_gb} GiB memory, disks of {spec.os_disk_gb} and {spec.data_disk_gb} GB each)",
                    vms,
                )
            )
        else:
            out.append(Touch("machines", f"Reconfigures these existing VMs in {where} to boot from the ISO", vms))
        iso = project.files.iso
        if iso is not None:
            out.append(
                Touch("machines", f"Uploads {iso.path.name} to datastore {vs.datastore}, folder {vs.iso_folder}")
            )
        out.append(Touch("machines", "Powers the VMs on from the ISO (a running VM is restarted)", vms))
    elif provider.type is ProviderType.REDFISH:
        bmcs = tuple(f"{n.name} (BMC {n.bmc.address})" for n in nodes if n.bmc is not None)
        source = provider.redfish.iso_url if provider.redfish and provider.redfish.iso_url else "this computer"
        out.append(
            Touch(
                "machines",
                f"Through each BMC: inserts the ISO (served from {source}) as virtual media, sets a one-time boot "
                "from it and restarts the machine (a running machine is reset)",
                bmcs,
            )
        )
    elif provider.type is ProviderType.MAAS and provider.maas is not None:
        machines = tuple(f"{n.name} (MAAS {n.maas})" for n in nodes if n.maas)
        out.append(Touch("machines", f"Allocates {len(machines)} machine(s) in MAAS {provider.maas.url}", machines))
        out.append(Touch("machines", "Powers them on to boot the ISO (a running machine is restarted)"))
    else:
        out.append(Touch("machines", f"You boot {count} from the ISO yourself; the wizard waits for each to answer"))
    return out


def review(project: Project) -> list[Touch]:
    """Everything an install of ``project`` changes, grouped by kind (see :data:`KINDS`)."""
    nodes = project.nodes
    names = tuple(f"{n.name} ({n.ip})" if n.ip else n.name for n in nodes)
    appliance = project.appliance
    disk = "the largest disk" if appliance.install_disk == "auto" else appliance.install_disk
    out = _machines(project)
    out.append(
        Touch(
            "disks",
            f"The installer erases {disk} and the storage disk {appliance.data_disk} on every node — everything on "
            "them is lost",
            names,
            destructive=True,
        )
    )
    if appliance.configure is ConfigureMode.SEED:
        out.append(Touch("nodes", "Attaches a configuration ISO to each node (host name, account, network)"))
    elif appliance.configure is ConfigureMode.LOCALUI:
        out.append(Touch("nodes", "Sets each node's host name and network through its Local UI (the node reboots)"))
    if appliance.password is not None:
        out.append(Touch("nodes", f"Replaces the default password of the account {appliance.username!r}", names))
    leader = appliance.leader or (nodes[0].name if nodes else "")
    if len(nodes) > 1:
        out.append(Touch("cluster", f"Links the nodes, with {leader} as the leader"))
    bundle = project.files.content_bundle
    if bundle is not None:
        out.append(Touch("cluster", f"Uploads the content bundle {bundle.path.name} to {leader}"))
    out.append(
        Touch("cluster", f"Creates the management cluster {project.name!r} with the virtual IP {project.network.vip}")
    )
    console = project.console
    if console is not None:
        out.append(
            Touch(
                "console",
                f"Signs in to the system console at https://{project.network.vip}"
                + (f":{console.port}" if console.port != 443 else "")
                + "/system and replaces its admin password",
            )
        )
        activation = project.activation
        if activation.key is not None:
            out.append(Touch("console", "Activates Palette with the key from the keyring"))
        elif activation.defer:
            out.append(Touch("console", "Leaves Palette on its 30-day trial (activation deferred)"))
        packs = project.files.pack_bundles
        if packs:
            out.append(Touch("console", f"Uploads {len(packs)} pack bundle(s)", tuple(p.path.name for p in packs)))
    return out


def digest(touches: list[Touch]) -> str:
    """Changes whenever what the install touches does."""
    text = "\n".join(f"{t.kind}|{t.destructive}|{t.what}|{'|'.join(t.items)}" for t in touches)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
