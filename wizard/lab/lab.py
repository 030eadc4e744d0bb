"""The rehearsal lab: N simulated appliance nodes, each with its own Local UI server on loopback."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wizard.lab.certs import NodeCertificate, create_node_certificate
from wizard.lab.links import LinkRegistry
from wizard.lab.localui import LocalUIServer
from wizard.lab.machine import Machine, Timings
from wizard.lab.node import DEFAULT_CLUSTER_TIMELINE, Clock, LoginPolicy, NodeState
from wizard.lab.sshd import LabSSHServer, NodeShell, load_or_create_host_key

log = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LabNode:
    index: int
    state: NodeState
    certificate: NodeCertificate
    server: LocalUIServer
    machine: Machine
    ssh: LabSSHServer

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint

    @property
    def cert_path(self) -> Path:
        return self.certificate.cert_path

    def client_ssl_context(self) -> ssl.SSLContext:
        """Trusts this node's certificate only, the way a client that pinned it would."""
        return self.certificate.client_context()


class Lab:
    """N nodes sharing a :class:`LinkRegistry` (their "network") and one clock; use as a context manager.

    Node i is named ``<name_prefix>-<i+1>`` and keeps its data and TLS files under ``base_dir/<name>``.

    Clock-driven events that change the network (a node's Local UI going down while it reboots during cluster
    deployment, and coming back) happen in :meth:`tick`. With ``tick_interval`` set, a background thread calls it
    for real-time rehearsals; tests on a manual clock pass ``tick_interval=None`` and call :meth:`tick` after
    moving the clock, so the outcome does not depend on thread timing.
    """

    def __init__(
        self,
        n_nodes: int = 3,
        base_dir: Path | None = None,
        clock: Clock = time.time,
        *,
        ip: str = "127.0.0.1",
        content_sync_delay: float = 5.0,
        login_policy: LoginPolicy | None = None,
        socket_timeout: float = 30.0,
        name_prefix: str = "edge-node",
        cluster_timeline: float = DEFAULT_CLUSTER_TIMELINE,
        tick_interval: float | None = 1.0,
        installed: bool = True,
        speed: float = 1.0,
        timings: Timings | None = None,
    ) -> None:
        if n_nodes < 1:
            raise ValueError("a lab needs at least one node")
        # Without a base_dir the lab keeps its node data in a temporary folder that leaving the context removes.
        self._owns_dir = base_dir is None
        self.base_dir = Path(tempfile.mkdtemp(prefix="palette-lab-")) if base_dir is None else base_dir
        self.clock = clock
        self.registry = LinkRegistry()
        self.tick_interval = tick_interval
        self.nodes: list[LabNode] = []
        self._tick_lock = threading.Lock()
        self._started = False
        self._stop_ticker = threading.Event()
        self._ticker: threading.Thread | None = None
        try:
            for i in range(n_nodes):
                name = f"{name_prefix}-{i + 1}"
                folder = self.base_dir / name
                state = NodeState(
                    name=name,
                    data_dir=folder / "data",
                    ip=ip,
                    clock=clock,
                    login_policy=login_policy,
                    content_sync_delay=content_sync_delay,
                    cluster_timeline=cluster_timeline,
                )
                cert = create_node_certificate(folder / "tls", ip=ip, hostname=name)
                # The port is fixed up front: a node that is not installed yet still has a known Local UI address.
                state.port = _free_port(ip)
                server = LocalUIServer(
                    state, cert, registry=self.registry, host=ip, port=state.port, socket_timeout=socket_timeout
                )
                machine = Machine(name, clock=clock, speed=speed, timings=timings or Timings(), preinstalled=installed)
                shell = NodeShell(machine, self._hostname_of(state), {})
                ssh = LabSSHServer(
                    machine,
                    load_or_create_host_key(folder / "ssh" / "ssh_host_ecdsa_key"),
                    state,
                    shell,
                    host=ip,
                    offline=self._rebooting_for_cluster(state),
                )
                self.nodes.append(LabNode(i, state, cert, server, machine, ssh))
        except BaseException:
            self._remove_owned_dir()
            raise

    def _hostname_of(self, state: NodeState) -> Callable[[], str]:
        return lambda: state.hostname

    def _rebooting_for_cluster(self, state: NodeState) -> Callable[[], bool]:
        def rebooting() -> bool:
            deployment = state.cluster
            return deployment is not None and deployment.rebooting(self.clock())

        return rebooting

    def start(self) -> Lab:
        try:
            for node in self.nodes:
                node.ssh.start()  # its own thread follows the machine: it listens only while sshd would run
            with self._tick_lock:
                self._started = True
            self.tick()
            if self.tick_interval is not None and self._ticker is None:
                self._stop_ticker.clear()
                self._ticker = threading.Thread(target=self._tick_loop, name="lab-ticker", daemon=True)
                self._ticker.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stop_ticker.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._tick_lock:
            self._started = False
            for node in self.nodes:
                node.server.stop()
        for node in self.nodes:
            node.ssh.stop()

    def tick(self) -> None:
        """Apply the clock to the network: a node's Local UI answers only once its installed OS runs the stylus
        services, and a node rebooting for its cluster is unreachable (its listening socket is closed, so
        connections are refused) until the reboot window ends; it then listens again on the same port."""
        with self._tick_lock:
            if not self._started:
                return
            now = self.clock()
            for node in self.nodes:
                deployment = node.state.cluster
                down = (deployment is not None and deployment.rebooting(now)) or not node.machine.local_ui_up
                if down and node.server.running:
                    node.server.stop()
                elif not down and not node.server.running:
                    node.server.start()

    def _tick_loop(self) -> None:
        assert self.tick_interval is not None
        while not self._stop_ticker.wait(self.tick_interval):
            try:
                self.tick()
            except Exception:  # a failed restart must not end the rehearsal's ticker
                log.exception("lab tick failed")

    def node(self, uid: str) -> LabNode:
        for node in self.nodes:
            if node.state.uid == uid:
                return node
        raise KeyError(uid)

    def __enter__(self) -> Lab:
        try:
            return self.start()
        except BaseException:
            self._remove_owned_dir()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._remove_owned_dir()

    def _remove_owned_dir(self) -> None:
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
