"""A node's network beyond one NIC: ``nodes[i].network`` — per-interface addressing, bonds, VLANs and the
management interface that carries the node's address.

```yaml
network:
  management: bond0.100          # carries nodes[i].ip (its prefix and gateway); default: the node's first NIC
  reach: 10.10.0.51              # where the node answers before this is applied (default: nodes[i].ip)
  bonds:
    - {name: bond0, members: [eth0, eth1], mode: 802.3ad, hash_policy: layer3+4, lacp_rate: fast, mii: 100}
  vlans:
    - {name: bond0.100, parent: bond0, id: 100, addressing: static}
  interfaces:
    - {name: eth2, addressing: dhcp}
    - {name: eth3, addressing: static, ip: 192.168.50.11, prefix: 24}
```

Addressing is ``none`` (bonds only: a bond that only carries VLANs), ``dhcp`` or ``static``; the management
interface is static with the node's own address unless it says ``ip`` (then it must be the node's address). A bond's
``mode``, ``hash_policy`` and ``lacp_rate`` are the Linux bonding names (``balance-rr``, ``active-backup``,
``balance-xor``, ``broadcast``, ``802.3ad``, ``balance-tlb``, ``balance-alb``; ``layer2``, ``layer2+3``, ``layer3+4``,
``encap2+3``, ``encap3+4``; ``slow``, ``fast``); the appliance's own ``network/config-options`` decides at apply
time. ``mii`` is the link-monitoring interval in milliseconds.

Only ``appliance.configure: localui`` applies bonds, VLANs and the management interface (through the Local UI's
network API); the seed's ``stylus.site.network`` describes single interfaces, so with ``configure: seed`` only the
per-interface addressing is carried.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from wizard.core.project.model import Addressing, BondConfig, NicConfig, NodeNetwork, VlanConfig
from wizard.core.project.reader import _kind, _Reader, _show, ipv4_problem

T = TypeVar("T")

#: Linux bonding names (the spec's documented examples); the appliance's config-options decide at apply time.
BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb")
HASH_POLICIES = ("layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4")
LACP_RATES = ("slow", "fast")
ADDRESSING = ("none", "dhcp", "static")
_IFNAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,14}")  # Linux interface names: at most 15 characters


def read_node_network(
    r: _Reader, raw: object, path: str, *, ip: str, prefix: int | None, gateway: str
) -> NodeNetwork | None:
    m = r.mapping(raw, path, ("management", "reach", "interfaces", "bonds", "vlans"))
    if m is None:
        return None
    management = r.text(m, "management", path)
    reach = r.text(m, "reach", path)
    if reach and (why := ipv4_problem(reach)) is not None:
        r.error(f"{path}.reach", why, "the address the node answers on before its network is configured")
        reach = ""
    nics = tuple(_items(r, m, "interfaces", path, _read_nic))
    bonds = tuple(_items(r, m, "bonds", path, _read_bond))
    vlans = tuple(_items(r, m, "vlans", path, _read_vlan))
    net = NodeNetwork(management, reach, nics, bonds, vlans)
    _cross(r, net, path, ip=ip, prefix=prefix, gateway=gateway)
    return net


Reader = Callable[[_Reader, object, str], T | None]


def _items(r: _Reader, m: dict[str, Any], key: str, path: str, read: Reader[T]) -> list[T]:
    raw = m.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        r.error(f"{path}.{key}", f"expected a list, got {_kind(raw)}", f"write one `- name: …` entry per {key[:-1]}")
        return []
    return [item for i, entry in enumerate(raw) if (item := read(r, entry, f"{path}.{key}[{i}]")) is not None]


def _name(r: _Reader, m: dict[str, Any], path: str) -> str:
    name = r.text(m, "name", path, required=True)
    if name and not _IFNAME.fullmatch(name):
        r.error(f"{path}.name", f"{_show(name)} is not an interface name", "at most 15 letters, digits, '.', '-', '_'")
        return ""
    return name


def _addressing(r: _Reader, m: dict[str, Any], path: str, allowed: tuple[str, ...], default: str) -> Addressing:
    kind = r.text(m, "addressing", path, default=default).lower() or default
    if kind not in allowed:
        listing = ", ".join(allowed)
        r.error(f"{path}.addressing", f"{_show(kind)} is not one of {listing}", f"use one of {listing}")
        kind = default
    ip = r.text(m, "ip", path)
    prefix = r.integer(m, "prefix", path, default=None, minimum=1, maximum=32)
    gateway = r.text(m, "gateway", path)
    for key, value in (("ip", ip), ("gateway", gateway)):
        if value and (why := ipv4_problem(value)) is not None:
            r.error(f"{path}.{key}", why, "write an IPv4 address")
    if kind != "static" and (ip or gateway or prefix is not None):
        r.error(f"{path}.addressing", f"is {kind}, but an address is given", "write `addressing: static`, or remove it")
    if kind == "static" and ip and prefix is None:
        r.error(f"{path}.prefix", "is required with a static ip", "give the prefix length, e.g. 24")
    return Addressing(kind, ip, prefix, gateway)


def _read_nic(r: _Reader, raw: object, path: str) -> NicConfig | None:
    m = r.mapping(raw, path, ("name", "addressing", "ip", "prefix", "gateway"))
    if m is None:
        return None
    name = _name(r, m, path)
    addressing = _addressing(r, m, path, ("dhcp", "static"), "dhcp")
    return NicConfig(name, addressing) if name else None


def _choice(r: _Reader, m: dict[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> str:
    value = r.text(m, key, path)
    if value and value not in allowed:
        listing = ", ".join(allowed)
        r.error(f"{path}.{key}", f"{_show(value)} is not one of {listing}", f"use one of {listing}")
        return ""
    return value


def _read_bond(r: _Reader, raw: object, path: str) -> BondConfig | None:
    fields = ("name", "members", "mode", "hash_policy", "lacp_rate", "mii", "addressing", "ip", "prefix", "gateway")
    m = r.mapping(raw, path, fields)
    if m is None:
        return None
    name = _name(r, m, path)
    members = r.text_list(m, "members", path)
    if not members:
        r.error(f"{path}.members", "is required", "list the bond's NICs, e.g. [eth0, eth1]")
    for i, member in enumerate(members):
        if not _IFNAME.fullmatch(member):
            r.error(f"{path}.members[{i}]", f"{_show(member)} is not an interface name", "name a NIC, e.g. eth1")
    mode = _choice(r, m, "mode", path, BOND_MODES) or "active-backup"
    hash_policy = _choice(r, m, "hash_policy", path, HASH_POLICIES)
    lacp_rate = _choice(r, m, "lacp_rate", path, LACP_RATES)
    if lacp_rate and mode != "802.3ad":
        r.error(f"{path}.lacp_rate", f"only applies to mode 802.3ad (this bond is {mode})", "remove it or use 802.3ad")
    if hash_policy and mode not in ("balance-xor", "802.3ad", "balance-tlb", "balance-alb"):
        r.error(f"{path}.hash_policy", f"does not apply to mode {mode}", "remove it, or use 802.3ad or balance-xor")
    mii = r.integer(m, "mii", path, default=None, minimum=0, maximum=60_000)
    addressing = _addressing(r, m, path, ADDRESSING, "none")
    return BondConfig(name, members, mode, hash_policy, lacp_rate, mii, addressing) if name else None


def _read_vlan(r: _Reader, raw: object, path: str) -> VlanConfig | None:
    m = r.mapping(raw, path, ("name", "parent", "id", "addressing", "ip", "prefix", "gateway"))
    if m is None:
        return None
    parent = r.text(m, "parent", path, required=True)
    vlan_id = r.integer(m, "id", path, default=None, minimum=1, maximum=4094, required=True)
    # Without a name, the usual <parent>.<id>.
    name = _name(r, m, path) if "name" in m else (f"{parent}.{vlan_id}" if parent and vlan_id else "")
    addressing = _addressing(r, m, path, ("dhcp", "static"), "dhcp")
    if not (name and parent and vlan_id):
        return None
    return VlanConfig(name, parent, vlan_id, addressing)


def _cross(r: _Reader, net: NodeNetwork, path: str, *, ip: str, prefix: int | None, gateway: str) -> None:
    groups: tuple[tuple[str, Sequence[NicConfig | BondConfig | VlanConfig]], ...] = (
        ("interfaces", net.interfaces),
        ("bonds", net.bonds),
        ("vlans", net.vlans),
    )
    names: dict[str, str] = {}
    for key, items in groups:
        for i, item in enumerate(items):
            if item.name in names:
                message = f"{item.name} is also described in {names[item.name]}"
                r.error(f"{path}.{key}[{i}].name", message, "describe each interface once")
            names[item.name] = f"{path}.{key}[{i}]"
    enslaved: dict[str, str] = {}
    for i, bond in enumerate(net.bonds):
        where = f"{path}.bonds[{i}].members"
        for member in bond.members:
            if member in enslaved:
                r.error(where, f"{member} is already a member of {enslaved[member]}", "a NIC can be in one bond only")
            elif net.kind_of(member) != "nic":
                r.error(where, f"{member} is a {net.kind_of(member)}, not a NIC", "bond physical NICs")
            enslaved[member] = bond.name
    for i, nic in enumerate(net.interfaces):
        if nic.name in enslaved:
            message = f"{nic.name} is a member of {enslaved[nic.name]} and has no address of its own"
            r.error(f"{path}.interfaces[{i}]", message, "remove it here; address the bond or a VLAN on it")
    for i, vlan in enumerate(net.vlans):
        where = f"{path}.vlans[{i}].parent"
        if vlan.parent in enslaved:
            owner = enslaved[vlan.parent]
            r.error(where, f"{vlan.parent} is a member of {owner}", f"put the VLAN on {owner}")
        elif net.kind_of(vlan.parent) == "vlan":
            r.error(where, f"{vlan.parent} is a VLAN", "put VLANs on a NIC or a bond")
    _management(r, net, f"{path}.management", enslaved, ip)
    if net.reach and net.reach == ip:
        r.warning(f"{path}.reach", "is the node's own address", "leave it out")
    if ip and prefix is not None and gateway:
        node_net = ipaddress.IPv4Network(f"{ip}/{prefix}", strict=False)
        for key, items in groups:
            for i, item in enumerate(items):
                a = item.addressing
                if a.kind == "static" and a.ip and a.prefix and a.ip != ip:
                    other = ipaddress.IPv4Network(f"{a.ip}/{a.prefix}", strict=False)
                    if other.overlaps(node_net):
                        message = f"{a.ip}/{a.prefix} overlaps the node's subnet {node_net}"
                        fix = "give a second interface an address in another subnet"
                        r.warning(f"{path}.{key}[{i}].ip", message, fix)


def _management(r: _Reader, net: NodeNetwork, where: str, enslaved: dict[str, str], ip: str) -> None:
    if not net.management:
        if net.bonds or net.vlans:
            fix = "name the interface that carries the node's address, e.g. bond0 or bond0.100"
            r.error(where, "is required with bonds or VLANs", fix)
        return
    name = net.management
    if name in enslaved:
        fix = f"make {enslaved[name]} (or a VLAN on it) the management interface"
        r.error(where, f"{name} is a member of {enslaved[name]}", fix)
    carrier = _addressing_of(net, name)
    if carrier is not None and carrier.kind == "none":
        r.error(where, f"{name} has addressing none", "give it static or dhcp")
    elif carrier is not None and carrier.ip and ip and carrier.ip != ip:
        fix = "leave out its ip (it takes the node's) or correct one of them"
        r.error(where, f"{name} is given {carrier.ip}, but it carries the node's address {ip}", fix)


def _addressing_of(net: NodeNetwork, name: str) -> Addressing | None:
    items: list[NicConfig | BondConfig | VlanConfig] = [*net.interfaces, *net.bonds, *net.vlans]
    found = next((i for i in items if i.name == name), None)
    return found.addressing if found is not None else None


def management_addressing(net: NodeNetwork, *, ip: str, prefix: int | None, gateway: str, dhcp: bool) -> Addressing:
    """What the management interface gets: the node's own address (static), or DHCP for a DHCP node."""
    if dhcp:
        return Addressing("dhcp")
    return Addressing("static", ip, prefix, gateway)
