"""The project file: the operator's answers, schema-versioned, validated all at once.

A project is YAML (JSON is accepted, being YAML too). It holds no secret values: every password or key is a
keyring reference written as ``{secret: NAME}``. :func:`load_project` returns a frozen :class:`Project` plus the
warnings, or raises :class:`~wizard.core.errors.ProjectInvalid` listing *every* problem with its field path.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from wizard.core.errors import ProjectInvalid
from wizard.core.problems import Problem, Severity

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


@dataclass(frozen=True)
class ClusterSettings:
    """Answers for the management cluster. Variables are kept as ordered pairs so the project stays hashable."""

    variables: tuple[tuple[str, str], ...] = ()  # plain profile-variable answers
    secret_variables: tuple[tuple[str, SecretRef], ...] = ()  # sensitive answers, as keyring references
    ssh_keys: tuple[str, ...] = ()
    kubeconfig: Path | None = None  # None: the session folder


@dataclass(frozen=True)
class ConsoleSettings:
    """The Palette system console at the VIP: the admin's email and the password that replaces admin/admin."""

    email: str = ""
    password: SecretRef | None = None
    port: int = 443  # where the console answers on the VIP (a forwarded port in a lab or behind NAT)
    tls_fingerprint: str = ""  # pins the console's self-signed certificate


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


# ---------------------------------------------------------------------------------------------------------------
# Reading with every problem collected


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _show(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Reader:
    def __init__(self, base: Path | None) -> None:
        self.problems: list[Problem] = []
        self.base = base

    def error(self, path: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(path, message, fix, Severity.ERROR))

    def warning(self, path: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(path, message, fix, Severity.WARNING))

    # -- structure -----------------------------------------------------------------------------------------
    def mapping(self, value: object, path: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(
                path or "(document)",
                f"expected a mapping of fields, got {_kind(value)}",
                "write it as `key: value` lines",
            )
            return None
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.error(
                    f"{path or '(document)'}[{_show(key)}]",
                    f"field name {_show(key)} is not text",
                    "field names are words such as `name`",
                )
                continue
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"did you mean `{close[0]}`?" if close else f"allowed here: {', '.join(allowed)}"
                self.error(_join(path, key), f"unknown field `{key}`", f"remove it or correct the spelling ({hint})")
                continue
            out[key] = item
        return out

    def text(self, m: Mapping[str, Any], key: str, path: str, *, required: bool = False, default: str = "") -> str:
        fp = _join(path, key)
        if key not in m or m[key] is None:
            if required:
                self.error(fp, "is required", f"add `{key}:` with a value")
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(fp, f"expected text, got {_kind(value)}", "write a single value")
            return default
        if isinstance(value, float) and not math.isfinite(value):
            self.error(fp, f"expected text, got {_show(value)}", "write a single value")
            return default
        text = str(value).strip()
        if required and not text:
            self.error(fp, "is empty", f"give `{key}` a value")
        return text

    def integer(
        self,
        m: Mapping[str, Any],
        key: str,
        path: str,
        *,
        default: int | None,
        minimum: int,
        maximum: int,
        required: bool = False,
    ) -> int | None:
        fp = _join(path, key)
        if key not in m or m[key] is None:
            if required:
                self.error(fp, "is required", f"add `{key}:` with a whole number")
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            else:
                self.error(fp, f"expected a whole number, got {_kind(value)} {_show(value)}", "write digits only")
                return default
        if not minimum <= value <= maximum:
            self.error(fp, f"{value} is out of range", f"use a number from {minimum} to {maximum}")
            return default
        return value

    def choice(self, m: Mapping[str, Any], key: str, path: str, enum: type[StrEnum], default: Any) -> Any:
        fp = _join(path, key)
        if key not in m or m[key] is None:
            if default is None:
                self.error(fp, "is required", f"use one of: {', '.join(e.value for e in enum)}")
            return default
        value = m[key]
        if isinstance(value, str):
            for member in enum:
                if member.value == value.strip().lower():
                    return member
        self.error(fp, f"{_show(value)} is not a valid choice", f"use one of: {', '.join(e.value for e in enum)}")
        return default

    def text_list(self, m: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        fp = _join(path, key)
        value = m.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            # A single value is a common shorthand; accept it as a one-item list.
            value = [value]
        if not isinstance(value, list):
            self.error(fp, f"expected a list, got {_kind(value)}", "write it as `- item` lines or [a, b]")
            return ()
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int):
                self.error(f"{fp}[{i}]", f"expected text, got {_kind(item)}", "write a single value")
                continue
            out.append(str(item).strip())
        return tuple(out)

    def secret(self, m: Mapping[str, Any], key: str, path: str, *, required: bool) -> SecretRef | None:
        fp = _join(path, key)
        value = m.get(key)
        if value is None:
            if required:
                self.error(
                    fp,
                    "is required",
                    f"store it with `palette-wizard secret set NAME` and write `{key}: {{secret: NAME}}`",
                )
            return None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            self.error(
                fp,
                "a secret value is written in the project file",
                "remove it; store it in the keyring with `palette-wizard secret set NAME` "
                f"and write `{key}: {{secret: NAME}}`",
            )
            return None
        ref = self.mapping(value, fp, ("secret",))
        if ref is None:
            return None
        name = self.text(ref, "secret", fp, required=True)
        if name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@/:-]{0,127}", name):
            self.error(
                _join(fp, "secret"),
                f"{_show(name)} is not a usable keyring name",
                "use letters, digits and . _ - / @ : (up to 128 characters)",
            )
            return None
        return SecretRef(name) if name else None

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        if not p.is_absolute() and self.base is not None:
            p = self.base / p
        return p


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _join(path: str, key: str) -> str:
    if not _PLAIN_KEY.fullmatch(key):
        # Keys with dots, spaces or nothing at all are quoted so the path stays unambiguous.
        return f"{path or '(document)'}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


def join_path(path: str, key: str) -> str:
    """A field path one level down, spelled the way validation problems name it."""
    return _join(path, key)


# ---------------------------------------------------------------------------------------------------------------
# Field checks

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_FINGERPRINT = re.compile(r"(SHA256:)?([0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}|[A-Za-z0-9+/]{43}=?)")


def hostname_problem(value: str) -> str | None:
    """Why ``value`` is not an RFC 1123 host name (lower case, as Kubernetes node names require), or None."""
    if not value:
        return "is empty"
    if len(value) > 253:
        return f"{_show(value)} is longer than 253 characters"
    if value != value.lower():
        return f"{_show(value)} has upper-case letters, which Kubernetes node names do not allow"
    for label in value.rstrip(".").split("."):
        if not _LABEL.fullmatch(label):
            return (
                f"{_show(value)} is not a valid host name (each part 1–63 of a–z, 0–9 and '-', "
                "not starting or ending with '-')"
            )
    return None


def ipv4_problem(value: str) -> str | None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return f"{_show(value)} is not an IPv4 address"
    return None


def _host_or_ip_problem(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    return hostname_problem(value.lower()) if value else "is empty"


def _url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        return f"{_show(value)} is not a valid URL ({exc})"
    if parts.scheme not in schemes or not parts.hostname:
        return f"{_show(value)} is not a URL starting with {' or '.join(s + '://' for s in schemes)}"
    return None


# ---------------------------------------------------------------------------------------------------------------
# Document sections

_TOP = (
    "schema_version",
    "name",
    "provider",
    "nodes",
    "network",
    "files",
    "appliance",
    "cluster",
    "console",
    "activation",
)


def read_provider(raw: object) -> tuple[Provider | None, list[Problem]]:
    """The ``provider`` section of a raw project document on its own, by the same rules as a whole project (the
    node table is filled by discovery while the rest of the document may not be valid yet)."""
    reader = _Reader(None)
    provider = _read_provider(reader, raw)
    return provider, reader.problems


def _read_provider(r: _Reader, raw: object) -> Provider | None:
    m = r.mapping(raw, "provider", ("type", "vsphere", "redfish", "maas", "manual"))
    if m is None:
        return None
    ptype: ProviderType | None = r.choice(m, "type", "provider", ProviderType, None)
    if ptype is None:
        return None
    for other in ProviderType:
        if other is not ptype and other.value in m and m[other.value] is not None:
            r.error(
                f"provider.{other.value}",
                f"settings for `{other.value}` but provider.type is `{ptype.value}`",
                "remove this section or change provider.type",
            )
    if ptype is ProviderType.VSPHERE:
        return Provider(ptype, vsphere=_read_vsphere(r, m.get("vsphere")))
    if ptype is ProviderType.REDFISH:
        return Provider(ptype, redfish=_read_redfish(r, m.get("redfish", {})))
    if ptype is ProviderType.MAAS:
        return Provider(ptype, maas=_read_maas(r, m.get("maas")))
    if m.get("manual") not in (None, {}):
        r.error("provider.manual", "the manual provider takes no settings", "remove this section")
    return Provider(ptype)


def _read_vsphere(r: _Reader, raw: object) -> VsphereSettings | None:
    path = "provider.vsphere"
    if raw is None:
        r.error(path, "is required when provider.type is vsphere", "add the vCenter server, user and placement")
        return None
    allowed = (
        "server",
        "port",
        "username",
        "password",
        "datacenter",
        "cluster",
        "resource_pool",
        "folder",
        "datastore",
        "network",
        "iso_folder",
        "tls_fingerprint",
        "vm_mode",
        "vm",
    )
    m = r.mapping(raw, path, allowed)
    if m is None:
        return None
    server = r.text(m, "server", path, required=True)
    if server:
        why = _host_or_ip_problem(server)
        if why:
            r.error(f"{path}.server", why, "give the vCenter host name or IP address, without https://")
    port = r.integer(m, "port", path, default=443, minimum=1, maximum=65535) or 443
    username = r.text(m, "username", path, required=True)
    password = r.secret(m, "password", path, required=True)
    datacenter = r.text(m, "datacenter", path, required=True)
    datastore = r.text(m, "datastore", path, required=True)
    network = r.text(m, "network", path, required=True)
    vm_mode: VmMode = r.choice(m, "vm_mode", path, VmMode, VmMode.CREATE)
    cluster = r.text(m, "cluster", path)
    if vm_mode is VmMode.CREATE and not cluster:
        r.error(f"{path}.cluster", "is required to create VMs", "name the compute cluster the VMs are placed in")
    fingerprint = _read_fingerprint(r, m, path)
    vm = VmSpec()
    if m.get("vm") is not None:
        vm_m = r.mapping(m["vm"], f"{path}.vm", ("cpus", "memory_gb", "os_disk_gb", "data_disk_gb"))
        if vm_m is not None:
            vp = f"{path}.vm"
            vm = VmSpec(
                cpus=r.integer(vm_m, "cpus", vp, default=8, minimum=1, maximum=768) or 8,
                memory_gb=r.integer(vm_m, "memory_gb", vp, default=16, minimum=1, maximum=24576) or 16,
                os_disk_gb=r.integer(vm_m, "os_disk_gb", vp, default=300, minimum=1, maximum=65536) or 300,
                data_disk_gb=r.integer(vm_m, "data_disk_gb", vp, default=500, minimum=1, maximum=65536) or 500,
            )
            if vm.cpus < 8 or vm.memory_gb < 16:
                r.warning(vp, "below the documented minimum of 8 vCPU and 16 GB per node", "raise cpus/memory_gb")
            if vm.os_disk_gb < 250:
                r.warning(f"{vp}.os_disk_gb", "below the documented 250–300 GB for the OS disk", "use 300 or more")
            if vm.data_disk_gb < 500:
                r.warning(
                    f"{vp}.data_disk_gb",
                    "below the documented 500 GB for the storage pool",
                    "use 500 or more",
                )
    if password is None:
        return None
    return VsphereSettings(
        server=server,
        port=port,
        username=username,
        password=password,
        datacenter=datacenter,
        cluster=cluster,
        resource_pool=r.text(m, "resource_pool", path),
        folder=r.text(m, "folder", path),
        datastore=datastore,
        network=network,
        iso_folder=r.text(m, "iso_folder", path, default="palette-iso") or "palette-iso",
        tls_fingerprint=fingerprint,
        vm_mode=vm_mode,
        vm=vm,
    )


def _read_fingerprint(r: _Reader, m: Mapping[str, Any], path: str, key: str = "tls_fingerprint") -> str:
    value = r.text(m, key, path)
    if value and not _FINGERPRINT.fullmatch(value):
        r.error(
            _join(path, key),
            f"{_show(value)} is not a SHA-256 fingerprint",
            "use 32 hex byte pairs (AB:CD:…) or the SHA256:base64 form, or leave it out to confirm on first contact",
        )
        return ""
    return value


def _read_redfish(r: _Reader, raw: object) -> RedfishSettings | None:
    path = "provider.redfish"
    m = r.mapping(raw if raw is not None else {}, path, ("iso_url", "iso_server_bind", "iso_server_port"))
    if m is None:
        return None
    iso_url = r.text(m, "iso_url", path)
    if iso_url:
        why = _url_problem(iso_url, ("http", "https"))
        if why:
            r.error(f"{path}.iso_url", why, "give the http(s) URL the BMCs download the ISO from")
    bind = r.text(m, "iso_server_bind", path)
    if bind:
        why = _host_or_ip_problem(bind)
        if why:
            r.error(f"{path}.iso_server_bind", why, "give an address of this machine the BMCs can reach")
    port = r.integer(m, "iso_server_port", path, default=0, minimum=0, maximum=65535) or 0
    return RedfishSettings(iso_url=iso_url, iso_server_bind=bind, iso_server_port=port)


def _read_maas(r: _Reader, raw: object) -> MaasSettings | None:
    path = "provider.maas"
    if raw is None:
        r.error(path, "is required when provider.type is maas", "add the MAAS url and api_key")
        return None
    m = r.mapping(raw, path, ("url", "api_key", "tls_fingerprint", "tags", "pool", "zone"))
    if m is None:
        return None
    url = r.text(m, "url", path, required=True)
    if url:
        why = _url_problem(url, ("http", "https"))
        if why:
            r.error(f"{path}.url", why, "for example http://maas.example.com:5240/MAAS")
    key = r.secret(m, "api_key", path, required=True)
    fingerprint = _read_fingerprint(r, m, path)
    tags = r.text_list(m, "tags", path)
    for i, tag in enumerate(tags):
        if not tag.strip() or any(c.isspace() or c == "," for c in tag):
            r.error(f"{path}.tags[{i}]", f"{tag!r} is not a MAAS tag name", "one tag per entry, no spaces or commas")
    pool, zone = r.text(m, "pool", path), r.text(m, "zone", path)
    if key is None:
        return None
    return MaasSettings(url=url, api_key=key, tls_fingerprint=fingerprint, tags=tags, pool=pool, zone=zone)


_NODE_FIELDS = (
    "name",
    "hostname",
    "address_mode",
    "ip",
    "prefix",
    "gateway",
    "bmc",
    "vm",
    "maas",
    "ssh_host_key",
    "ssh_installer_host_key",
    "ssh_port",
    "localui_port",
    "localui_fingerprint",
)


def _read_node(r: _Reader, raw: object, i: int, provider: ProviderType | None) -> Node | None:
    path = f"nodes[{i}]"
    m = r.mapping(raw, path, _NODE_FIELDS)
    if m is None:
        return None
    name = r.text(m, "name", path, required=True)
    if name:
        why = hostname_problem(name)
        if why or "." in name:
            r.error(
                f"{path}.name",
                why or f"{_show(name)} contains a dot",
                "use a short lower-case name like node-1",
            )
    hostname = r.text(m, "hostname", path, required=True)
    if hostname:
        why = hostname_problem(hostname)
        if why:
            r.error(f"{path}.hostname", why, "use lower-case letters, digits and '-' (for example edge-node-1)")
    mode: AddressMode = r.choice(m, "address_mode", path, AddressMode, AddressMode.STATIC)
    ip = r.text(m, "ip", path, required=mode is AddressMode.STATIC)
    prefix = r.integer(m, "prefix", path, default=None, minimum=1, maximum=32, required=mode is AddressMode.STATIC)
    gateway = r.text(m, "gateway", path, required=mode is AddressMode.STATIC)
    if ip:
        if "/" in ip:
            r.error(
                f"{path}.ip",
                f"{_show(ip)} includes a prefix length",
                f"write the address only and put the prefix in {path}.prefix",
            )
            ip = ""
        elif (why := ipv4_problem(ip)) is not None:
            r.error(f"{path}.ip", why, "write four numbers from 0 to 255 separated by dots")
            ip = ""
    if gateway and (why := ipv4_problem(gateway)) is not None:
        r.error(f"{path}.gateway", why, "write the default gateway's IPv4 address")
        gateway = ""
    if mode is AddressMode.STATIC and ip and prefix and gateway:
        net = ipaddress.IPv4Network(f"{ip}/{prefix}", strict=False)
        addr = ipaddress.IPv4Address(ip)
        if prefix < 31 and addr in (net.network_address, net.broadcast_address):
            r.error(f"{path}.ip", f"{ip} is the network or broadcast address of {net}", "pick a host address")
        gw = ipaddress.IPv4Address(gateway)
        if gw not in net:
            r.error(
                f"{path}.gateway",
                f"{gateway} is outside the node subnet {net}",
                f"use a gateway inside {net} or fix {path}.prefix",
            )
        elif gw == addr:
            r.error(f"{path}.gateway", f"{gateway} is the node's own address", "give the router's address")
    if mode is AddressMode.DHCP:
        r.warning(
            f"{path}.address_mode",
            "DHCP addresses must never change once the cluster exists",
            "use a DHCP reservation for this node, or a static address",
        )
    bmc = None
    if m.get("bmc") is not None:
        bmc = _read_bmc(r, m["bmc"], f"{path}.bmc")
    elif provider is ProviderType.REDFISH:
        r.error(
            f"{path}.bmc",
            "is required for bare metal through Redfish",
            "add the node's BMC address, username and password",
        )
    vm = r.text(m, "vm", path)
    if provider is ProviderType.VSPHERE and not vm:
        r.error(f"{path}.vm", "is required for vSphere", "name the VM to create or to use")
    maas = r.text(m, "maas", path)
    if provider is ProviderType.MAAS and not maas:
        r.error(f"{path}.maas", "is required for MAAS", "give the machine's MAAS system id or hostname")
    ssh_key = r.text(m, "ssh_host_key", path)
    if ssh_key and not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}=?", ssh_key):
        r.error(
            f"{path}.ssh_host_key",
            f"{_show(ssh_key)} is not an SSH SHA256 fingerprint",
            "copy it from `ssh-keygen -lf` (SHA256:…), or leave it out to confirm on first contact",
        )
        ssh_key = ""
    installer_key = r.text(m, "ssh_installer_host_key", path)
    if installer_key and not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}=?", installer_key):
        r.error(
            f"{path}.ssh_installer_host_key",
            f"{_show(installer_key)} is not an SSH SHA256 fingerprint",
            "copy it from the installer's console (SHA256:…), or leave it out to confirm on first contact",
        )
        installer_key = ""
    ssh_port = r.integer(m, "ssh_port", path, default=22, minimum=1, maximum=65535) or 22
    localui_port = r.integer(m, "localui_port", path, default=5080, minimum=1, maximum=65535) or 5080
    localui_fingerprint = _read_fingerprint(r, m, path, "localui_fingerprint")
    return Node(
        name=name,
        hostname=hostname,
        address_mode=mode,
        ip=ip,
        prefix=prefix,
        gateway=gateway,
        bmc=bmc,
        vm=vm,
        maas=maas,
        ssh_host_key=ssh_key,
        ssh_installer_host_key=installer_key,
        ssh_port=ssh_port,
        localui_port=localui_port,
        localui_fingerprint=localui_fingerprint,
    )


def _read_bmc(r: _Reader, raw: object, path: str) -> Bmc | None:
    m = r.mapping(raw, path, ("address", "username", "password", "tls_fingerprint"))
    if m is None:
        return None
    address = r.text(m, "address", path, required=True)
    if address:
        target = address if "://" in address else f"https://{address}"
        why = _url_problem(target, ("http", "https"))
        if why:
            r.error(f"{path}.address", why, "give the BMC's host name or IP, optionally as https://host:port")
    username = r.text(m, "username", path, required=True)
    password = r.secret(m, "password", path, required=True)
    fingerprint = _read_fingerprint(r, m, path)
    if password is None:
        return None
    return Bmc(address=address, username=username, password=password, tls_fingerprint=fingerprint)


def _ca_cert_problem(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None if "-----BEGIN CERTIFICATE-----" in text else "holds no PEM certificate"


def read_ca_certs(proxy: Proxy) -> tuple[str, ...]:
    """Every certificate of ``proxy.ca_certs`` as one PEM block each (a file may hold a chain)."""
    blocks: list[str] = []
    for path in proxy.ca_certs:
        text = path.read_text(encoding="utf-8")
        blocks += [
            "-----BEGIN CERTIFICATE-----" + body.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
            for body in text.split("-----BEGIN CERTIFICATE-----")[1:]
        ]
    return tuple(blocks)


def _read_network(r: _Reader, raw: object) -> Network | None:
    path = "network"
    m = r.mapping(raw, path, ("vip", "dns", "search_domains", "ntp", "proxy"))
    if m is None:
        return None
    vip = r.text(m, "vip", path, required=True)
    if vip and (why := ipv4_problem(vip)) is not None:
        r.error("network.vip", why, "give a free IPv4 address in the nodes' subnet")
        vip = ""
    dns = r.text_list(m, "dns", path)
    for i, server in enumerate(dns):
        if (why := ipv4_problem(server)) is not None:
            r.error(f"network.dns[{i}]", why, "DNS servers are given by IPv4 address")
    search = r.text_list(m, "search_domains", path)
    for i, domain in enumerate(search):
        if (why := hostname_problem(domain.lower())) is not None:
            r.error(f"network.search_domains[{i}]", why, "give a domain such as example.com")
    ntp = r.text_list(m, "ntp", path)
    for i, server in enumerate(ntp):
        if (why := _host_or_ip_problem(server)) is not None:
            r.error(f"network.ntp[{i}]", why, "give an NTP server's host name or IP address")
    if not ntp:
        r.warning(
            "network.ntp",
            "no NTP servers given",
            "node clock skew logs users out of Palette; add NTP servers",
        )
    proxy = Proxy()
    if m.get("proxy") is not None:
        pm = r.mapping(m["proxy"], "network.proxy", ("http", "https", "no_proxy", "ca_certs"))
        if pm is not None:
            values = {}
            for key in ("http", "https"):
                url = r.text(pm, key, "network.proxy")
                if url and (why := _url_problem(url, ("http", "https"))) is not None:
                    r.error(f"network.proxy.{key}", why, "for example http://proxy.example.com:3128")
                values[key] = url
            certs = tuple(r.path(p) for p in r.text_list(pm, "ca_certs", "network.proxy") if p)
            for i, cert in enumerate(certs):
                if (why := _ca_cert_problem(cert)) is not None:
                    r.error(f"network.proxy.ca_certs[{i}]", why, "give a PEM certificate file")
            proxy = Proxy(values["http"], values["https"], r.text_list(pm, "no_proxy", "network.proxy"), certs)
    return Network(vip=vip, dns=dns, search_domains=search, ntp=ntp, proxy=proxy)


def _signature_candidates(path: Path) -> list[Path]:
    """Where Artifact Studio puts a file's signature.

    X.iso → X.iso.sig.bin, X.tar.zst → X.tar.sig.bin, X.zst → X.sig.bin.
    """
    return [path.with_suffix(".sig.bin"), path.parent / (path.name + ".sig.bin")]


def _read_file(r: _Reader, raw: object, path: str, *, must_exist: bool = True) -> FileRef | None:
    short_form = isinstance(raw, str)
    if short_form:
        raw = {"path": raw}
    m = r.mapping(raw, path, ("path", "signature", "sha256"))
    if m is None:
        return None
    value = r.text(m, "path", path, required=True)
    if not value:
        return None
    file_path = r.path(value)
    if must_exist and not file_path.is_file():
        what = "is a folder, not a file" if file_path.is_dir() else "does not exist"
        r.error(
            path if short_form else f"{path}.path",
            f"{file_path} {what}",
            "check the path (relative paths start at the project file's folder)",
        )
    signature = None
    sig_value = r.text(m, "signature", path)
    if sig_value:
        signature = r.path(sig_value)
        if not signature.is_file():
            r.error(
                f"{path}.signature",
                f"{signature} does not exist",
                "give the .sig.bin file downloaded with it",
            )
    else:
        signature = next((c for c in _signature_candidates(file_path) if c.is_file()), None)
    sha = r.text(m, "sha256", path).lower()
    if sha and not re.fullmatch(r"[0-9a-f]{64}", sha):
        r.error(
            f"{path}.sha256",
            f"{_show(sha)} is not a SHA-256 hex digest",
            "64 hex characters, or leave it out",
        )
        sha = ""
    return FileRef(path=file_path, signature=signature, sha256=sha)


def _read_files(r: _Reader, raw: object, provider: ProviderType | None) -> Files | None:
    m = r.mapping(
        raw if raw is not None else {},
        "files",
        ("iso", "content_bundle", "pack_bundles", "public_key", "transfer", "staging_dir"),
    )
    if m is None:
        return None
    iso = None
    if m.get("iso") is not None:
        iso = _read_file(r, m["iso"], "files.iso")
    elif provider not in (None, ProviderType.MANUAL):
        r.error("files.iso", "is required", "give the path of the downloaded Appliance ISO")
    content = (
        _read_file(r, m["content_bundle"], "files.content_bundle") if m.get("content_bundle") is not None else None
    )
    packs: list[FileRef] = []
    raw_packs = m.get("pack_bundles")
    if raw_packs is not None:
        if not isinstance(raw_packs, list):
            r.error(
                "files.pack_bundles",
                f"expected a list, got {_kind(raw_packs)}",
                "write one `- path` line per pack bundle",
            )
        else:
            for i, item in enumerate(raw_packs):
                ref = _read_file(r, item, f"files.pack_bundles[{i}]")
                if ref:
                    packs.append(ref)
    public_key = None
    key_value = r.text(m, "public_key", "files")
    if key_value:
        public_key = r.path(key_value)
        if not public_key.is_file():
            r.error("files.public_key", f"{public_key} does not exist", "give the path of spectro_public_key.pem")
    bundles = ([("files.content_bundle", content)] if content else []) + [
        (f"files.pack_bundles[{i}]", p) for i, p in enumerate(packs)
    ]
    if bundles and not key_value:
        r.error(
            "files.public_key",
            "is required to verify the bundles' signatures",
            "download spectro_public_key.pem from Artifact Studio (Bundle Verification Instructions)",
        )
    if key_value:
        for fp, ref in bundles:
            if ref.signature is None and ref.path.is_file():
                looked = ", ".join(c.name for c in _signature_candidates(ref.path))
                r.error(
                    f"{fp}",
                    f"no signature file next to {ref.path.name} (looked for {looked})",
                    f"download the .sig.bin with it, or set {fp}.signature",
                )
    transfer = r.choice(m, "transfer", "files", TransferMode, TransferMode.DIRECT)
    staging_dir = r.text(m, "staging_dir", "files")
    if staging_dir and transfer is not TransferMode.SFTP:
        r.error("files.staging_dir", "is only used with `transfer: sftp`", "remove it, or set files.transfer: sftp")
    if staging_dir and any(c in staging_dir for c in "\n\0'\"$`;|&"):
        r.error(
            "files.staging_dir", f"{_show(staging_dir)} is not a plain folder path", "use a plain POSIX folder path"
        )
    return Files(
        iso=iso,
        content_bundle=content,
        pack_bundles=tuple(packs),
        public_key=public_key,
        transfer=transfer,
        staging_dir=staging_dir,
    )


def _read_appliance(r: _Reader, raw: object, node_names: list[str]) -> Appliance | None:
    path = "appliance"
    allowed = ("username", "password", "install_disk", "data_disk", "install_timeout_minutes", "leader", "configure")
    m = r.mapping(raw if raw is not None else {}, path, allowed)
    if m is None:
        return None
    username = r.text(m, "username", path, default="kairos") or "kairos"
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", username):
        r.error(
            "appliance.username",
            f"{_show(username)} is not a valid Linux user name",
            "lower-case letters, digits, '_' or '-'",
        )
    password = r.secret(m, "password", path, required=False)
    if password is None and "password" not in m:
        r.warning(
            "appliance.password",
            "the nodes keep the default kairos/kairos password",
            "store a new password with `palette-wizard secret set NAME` and write `password: {secret: NAME}`",
        )
    disks = {}
    for key, default in (("install_disk", "auto"), ("data_disk", "/dev/sdb")):
        value = r.text(m, key, path, default=default) or default
        if value != "auto" and not re.fullmatch(r"/dev/[A-Za-z0-9/_.-]+", value):
            r.error(
                f"appliance.{key}",
                f"{_show(value)} is not a device path",
                "write a path like /dev/sda (or auto for install_disk)",
            )
        disks[key] = value
    if disks["data_disk"] == "auto":
        r.error(
            "appliance.data_disk",
            "cannot be auto",
            "name the storage-pool disk, /dev/sdb by default; it is wiped",
        )
    if disks["install_disk"] == disks["data_disk"]:
        r.error("appliance.data_disk", "is the same disk as install_disk", "the storage pool needs a second disk")
    timeout = r.integer(m, "install_timeout_minutes", path, default=30, minimum=15, maximum=24 * 60) or 30
    leader = r.text(m, "leader", path)
    configure: ConfigureMode = r.choice(m, "configure", path, ConfigureMode, ConfigureMode.SEED)
    if leader and node_names and leader not in node_names:
        r.error(
            "appliance.leader",
            f"{_show(leader)} is not one of the nodes",
            f"use one of: {', '.join(node_names)}",
        )
    return Appliance(
        username=username,
        password=password,
        install_disk=disks["install_disk"],
        data_disk=disks["data_disk"],
        install_timeout_minutes=timeout,
        leader=leader,
        configure=configure,
    )


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
# Names that say "secret": their answers belong in the keyring, under secret_variables.
_SENSITIVE = re.compile(r"password|passwd|secret|token|apikey|api_key|private", re.IGNORECASE)
_SSH_PUBLIC_KEY = re.compile(r"(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+=*( .*)?")


def _read_cluster(r: _Reader, raw: object) -> ClusterSettings | None:
    path = "cluster"
    if raw is None:
        return ClusterSettings()
    m = r.mapping(raw, path, ("variables", "secret_variables", "ssh_keys", "kubeconfig"))
    if m is None:
        return None
    variables: list[tuple[str, str]] = []
    if m.get("variables") is not None:
        vm = r.mapping(m["variables"], f"{path}.variables", tuple(str(k) for k in m["variables"])) or {}
        for name, value in vm.items():
            fp = _join(f"{path}.variables", name)
            if not _VARIABLE.fullmatch(name):
                r.error(fp, f"{_show(name)} is not a profile variable name", "use the variable's name, e.g. podCidr")
                continue
            if _SENSITIVE.search(name):
                r.error(
                    fp,
                    "a secret value is written in the project file",
                    f"store it with `palette-wizard secret set NAME` and list it under cluster.secret_variables as "
                    f"`{name}: {{secret: NAME}}`",
                )
                continue
            if isinstance(value, bool):
                variables.append((name, "True" if value else "False"))  # how the profile's booleans are spelled
            elif value is None:
                r.error(fp, "has no value", f"give `{name}` a value, or remove it to keep the profile's default")
            else:
                variables.append((name, r.text(vm, name, f"{path}.variables")))
    secret_variables: list[tuple[str, SecretRef]] = []
    if m.get("secret_variables") is not None:
        raw_secrets = m["secret_variables"]
        allowed = tuple(str(k) for k in raw_secrets) if isinstance(raw_secrets, dict) else ()
        sm = r.mapping(raw_secrets, f"{path}.secret_variables", allowed) or {}
        for name in sm:
            if not _VARIABLE.fullmatch(name):
                r.error(
                    _join(f"{path}.secret_variables", name),
                    f"{_show(name)} is not a profile variable name",
                    "use the variable's name, e.g. ociPackRegistryPassword",
                )
                continue
            ref = r.secret(sm, name, f"{path}.secret_variables", required=True)
            if ref is not None:
                secret_variables.append((name, ref))
    both = sorted({n for n, _ in variables} & {n for n, _ in secret_variables})
    for name in both:
        r.error(
            _join(f"{path}.variables", name),
            "is also given under cluster.secret_variables",
            "answer each variable once",
        )
    ssh_keys = r.text_list(m, "ssh_keys", path)
    for i, key in enumerate(ssh_keys):
        if not _SSH_PUBLIC_KEY.fullmatch(key):
            r.error(
                f"{path}.ssh_keys[{i}]",
                f"{_show(key)} is not an SSH public key",
                "paste one line of a .pub file (ssh-ed25519 AAAA… comment)",
            )
    kubeconfig = r.text(m, "kubeconfig", path)
    return ClusterSettings(
        variables=tuple(variables),
        secret_variables=tuple(secret_variables),
        ssh_keys=ssh_keys,
        kubeconfig=r.path(kubeconfig) if kubeconfig else None,
    )


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _read_console(r: _Reader, raw: object) -> ConsoleSettings | None:
    path = "console"
    m = r.mapping(raw, path, ("email", "password", "port", "tls_fingerprint"))
    if m is None:
        return None
    email = r.text(m, "email", path, required=True)
    if email and not _EMAIL.fullmatch(email):
        r.error("console.email", f"{_show(email)} is not an email address", "write the admin's address, name@domain")
    password = r.secret(m, "password", path, required=True)
    port = r.integer(m, "port", path, default=443, minimum=1, maximum=65535) or 443
    return ConsoleSettings(email=email, password=password, port=port, tls_fingerprint=_read_fingerprint(r, m, path))


def _read_activation(r: _Reader, raw: object) -> ActivationSettings | None:
    path = "activation"
    m = r.mapping(raw, path, ("key", "defer"))
    if m is None:
        return None
    defer = m.get("defer", False)
    if not isinstance(defer, bool):
        r.error("activation.defer", f"expected true or false, got {_kind(defer)} {_show(defer)}", "write `defer: true`")
        defer = False
    key = r.secret(m, "key", path, required=False)
    if key is not None and defer:
        r.error("activation", "has both a key and `defer: true`", "keep the key to activate now, or defer to later")
    elif "key" not in m and not defer:
        r.error(
            "activation",
            "has neither a key nor `defer: true`",
            "store the key from Spectro Cloud support (`palette-wizard secret set NAME`) and write "
            "`key: {secret: NAME}`, or write `defer: true`",
        )
    return ActivationSettings(key=key, defer=bool(defer))


def _configure_checks(r: _Reader, appliance: Appliance, nodes: list[Node], network: Network) -> None:
    """What each ``appliance.configure`` mode can and cannot set."""
    if appliance.configure is ConfigureMode.LOCALUI:
        for i, n in enumerate(nodes):
            if n.address_mode is AddressMode.STATIC and n.ip:
                # The Local UI is reached before the address is made static: the node must already answer there.
                r.warning(
                    f"nodes[{i}].ip",
                    f"with configure: localui the node must already answer at {n.ip} before the wizard makes it static",
                    "reserve that address for the node in DHCP, or use configure: seed",
                )
    elif network.proxy.ca_certs:
        r.warning(
            "network.proxy.ca_certs",
            f"only configure: localui installs CA certificates on the nodes (this project uses {appliance.configure})",
            "use appliance.configure: localui, or add the certificates in each node's Local UI",
        )


def _cross_checks(r: _Reader, nodes: list[Node], network: Network | None, provider: ProviderType | None) -> None:
    count = len(nodes)
    if count == 1:
        r.warning("nodes", "a single node has no high availability", "use 3 nodes for production")
    elif count and count % 2 == 0:
        r.error("nodes", f"{count} control-plane nodes cannot keep an etcd quorum", "use 1, 3 or 5 nodes")

    def dupes(attr: str, label: str) -> None:
        seen: dict[str, int] = {}
        for i, n in enumerate(nodes):
            value = getattr(n, attr)
            if not value:
                continue
            key = value.lower()
            if key in seen:
                r.error(
                    f"nodes[{i}].{attr}",
                    f"{label} {_show(value)} is also used by nodes[{seen[key]}]",
                    f"give every node its own {label}",
                )
            else:
                seen[key] = i

    dupes("name", "name")
    dupes("hostname", "host name")
    addresses: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        if not n.ip:
            continue
        for j in addresses.get(n.ip, []):
            other = nodes[j]
            # One address for several nodes is only reachable through distinct forwarded ports.
            if other.ssh_port == n.ssh_port or other.localui_port == n.localui_port:
                r.error(
                    f"nodes[{i}].ip",
                    f"address {_show(n.ip)} is also used by nodes[{j}]",
                    "give every node its own address (nodes behind one forwarding address need their own "
                    "ssh_port and localui_port)",
                )
                break
        addresses.setdefault(n.ip, []).append(i)
    dupes("vm", "VM")
    dupes("maas", "MAAS machine")
    bmcs: dict[str, int] = {}
    for i, n in enumerate(nodes):
        if n.bmc and n.bmc.address:
            key = n.bmc.address.lower().rstrip("/")
            if key in bmcs:
                r.error(
                    f"nodes[{i}].bmc.address",
                    f"BMC {_show(n.bmc.address)} is also used by nodes[{bmcs[key]}]",
                    "every node has its own BMC",
                )
            else:
                bmcs[key] = i

    static = [(i, n) for i, n in enumerate(nodes) if n.address_mode is AddressMode.STATIC and n.ip and n.prefix]
    subnets = {ipaddress.IPv4Network(f"{n.ip}/{n.prefix}", strict=False) for _, n in static}
    if len(subnets) > 1:
        first = static[0]
        for i, n in static[1:]:
            net = ipaddress.IPv4Network(f"{n.ip}/{n.prefix}", strict=False)
            if net != ipaddress.IPv4Network(f"{first[1].ip}/{first[1].prefix}", strict=False):
                r.error(
                    f"nodes[{i}].ip",
                    f"{n.ip}/{n.prefix} is not in the subnet of nodes[{first[0]}] ({first[1].ip}/{first[1].prefix})",
                    "the nodes and the VIP share one layer-2 subnet",
                )
    if network is None or not network.vip:
        return
    vip = ipaddress.IPv4Address(network.vip)
    for i, n in enumerate(nodes):
        if n.ip and n.ip == network.vip:
            r.error(
                "network.vip",
                f"{network.vip} is also the address of nodes[{i}]",
                "pick a free address for the VIP",
            )
        if n.gateway and n.gateway == network.vip:
            r.error(
                "network.vip",
                f"{network.vip} is the gateway of nodes[{i}]",
                "pick a free address for the VIP",
            )
    if len(subnets) == 1:
        (net,) = subnets
        if vip not in net:
            r.error(
                "network.vip",
                f"{network.vip} is outside the node subnet {net}",
                f"pick a free address inside {net}",
            )
        elif net.prefixlen < 31 and vip in (net.network_address, net.broadcast_address):
            r.error(
                "network.vip",
                f"{network.vip} is the network or broadcast address of {net}",
                "pick a host address",
            )


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Upgrade a raw document to :data:`SCHEMA_VERSION` by applying each migration in turn."""
    version = doc.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProjectInvalid(
            [
                Problem(
                    "schema_version",
                    f"expected a whole number, got {_kind(version)}",
                    f"start the file with `schema_version: {SCHEMA_VERSION}`",
                )
            ]
        )
    if version > SCHEMA_VERSION:
        raise ProjectInvalid(
            [
                Problem(
                    "schema_version",
                    f"version {version} was written by a newer wizard (this one reads up to {SCHEMA_VERSION})",
                    "update the wizard",
                )
            ]
        )
    if version < 1:
        raise ProjectInvalid([Problem("schema_version", f"{version} is not a schema version", f"use {SCHEMA_VERSION}")])
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectInvalid(
                [Problem("schema_version", f"no upgrade from version {version}", "recreate the project file")]
            )
        doc = step(dict(doc))
        version += 1
        doc["schema_version"] = version
    return doc


def parse_project(doc: object, *, base: Path | None = None, source: Path | None = None) -> LoadedProject:
    """Validate a raw document and build the project; raises :class:`ProjectInvalid` with every problem."""
    if not isinstance(doc, dict):
        raise ProjectInvalid(
            [
                Problem(
                    "(document)",
                    f"expected a mapping of fields at the top, got {_kind(doc)}",
                    "see the example project in the README",
                )
            ]
        )
    if "schema_version" not in doc:
        raise ProjectInvalid(
            [Problem("schema_version", "is missing", f"start the file with `schema_version: {SCHEMA_VERSION}`")]
        )
    doc = migrate(doc)
    r = _Reader(base)
    top = r.mapping(doc, "", _TOP) or {}
    name = r.text(top, "name", "", required=True)
    if name and (hostname_problem(name) or "." in name or len(name) > 63):
        r.error(
            "name",
            f"{_show(name)} is not a valid cluster name",
            "use up to 63 lower-case letters, digits and '-'",
        )
    provider = _read_provider(r, top.get("provider")) if "provider" in top else None
    if "provider" not in top:
        r.error("provider", "is required", "add `provider:` with `type: vsphere | redfish | maas | manual`")
    ptype = provider.type if provider else None
    nodes: list[Node] = []
    raw_nodes = top.get("nodes")
    if raw_nodes is None:
        r.error("nodes", "is required", "list the nodes (3 recommended)")
    elif not isinstance(raw_nodes, list):
        r.error("nodes", f"expected a list, got {_kind(raw_nodes)}", "write one `- name: …` entry per node")
    elif not raw_nodes:
        r.error("nodes", "is empty", "list the nodes (3 recommended)")
    else:
        for i, item in enumerate(raw_nodes):
            node = _read_node(r, item, i, ptype)
            if node:
                nodes.append(node)
    network = None
    if "network" in top:
        network = _read_network(r, top["network"])
    else:
        r.error("network", "is required", "add `network:` with at least `vip:`")
    files = _read_files(r, top.get("files"), ptype)
    appliance = _read_appliance(r, top.get("appliance"), [n.name for n in nodes if n.name])
    cluster = _read_cluster(r, top.get("cluster"))
    console = _read_console(r, top["console"]) if top.get("console") is not None else None
    activation = _read_activation(r, top["activation"]) if top.get("activation") is not None else ActivationSettings()
    if console is None:
        if top.get("activation") is not None:
            r.error("activation", "needs the system console", "add `console: {email: …, password: {secret: NAME}}`")
        if files is not None and files.pack_bundles:
            r.warning(
                "files.pack_bundles",
                "are verified but not uploaded: uploading packs ends with the registry sync in the system console",
                "add `console: {email: …, password: {secret: NAME}}`",
            )
    elif top.get("activation") is None:
        r.warning(
            "activation",
            "is not set: Palette stays on its 30-day trial",
            "write `activation: {defer: true}` to say so, or give the key as `activation: {key: {secret: NAME}}`",
        )
    if files is not None:
        seen: dict[str, int] = {}
        for i, ref in enumerate(files.pack_bundles):
            if ref.path.name in seen:
                r.error(
                    f"files.pack_bundles[{i}]",
                    f"has the same file name as files.pack_bundles[{seen[ref.path.name]}]",
                    "the Local UI keeps packs by name; give each bundle a distinct file name",
                )
            seen.setdefault(ref.path.name, i)
    _cross_checks(r, nodes, network, ptype)
    if appliance is not None and network is not None:
        _configure_checks(r, appliance, nodes, network)
    errors = [p for p in r.problems if p.is_error]
    if (
        errors
        or provider is None
        or network is None
        or files is None
        or appliance is None
        or cluster is None
        or activation is None
    ):
        raise ProjectInvalid(r.problems, str(source) if source else "")
    project = Project(
        name=name,
        provider=provider,
        nodes=tuple(nodes),
        network=network,
        files=files,
        appliance=appliance,
        cluster=cluster,
        source=source,
        console=console,
        activation=activation,
    )
    return LoadedProject(project, [p for p in r.problems if not p.is_error])


def load_project(path: Path) -> LoadedProject:
    """Read, migrate and validate a project file (YAML or JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectInvalid([Problem("(file)", f"{path} does not exist", "check the path")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectInvalid([Problem("(file)", f"{path} cannot be read: {exc}", "check the file")]) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ProjectInvalid(
            [
                Problem(
                    "(file)",
                    f"not valid YAML or JSON at {where}: {getattr(exc, 'problem', exc)}",
                    "fix the syntax there",
                )
            ]
        ) from None
    except RecursionError:
        raise ProjectInvalid([Problem("(file)", "nested too deeply", "fix the file's structure")]) from None
    return parse_project(doc, base=path.resolve().parent, source=path)


# ---------------------------------------------------------------------------------------------------------------
# Writing


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
        for key in ("ip", "gateway", "vm", "maas", "ssh_host_key", "ssh_installer_host_key", "localui_fingerprint"):
            if getattr(n, key):
                nd[key] = getattr(n, key)
        if n.ssh_port != 22:
            nd["ssh_port"] = n.ssh_port
        if n.localui_port != 5080:
            nd["localui_port"] = n.localui_port
        if n.prefix is not None:
            nd["prefix"] = n.prefix
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
