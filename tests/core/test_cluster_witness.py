"""The cluster as a witness for the console's certificate: the TLS secrets it lists, read defensively."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

from wizard.appliance.witness import ClusterWitness, first_able, secret_certificates
from wizard.core.trust import Sighting, tls_fingerprint
from wizard.lab.certs import create_node_certificate


def _secret(pem: str, kind: str = "kubernetes.io/tls") -> dict[str, object]:
    return {"type": kind, "data": {"tls.crt": base64.b64encode(pem.encode()).decode()}}


def test_each_tls_secret_gives_its_own_certificate_and_nothing_else_counts(tmp_path: Path) -> None:
    one = create_node_certificate(tmp_path / "one", ip="10.0.0.10", hostname="palette")
    two = create_node_certificate(tmp_path / "two", ip="10.0.0.11", hostname="other")
    chain = one.cert_path.read_text() + two.cert_path.read_text()  # a chain: only its first is the secret's own
    listed = {
        "items": [
            _secret(chain),
            _secret(two.cert_path.read_text(), kind="Opaque"),  # not a TLS secret
            {"type": "kubernetes.io/tls", "data": {"tls.crt": "not base64!"}},
            {"type": "kubernetes.io/tls", "data": {}},
            {"data": {"tls.crt": base64.b64encode(b"no certificate here").decode()}},
            "garbage",
        ]
    }
    assert secret_certificates(listed) == [tls_fingerprint(ssl.PEM_cert_to_DER_cert(one.cert_path.read_text()))]
    assert secret_certificates(None) == [] and secret_certificates({"items": None}) == []


def test_without_a_kubeconfig_the_cluster_cannot_tell_and_the_next_is_not_asked_for_nothing(tmp_path: Path) -> None:
    cluster = ClusterWitness(tmp_path / "kubeconfig")
    sighting = cluster("10.0.0.10", 443)
    assert sighting.fingerprint is None and not sighting.holds and "no kubeconfig" in sighting.note

    class Node:
        name = "edge-node-1"

        def __call__(self, host: str, port: int) -> Sighting:
            return Sighting(self.name, note="openssl is not installed on the node")

    told = first_able([Node(), cluster])("10.0.0.10", 443)
    assert (
        told.fingerprint is None and "edge-node-1: openssl" in told.note and "the cluster: no kubeconfig" in told.note
    )


def test_the_console_connector_ties_its_witness_to_the_jobs_cancel_token(tmp_path: Path) -> None:
    """A witness that can wait (the cluster's reads retry) is asked as bound to the job's token, so a cancel during
    first contact with the console ends its waits; the one bound is the one asked."""
    import socket
    import threading

    from wizard.appliance.console import ConsoleConnector, ConsoleEndpoint
    from wizard.core.cancel import CancelToken
    from wizard.core.trust import TrustKind, TrustStore

    cert = create_node_certificate(tmp_path / "console", ip="127.0.0.1", hostname="palette")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        ctx = cert.server_context()
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(raw, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    presented = ":".join(cert.fingerprint.upper()[i : i + 2] for i in range(0, 64, 2))
    bound_to: list[object] = []

    class Waiting:
        name = "the cluster"

        def __init__(self, cancel: object = None) -> None:
            self.cancel = cancel

        def bound(self, cancel: object) -> Waiting:
            bound_to.append(cancel)
            return Waiting(cancel)

        def __call__(self, host: str, port: int) -> Sighting:
            assert self.cancel is not None, "asked unbound"
            return Sighting(self.name, fingerprint=presented)

    store, token = TrustStore(tmp_path / "trust"), CancelToken()
    try:
        connector = ConsoleConnector(store, None, timeout=5.0, witness=first_able([Waiting()]))
        connector.open(ConsoleEndpoint("127.0.0.1", port), "pw", token).close()
    finally:
        listener.close()
    assert bound_to == [token]
    entry = store.pinned(TrustKind.TLS, "127.0.0.1", port)
    assert entry is not None and "the cluster sees the same certificate" in str(entry["how"])
