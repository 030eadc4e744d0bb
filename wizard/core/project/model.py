"""The project's model: enums and frozen dataclasses (what a loaded project file becomes), and how a field's
path is spelled."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from wizard.core.problems import Problem

SCHEMA_VERSION = 1

# Migrations upgrade a raw document from version N to N+1; ``migrate`` applies them in order.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class ProviderType(StrEnum):
    VSPHERE = "vsphere"
    REDFISH = "redfish"
    MAAS = "maas"
    MANUAL = "manual"


class AddressMode(StrEnum):
    DHCP = "dhcp"
    STATIC = "static"


class TransferMode(StrEnum):
    """How bundles reach the leader: streamed straight to its Local UI over HTTPS, or staged onto the node over SFTP
    (resumable after a drop, for slow or flaky links) and submitted to the Local UI from the node itself."""

    DIRECT = "direct"
    SFTP = "sftp"


class ConfigureMode(StrEnum):
    """How each node gets its host name, account and network: a seed ISO attached beside the appliance ISO (no one
    at a console), the installer's console screens, typed by the operator as the wizard shows them, or, once the
    node is installed, its Local UI's ``userdata`` and ``configurations`` endpoints (host name, address, proxy and
    CA certificates; the node reboots to apply them)."""

    SEED = "seed"
    CONSOLE = "console"
    LOCALUI = "localui"


class BootMode(StrEnum):
    """How each node gets from the ISO's GRUB menu (whose default, on appliance ISOs, is the interactive installer) to
    the automatic installer that honours the seed: an unattended copy of the ISO whose default is the automatic
    entry (every provider), vSphere's own keyboard pressing the keys within GRUB's countdown, or the operator at the
    node's console, guided by the wizard."""

    UNATTENDED = "unattended"
    KEYS = "keys"
    CONSOLE = "console"


class VmMode(StrEnum):
    CREATE = "create"
    EXISTING = "existing"


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret in the OS keyring; the value never appears in the project."""

    key: str

    def to_dict(self) -> dict[str, str]:
        return {"secret": self.key}


@dataclass(frozen=True)
class VmSpec:
    cpus: int = 8
    memory_gb: int = 16
    os_disk_gb: int = 300
    data_disk_gb: int = 500


@dataclass(frozen=True)
class VsphereSettings:
    server: str
    username: str
    password: SecretRef
    datacenter: str
    datastore: str
    network: str
    port: int = 443
    cluster: str = ""
    resource_pool: str = ""
    folder: str = ""
    iso_folder: str = "palette-iso"
    tls_fingerprint: str = ""
    vm_mode: VmMode = VmMode.CREATE
    vm: VmSpec = field(default_factory=VmSpec)


@dataclass(frozen=True)
class RedfishSettings:
    iso_url: str = ""  # the ISO hosted elsewhere; empty means the wizard serves it itself
    iso_server_bind: str = ""  # address BMCs reach the wizard's ISO server on; empty means auto-detect
    iso_server_port: int = 0  # 0 picks a free port


@dataclass(frozen=True)
class MaasSettings:
    url: str
    api_key: SecretRef
    tls_fingerprint: str = ""
    # Which machines the Nodes page's Discover lists (MAAS's own filters; all must match). Empty: every machine.
    tags: tuple[str, ...] = ()
    pool: str = ""
    zone: str = ""


@dataclass(frozen=True)
class Provider:
    type: ProviderType
    vsphere: VsphereSettings | None = None
    redfish: RedfishSettings | None = None
    maas: MaasSettings | None = None


@dataclass(frozen=True)
class Bmc:
    address: str
    username: str
    password: SecretRef
    tls_fingerprint: str = ""


@dataclass(frozen=True)
class Addressing:
    """How one interface is addressed (``nodes[i].network``; see ``project.nodenet``)."""

    kind: str = "dhcp"  # none | dhcp | static
    ip: str = ""
    prefix: int | None = None
    gateway: str = ""

    @property
    def netmask(self) -> str:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{self.prefix}").netmask) if self.prefix is not None else ""


@dataclass(frozen=True)
class NicConfig:
    name: str
    addressing: Addressing = Addressing()


@dataclass(frozen=True)
class BondConfig:
    name: str
    members: tuple[str, ...]
    mode: str = "active-backup"
    hash_policy: str = ""
    lacp_rate: str = ""
    mii: int | None = None  # milliseconds
    addressing: Addressing = Addressing("none")


@dataclass(frozen=True)
class VlanConfig:
    name: str
    parent: str
    vlan_id: int
    addressing: Addressing = Addressing()


@dataclass(frozen=True)
class NodeNetwork:
    management: str = ""
    reach: str = ""  # where the node answers before; "" = its own address
    interfaces: tuple[NicConfig, ...] = ()
    bonds: tuple[BondConfig, ...] = ()
    vlans: tuple[VlanConfig, ...] = ()

    def kind_of(self, name: str) -> str:
        """``bond``, ``vlan`` or ``nic`` (anything not declared as a bond or VLAN is a NIC)."""
        if any(b.name == name for b in self.bonds):
            return "bond"
        if any(v.name == name for v in self.vlans):
            return "vlan"
        return "nic"

    @property
    def needs_network_api(self) -> bool:
        """Bonds, VLANs or a management interface: only the Local UI's network API applies them."""
        return bool(self.bonds or self.vlans or self.management)


@dataclass(frozen=True)
class Node:
    name: str
    hostname: str
    address_mode: AddressMode
    ip: str = ""
    prefix: int | None = None
    gateway: str = ""
    bmc: Bmc | None = None
    vm: str = ""
    maas: str = ""  # MAAS system id or hostname
    ssh_host_key: str = ""  # pinned ``SHA256:…`` fingerprint of the installed system, if known in advance
    # The live installer's host key differs from the installed system's; pinned when known in advance.
    ssh_installer_host_key: str = ""
    # Where the wizard reaches the node's SSH and Local UI; other than 22/5080 only behind port forwarding (a NAT'd
    # jump host) or in the rehearsal lab, whose nodes share one loopback address.
    ssh_port: int = 22
    localui_port: int = 5080
    localui_fingerprint: str = ""  # pinned TLS SHA-256 of the Local UI, if known in advance
    #: Interfaces, bonds, VLANs and the management interface beyond the one NIC (see ``project.nodenet``).
    network: NodeNetwork | None = None
    #: The machine pool a node added after the install joins (``palette-wizard add-node``); "" is the control plane.
    pool: str = ""


@dataclass(frozen=True)
class Proxy:
    http: str = ""
    https: str = ""
    no_proxy: tuple[str, ...] = ()
    #: PEM files of CA certificates the nodes must trust (a TLS-inspecting proxy's own CA, typically).
    ca_certs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Network:
    vip: str
    dns: tuple[str, ...] = ()
    search_domains: tuple[str, ...] = ()
    ntp: tuple[str, ...] = ()
    proxy: Proxy = field(default_factory=Proxy)


@dataclass(frozen=True)
class FileRef:
    path: Path
    signature: Path | None = None
    sha256: str = ""


@dataclass(frozen=True)
class Files:
    iso: FileRef | None = None
    content_bundle: FileRef | None = None
    pack_bundles: tuple[FileRef, ...] = ()
    public_key: Path | None = None
    transfer: TransferMode = TransferMode.DIRECT
    #: Where SFTP staging puts bundles on a node (relative to the login's home unless absolute); "" is the default.
    staging_dir: str = ""

    def all(self) -> list[tuple[str, FileRef]]:
        """Every file with its field path, in a stable order."""
        out: list[tuple[str, FileRef]] = []
        if self.iso:
            out.append(("files.iso", self.iso))
        if self.content_bundle:
            out.append(("files.content_bundle", self.content_bundle))
        out.extend((f"files.pack_bundles[{i}]", ref) for i, ref in enumerate(self.pack_bundles))
        return out


@dataclass(frozen=True)
class Appliance:
    username: str = "kairos"
    password: SecretRef | None = None  # the operator's password that replaces the default on every node
    install_disk: str = "auto"
    data_disk: str = "/dev/sdb"
    install_timeout_minutes: int = 30
    leader: str = ""
    configure: ConfigureMode = ConfigureMode.SEED
    boot: BootMode | None = None  # None: the default, see Project.boot_mode


@dataclass(frozen=True)
class ClusterSettings:
    """Answers for the management cluster. Variables are kept as ordered pairs so the project stays hashable."""

    variables: tuple[tuple[str, str], ...] = ()  # plain profile-variable answers
    secret_variables: tuple[tuple[str, SecretRef], ...] = ()  # sensitive answers, as keyring references
    ssh_keys: tuple[str, ...] = ()
    kubeconfig: Path | None = None  # None: the session folder
    #: Two-node high availability (``isTwoNodeCluster``: PostgreSQL instead of etcd), for exactly two nodes.
    two_node: bool = False


@dataclass(frozen=True)
class ConsoleCertificate:
    """The operator's certificate for the system console: PEM files (the key stays in its file, read when sent)."""

    cert: Path
    key: Path
    ca: Path | None = None


@dataclass(frozen=True)
class ConsoleSettings:
    """The Palette system console at the VIP: the admin's email and the password that replaces admin/admin."""

    email: str = ""
    password: SecretRef | None = None
    port: int = 443  # where the console answers on the VIP (a forwarded port in a lab or behind NAT)
    tls_fingerprint: str = ""  # pins the console's self-signed certificate
    #: The operator's certificate, installed through PUT /v1/system/config/domain/certificates after the first login.
    certificate: ConsoleCertificate | None = None
    #: The system address as a fully qualified domain name (its root domain); backup and restore need one.
    domain: str = ""


@dataclass(frozen=True)
class ActivationSettings:
    """Activate with a key from Spectro Cloud support, or defer (Palette runs a 30-day trial meanwhile)."""

    key: SecretRef | None = None
    defer: bool = False


@dataclass(frozen=True)
class Project:
    name: str
    provider: Provider
    nodes: tuple[Node, ...]
    network: Network
    files: Files
    appliance: Appliance = field(default_factory=Appliance)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    source: Path | None = None
    console: ConsoleSettings | None = None  # None: the wizard stops after the cluster
    activation: ActivationSettings = field(default_factory=ActivationSettings)

    def boot_mode(self) -> BootMode:
        """``appliance.boot``, or its default: ``unattended`` whenever the project names the ISO (the wizard derives
        the copy from it), else ``console`` (a ``manual`` project that leaves the ISO to the operator)."""
        if self.appliance.boot is not None:
            return self.appliance.boot
        return BootMode.UNATTENDED if self.files.iso is not None else BootMode.CONSOLE

    def secret_refs(self) -> list[tuple[str, SecretRef]]:
        """Every keyring reference in the project with its field path."""
        refs: list[tuple[str, SecretRef]] = []
        p = self.provider
        if p.vsphere:
            refs.append(("provider.vsphere.password", p.vsphere.password))
        if p.maas:
            refs.append(("provider.maas.api_key", p.maas.api_key))
        for i, n in enumerate(self.nodes):
            if n.bmc:
                refs.append((f"nodes[{i}].bmc.password", n.bmc.password))
        if self.appliance.password:
            refs.append(("appliance.password", self.appliance.password))
        refs.extend((_join("cluster.secret_variables", name), ref) for name, ref in self.cluster.secret_variables)
        if self.console is not None and self.console.password is not None:
            refs.append(("console.password", self.console.password))
        if self.activation.key is not None:
            refs.append(("activation.key", self.activation.key))
        return refs

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


@dataclass(frozen=True)
class LoadedProject:
    project: Project
    warnings: list[Problem]


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _join(path: str, key: str) -> str:
    if not _PLAIN_KEY.fullmatch(key):
        # Keys with dots, spaces or nothing at all are quoted so the path stays unambiguous.
        return f"{path or '(document)'}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


def join_path(path: str, key: str) -> str:
    """A field path one level down, spelled the way validation problems name it."""
    return _join(path, key)
