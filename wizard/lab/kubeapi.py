"""The management cluster's Kubernetes API endpoint at the VIP (TCP 6443), as far as the wizard looks at it.

The wizard only checks that the API answers where the kubeconfig points (``cluster.ports`` in the validate step), so
the lab serves what an anonymous client sees of a real kube-apiserver: ``/livez``, ``/readyz`` and ``/healthz`` answer
``ok`` once the cluster runs (503 before), ``/version`` the build, and everything else 401 as for a caller without
credentials.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

from wizard.lab.certs import NodeCertificate
from wizard.lab.tlsserver import BackgroundServer, TLSHTTPServer

KUBE_API_PORT = 6443
KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.9", "platform": "linux/amd64"}

# Which port the API answers on at a VIP while its server runs. A real cluster always uses 6443; on the shared
# loopback two rehearsals may run at once, so there the port may be a free one, and the kubeconfig names it.
_PORTS: dict[str, int] = {}
_PORTS_LOCK = threading.Lock()


def api_port(vip: str) -> int:
    """The port of the Kubernetes API at ``vip``: the running lab server's, else the standard 6443."""
    with _PORTS_LOCK:
        return _PORTS.get(vip, KUBE_API_PORT)


class _Server(TLSHTTPServer):
    def __init__(
        self, address: tuple[str, int], certificate: NodeCertificate, ready: Callable[[], bool], timeout: float
    ) -> None:
        self.ready = ready
        super().__init__(address, certificate.server_context(), _Handler, socket_timeout=timeout, label="kube-api")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        server = cast(_Server, self.server)
        path = self.path.split("?", 1)[0]
        if path in ("/livez", "/readyz", "/healthz"):
            if server.ready():
                self._reply(200, b"ok")
            else:
                self._reply(503, b"[-]etcd failed: not finished provisioning\nhealthz check failed")
        elif path == "/version":
            self._reply(200, json.dumps(KUBE_VERSION).encode(), "application/json")
        else:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "Unauthorized",
                      "reason": "Unauthorized", "code": 401}  # fmt: skip
            self._reply(401, json.dumps(status).encode(), "application/json")


class KubeAPIServer(BackgroundServer):
    """The API endpoint on ``host`` (the VIP), port 6443 unless given; ``ready`` says whether the cluster runs."""

    def __init__(
        self,
        certificate: NodeCertificate,
        ready: Callable[[], bool],
        *,
        host: str,
        port: int = KUBE_API_PORT,
        socket_timeout: float = 15.0,
        netns: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port, label="kube-api", netns=netns)
        self.certificate = certificate
        self.ready = ready
        self.socket_timeout = socket_timeout
        if port:  # a port fixed up front is the API's from now on: a kubeconfig written before it listens names it
            self._started()

    def _make_server(self, address: tuple[str, int]) -> TLSHTTPServer:
        return _Server(address, self.certificate, self.ready, self.socket_timeout)

    def _started(self) -> None:
        with _PORTS_LOCK:
            _PORTS[self.host] = self.port

    def _stopping(self) -> None:
        with _PORTS_LOCK:
            if _PORTS.get(self.host) == self.port:
                del _PORTS[self.host]
