"""Zero-touch node configuration: a per-node NoCloud seed ISO (volume id ``cidata``) with ``user-data`` and
``meta-data``, attached as the node's second CD so nobody has to type settings into each node's console.

The keys follow the published installer reference (reference §1.9 and §3): ``install.{device,reboot,poweroff}``,
``stylus.site.{hostName, users, network, ntpServers}``, ``stylus.includeTui``. What the public material leaves open
(whether the newest slim ISO honours a ``cidata`` ISO, and whether ``passwd`` takes a crypt hash) is decided here
and only here, so a correction is a change to this one module:

- the password is written as a bcrypt crypt(3) hash (``$2b$``), never in plain text: the seed ISO is a file that
  lands on a datastore or a web server, and secrets never go into files;
- the wizard's own SSH public key is authorised for the account, so the install monitor can log in even before the
  password is replaced.

The seed is read by the ISO's automatic installer, the same installer that reads the ISO's own root ``config.yaml``
(the build's validated user-data, reference §10.1), so the seed carries that file's content too and changes only
what the wizard must set per node. Where each key comes from (:func:`user_data`):

====================================  =================================================================================
from the ISO's ``config.yaml``        every key, kept as it is: ``stylus.*`` (``managementMode``, ``applianceType``,
                                      ``localUI``, feature gates …), ``install.*`` (``grub_options``, ``bind_mounts``,
                                      ``device`` when the project names none …), ``stages``, anything else
from the project, per node            ``install.device`` (when ``appliance.install_disk`` is not ``auto``);
                                      ``stylus.site.hostName``; ``stylus.site.users`` (the operator's account replaces
                                      an ISO user of the same name; other ISO users stay); ``stylus.site.network``
                                      (interfaces, name server, search domains, proxy replace the ISO's keys of the
                                      same name); ``stylus.site.ntpServers``
from the wizard                       ``install.reboot``/``install.poweroff`` (the post-install action: the wizard
                                      watches the node reboot into its installed system, so an ISO's ``poweroff`` is
                                      replaced); ``install.bind_mounts`` gains the storage-pool paths it lacks;
                                      ``stylus.includeTui: true`` only where the ISO does not set it
====================================  =================================================================================

A node configured after the install (``appliance.configure: localui`` or ``console``) that boots the automatic
installer gets a seed too, without the per-node rows (``NodeSeed.identity`` false): the ISO's config with the
post-install action, the install disk and the mounts only, so the node reboots into its installed system instead of
powering off (the lab's ISO, like the older flow's template, says ``poweroff``).

Built in pure Python with pycdlib, so it works the same on Windows, macOS and Linux jump hosts.
"""

from __future__ import annotations

import copy
import io
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bcrypt
import paramiko
import pycdlib
import yaml

from wizard.core.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from wizard.core.project import Node, Project

VOLUME_ID = "cidata"
USER_DATA = "user-data"
META_DATA = "meta-data"
# Storage-pool paths the docs bind-mount onto the data disk (reference §1.9).
BIND_MOUNTS = (
    "/etc/lvm",
    "/var/lib/drbd",
    "/var/lib/linstor.d",
    "/var/lib/piraeus-datastore",
    "/var/lib/calico",
)


@dataclass(frozen=True)
class NodeSeed:
    """Everything one node's seed says; plain values, secrets already hashed."""

    hostname: str
    instance_id: str
    username: str
    password_hash: str  # crypt(3) form; see :func:`hash_password`
    ssh_keys: tuple[str, ...] = ()
    install_device: str = "auto"
    post_install: str = "reboot"  # reboot | poweroff | nothing
    nic: str = "eth0"
    address: str = ""  # empty: DHCP
    prefix: int | None = None
    gateway: str = ""
    dns: tuple[str, ...] = ()
    search_domains: tuple[str, ...] = ()
    ntp: tuple[str, ...] = ()
    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: tuple[str, ...] = ()
    #: More NICs' addressing (``nodes[i].network.interfaces``): (name, ``v1NetworkInterface``-like entry).
    interfaces: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    #: The ISO's own root ``config.yaml`` (its user-data), which the seed keeps (see the module's table).
    base: dict[str, Any] = field(default_factory=dict)
    #: False: a seed that says only the post-install action (and the storage-pool mounts) over the ISO's config —
    #: for a node configured after the install (``appliance.configure: localui`` or ``console``) that boots the
    #: automatic installer, which would otherwise follow the ISO's own ``poweroff`` and wait switched off.
    identity: bool = True


def hash_password(password: str, *, rounds: int = 12) -> str:
    if not password:
        raise ValueError("the password must not be empty")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def user_data(seed: NodeSeed) -> dict[str, Any]:
    """The cloud-config document for ``seed``: the ISO's own ``config.yaml`` (``seed.base``) with the node's
    settings merged in, as the module's table says."""
    if seed.post_install not in ("reboot", "poweroff", "nothing"):
        raise ValueError(f"post_install must be reboot, poweroff or nothing, not {seed.post_install!r}")
    doc: dict[str, Any] = copy.deepcopy(seed.base)
    install = _mapping(doc, "install")
    install["reboot"] = seed.post_install == "reboot"
    install["poweroff"] = seed.post_install == "poweroff"
    mounts = [m for m in install.get("bind_mounts") or [] if isinstance(m, str)]
    install["bind_mounts"] = mounts + [m for m in BIND_MOUNTS if m not in mounts]
    if seed.install_device and seed.install_device != "auto":
        install["device"] = seed.install_device
    if not seed.identity:
        return doc
    user: dict[str, Any] = {
        "name": seed.username,
        "passwd": seed.password_hash,
        "groups": ["admin"],
        "lock_passwd": False,
    }
    if seed.ssh_keys:
        user["ssh_authorized_keys"] = list(seed.ssh_keys)
    stylus = _mapping(doc, "stylus")
    stylus.setdefault("includeTui", True)
    site = _mapping(stylus, "site")
    site["hostName"] = seed.hostname
    others = [u for u in site.get("users") or [] if isinstance(u, dict) and u.get("name") != seed.username]
    site["users"] = [*others, user]
    network = _mapping(site, "network")
    if seed.address:
        if seed.prefix is None or not seed.gateway:
            raise ValueError("a static address needs its prefix and gateway")
        mask = str(ipaddress.IPv4Network(f"0.0.0.0/{seed.prefix}").netmask)
        iface: dict[str, Any] = {"type": "static", "ipAddress": seed.address, "mask": mask, "gateway": seed.gateway}
        if seed.dns:
            iface["nameserver"] = seed.dns[0]
    else:
        iface = {"type": "dhcp"}
    interfaces = _mapping(network, "interfaces")
    interfaces[seed.nic] = iface
    for name, entry in seed.interfaces:  # stylus.site.network.interfaces.<nic>: the only network a seed describes
        interfaces.setdefault(name, dict(entry))
    if seed.dns:
        network["nameserver"] = seed.dns[0]
    if seed.http_proxy:
        network["httpProxy"] = seed.http_proxy
    if seed.https_proxy:
        network["httpsProxy"] = seed.https_proxy
    if seed.no_proxy:
        network["noProxy"] = ",".join(seed.no_proxy)
    if seed.search_domains:
        network["searchDomains"] = list(seed.search_domains)
    if seed.ntp:
        site["ntpServers"] = list(seed.ntp)
    doc.update(seed.extra)
    return doc


def _mapping(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` as a mapping, made (or replacing a value that is not one) when needed."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def iso_user_data(text: str | bytes | None) -> dict[str, Any]:
    """The ISO's ``config.yaml`` as a mapping (empty when it has none or it is not a mapping)."""
    if not text:
        return {}
    doc = yaml.safe_load(text)
    return doc if isinstance(doc, dict) else {}


def render_user_data(seed: NodeSeed) -> str:
    return "#cloud-config\n" + yaml.safe_dump(user_data(seed), sort_keys=False, default_flow_style=False)


def render_meta_data(seed: NodeSeed) -> str:
    meta = {"instance-id": seed.instance_id, **({"local-hostname": seed.hostname} if seed.identity else {})}
    return yaml.safe_dump(meta, sort_keys=False)


def build_seed_iso(seed: NodeSeed, path: Path) -> Path:
    """Write the node's seed ISO to ``path`` atomically (ISO 9660 with Joliet and Rock Ridge, volume ``cidata``)."""
    files: Sequence[tuple[str, bytes]] = (
        (USER_DATA, render_user_data(seed).encode()),
        (META_DATA, render_meta_data(seed).encode()),
    )
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_ID, sys_ident="LINUX")
    for name, data in files:
        iso_name = "/" + name.upper().replace("-", "_") + ".;1"
        iso.add_fp(io.BytesIO(data), len(data), iso_name, rr_name=name, joliet_path="/" + name)
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, out.getvalue())
    return path


def read_seed_iso(path: Path) -> tuple[str, dict[str, str]]:
    """The volume id and the files (by Rock Ridge name) of a seed ISO; for checks and tests."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        volume = iso.pvd.volume_identifier.decode().strip()
        files: dict[str, str] = {}
        for name in (USER_DATA, META_DATA):
            buf = io.BytesIO()
            iso.get_file_from_iso_fp(buf, rr_path="/" + name)
            files[name] = buf.getvalue().decode()
        return volume, files
    finally:
        iso.close()


# -- the wizard's own SSH key ------------------------------------------------------------------------------------
#: Where the wizard keeps its login key for the nodes it seeds, under the app's config folder (owner-only).
WIZARD_KEY_FILE = Path("ssh") / "wizard_ed25519"


def wizard_key(config_dir: Path) -> paramiko.PKey:
    """The wizard's own SSH private key (Ed25519), created once, kept owner-only (0600) as OpenSSH writes it.

    Only its public half goes into seed ISOs; the install monitor and the post-boot checks log in with it, so a
    seeded node never needs its password over SSH."""
    path = config_dir / WIZARD_KEY_FILE
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        atomic_write_bytes(path, pem)
        path.chmod(0o600)
    return paramiko.Ed25519Key.from_private_key_file(str(path))


def public_key_line(key: paramiko.PKey, comment: str = "palette-wizard") -> str:
    """The ``authorized_keys`` line for ``key``."""
    return f"{key.get_name()} {key.get_base64()} {comment}".strip()


def seed_for_node(
    project: Project,
    node: Node,
    *,
    password_hash: str,
    ssh_keys: Sequence[str],
    instance_id: str = "",
    base: dict[str, Any] | None = None,
    identity: bool = True,
) -> NodeSeed:
    """The seed for ``node`` from the project: its host name and address, the network's DNS, NTP and proxy, the
    operator's password hash and the wizard's key (plus the cluster's operator keys), over ``base`` (the ISO's own
    ``config.yaml``)."""
    from wizard.core.project import AddressMode

    static = node.address_mode is AddressMode.STATIC
    net = project.network
    keys = tuple(dict.fromkeys([*ssh_keys, *project.cluster.ssh_keys]))
    return NodeSeed(
        hostname=node.hostname or node.name,
        instance_id=instance_id or f"{project.name}-{node.name}",
        username=project.appliance.username,
        password_hash=password_hash,
        ssh_keys=keys,
        install_device=project.appliance.install_disk,
        address=node.ip if static else "",
        prefix=node.prefix if static else None,
        gateway=node.gateway if static else "",
        dns=net.dns,
        search_domains=net.search_domains,
        ntp=net.ntp,
        http_proxy=net.proxy.http,
        https_proxy=net.proxy.https,
        no_proxy=net.proxy.no_proxy,
        interfaces=seed_interfaces(node),
        base=dict(base or {}),
        identity=identity,
    )


def seed_interfaces(node: Node) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """The per-NIC addressing of ``nodes[i].network.interfaces`` in the seed's form (``type``, ``ipAddress``,
    ``mask``, ``gateway``); bonds and VLANs have no place in a seed (the project requires configure: localui)."""
    if node.network is None:
        return ()
    out = []
    for nic in node.network.interfaces:
        a = nic.addressing
        entry = [("type", a.kind)]
        if a.kind == "static":
            entry += [("ipAddress", a.ip), ("mask", a.netmask)] + ([("gateway", a.gateway)] if a.gateway else [])
        out.append((nic.name, tuple(entry)))
    return tuple(out)


# -- reading a seed back (the lab's nodes, and checks) -----------------------------------------------------------
@dataclass(frozen=True)
class SeedUser:
    name: str
    password_hash: str
    ssh_keys: tuple[str, ...]


@dataclass(frozen=True)
class SeedConfig:
    """What a node takes from an attached seed: its host name and accounts."""

    hostname: str
    users: tuple[SeedUser, ...]
    post_install: str = "reboot"


def read_seed_bytes(data: bytes) -> dict[str, str]:
    """The files of a seed ISO image held in memory (by Rock Ridge name); raises ValueError if it is not one."""
    iso = pycdlib.PyCdlib()
    try:
        iso.open_fp(io.BytesIO(data))
    except pycdlib.pycdlibexception.PyCdlibException as exc:
        raise ValueError(f"not an ISO 9660 image: {exc}") from exc
    try:
        if iso.pvd.volume_identifier.decode().strip().lower() != VOLUME_ID:
            raise ValueError("the volume id is not cidata")
        files: dict[str, str] = {}
        for name in (USER_DATA, META_DATA):
            buf = io.BytesIO()
            try:
                iso.get_file_from_iso_fp(buf, rr_path="/" + name)
            except pycdlib.pycdlibexception.PyCdlibException:
                continue
            files[name] = buf.getvalue().decode()
        return files
    finally:
        iso.close()


def parse_seed(data: bytes) -> SeedConfig:
    """The host name, accounts and post-install action a seed ISO image sets (ValueError if it sets none of them:
    a seed that only sets the install options, for a node configured after the install, still counts)."""
    files = read_seed_bytes(data)
    doc = yaml.safe_load(files.get(USER_DATA, "")) or {}
    meta = yaml.safe_load(files.get(META_DATA, "")) or {}
    if not isinstance(doc, dict):
        raise ValueError("user-data is not a cloud-config mapping")
    site = ((doc.get("stylus") or {}).get("site") or {}) if isinstance(doc.get("stylus"), dict) else {}
    hostname = str(site.get("hostName") or (meta.get("local-hostname") if isinstance(meta, dict) else "") or "")
    users = tuple(
        SeedUser(str(u.get("name") or "kairos"), str(u.get("passwd") or ""), tuple(u.get("ssh_authorized_keys") or ()))
        for u in site.get("users") or []
        if isinstance(u, dict)
    )
    install = doc.get("install") if isinstance(doc.get("install"), dict) else {}
    assert isinstance(install, dict)
    action = "poweroff" if install.get("poweroff") else "reboot" if install.get("reboot", True) else "nothing"
    if not hostname and not users and not install:
        raise ValueError("the seed sets neither a host name, an account nor install options")
    return SeedConfig(hostname, users, action)
