"""A node's network beyond one NIC, applied through its Local UI's network API (``/v1/edge-mgmt/network/*``, the
newer published spec; reference §10.3): bonds, VLANs, per-interface addressing and the management interface.

Every write answers 202 and is applied afterwards, so each is followed by reading the resource back until it no
longer reports ``applying``; a 429 is waited out as ``Retry-After`` asks (the client's throttle handling). Each write
is compared with what the node already has first, so a rerun sends only what differs.

The interface that carries the wizard's own session (the one holding the address the wizard reached the node at) is
changed last, so nothing is left half done behind a lost connection (I, the order the spec leaves open):

1. everything that does not touch it: bonds with their other members, the VLANs on them (the management VLAN
   takes the node's address), the other NICs' addressing;
2. then the session interface's own change — joining its bond, its new addressing — and the management interface
   selection (which may move the default route);
3. then the wizard reconnects at the node's address (``nodes[i].ip``, the same certificate it pinned at the old
   address, so nothing is asked) and reads everything back.

A node whose Local UI has no network API (releases before the newer spec) is an error that says so: bonds and VLANs
are then configured in the Palette TUI or the Local UI by hand.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from wizard.appliance.localui import (
    Clock,
    Connector,
    Endpoint,
    LocalUIClient,
    LocalUIError,
    LocalUIServerError,
    LocalUIUnreachable,
)
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.project import Addressing, BondConfig, NicConfig, VlanConfig
from wizard.core.trust import TrustKind

log = logging.getLogger(__name__)

P_CONFIG_OPTIONS = "/v1/edge-mgmt/network/config-options"
P_INTERFACES = "/v1/edge-mgmt/network/interfaces"
P_BONDS = "/v1/edge-mgmt/network/bonds"
P_VLANS = "/v1/edge-mgmt/network/vlans"
P_MANAGEMENT = "/v1/edge-mgmt/network/management-interface"
APPLYING = "applying"


@dataclass(frozen=True)
class NetworkPlan:
    """What one node's network should become; plain values from the project."""

    node: str
    address: str  # the node's address (nodes[i].ip), carried by the management interface
    prefix: int | None
    gateway: str
    dhcp: bool
    management: str
    nics: tuple[NicConfig, ...] = ()
    bonds: tuple[BondConfig, ...] = ()
    vlans: tuple[VlanConfig, ...] = ()
    dns: tuple[str, ...] = ()

    def addressing(self, name: str, given: Addressing) -> Addressing:
        """The management interface takes the node's own address unless it says otherwise."""
        if name != self.management or given.ip or given.kind == "none":
            return given
        if self.dhcp:
            return Addressing("dhcp")
        return Addressing("static", self.address, self.prefix, self.gateway)

    def kind_of(self, name: str) -> str:
        if any(b.name == name for b in self.bonds):
            return "bond"
        return "vlan" if any(v.name == name for v in self.vlans) else "nic"


@dataclass(frozen=True)
class Write:
    """One PUT: ``kind`` (nic, bond, vlan, management), the resource name, the body."""

    kind: str
    name: str
    body: Mapping[str, Any] = field(hash=False)

    @property
    def path(self) -> str:
        if self.kind == "management":
            return P_MANAGEMENT
        if self.kind == "nic":
            return f"{P_INTERFACES}/{self.name}/config"
        return f"{P_BONDS if self.kind == 'bond' else P_VLANS}/{self.name}"

    @property
    def read_path(self) -> str:
        return {"nic": f"{P_INTERFACES}/{self.name}", "management": P_MANAGEMENT}.get(
            self.kind, f"{P_BONDS if self.kind == 'bond' else P_VLANS}/{self.name}"
        )


def _address_body(a: Addressing, dns: Sequence[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"type": a.kind}
    if a.kind == "static":
        body.update(ip=a.ip, subnet=a.netmask)
        if a.gateway:
            body["gateway"] = a.gateway
        if dns:
            body["nameservers"] = list(dns)
    return body


def bond_body(plan: NetworkPlan, bond: BondConfig, members: Sequence[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"name": bond.name, "members": list(members), "mode": bond.mode}
    if bond.hash_policy:
        body["transmitHashPolicy"] = bond.hash_policy
    if bond.lacp_rate:
        body["lacpTransmitRate"] = bond.lacp_rate
    if bond.mii is not None:
        body["miiMonitorSec"] = f"{bond.mii}ms"  # a systemd-networkd time span (the API reports networkctl's status)
    body.update(_address_body(plan.addressing(bond.name, bond.addressing), plan.dns))
    return body


def vlan_body(plan: NetworkPlan, vlan: VlanConfig) -> dict[str, Any]:
    body: dict[str, Any] = {
        "parentName": vlan.parent,
        "parentType": "bond" if plan.kind_of(vlan.parent) == "bond" else "nic",
        "vlanID": str(vlan.vlan_id),
    }
    body.update(_address_body(plan.addressing(vlan.name, vlan.addressing), plan.dns))
    return body


def nic_body(plan: NetworkPlan, nic: NicConfig) -> dict[str, Any]:
    return {"name": nic.name, **_address_body(plan.addressing(nic.name, nic.addressing), plan.dns)}


def phases(plan: NetworkPlan, session: str) -> tuple[list[Write], list[Write]]:
    """The writes that leave ``session`` (the interface carrying the wizard's connection) alone, then the ones that
    change it, the management selection last."""
    first: list[Write] = []
    last: list[Write] = []
    nics = list(plan.nics)
    if plan.management and plan.kind_of(plan.management) == "nic" and not any(n.name == plan.management for n in nics):
        nics.append(NicConfig(plan.management, Addressing("static")))  # it takes the node's address
    late_bonds = set()
    for bond in plan.bonds:
        others = [m for m in bond.members if m != session]
        if others:
            first.append(Write("bond", bond.name, bond_body(plan, bond, others)))
        if len(others) != len(bond.members):
            last.append(Write("bond", bond.name, bond_body(plan, bond, bond.members)))
            if not others:
                late_bonds.add(bond.name)
    for vlan in plan.vlans:
        target = last if vlan.parent in late_bonds or vlan.parent == session else first
        target.append(Write("vlan", vlan.name, vlan_body(plan, vlan)))
    for nic in nics:
        (last if nic.name == session else first).append(Write("nic", nic.name, nic_body(plan, nic)))
    if plan.management:
        last.append(Write("management", plan.management, {"name": plan.management}))
    return first, last


def _same(write: Write, current: Mapping[str, Any]) -> bool:
    """Whether the node already has what ``write`` would set (only the fields the write sets are compared)."""
    if write.kind == "management":
        return current.get("selected") == write.name
    for key, wanted in write.body.items():
        have = current.get(key)
        if key == "members":
            if sorted(have or []) != sorted(wanted):
                return False
        elif key == "nameservers":
            continue  # what a node reports back as its resolvers varies (I): not a reason to write again
        elif str(have or "") != str(wanted or ""):
            return False
    return True


class ApplyNetworkJob(Job):
    """Give one node its bonds, VLANs, addressing and management interface through its Local UI."""

    weight = 1.0

    def __init__(
        self,
        reach: Endpoint,
        final: Endpoint,
        plan: NetworkPlan,
        connector: Connector,
        *,
        step: str = "network",
        poll_interval: float = 2.0,
        timeout: float = 15 * 60.0,
        clock: Clock = time.time,
    ) -> None:
        """``reach``: where the node answers now; ``final``: at its own address once this is applied."""
        self.reach = reach
        self.final = final
        self.plan = plan
        self.connector = connector
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.clock = clock
        self.id = f"{step}/{plan.node}"
        self.name = plan.node
        self.node = plan.node

    def fingerprint(self) -> str:
        text = json.dumps([self.reach.where, self.final.where, repr(self.plan)], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        deadline = self.clock() + self.timeout
        client, where = self._open_any(cancel)
        sent: list[str] = []
        reconnected = False
        try:
            self._check_options(client)
            session = self._session_interface(client, where.host)
            first, last = phases(self.plan, session)
            report.update(0.05, f"{self.node}: {len(first) + len(last)} change(s), {session} last")
            for i, write in enumerate(first):
                self._apply(client, write, sent, deadline, cancel)
                report.update(0.05 + 0.5 * (i + 1) / max(1, len(first)), f"{self.node}: {write.kind} {write.name}")
            pending = list(last)
            while pending:
                write = pending.pop(0)
                try:
                    self._apply(client, write, sent, deadline, cancel)
                except (LocalUIUnreachable, LocalUIServerError) as exc:
                    # The session interface changed under the request: find the node at its own address.
                    log.info("%s: connection lost while applying %s %s (%s)", self.node, write.kind, write.name, exc)
                    client.close()
                    report.update(0.7, f"{self.node}: reconnecting at {self.final.host}")
                    client = self._reconnect(deadline, cancel)
                    reconnected = True
                    pending.insert(0, write)  # read back, and sent again only if it did not take
            if where.host != self.final.host and not reconnected:
                client.close()
                client = self._reconnect(deadline, cancel)
                reconnected = True
            facts = self._verify(client, first + last)
        finally:
            client.close()
        report.finish(f"{self.node}: network configured, management on {self.plan.management or 'the default NIC'}")
        return {**facts, "sent": sent, "session_interface": session, "reconnected": reconnected}

    # -- connecting --

    def _open_any(self, cancel: CancelToken) -> tuple[LocalUIClient, Endpoint]:
        """The node where it answers now; at its own address when an earlier run already moved it."""
        try:
            client = self.connector.open(self.reach, cancel)
            client.ensure_session()
            # At its own address the node presents the certificate trusted here: pinned, nothing to ask.
            pinned = self.connector.trust.pinned(TrustKind.TLS, self.reach.host, self.reach.port)
            if pinned and not self.final.fingerprint:
                self.final = replace(self.final, fingerprint=str(pinned["fingerprint"]))
            return client, self.reach
        except LocalUIUnreachable:
            if self.reach.host == self.final.host:
                raise
        client = self.connector.open(self.final, cancel)
        client.ensure_session()
        return client, self.final

    def _reconnect(self, deadline: float, cancel: CancelToken) -> LocalUIClient:
        delay = self.poll_interval
        while True:
            cancel.sleep(delay)
            try:
                client = self.connector.open(self.final, cancel)
            except LocalUIUnreachable:
                client = None
            if client is not None:
                try:
                    client.ensure_session()
                    client.request("GET", P_MANAGEMENT)
                    return client
                except (LocalUIUnreachable, LocalUIServerError):
                    client.close()
            if self.clock() > deadline:
                raise WizardError(
                    "Node did not come back",
                    f"{self.node} does not answer at {self.final.where} after its network changed",
                    remediation="check the node's console: the Palette TUI shows its addresses; fix the switch "
                    "ports (bond, VLAN) or the project's network, then retry",
                )
            delay = min(delay * 2, self.poll_interval * 4)

    # -- reading --

    def _json(self, client: LocalUIClient, path: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        r = client.request("GET", path, missing_ok=missing_ok)  # a read: the retry policy rides out transient faults
        if r is None:
            return None
        try:
            data = r.json()
        except ValueError as exc:
            raise LocalUIError("Unexpected Local UI answer", f"{client.where}: GET {path}: not JSON") from exc
        return data if isinstance(data, dict) else {}

    def _check_options(self, client: LocalUIClient) -> None:
        options = self._json(client, P_CONFIG_OPTIONS, missing_ok=True)
        if options is None:
            raise WizardError(
                "No network configuration on this appliance",
                f"{self.node}'s Local UI has no network API (it came with the newer Local UI API)",
                remediation="configure the bonds and VLANs in the Palette TUI or the Local UI by hand and remove "
                "them from the project, or install a newer appliance release",
            )
        bond = options.get("bond") or {}
        for b in self.plan.bonds:
            chosen = {"mode": b.mode, "transmitHashPolicy": b.hash_policy, "lacpTransmitRate": b.lacp_rate}
            for key, value in chosen.items():
                allowed = [str(x) for x in bond.get(key) or []]
                if value and allowed and value not in allowed:
                    raise WizardError(
                        "Bond option not offered",
                        f"{self.node} does not offer {key} {value!r} for {b.name} (it offers {', '.join(allowed)})",
                        remediation="choose one of the offered values on the Network page (or in the project)",
                    )

    def _session_interface(self, client: LocalUIClient, address: str) -> str:
        """The interface holding ``address`` (NIC, bond or VLAN); the node's first NIC when none says so."""
        nics = (self._json(client, P_INTERFACES) or {}).get("interfaces") or []
        bonds = (self._json(client, P_BONDS) or {}).get("items") or []
        vlans = (self._json(client, P_VLANS) or {}).get("items") or []
        others = [*bonds, *vlans]
        for item in [*nics, *others]:
            if isinstance(item, dict) and item.get("ip") == address and item.get("name"):
                return str(item["name"])
        named = [str(n.get("name")) for n in nics if isinstance(n, dict) and n.get("name")]
        missing = sorted({m for b in self.plan.bonds for m in b.members} - set(named))
        if missing and named:
            raise WizardError(
                "No such network interface",
                f"{self.node} has no NIC {', '.join(missing)} (it has {', '.join(named)})",
                remediation="name the node's own NICs in its bonds (the Network page lists them)",
            )
        cluster = next((str(n["name"]) for n in nics if isinstance(n, dict) and n.get("isClusterNIC")), "")
        return cluster or (named[0] if named else "")

    # -- writing --

    def _apply(
        self, client: LocalUIClient, write: Write, sent: list[str], deadline: float, cancel: CancelToken
    ) -> None:
        current = self._json(client, write.read_path, missing_ok=True) or {}
        if _same(write, current) and current.get("status") != APPLYING:
            return
        cancel.raise_if_cancelled()
        client.request("PUT", write.path, json=dict(write.body), ok=(200, 202))
        sent.append(f"{write.kind} {write.name}")
        if write.kind == "management":
            return
        while True:
            cancel.sleep(self.poll_interval)
            current = self._json(client, write.read_path, missing_ok=True) or {}
            if current.get("status") != APPLYING and _same(write, current):
                return
            if "fail" in str(current.get("configStatus") or "").lower():
                raise WizardError(
                    "Network change failed",
                    f"{self.node} could not apply {write.kind} {write.name}: {current.get('configStatus')}",
                    remediation="check the node's network in its Local UI; fix the project's network and retry",
                )
            if self.clock() > deadline:
                raise WizardError(
                    "Network change too slow",
                    f"{self.node} still applies {write.kind} {write.name}",
                    remediation="check the node in its Local UI (Network), then retry",
                )

    def _verify(self, client: LocalUIClient, writes: Sequence[Write]) -> dict[str, Any]:
        latest: dict[tuple[str, str], Write] = {(w.kind, w.name): w for w in writes}
        wrong = []
        for write in latest.values():
            current = self._json(client, write.read_path, missing_ok=True) or {}
            if not _same(write, current):
                wrong.append(f"{write.kind} {write.name}")
        if wrong:
            raise WizardError(
                "Network not as configured",
                f"{self.node} reports {', '.join(wrong)} other than the project says",
                remediation="check the node's network in its Local UI, then retry",
            )
        management = (self._json(client, P_MANAGEMENT) or {}).get("selected")
        return {
            "management": management,
            "address": self.final.host,
            "bonds": [b.name for b in self.plan.bonds],
            "vlans": [v.name for v in self.plan.vlans],
        }
