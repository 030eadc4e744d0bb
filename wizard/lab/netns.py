"""Lab nodes on a real (virtual) network: one Linux network namespace per node, linked by a host bridge.

Each node gets a namespace with its own ``eth0`` (one end of a veth pair; the other end is a port of the bridge on
the host) holding its address in a private subnet, the bridge's address as its gateway, and loopback up. The host
reaches the nodes through the bridge exactly as a jump host reaches appliances on its LAN: distinct addresses, the
real ports, ARP, refusals from a live stack and silence from a dead one.

Needs root and iproute2's ``ip`` (Linux only). Every resource is named with :data:`PREFIX`, a random per-lab tag and,
for namespaces, the owning process id, so a lab that crashed leaves nothing another lab trips over: :func:`sweep_stale`
(run before each setup) removes what belongs to processes that no longer exist, and never a live lab's resources.

Network namespace membership is per thread on Linux, so :func:`run_in` runs a function in a short-lived thread that
has joined a namespace (``setns`` through libc). A socket bound there stays in that namespace whatever thread uses it
later, and threads started from there are born in it too (the lab's SSH server binds on its own serving thread).
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import logging
import os
import re
import secrets
import shutil
import string
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from wizard.core.errors import WizardError

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "pwlab"
DEFAULT_SUBNET = "10.213.0.0/24"  # a private range unlikely to be a real LAN; configurable per lab
FIRST_NODE_HOST = 11  # node i has the subnet's host number 11 + i (10.213.0.11, .12, …); .1 is the bridge
NETNS_DIR = Path("/var/run/netns")
NODE_IFNAME = "eth0"
_CLONE_NEWNET = 0x40000000
_TAG_CHARS = string.ascii_lowercase + string.digits
_NS_NAME = re.compile(rf"^{PREFIX}(?P<tag>[a-z0-9]{{4}})-(?P<pid>\d+)-(?P<index>\d+)$")
_LINK_NAME = re.compile(rf"^{PREFIX}(?P<tag>[a-z0-9]{{4}})(?:br|h\d+|n\d+)$")
_COMMAND_TIMEOUT = 30.0


def unavailable_reason() -> str | None:
    """Why this machine cannot give lab nodes namespaces, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces exist on Linux only"
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, or without --netns)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` command is not installed (Debian: apt-get install iproute2)"
    return None


def require_support() -> str:
    """The ``ip`` binary, or a WizardError that says why namespaces cannot be used here."""
    reason = unavailable_reason()
    if reason is not None:
        raise WizardError(
            "Lab network namespaces not available",
            reason,
            remediation="run the lab as root on Linux with iproute2 installed, or without network namespaces",
        )
    ip = shutil.which("ip")
    assert ip is not None
    return ip


def _ip(ip: str, *args: str, check: bool = True) -> str:
    proc = subprocess.run([ip, *args], capture_output=True, text=True, timeout=_COMMAND_TIMEOUT, check=False)
    if check and proc.returncode != 0:
        raise WizardError(
            "Lab network setup failed",
            f"`ip {' '.join(args)}` failed with exit code {proc.returncode}",
            details=proc.stderr.strip(),
            remediation="check that this machine allows network namespaces (root, iproute2, a kernel with veth "
            "and bridge support)",
        )
    return proc.stdout


def _json(ip: str, *args: str) -> list[dict[str, Any]]:
    out = _ip(ip, "-j", *args).strip()
    return list(json.loads(out)) if out else []


def namespaces(ip: str) -> list[str]:
    return [str(entry["name"]) for entry in _json(ip, "netns", "list")]


def links(ip: str) -> list[str]:
    return [str(entry["ifname"]) for entry in _json(ip, "link", "show")]


def lab_resources(ip: str | None = None) -> tuple[list[str], list[str]]:
    """(namespaces, links) on this machine whose names carry the lab's prefix, sorted."""
    ip = ip or require_support()
    return (
        sorted(n for n in namespaces(ip) if n.startswith(PREFIX)),
        sorted(name for name in links(ip) if name.startswith(PREFIX)),
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(ip: str | None = None) -> list[str]:
    """Remove the namespaces and links a crashed lab left behind (their owning process is gone); returns their
    names. Resources of labs whose process still runs — this one's included — are kept."""
    ip = ip or require_support()
    live_tags: set[str] = set()
    removed: list[str] = []
    for name in namespaces(ip):
        m = _NS_NAME.match(name)
        if m is None:
            continue
        if _alive(int(m["pid"])):
            live_tags.add(m["tag"])
            continue
        _ip(ip, "netns", "delete", name, check=False)  # also deletes its veth, and so the bridge port
        removed.append(name)
    for name in links(ip):
        m = _LINK_NAME.match(name)
        if m is not None and m["tag"] not in live_tags:
            _ip(ip, "link", "delete", name, check=False)
            removed.append(name)
    if removed:
        log.info("lab network: removed resources left by an earlier lab: %s", ", ".join(removed))
    return removed


def _setns(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def run_in(namespace: str, fn: Callable[[], T]) -> T:
    """``fn()`` called in a thread that joined ``namespace``; its result returned or its exception raised here.

    Sockets ``fn`` binds, and threads it starts, stay in the namespace; the calling thread never changes namespace.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            _setns(NETNS_DIR / namespace)
            result.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


@dataclass(frozen=True)
class NodeInterface:
    index: int
    namespace: str
    address: str
    host_link: str  # the bridge port on the host side of this node's veth pair


class LabNetwork:
    """The bridge and one namespace per node; :meth:`up` builds them, :meth:`down` removes them (idempotent).

    Addresses are planned at construction, so a lab can configure its nodes before anything exists.
    """

    def __init__(self, n_nodes: int, *, subnet: str = DEFAULT_SUBNET) -> None:
        self.subnet = ipaddress.IPv4Network(subnet)
        hosts = self.subnet.num_addresses - 2
        if self.subnet.prefixlen > 30 or FIRST_NODE_HOST + n_nodes > hosts:
            raise WizardError(
                "Lab subnet too small",
                f"{subnet} cannot hold a gateway and {n_nodes} node(s) from host number {FIRST_NODE_HOST}",
                remediation="pick a /24 (or larger) private subnet",
            )
        self.tag = "".join(secrets.choice(_TAG_CHARS) for _ in range(4))
        self.bridge = f"{PREFIX}{self.tag}br"
        self.gateway = str(self.subnet.network_address + 1)
        pid = os.getpid()
        self.nodes = [
            NodeInterface(
                i,
                f"{PREFIX}{self.tag}-{pid}-{i}",
                str(self.subnet.network_address + FIRST_NODE_HOST + i),
                f"{PREFIX}{self.tag}h{i}",
            )
            for i in range(n_nodes)
        ]
        self._ip: str | None = None
        self._lock = threading.Lock()
        self._link_up: dict[int, bool] = {}
        self._extra: dict[str, int] = {}  # extra address (a VIP) → node index holding it

    @property
    def prefixlen(self) -> int:
        return self.subnet.prefixlen

    def host_address(self, number: int) -> str:
        """The subnet's address with this host number (10 → 10.213.0.10)."""
        return str(self.subnet.network_address + number)

    def up(self) -> Self:
        ip = require_support()
        sweep_stale(ip)
        self._check_subnet_free(ip)
        self._ip = ip
        try:
            # Namespaces first: the sweep treats a bridge without a live namespace of its tag as stale.
            for node in self.nodes:
                _ip(ip, "netns", "add", node.namespace)
            _ip(ip, "link", "add", self.bridge, "type", "bridge")
            _ip(ip, "addr", "add", f"{self.gateway}/{self.prefixlen}", "dev", self.bridge)
            _ip(ip, "link", "set", self.bridge, "up")
            for node in self.nodes:
                inner = f"{PREFIX}{self.tag}n{node.index}"
                _ip(ip, "link", "add", node.host_link, "type", "veth", "peer", "name", inner)
                _ip(ip, "link", "set", inner, "netns", node.namespace)
                _ip(ip, "-n", node.namespace, "link", "set", inner, "name", NODE_IFNAME)
                _ip(ip, "-n", node.namespace, "addr", "add", f"{node.address}/{self.prefixlen}", "dev", NODE_IFNAME)
                _ip(ip, "-n", node.namespace, "link", "set", "lo", "up")
                _ip(ip, "link", "set", node.host_link, "master", self.bridge)
                _ip(ip, "link", "set", node.host_link, "up")
                self._link_up[node.index] = False  # eth0 stays down until the node's OS is up: set_link_up
        except BaseException:
            self.down()
            raise
        log.info(
            "lab network %s: bridge %s at %s, nodes %s",
            self.tag,
            self.bridge,
            self.gateway,
            ", ".join(n.address for n in self.nodes),
        )
        return self

    def _check_subnet_free(self, ip: str) -> None:
        for entry in _json(ip, "-4", "addr", "show"):
            for info in entry.get("addr_info", []):
                local = ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}")
                if local.network.overlaps(self.subnet):
                    raise WizardError(
                        "Lab subnet in use",
                        f"{self.subnet} overlaps {local} on {entry.get('ifname')} on this machine",
                        remediation="pick another private subnet for the lab's network namespaces",
                    )

    def down(self) -> None:
        """Remove the bridge and every namespace (each namespace's veth goes with it); safe to call twice."""
        with self._lock:
            ip, self._ip = self._ip, None
            self._link_up.clear()
            self._extra.clear()
        ip = ip or shutil.which("ip")
        if ip is None:
            return
        _ip(ip, "link", "delete", self.bridge, check=False)
        existing = set(namespaces(ip))
        for node in self.nodes:
            if node.namespace in existing:
                _ip(ip, "netns", "delete", node.namespace, check=False)
            _ip(ip, "link", "delete", node.host_link, check=False)

    @property
    def is_up(self) -> bool:
        return self._ip is not None

    def _require_ip(self) -> str:
        if self._ip is None:
            raise RuntimeError("the lab network is not up")
        return self._ip

    def set_link_up(self, index: int, up: bool) -> None:
        """A node's NIC up (its OS runs) or down (off, in firmware, rebooting: nothing answers, not even ARP).
        Addresses stay configured, so servers in the namespace bind either way."""
        with self._lock:
            if self._link_up.get(index) == up:
                return
            node = self.nodes[index]
            _ip(self._require_ip(), "-n", node.namespace, "link", "set", NODE_IFNAME, "up" if up else "down")
            self._link_up[index] = up

    def add_address(self, index: int, address: str) -> None:
        """Give node ``index`` an extra address (a cluster VIP, as kube-vip adds it on the leader)."""
        with self._lock:
            if self._extra.get(address) == index:
                return
            node = self.nodes[index]
            _ip(
                self._require_ip(),
                "-n",
                node.namespace,
                "addr",
                "add",
                f"{address}/{self.prefixlen}",
                "dev",
                NODE_IFNAME,
            )
            self._extra[address] = index

    def holder(self, address: str) -> int | None:
        """The node index holding an extra address, if any."""
        with self._lock:
            return self._extra.get(address)

    def run_in(self, index: int, fn: Callable[[], T]) -> T:
        return run_in(self.nodes[index].namespace, fn)

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()
