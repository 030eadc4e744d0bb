"""What the Nodes page offers to pick from: the provider's VMs, MAAS machines or a BMC's Redfish Systems.

Each provider is asked with its own client, TLS trust and error translation, so a candidate marked usable here is
one the install's own checks accept (the same validation runs), and a failure reads the same as in a run:

* **vSphere** (``vm_mode: existing`` only; in ``create`` mode the wizard makes its VMs and there is nothing to pick):
  the VMs in the configured datacenter and folder, each validated against the project's VM spec.
* **MAAS**: the machines the API key's user can see; usable when Ready or already allocated to that user, with
  the appliance's CPU and memory.
* **Redfish**: a BMC has no directory of servers, so discovery lists the Systems collection of one BMC the
  operator names (a chassis manager or a multi-system BMC has several) and checks each System as preflight does.
  A node names its System by the path in its BMC address (``https://bmc/redfish/v1/Systems/<id>``), which is what
  picking one fills in.

Nothing is changed anywhere; every call is a read. Runs on a worker thread and stops between items on ``cancel``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from wizard.core.cancel import CancelToken
from wizard.core.checks.catalog import CATALOG, CheckResult, CheckSeverity
from wizard.core.errors import WizardError
from wizard.core.project import (
    Bmc,
    MaasSettings,
    Project,
    Provider,
    ProviderType,
    VmMode,
    VsphereSettings,
    hostname_problem,
    read_provider,
)
from wizard.core.secrets import SecretStore
from wizard.core.trust import Confirm, TrustStore, system_or_pinned_tls_context

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Candidate:
    """One thing a node can be. ``fields`` are the node fields picking it fills (raw project-document values)."""

    key: str  # unique within one discovery: VM managed-object id, MAAS system id, System URL
    label: str
    detail: str
    usable: bool
    why_not: str
    fields: dict[str, Any] = field(default_factory=dict)
    #: Other values a node's field may already hold that name this same candidate (a MAAS host name or FQDN, the
    #: bare BMC address of a single-System BMC).
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Discovery:
    provider: ProviderType
    candidates: tuple[Candidate, ...]
    source: str = ""  # where the candidates were found, in the operator's words
    #: Why nothing is listed when that is not an error (vSphere in create mode).
    message: str = ""

    @property
    def usable(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.usable)


def discover(
    project: Project | Provider,
    secrets: SecretStore,
    trust: TrustStore,
    confirm: Confirm | None,
    cancel: CancelToken,
    *,
    bmc: Bmc | None = None,
    vsphere_scheme: str = "https",
    timeout: float = DEFAULT_TIMEOUT,
) -> Discovery:
    """The candidates the project's provider offers; raises :class:`WizardError` (or ``Cancelled``).

    ``project`` may be just the provider settings: while the node table is being filled the whole project is not
    valid yet. ``bmc`` is the BMC whose Systems a Redfish discovery lists (address, user, password reference).
    ``vsphere_scheme`` is "http" only for the simulator in tests.
    """
    provider = project.provider if isinstance(project, Project) else project
    cancel.raise_if_cancelled()
    if provider.type is ProviderType.VSPHERE:
        if provider.vsphere is None:
            raise WizardError("No vCenter settings", "the project names no vCenter", remediation=_FILL_PROVIDER)
        return discover_vsphere(provider.vsphere, secrets, trust, confirm, cancel, scheme=vsphere_scheme)
    if provider.type is ProviderType.MAAS:
        if provider.maas is None:
            raise WizardError("No MAAS settings", "the project names no MAAS", remediation=_FILL_PROVIDER)
        return discover_maas(provider.maas, secrets, trust, confirm, cancel, timeout=timeout)
    if provider.type is ProviderType.REDFISH:
        if bmc is None:
            raise WizardError(
                "No BMC to ask",
                "Redfish has no directory of servers: discovery lists the Systems of one BMC",
                remediation="type the BMC's address, user and password keyring name, then list its systems",
            )
        return discover_redfish(bmc, secrets, trust, confirm, cancel, timeout=timeout)
    raise WizardError(
        "Nothing to discover",
        "the manual provider has no inventory to pick nodes from",
        remediation="type each node's name and address in the table",
    )


_FILL_PROVIDER = "fill in the Provider page first"


# ---------------------------------------------------------------------------------------------------------------
# vSphere


def discover_vsphere(
    settings: VsphereSettings,
    secrets: SecretStore,
    trust: TrustStore,
    confirm: Confirm | None,
    cancel: CancelToken,
    *,
    scheme: str = "https",
) -> Discovery:
    where = f"vCenter {settings.server}:{settings.port}"
    if settings.vm_mode is not VmMode.EXISTING:
        return Discovery(
            ProviderType.VSPHERE,
            (),
            where,
            message=(
                "The project creates its VMs (provider.vsphere.vm_mode: create): give each node the name of the VM "
                "to create. To install onto VMs that already exist, set VM mode to existing on the Provider page "
                "and discover them here."
            ),
        )
    password = secrets.require(settings.password, "provider.vsphere.password")
    # pyVmomi loads slowly and only this provider needs it.
    from pyVmomi import vim

    from wizard.providers.vsphere import vms
    from wizard.providers.vsphere.session import connect

    cancel.raise_if_cancelled()
    candidates: list[Candidate] = []
    with connect(settings, password, trust, confirm, scheme=scheme) as session:
        dc = session.datacenter()
        folder = session.vm_folder(dc)
        network = session.network(dc)
        # The install finds a node's VM by name in the whole datacenter: a repeated name cannot be picked.
        names = Counter(
            str(p.get("name", "")) for _, p in session.properties(vim.VirtualMachine, ["name"], dc.vmFolder)
        )
        rows = session.properties(
            vim.VirtualMachine,
            [
                "name",
                "config.template",
                "runtime.powerState",
                "runtime.host",
                "config.hardware.numCPU",
                "config.hardware.memoryMB",
                "guest.ipAddress",
            ],
            folder,
        )
        hosts = {h._moId: str(p.get("name", "")) for h, p in session.properties(vim.HostSystem, ["name"], dc)}
        for obj, p in sorted(rows, key=lambda row: str(row[1].get("name", ""))):
            cancel.raise_if_cancelled()
            name = str(p.get("name", ""))
            power = _POWER.get(str(p.get("runtime.powerState") or ""), str(p.get("runtime.powerState") or "unknown"))
            parts = [
                power,
                f"{int(p.get('config.hardware.numCPU') or 0)} vCPU",
                f"{int(p.get('config.hardware.memoryMB') or 0) / 1024:g} GB memory",
            ]
            host = p.get("runtime.host")
            if host is not None and hosts.get(host._moId):
                parts.append(f"on {hosts[host._moId]}")
            if p.get("guest.ipAddress"):
                parts.append(f"guest IP {p['guest.ipAddress']}")
            problems: list[str] = []
            if p.get("config.template"):
                problems.append("it is a template, not a VM")
            elif names[name] > 1:
                problems.append(f"{names[name]} VMs in datacenter {dc.name} are named {name!r}; rename all but one")
            else:
                assert isinstance(obj, vim.VirtualMachine)
                problems = session.call(f"reading VM {name}", vms.validate, obj, settings.vm, network)
                marker = session.call(f"reading VM {name}", vms.extra_config, obj).get(vms.MARKER_KEY)
                if marker:
                    parts.append(f"marked for node {marker}")
            candidates.append(
                Candidate(
                    key=str(obj._moId),
                    label=name,
                    detail=", ".join(parts),
                    usable=not problems,
                    why_not="; ".join(problems),
                    fields={"vm": name},
                )
            )
    place = f"datacenter {settings.datacenter}" + (f", folder {settings.folder}" if settings.folder else "")
    log.info("discovered %d VMs in %s (%s)", len(candidates), where, place)
    return Discovery(ProviderType.VSPHERE, tuple(candidates), f"{where}, {place}")


_POWER = {"poweredOn": "powered on", "poweredOff": "powered off", "suspended": "suspended"}


# ---------------------------------------------------------------------------------------------------------------
# MAAS


def discover_maas(
    settings: MaasSettings,
    secrets: SecretStore,
    trust: TrustStore,
    confirm: Confirm | None,
    cancel: CancelToken,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Discovery:
    from wizard.providers.maas import MIN_CPUS, MIN_MEMORY_MIB, MaasClient, machine_problem, zone_labels

    api_key = secrets.require(settings.api_key, "provider.maas.api_key")
    parts = urlsplit(settings.url)
    verify = (
        system_or_pinned_tls_context(
            trust, confirm, parts.hostname or "", parts.port or 443, expected=settings.tls_fingerprint, timeout=timeout
        )
        if parts.scheme == "https"
        else True
    )
    cancel.raise_if_cancelled()
    with MaasClient(settings.url, api_key, verify=verify, timeout=timeout, cancel=cancel) as client:
        me = client.whoami().username
        # The project's tags, pool and zone narrow the list the way MAAS filters it (all must match).
        machines = client.machines(tags=settings.tags, pool=settings.pool, zone=settings.zone)
    candidates: list[Candidate] = []
    for m in sorted(machines, key=lambda m: (m.hostname, m.system_id)):
        memory_gib = m.memory_mib / 1024
        labels = zone_labels(m)
        parts_ = [
            m.status_name or f"status {m.status}",
            f"power {m.power_state}",
            f"{m.cpu_count} CPUs",
            f"{memory_gib:g} GiB",
        ]
        if "topology.kubernetes.io/zone" in labels:
            parts_.append(f"zone {labels['topology.kubernetes.io/zone']}")
        if m.pool:
            parts_.append(f"pool {m.pool}")
        parts_.append(f"powered by {m.power_type or 'nothing (manual)'}")
        if m.owner:
            parts_.append(f"owner {m.owner}")
        problems = [why] if (why := machine_problem(m, me)) else []
        if m.cpu_count < MIN_CPUS or m.memory_mib < MIN_MEMORY_MIB:
            problems.append(
                f"{m.cpu_count} CPUs and {memory_gib:g} GiB; the appliance needs {MIN_CPUS} CPUs and "
                f"{MIN_MEMORY_MIB // 1024} GiB"
            )
        fields: dict[str, Any] = {"maas": m.system_id}
        if m.hostname and hostname_problem(m.hostname) is None:
            fields["hostname"] = m.hostname
        candidates.append(
            Candidate(
                key=m.system_id,
                label=m.label,
                detail=", ".join(parts_),
                usable=not problems,
                why_not="; ".join(problems),
                fields=fields,
                aliases=tuple(a for a in dict.fromkeys((m.hostname, m.fqdn)) if a),
            )
        )
    log.info("discovered %d MAAS machines at %s for %s", len(candidates), settings.url, me)
    return Discovery(ProviderType.MAAS, tuple(candidates), f"MAAS {settings.url} as {me}")


# ---------------------------------------------------------------------------------------------------------------
# Redfish


def discover_redfish(
    bmc: Bmc,
    secrets: SecretStore,
    trust: TrustStore,
    confirm: Confirm | None,
    cancel: CancelToken,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Discovery:
    from wizard.providers.redfish import checks
    from wizard.providers.redfish.client import RedfishClient
    from wizard.providers.redfish.errors import RedfishError
    from wizard.providers.redfish.session import ROOT, members, odata_id, parse_address

    try:
        address = parse_address(bmc.address)
    except ValueError as exc:
        raise RedfishError(
            "Invalid BMC address", str(exc), remediation="give the BMC's host name or IP, optionally https://host:port"
        ) from exc
    password = secrets.require(bmc.password, "the BMC password")
    # The whole BMC, whatever System the typed address names: the point is to see all of them.
    base = Bmc(address.base_url, bmc.username, bmc.password, bmc.tls_fingerprint)
    cancel.raise_if_cancelled()
    with RedfishClient.for_bmc(base, password, trust=trust, confirm=confirm, timeout=timeout) as client:
        collection = odata_id(client.root.get("Systems")) or ROOT + "Systems"
        paths = members(client.get(collection))
        inventories = []
        for path in paths:
            cancel.raise_if_cancelled()
            doc = client.get(path)
            inventories.append((path, doc, client.inventory(path, doc)))
    if not paths:
        raise RedfishError(
            "No System", f"{address.where} lists no computer system", remediation="check the BMC address"
        )
    candidates: list[Candidate] = []
    for path, doc, inv in inventories:
        cancel.raise_if_cancelled()
        system_address = f"{address.base_url}{path}"
        picked = Bmc(system_address, bmc.username, bmc.password, bmc.tls_fingerprint)
        # The checks preflight runs on this System (its own login): what fails a blocker here blocks the install.
        results = checks.run_checks(inv.name or path, picked, password, trust=trust, confirm=confirm, timeout=timeout)
        problems = [r.message for r in results if _blocks(r)]
        model = " ".join(filter(None, (inv.manufacturer, inv.model))) or "unknown model"
        parts = [model, f"power {inv.power_state or 'unknown'}"]
        parts.append(f"{inv.cpus} CPUs" if inv.cpus is not None else "CPUs not reported")
        parts.append(f"{inv.memory_gib:g} GiB" if inv.memory_gib is not None else "memory not reported")
        if inv.boot_mode:
            parts.append(f"boot mode {inv.boot_mode}")
        bmc_fields: dict[str, Any] = {
            "address": system_address,
            "username": bmc.username,
            "password": bmc.password.to_dict(),
        }
        if bmc.tls_fingerprint:
            bmc_fields["tls_fingerprint"] = bmc.tls_fingerprint
        fields: dict[str, Any] = {"bmc": bmc_fields}
        host_name = str(doc.get("HostName") or "").strip().lower()
        if host_name and hostname_problem(host_name) is None:
            fields["hostname"] = host_name
        candidates.append(
            Candidate(
                key=system_address,
                label=f"{inv.name or doc.get('Id') or path} ({path.rstrip('/').rsplit('/', 1)[-1]})",
                detail=", ".join(parts),
                usable=not problems,
                why_not="; ".join(problems),
                fields=fields,
                # With one System, a node whose address is the bare BMC already is that System.
                aliases=(address.base_url,) if len(paths) == 1 else (),
            )
        )
    log.info("discovered %d Systems on %s", len(candidates), address.where)
    return Discovery(ProviderType.REDFISH, tuple(candidates), address.where)


def _blocks(result: CheckResult) -> bool:
    return result.failed and CATALOG[result.check].severity is CheckSeverity.BLOCKER


# ---------------------------------------------------------------------------------------------------------------
# The node table


def taken_by(candidate: Candidate, nodes: Sequence[object]) -> str | None:
    """The name (or row) of the node in ``nodes`` (raw project-document entries) that already is ``candidate``."""
    for i, node in enumerate(nodes):
        if not isinstance(node, Mapping):
            continue
        who = str(node.get("name") or f"row {i + 1}")
        if "vm" in candidate.fields and node.get("vm") == candidate.fields["vm"]:
            return who
        if "maas" in candidate.fields:
            ref = str(node.get("maas") or "").strip()
            if ref and ref in (candidate.fields["maas"], *candidate.aliases):
                return who
        if "bmc" in candidate.fields:
            bmc = node.get("bmc")
            address = str(bmc.get("address") or "") if isinstance(bmc, Mapping) else ""
            if address and any(_same_bmc(address, a) for a in (candidate.fields["bmc"]["address"], *candidate.aliases)):
                return who
    return None


def _same_bmc(a: str, b: str) -> bool:
    from wizard.providers.redfish.session import parse_address

    try:
        x, y = parse_address(a), parse_address(b)
    except ValueError:
        return False
    return (x.scheme, x.host.lower(), x.port, x.system_path.rstrip("/")) == (
        y.scheme,
        y.host.lower(),
        y.port,
        y.system_path.rstrip("/"),
    )


def provider_settings(doc: Mapping[str, Any] | None) -> Provider:
    """The provider section of a raw project document, read by the core's own rules, whether or not the rest of
    the document is valid yet (discovery is how the node table gets filled). Raises WizardError naming what is
    wrong with the provider settings themselves."""
    provider, problems = read_provider((doc or {}).get("provider")) if doc else (None, [])
    errors = [p for p in problems if p.is_error and p.path.startswith("provider")]
    if provider is None or errors:
        raise WizardError(
            "Provider settings incomplete",
            "discovery needs valid provider settings",
            details="\n".join(str(p) for p in errors),
            remediation=_FILL_PROVIDER,
        )
    return provider
