"""A lab node's network configuration API (``/v1/edge-mgmt/network/*``, the newer Local UI spec): four NICs, bonds,
VLANs, the management interface and the valid bond options.

Published behaviour: writes answer 202 and are applied afterwards (a resource reports ``applying`` meanwhile, then
``up``); a write may be answered 429 (the lab does so while an earlier change is still being applied, with
``Retry-After``). What the spec leaves open is decided here (I): a bond's members lose their own addresses; a
change that moves the node's own address to another interface takes the Local UI away while it is applied; if no
interface holds the node's address afterwards, the node answers at another address it has (the management
interface's first; on loopback the lab moves its Local UI there), and if it has none it is lost — unreachable — as
a real one would be.

Plain handlers ``(node, path params, body) -> (status, body)``; :mod:`wizard.lab.localui` adapts them to routes.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from wizard.lab.node import LocalUIError, NodeState

NICS = ("eth0", "eth1", "eth2", "eth3")
BOND_OPTIONS = {
    "mode": ["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"],
    "transmitHashPolicy": ["layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4"],
    "lacpTransmitRate": ["slow", "fast"],
}
_TIMESPAN = re.compile(r"^\d+(\.\d+)?(ms|s)?$")
_LOCK = threading.Lock()


@dataclass
class Iface:
    name: str
    kind: str  # nic | bond | vlan
    type: str = "dhcp"  # dhcp | static | none
    ip: str = ""
    subnet: str = ""
    gateway: str = ""
    nameservers: list[str] = field(default_factory=list)
    mtu: int = 1500
    mac: str = ""
    members: list[str] = field(default_factory=list)
    mode: str = ""
    hash_policy: str = ""
    lacp_rate: str = ""
    mii: str = ""
    parent: str = ""
    parent_type: str = ""
    vlan_id: str = ""
    applied_at: float = 0.0  # lab clock: "applying" until then


class NodeNetwork:
    """One node's interfaces; eth0 holds the node's address as installed, the other NICs have none yet."""

    def __init__(self, state: NodeState) -> None:
        self.state = state
        mask = state.subnet or ("255.0.0.0" if state.ip.startswith("127.") else "255.255.255.0")
        self.ifaces: dict[str, Iface] = {}
        for i, name in enumerate(NICS):
            mac = state.mac[:-2] + f"{(int(state.mac[-2:], 16) + i) % 256:02x}"
            nic = Iface(name, "nic", mac=mac)
            if i == 0:
                nic = replace(nic, type="static", ip=state.ip, subnet=mask, gateway=state.gateway)
            self.ifaces[name] = nic
        self.management = ""
        self.busy_until = 0.0
        self.down_until = 0.0
        self.lost = False

    # -- reading --

    def _status(self, iface: Iface) -> str:
        """``applying`` until a change is applied, then ``up`` (every lab link is up; DHCP gets no lease here)."""
        return "applying" if self.state.clock() < iface.applied_at else "up"

    def bond_of(self, nic: str) -> str:
        return next((b.name for b in self.ifaces.values() if b.kind == "bond" and nic in b.members), "")

    def _address(self, i: Iface) -> dict[str, Any]:
        out: dict[str, Any] = {"type": i.type}
        if i.ip:
            out.update(ip=i.ip, subnet=i.subnet)
        if i.gateway:
            out["gateway"] = i.gateway
        if i.nameservers:
            out["nameservers"] = list(i.nameservers)
        return out

    def nic(self, i: Iface) -> dict[str, Any]:
        enslaved = self.bond_of(i.name)
        address = {"type": "dhcp"} if enslaved else {**self._address(i), "type": i.type if i.type != "none" else "dhcp"}
        return {
            "name": i.name,
            "mac": i.mac,
            "mtu": i.mtu,
            "status": self._status(i),
            "configStatus": "configuring" if self._status(i) == "applying" else "configured",
            "bondName": enslaved,
            "bridgeName": "",
            "isClusterNIC": i.ip == self.state.ip and not enslaved,
            **address,
        }

    def bond(self, i: Iface) -> dict[str, Any]:
        out = {
            "name": i.name,
            "members": list(i.members),
            "mode": i.mode,
            "mtu": i.mtu,
            "status": self._status(i),
            "configStatus": "configuring" if self._status(i) == "applying" else "configured",
            "bridgeName": "",
            **self._address(i),
        }
        options = {"transmitHashPolicy": i.hash_policy, "lacpTransmitRate": i.lacp_rate, "miiMonitorSec": i.mii}
        out.update({key: value for key, value in options.items() if value})
        return out

    def vlan(self, i: Iface) -> dict[str, Any]:
        return {
            "name": i.name,
            "parentName": i.parent,
            "parentType": i.parent_type,
            "vlanID": i.vlan_id,
            "mtu": i.mtu,
            "status": self._status(i),
            "configStatus": "configuring" if self._status(i) == "applying" else "configured",
            "bridgeName": "",
            **({"type": i.type} if i.type in ("dhcp", "static") else {}),
            **{k: v for k, v in self._address(i).items() if k != "type"},
        }

    def of_kind(self, kind: str) -> list[Iface]:
        return [i for i in self.ifaces.values() if i.kind == kind]

    def get(self, kind: str, name: str) -> Iface:
        found = self.ifaces.get(name)
        if found is None or found.kind != kind:
            raise LocalUIError(404, "NotFound", f"no {kind} named {name!r}")
        return found

    def management_view(self) -> dict[str, Any]:
        candidates = [
            {"name": i.name, "type": i.kind, "status": self._status(i), **({"ipAddress": i.ip} if i.ip else {})}
            for i in self.ifaces.values()
            if not (i.kind == "nic" and self.bond_of(i.name))
        ]
        return {"selected": self.management, "candidates": candidates}

    # -- writing --

    def _accept(self, now: float, before: dict[str, Iface]) -> float:
        """A change accepted now; the Local UI goes away while it is applied if it moves the node's address."""
        self._not_busy(now)
        applied = now + self.state.configure_seconds
        self.busy_until = applied
        if self._holder(before) != self._holder(self.ifaces):
            self.down_until = applied
        return applied

    def _not_busy(self, now: float) -> None:
        if now < self.busy_until:
            message = "an earlier network change is still being applied"
            raise LocalUIError(429, "TooManyRequests", message, retry_after=self.busy_until - now)

    def _holder(self, ifaces: Mapping[str, Iface]) -> str:
        enslaved = {m for i in ifaces.values() if i.kind == "bond" for m in i.members}
        return next(
            (
                i.name
                for i in ifaces.values()
                if i.ip == self.state.ip and i.type == "static" and i.name not in enslaved
            ),
            "",
        )

    def _static(self, body: Mapping[str, Any], kinds: tuple[str, ...]) -> tuple[str, str, str, str]:
        kind = str(body.get("type") or "dhcp")
        if kind not in kinds:
            raise LocalUIError(400, "BadRequest", f"type {kind!r} is not one of {', '.join(kinds)}")
        ip, subnet, gateway = (str(body.get(k) or "") for k in ("ip", "subnet", "gateway"))
        if kind == "static":
            try:
                ipaddress.IPv4Address(ip)
                ipaddress.IPv4Network(f"0.0.0.0/{subnet}")
                if gateway:
                    ipaddress.IPv4Address(gateway)
            except ValueError as exc:
                raise LocalUIError(400, "BadRequest", f"a static address needs ip and subnet: {exc}") from exc
        elif ip or subnet:
            raise LocalUIError(400, "BadRequest", f"type {kind} takes no ip or subnet")
        return kind, ip, subnet, gateway

    def put_nic(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        nic = self.get("nic", name)
        if self.bond_of(name):
            raise LocalUIError(400, "BadRequest", f"{name} is a member of {self.bond_of(name)}: address the bond")
        kind, ip, subnet, gateway = self._static(body, ("dhcp", "static"))
        before = dict(self.ifaces)
        servers = list(body.get("nameservers") or [])
        self.ifaces[name] = replace(nic, type=kind, ip=ip, subnet=subnet, gateway=gateway, nameservers=servers)
        self.ifaces[name].applied_at = self._accept(self.state.clock(), before)
        return {"message": f"configuration of {name} accepted"}

    def put_bond(self, name: str, body: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
        existing = self.ifaces.get(name)
        if existing is not None and (create or existing.kind != "bond"):
            raise LocalUIError(400, "AlreadyExists", f"{name} already exists")
        members = [str(m) for m in body.get("members") or []]
        if not members:
            raise LocalUIError(400, "BadRequest", "a bond needs members")
        for m in members:
            if m not in NICS:
                raise LocalUIError(400, "BadRequest", f"{m} is not a NIC of this host ({', '.join(NICS)})")
            other = self.bond_of(m)
            if other and other != name:
                raise LocalUIError(400, "BadRequest", f"{m} is already a member of {other}")
        mode = str(body.get("mode") or "balance-rr")
        if mode not in BOND_OPTIONS["mode"]:
            raise LocalUIError(400, "BadRequest", f"mode {mode!r} is not one of {', '.join(BOND_OPTIONS['mode'])}")
        hash_policy, lacp = str(body.get("transmitHashPolicy") or ""), str(body.get("lacpTransmitRate") or "")
        if hash_policy and hash_policy not in BOND_OPTIONS["transmitHashPolicy"]:
            raise LocalUIError(400, "BadRequest", f"transmitHashPolicy {hash_policy!r} is not valid")
        if lacp and (lacp not in BOND_OPTIONS["lacpTransmitRate"] or mode != "802.3ad"):
            raise LocalUIError(400, "BadRequest", f"lacpTransmitRate {lacp!r} needs mode 802.3ad and slow or fast")
        mii = str(body.get("miiMonitorSec") or "")
        if mii and not _TIMESPAN.match(mii):
            raise LocalUIError(400, "BadRequest", f"miiMonitorSec {mii!r} is not a time span (e.g. 100ms)")
        kind, ip, subnet, gateway = self._static(body, ("dhcp", "static", "none"))
        before = dict(self.ifaces)
        servers, mtu = list(body.get("nameservers") or []), int(body.get("mtu") or 1500)
        self.ifaces[name] = Iface(name, "bond", kind, ip, subnet, gateway, servers, mtu)
        self.ifaces[name].members, self.ifaces[name].mode = members, mode
        self.ifaces[name].hash_policy, self.ifaces[name].lacp_rate, self.ifaces[name].mii = hash_policy, lacp, mii
        self.ifaces[name].applied_at = self._accept(self.state.clock(), before)
        return {"message": f"bond {name} accepted"}

    def put_vlan(self, name: str, body: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
        existing = self.ifaces.get(name)
        if existing is not None and (create or existing.kind != "vlan"):
            raise LocalUIError(400, "AlreadyExists", f"{name} already exists")
        parent, parent_type, vlan_id = (str(body.get(k) or "") for k in ("parentName", "parentType", "vlanID"))
        found = self.ifaces.get(parent)
        if found is None or found.kind != parent_type:
            raise LocalUIError(400, "BadRequest", f"no {parent_type or 'parent'} named {parent!r} on this host")
        if found.kind == "nic" and self.bond_of(parent):
            raise LocalUIError(400, "BadRequest", f"{parent} is a member of {self.bond_of(parent)}")
        if not vlan_id.isdigit() or not 1 <= int(vlan_id) <= 4094:
            raise LocalUIError(400, "BadRequest", f"vlanID {vlan_id!r} must be 1 to 4094")
        kind, ip, subnet, gateway = self._static(body, ("dhcp", "static"))
        before = dict(self.ifaces)
        servers, mtu = list(body.get("nameservers") or []), int(body.get("mtu") or 1500)
        vlan = Iface(name, "vlan", kind, ip, subnet, gateway, servers, mtu)
        vlan.parent, vlan.parent_type, vlan.vlan_id = parent, parent_type, vlan_id
        self.ifaces[name] = vlan
        self.ifaces[name].applied_at = self._accept(self.state.clock(), before)
        return {"message": f"VLAN {name} accepted"}

    def delete(self, kind: str, name: str) -> dict[str, Any]:
        self.get(kind, name)
        if kind == "bond" and any(v.parent == name for v in self.of_kind("vlan")):
            raise LocalUIError(400, "BadRequest", f"{name} carries VLANs: delete them first")
        before = dict(self.ifaces)
        del self.ifaces[name]
        self._accept(self.state.clock(), before)
        return {"message": f"{kind} {name} deleted"}

    def put_management(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("name") or "")
        if name and name not in {c["name"] for c in self.management_view()["candidates"]}:
            raise LocalUIError(400, "BadRequest", f"{name} is not a management interface candidate")
        self._not_busy(self.state.clock())
        self.management = name
        return {"message": f"management interface {name or '(default routing)'} selected"}

    # -- the session --

    def settle(self) -> None:
        """After a change is applied: the node answers where its address is, or at the management interface's."""
        now = self.state.clock()
        if now < self.busy_until or self.lost:
            return
        if self._holder(self.ifaces):
            return
        # The Local UI answers on every address the node has; the lab listens on one: the management interface's,
        # else a VLAN's or a bond's, else a NIC's.
        enslaved = {m for i in self.ifaces.values() if i.kind == "bond" for m in i.members}
        usable = [i for i in self.ifaces.values() if i.type == "static" and i.ip and i.name not in enslaved]
        usable.sort(key=lambda i: (i.name != self.management, {"vlan": 0, "bond": 1}.get(i.kind, 2)))
        if usable:
            self.state.ip = usable[0].ip
        else:
            self.lost = True  # nothing holds an address the wizard can reach: as a real node, unreachable


def network_of(state: NodeState) -> NodeNetwork:
    with _LOCK:
        net = getattr(state, "_lab_network", None)
        if net is None:
            net = NodeNetwork(state)
            state._lab_network = net  # type: ignore[attr-defined]  # the node's own, made on first use
        return net


def unreachable(state: NodeState) -> bool:
    """The node's Local UI does not answer: a change moving its address is being applied, or it is lost."""
    net: NodeNetwork | None = getattr(state, "_lab_network", None)
    if net is None:
        return False
    with state.lock:
        net.settle()
        return net.lost or state.clock() < net.down_until


# -- handlers ------------------------------------------------------------------------------------------------------

Handler = Callable[[NodeState, Mapping[str, str], Any], tuple[int, Any]]
N = "/v1/edge-mgmt/network"


def _locked(fn: Callable[[NodeNetwork, Mapping[str, str], Any], tuple[int, Any]]) -> Handler:
    def handler(state: NodeState, params: Mapping[str, str], body: Any) -> tuple[int, Any]:
        net = network_of(state)
        with state.lock:
            net.settle()
            return fn(net, params, body or {})

    return handler


HANDLERS: dict[tuple[str, str], Handler] = {
    ("GET", f"{N}/config-options"): _locked(lambda n, p, b: (200, {"bond": BOND_OPTIONS})),
    ("GET", f"{N}/interfaces"): _locked(lambda n, p, b: (200, {"interfaces": [n.nic(i) for i in n.of_kind("nic")]})),
    ("GET", f"{N}/interfaces/{{name}}"): _locked(lambda n, p, b: (200, n.nic(n.get("nic", p["name"])))),
    ("PUT", f"{N}/interfaces/{{name}}/config"): _locked(lambda n, p, b: (202, n.put_nic(p["name"], b))),
    ("GET", f"{N}/bonds"): _locked(lambda n, p, b: (200, {"items": [n.bond(i) for i in n.of_kind("bond")]})),
    ("GET", f"{N}/bonds/{{name}}"): _locked(lambda n, p, b: (200, n.bond(n.get("bond", p["name"])))),
    ("PUT", f"{N}/bonds/{{name}}"): _locked(lambda n, p, b: (202, n.put_bond(p["name"], b, create=False))),
    ("POST", f"{N}/bonds/{{name}}"): _locked(lambda n, p, b: (202, n.put_bond(p["name"], b, create=True))),
    ("DELETE", f"{N}/bonds/{{name}}"): _locked(lambda n, p, b: (202, n.delete("bond", p["name"]))),
    ("GET", f"{N}/vlans"): _locked(lambda n, p, b: (200, {"items": [n.vlan(i) for i in n.of_kind("vlan")]})),
    ("GET", f"{N}/vlans/{{name}}"): _locked(lambda n, p, b: (200, n.vlan(n.get("vlan", p["name"])))),
    ("PUT", f"{N}/vlans/{{name}}"): _locked(lambda n, p, b: (202, n.put_vlan(p["name"], b, create=False))),
    ("POST", f"{N}/vlans/{{name}}"): _locked(lambda n, p, b: (202, n.put_vlan(p["name"], b, create=True))),
    ("DELETE", f"{N}/vlans/{{name}}"): _locked(lambda n, p, b: (202, n.delete("vlan", p["name"]))),
    ("GET", f"{N}/bridges"): _locked(lambda n, p, b: (200, {"items": []})),
    ("GET", f"{N}/management-interface"): _locked(lambda n, p, b: (200, n.management_view())),
    ("PUT", f"{N}/management-interface"): _locked(lambda n, p, b: (202, n.put_management(b))),
}
