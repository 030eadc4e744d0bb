"""The rehearsal lab: N simulated appliance nodes, each with its own Local UI server on loopback."""

from __future__ import annotations

import shutil
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from wizard.lab.certs import NodeCertificate, create_node_certificate
from wizard.lab.links import LinkRegistry
from wizard.lab.localui import LocalUIServer
from wizard.lab.node import Clock, LoginPolicy, NodeState


@dataclass(frozen=True)
class LabNode:
    index: int
    state: NodeState
    certificate: NodeCertificate
    server: LocalUIServer

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
    ) -> None:
        if n_nodes < 1:
            raise ValueError("a lab needs at least one node")
        # Without a base_dir the lab keeps its node data in a temporary folder that leaving the context removes.
        self._owns_dir = base_dir is None
        self.base_dir = Path(tempfile.mkdtemp(prefix="palette-lab-")) if base_dir is None else base_dir
        self.clock = clock
        self.registry = LinkRegistry()
        self.nodes: list[LabNode] = []
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
                )
                cert = create_node_certificate(folder / "tls", ip=ip, hostname=name)
                server = LocalUIServer(state, cert, registry=self.registry, host=ip, socket_timeout=socket_timeout)
                self.nodes.append(LabNode(i, state, cert, server))
        except BaseException:
            self._remove_owned_dir()
            raise

    def start(self) -> Lab:
        try:
            for node in self.nodes:
                if not node.server.running:
                    node.server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.server.stop()

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
