"""The management cluster's Kubernetes API endpoint at the VIP (TCP 6443), as far as the wizard looks at it.

The wizard checks that the API answers where the kubeconfig points (``cluster.ports`` in the validate step) and lists
the pods the docs' validation looks at (``kubectl get pods -A`` with the admin kubeconfig), and the wizard asks the
cluster which TLS certificates it holds (``/api/v1/secrets``, to vouch for the console's), so the lab serves what a
kube-apiserver shows: to anyone, ``/livez``, ``/readyz`` and ``/healthz`` answer ``ok`` once the cluster runs (503
before) and ``/version`` the build; to a caller with the admin client certificate of the cluster's PKI
(:mod:`wizard.lab.kubepki`), ``/api/v1/pods`` lists the management plane's pods (:func:`cluster_pods`); everything
else is 401 without credentials.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from wizard.lab.httpfaults import NONE as NO_FAULTS
from wizard.lab.httpfaults import HttpFaults
from wizard.lab.kubepki import ClusterPKI
from wizard.lab.tlsserver import BackgroundServer, TLSHTTPServer

KUBE_API_PORT = 6443
#: Where the docs' pre-upgrade scripts act (4.7.15: the Zot PVC's access mode; 4.7.27: the HA storage class).
ZOT_NAMESPACE = "zot-system"
STORAGE_CLASS = "linstor-lvm-storage"
#: What a cluster's storage looks like once the scripts ran (or where none was needed).
SOUND_STORAGE: dict[str, Any] = {
    "zot_modes": ["ReadWriteOnce"],
    "storage_class": {"resourceGroup": "lvm-ha", "placementCount": "3", "storagePool": "lvm-thin"},
}
KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.9", "platform": "linux/amd64"}

# Which port the API answers on at a VIP while its server runs. A real cluster always uses 6443; on the shared
# loopback two rehearsals may run at once, so there the port may be a free one, and the kubeconfig names it.
_PORTS: dict[str, int] = {}
_PORTS_LOCK = threading.Lock()


def api_port(vip: str) -> int:
    """The port of the Kubernetes API at ``vip``: the running lab server's, else the standard 6443."""
    with _PORTS_LOCK:
        return _PORTS.get(vip, KUBE_API_PORT)


#: The docs' validation (reference §1.6): namespace → pods of the management plane.
MANAGEMENT_PODS: dict[str, tuple[str, ...]] = {
    "cp-system": ("spectro-cp-ui",),
    "hubble-system": (
        "auth", "cloud", "configserver", "event", "foreq", "hashboard", "hutil", "memstore", "mgmt", "mongo-0",
        "mongo-1", "mongo-2", "msgbroker-0", "msgbroker-1", "oci-proxy", "reloader", "specman-0", "spectro-tunnel",
        "spectrocluster", "spectrossh", "system", "timeseries", "user",
    ),
    "jet-system": ("jet",),
    "ui-system": ("spectro-ui",),
}  # fmt: skip
#: Where the lab runs each ingress controller: ingress-nginx in its namespace (before 4.8.47), Traefik (from then on)
#: in its own; the Traefik namespace is not published (I).
INGRESS_PODS = {"ingress-nginx": ("ingress-nginx", "ingress-nginx-controller"), "traefik": ("traefik", "traefik")}


def cluster_pods(ingress: str, running: bool) -> list[dict[str, Any]]:
    """The management plane's pods as ``GET /api/v1/pods`` lists them: Running once the cluster runs."""
    phase = "Running" if running else "Pending"
    names = [(ns, pod) for ns, pods in MANAGEMENT_PODS.items() for pod in pods]
    namespace, pod = INGRESS_PODS[ingress]
    names.append((namespace, pod))
    return [
        {
            "metadata": {"name": f"{pod}-{abs(hash((ns, pod))) % 100000:05d}", "namespace": ns},
            "status": {"phase": phase},
        }
        for ns, pod in names
    ]


def tls_secret(namespace: str, name: str, cert_pem: str) -> dict[str, Any]:
    """A ``kubernetes.io/tls`` Secret as the API lists it (``tls.key`` is left out: nothing here reads it)."""
    return {
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": base64.b64encode(cert_pem.encode("ascii")).decode("ascii")},
    }


class _Server(TLSHTTPServer):
    def __init__(
        self,
        address: tuple[str, int],
        pki: ClusterPKI,
        ready: Callable[[], bool],
        pods: Callable[[], list[dict[str, Any]]],
        timeout: float,
        *,
        storage: Callable[[], dict[str, Any]],
        secrets: Callable[[], list[dict[str, Any]]],
        faults: HttpFaults,
    ) -> None:
        self.ready = ready
        self.pods = pods
        self.storage = storage
        self.secrets = secrets
        self.faults = faults
        super().__init__(address, pki.server_context(), _Handler, socket_timeout=timeout, label="kube-api")


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

    def _admin(self) -> bool:
        """The caller presented a client certificate the cluster CA signed (the TLS layer verified it)."""
        connection = self.connection
        return bool(getattr(connection, "getpeercert", lambda: None)())

    def do_GET(self) -> None:
        server = cast(_Server, self.server)
        path = self.path.split("?", 1)[0]
        fault = server.faults.take()
        if fault is not None:  # the http-5xx knob: answered before anything is done
            self._reply(fault, server.faults.message(fault).encode())
            return
        if path in ("/livez", "/readyz", "/healthz"):
            if server.ready():
                self._reply(200, b"ok")
            else:
                self._reply(503, b"[-]etcd failed: not finished provisioning\nhealthz check failed")
        elif path == "/version":
            self._reply(200, json.dumps(KUBE_VERSION).encode(), "application/json")
        elif path == "/api/v1/pods" and self._admin():
            body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": server.pods()}
            self._reply(200, json.dumps(body).encode(), "application/json")
        elif path == "/api/v1/secrets" and self._admin():
            wanted = parse_qs(urlsplit(self.path).query).get("fieldSelector", [""])[0]
            items = [i for i in server.secrets() if wanted in ("", f"type={i.get('type')}")]
            body = {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": items}
            self._reply(200, json.dumps(body).encode(), "application/json")
        elif path == f"/api/v1/namespaces/{ZOT_NAMESPACE}/persistentvolumeclaims" and self._admin():
            modes = list(server.storage().get("zot_modes") or ["ReadWriteOnce"])
            claim = {
                "metadata": {"name": "zot-pvc", "namespace": ZOT_NAMESPACE},
                "spec": {"accessModes": modes, "storageClassName": STORAGE_CLASS},
                "status": {"phase": "Bound", "accessModes": modes},
            }
            body = {"kind": "PersistentVolumeClaimList", "apiVersion": "v1", "metadata": {}, "items": [claim]}
            self._reply(200, json.dumps(body).encode(), "application/json")
        elif path == f"/apis/storage.k8s.io/v1/storageclasses/{STORAGE_CLASS}" and self._admin():
            parameters = server.storage().get("storage_class")
            if parameters is None:
                self._reply(404, json.dumps({"kind": "Status", "code": 404, "reason": "NotFound"}).encode())
                return
            body = {
                "kind": "StorageClass",
                "apiVersion": "storage.k8s.io/v1",
                "metadata": {"name": STORAGE_CLASS},
                "provisioner": "linstor.csi.linbit.com",
                "parameters": parameters,
            }
            self._reply(200, json.dumps(body).encode(), "application/json")
        else:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "Unauthorized",
                      "reason": "Unauthorized", "code": 401}  # fmt: skip
            self._reply(401, json.dumps(status).encode(), "application/json")


class KubeAPIServer(BackgroundServer):
    """The API endpoint on ``host`` (the VIP), port 6443 unless given; ``ready`` says whether the cluster runs,
    ``pods`` what ``/api/v1/pods`` lists to the admin."""

    def __init__(
        self,
        pki: ClusterPKI,
        ready: Callable[[], bool],
        *,
        host: str,
        pods: Callable[[], list[dict[str, Any]]] = list,
        port: int = KUBE_API_PORT,
        socket_timeout: float = 15.0,
        netns: str | None = None,
        storage: Callable[[], dict[str, Any]] = lambda: SOUND_STORAGE,
        secrets: Callable[[], list[dict[str, Any]]] = list,
        faults: HttpFaults = NO_FAULTS,
    ) -> None:
        """``storage``: the Zot PVC's access modes and the HA storage class's parameters (None: no such class);
        ``secrets``: what ``/api/v1/secrets`` lists to the admin (:func:`tls_secret`); ``faults``: the share of
        requests answered 5xx first (the ``http-5xx`` knob)."""
        super().__init__(host=host, port=port, label="kube-api", netns=netns)
        self.pki = pki
        self.ready = ready
        self.pods = pods
        self.storage = storage
        self.secrets = secrets
        self.faults = faults
        self.socket_timeout = socket_timeout
        if port:  # a port fixed up front is the API's from now on: a kubeconfig written before it listens names it
            self._started()

    def _make_server(self, address: tuple[str, int]) -> TLSHTTPServer:
        return _Server(
            address,
            self.pki,
            self.ready,
            self.pods,
            self.socket_timeout,
            storage=self.storage,
            secrets=self.secrets,
            faults=self.faults,
        )

    def _started(self) -> None:
        with _PORTS_LOCK:
            _PORTS[self.host] = self.port

    def _stopping(self) -> None:
        with _PORTS_LOCK:
            if _PORTS.get(self.host) == self.port:
                del _PORTS[self.host]
