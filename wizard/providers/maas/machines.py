"""Which machines can be used, and how each one boots (through its Redfish BMC, or by hand)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import quote, urlsplit

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.project import Bmc, SecretRef
from wizard.core.redact import REDACTOR
from wizard.providers.maas.client import MaasClient, Machine, MachineStatus
from wizard.providers.maas.errors import MaasSelectionError

_STATUS_ADVICE: dict[int, str] = {
    MachineStatus.NEW: "is New: commission it in MAAS first",
    MachineStatus.COMMISSIONING: "is still commissioning: wait until it is Ready",
    MachineStatus.FAILED_COMMISSIONING: "failed commissioning: fix it and commission it again",
    MachineStatus.MISSING: "is Missing: MAAS cannot reach it",
    MachineStatus.RESERVED: "is Reserved",
    MachineStatus.RETIRED: "is Retired",
    MachineStatus.BROKEN: "is marked Broken: repair it and mark it fixed in MAAS",
    MachineStatus.RELEASING: "is being released: wait until it is Ready",
    MachineStatus.DISK_ERASING: "is erasing its disks: wait until it is Ready",
    MachineStatus.TESTING: "is running tests: wait until it is Ready",
}


def machine_problem(machine: Machine, me: str) -> str | None:
    """Why ``machine`` cannot be used by user ``me``, or None when it is Ready or already allocated to ``me``."""
    if machine.status == MachineStatus.READY and machine.owner in (None, me):
        return None
    if machine.allocated_to(me):
        return None
    if machine.owner and machine.owner != me:
        return f"{machine.label} is {machine.status_name or 'in use'} and belongs to {machine.owner}"
    if machine.status in (MachineStatus.DEPLOYED, MachineStatus.DEPLOYING, MachineStatus.FAILED_DEPLOYMENT):
        return f"{machine.label} is {machine.status_name} (yours): release it in MAAS before installing the appliance"
    advice = _STATUS_ADVICE.get(machine.status)
    if advice:
        return f"{machine.label} {advice}"
    return f"{machine.label} is {machine.status_name or machine.status}, not Ready"


def resolve(client: MaasClient, node_refs: Sequence[str], *, me: str) -> list[Machine]:
    """The machines named by system id or host name, in order; every unusable one is reported at once."""
    problems: dict[str, str] = {}
    found: list[Machine] = []
    seen: dict[str, str] = {}
    for ref in node_refs:
        try:
            machine = client.machine(ref)
        except WizardError as exc:
            if exc.title in ("Unknown MAAS machine", "Ambiguous MAAS machine"):
                problems[ref] = exc.message
                continue
            raise
        if machine.system_id in seen:
            problems[ref] = f"is the same machine as {seen[machine.system_id]!r} ({machine.system_id})"
            continue
        seen[machine.system_id] = ref
        why = machine_problem(machine, me)
        if why:
            problems[ref] = why
        else:
            found.append(machine)
    if problems:
        raise MaasSelectionError(problems)
    return found


_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")


def _label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric."""
    value = _LABEL_VALUE.sub("-", text)[:63]
    return value.strip("._-")


def zone_labels(machine: Machine) -> dict[str, str]:
    """Topology labels for the node from MAAS's grouping.

    A MAAS zone is a physical fault domain (a rack, a room), which is what Kubernetes calls a zone; the MAAS
    resource pool is the wider set of machines the site reserved, used as the region. Empty ones are left out.
    """
    labels: dict[str, str] = {}
    region, zone = _label_value(machine.pool), _label_value(machine.zone)
    if region:
        labels["topology.kubernetes.io/region"] = region
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    return labels


# ---------------------------------------------------------------------------------------------------------------
# Boot plan


@dataclass(frozen=True)
class RedfishTarget:
    """Boot through the BMC with Redfish virtual media, with the credentials MAAS keeps for it.

    ``bmc.password`` only names where the password came from (it is not in the keyring); the value is
    ``password``, kept out of ``repr``.
    """

    system_id: str
    hostname: str
    bmc: Bmc
    password: str = field(repr=False)
    #: MAAS's ``node_id``: the Redfish System member (e.g. "1", "System.Embedded.1"); empty = discover it.
    redfish_system: str = ""

    @property
    def boot_bmc(self) -> Bmc:
        """The BMC as the Redfish jobs take it: MAAS keeps the host in ``power_address`` and the System in
        ``node_id`` (its Redfish driver then uses ``/redfish/v1/Systems/<node_id>``), so the System path joins the
        address unless the address already names one."""
        address = self.bmc.address.strip().rstrip("/")
        if not self.redfish_system or "/Systems/" in address:
            return self.bmc
        if "://" not in address:
            address = f"https://{address}"
        parts = urlsplit(address)
        system = quote(self.redfish_system, safe="")
        return replace(self.bmc, address=f"{parts.scheme}://{parts.netloc}/redfish/v1/Systems/{system}")


@dataclass(frozen=True)
class ManualInstruction:
    """MAAS cannot attach virtual media through this power type: the operator boots the node by hand."""

    system_id: str
    hostname: str
    power_type: str
    bmc_address: str
    text: str
    #: Set when the power type would allow the Redfish path but MAAS lacks what it needs.
    reason: str = ""


def _bmc_address(params: Mapping[str, str]) -> str:
    for key in ("power_address", "power_hostname", "power_ip"):
        if params.get(key):
            return params[key]
    return ""


def boot_route(machine: Machine, params: Mapping[str, str], *, iso_url: str = "") -> RedfishTarget | ManualInstruction:
    """How this machine boots the appliance ISO: our Redfish path when MAAS drives it by Redfish, else by hand."""
    power_type = machine.power_type or "manual"
    address = _bmc_address(params)
    if power_type == "redfish":
        user, password = params.get("power_user", ""), params.get("power_pass", "")
        if address and user and password:
            REDACTOR.add(password)
            return RedfishTarget(
                system_id=machine.system_id,
                hostname=machine.hostname,
                bmc=Bmc(
                    address=address,
                    username=user,
                    password=SecretRef(f"maas:{machine.system_id}:power_pass"),
                ),
                password=password,
                redfish_system=params.get("node_id", ""),
            )
        missing = [k for k, v in (("power_address", address), ("power_user", user), ("power_pass", password)) if not v]
        reason = f"MAAS has no {', '.join(missing)} for its Redfish BMC"
        return _manual(machine, power_type, address, iso_url, reason)
    return _manual(machine, power_type, address, iso_url, "")


def _manual(machine: Machine, power_type: str, address: str, iso_url: str, reason: str) -> ManualInstruction:
    iso = f"the appliance ISO ({iso_url})" if iso_url else "the appliance ISO"
    name = machine.hostname or machine.system_id
    boot = f"choose a one-time UEFI boot from that CD/DVD and power on {name}"
    if reason:
        how = f"{reason}, so the wizard cannot boot it. "
        how += (
            f"Open the BMC's web console at {address}, mount {iso} as virtual media, {boot}."
            if address
            else f"Mount {iso} through the machine's KVM or a USB stick, {boot}."
        )
    elif power_type in ("ipmi", "moonshot", "mscm", "msftocs", "recs_box", "ucsm", "hmc", "openbmc", "wedge"):
        where = f" at {address}" if address else ""
        how = (
            f"{name} is powered by {power_type.upper()}, which cannot attach virtual media. Open its BMC's web "
            f"console or remote KVM{where}, mount {iso} as virtual media (or plug in a USB stick with it), {boot}."
        )
    elif power_type == "amt":
        where = f" at {address}" if address else ""
        how = (
            f"{name} is powered by Intel AMT{where}. Use AMT's KVM with IDE/USB redirection (e.g. MeshCommander) "
            f"to present {iso}, {boot}."
        )
    elif power_type in ("virsh", "lxd", "vmware", "proxmox"):
        where = f" on {address}" if address else ""
        how = (
            f"{name} is a {power_type} virtual machine{where}. Attach {iso} to its virtual CD-ROM, make the CD-ROM "
            f"the first boot device and power it on."
        )
    elif power_type == "manual":
        how = (
            f"MAAS has no power control for {name}. At the machine, connect {iso} as a USB stick or through its "
            f"KVM's virtual media, {boot}."
        )
    else:
        where = f" at {address}" if address else ""
        how = (
            f"{name} is powered by {power_type}{where}, which the wizard cannot use to attach virtual media. "
            f"Mount {iso} through the machine's KVM or a USB stick, {boot}."
        )
    how += " Leave it Allocated in MAAS and do not Deploy it there: MAAS would network-boot and overwrite the disk."
    return ManualInstruction(machine.system_id, machine.hostname, power_type, address, how, reason)


def route_facts(route: RedfishTarget | ManualInstruction) -> dict[str, str]:
    """What the journal may keep of a boot route: everything but the BMC password."""
    if isinstance(route, RedfishTarget):
        return {
            "route": "redfish",
            "system_id": route.system_id,
            "hostname": route.hostname,
            "bmc": route.boot_bmc.address,
        }
    return {
        "route": "manual",
        "system_id": route.system_id,
        "hostname": route.hostname,
        "power_type": route.power_type,
        "bmc": route.bmc_address,
        "instruction": route.text,
    }


def read_boot_routes(
    client: MaasClient, machines: Mapping[str, str], *, iso_hint: str = "", cancel: CancelToken | None = None
) -> dict[str, RedfishTarget | ManualInstruction]:
    """How each node boots, by node name, from its machine (``machines``: node name → system id).

    Reading power parameters takes an administrator's key; with a user's key every machine is booted by hand (the
    preflight check ``maas.power-type`` has said so).
    """
    admin = client.whoami().is_superuser
    routes: dict[str, RedfishTarget | ManualInstruction] = {}
    for node, system_id in machines.items():
        if cancel is not None:
            cancel.raise_if_cancelled()
        machine = client.machine(system_id)
        # Read for every power type: the BMC's address makes the manual instruction concrete.
        params = client.power_parameters(system_id) if admin and machine.power_type not in ("", "manual") else {}
        route = boot_route(machine, params, iso_url=iso_hint)
        if not admin and machine.power_type == "redfish":
            route = _manual(
                machine,
                machine.power_type,
                "",
                iso_hint,
                "only a MAAS administrator's key can read its Redfish BMC credentials",
            )
        routes[node] = route
    return routes
