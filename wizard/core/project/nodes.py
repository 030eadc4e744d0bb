"""The ``nodes`` table, each node's BMC, and the checks across nodes, network and provider."""

from __future__ import annotations

import ipaddress
import re

from wizard.core.project.model import AddressMode, Bmc, Network, Node, ProviderType
from wizard.core.project.nodenet import read_node_network
from wizard.core.project.reader import _read_fingerprint, _Reader, _show, _url_problem, hostname_problem, ipv4_problem

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
    "network",
    "pool",
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
    network = None
    if m.get("network") is not None:
        network = read_node_network(r, m["network"], f"{path}.network", ip=ip, prefix=prefix, gateway=gateway)
    pool = r.text(m, "pool", path)
    if pool and hostname_problem(pool):
        r.error(f"{path}.pool", f"{_show(pool)} is not a machine pool name", "use a–z, 0–9 and '-', e.g. worker-pool")
        pool = ""
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
        network=network,
        pool=pool,
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


def _cross_checks(
    r: _Reader, nodes: list[Node], network: Network | None, provider: ProviderType | None, *, two_node: bool = False
) -> None:
    count = len([n for n in nodes if not n.pool])  # the control plane; a node with a pool is a worker added later
    if two_node and count != 2:
        fix = "remove `two_node: true`, or list two nodes"
        r.error("cluster.two_node", f"is for exactly two nodes; this project has {count}", fix)
    if count == 1:
        r.warning("nodes", "a single node has no high availability", "use 3 nodes for production")
    elif count == 2 and two_node:
        r.warning(
            "cluster.two_node",
            "two-node high availability keeps the cluster's state in PostgreSQL instead of etcd; the appliance must "
            "offer it (isTwoNodeCluster, the newer Local UI API) and Mongo Replicas and CSI Placement Count must be 1",
            "use 3 nodes for production",
        )
    elif count and count % 2 == 0:
        fix = "use 1, 3 or 5 nodes" + (", or `cluster.two_node: true` for two" if count == 2 else "")
        r.error("nodes", f"{count} control-plane nodes cannot keep an etcd quorum", fix)

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
