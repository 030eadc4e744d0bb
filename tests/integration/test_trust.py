"""Pinning against real TLS (a lab node's Local UI) and SSH (its sshd): first contact, confirmation, change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from wizard.core.trust import (
    TrustChanged,
    TrustKind,
    TrustRefused,
    TrustRequest,
    TrustStore,
    decide,
    is_certificate_change,
    normalize,
    same_fingerprint,
    system_or_pinned_tls_context,
    trusted_tls_context,
)
from wizard.lab import Lab, ManualClock
from wizard.lab.certs import create_node_certificate
from wizard.lab.localui import LocalUIServer

pytestmark = pytest.mark.lab


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    with Lab(1, tmp_path / "lab", ManualClock(), tick_interval=None) as started:
        yield started  # type: ignore[misc]


def test_fingerprint_spellings() -> None:
    hexfp = "ab" * 32
    assert normalize(hexfp) == ":".join(["AB"] * 32)
    assert same_fingerprint(hexfp, ":".join(["AB"] * 32))
    import base64

    b64 = base64.b64encode(bytes.fromhex(hexfp)).decode()
    assert same_fingerprint("SHA256:" + b64.rstrip("="), hexfp)
    with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
        normalize("abc")


def test_first_contact_asks_then_pins(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    store = TrustStore(tmp_path / "config")
    asked: list[TrustRequest] = []

    def yes(request: TrustRequest) -> bool:
        asked.append(request)
        return True

    ctx = trusted_tls_context(store, yes, "127.0.0.1", node.server.port)
    assert len(asked) == 1 and not asked[0].changed
    assert same_fingerprint(asked[0].presented, node.fingerprint)
    assert "First contact" in asked[0].describe()
    with httpx.Client(verify=ctx, timeout=5) as http:
        assert http.get(f"{node.url}/v1/ping").status_code == 200
    # Second time: no question, the pinned certificate is used as is.
    trusted_tls_context(store, lambda r: pytest.fail("asked again"), "127.0.0.1", node.server.port)


def test_refusal_and_headless_first_contact(lab: Lab, tmp_path: Path) -> None:
    port = lab.nodes[0].server.port
    store = TrustStore(tmp_path / "config")
    with pytest.raises(TrustRefused, match="did not trust"):
        trusted_tls_context(store, lambda r: False, "127.0.0.1", port)
    with pytest.raises(TrustRefused, match="not confirmed"):
        trusted_tls_context(store, None, "127.0.0.1", port)
    assert store.pinned(TrustKind.TLS, "127.0.0.1", port) is None


def test_project_fingerprint_pins_without_asking_and_mismatch_stops(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    store = TrustStore(tmp_path / "config")
    trusted_tls_context(store, None, "127.0.0.1", node.server.port, expected=node.fingerprint.lower())
    assert store.pinned(TrustKind.TLS, "127.0.0.1", node.server.port) is not None
    with pytest.raises(TrustChanged, match="not the one pinned"):
        trusted_tls_context(store, None, "127.0.0.1", node.server.port, expected="00" * 32)


def test_changed_certificate_is_detected_and_needs_an_explicit_choice(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    port = node.server.port
    store = TrustStore(tmp_path / "config")
    ctx = trusted_tls_context(store, lambda r: True, "127.0.0.1", port)
    # The node is "reinstalled": same address and port, new certificate.
    node.server.stop()
    new_cert = create_node_certificate(tmp_path / "new-tls", ip="127.0.0.1", hostname=node.name)
    replacement = LocalUIServer(node.state, new_cert, host="127.0.0.1", port=port).start()
    try:
        with httpx.Client(verify=ctx, timeout=5) as http, pytest.raises(httpx.ConnectError) as info:
            http.get(f"https://127.0.0.1:{port}/v1/ping")
        assert is_certificate_change(info.value)
        store_entry = store.pinned(TrustKind.TLS, "127.0.0.1", port)
        assert store_entry is not None
        # The changed certificate is shown with both fingerprints; declining keeps the old pin.
        seen: list[TrustRequest] = []

        def no(request: TrustRequest) -> bool:
            seen.append(request)
            return False

        with pytest.raises(TrustChanged) as changed:
            decide(store, no, TrustKind.TLS, "127.0.0.1", port, presented=new_cert.fingerprint)
        assert seen[0].changed and "CHANGED" in seen[0].describe()
        assert "pinned:" in changed.value.details and changed.value.title == "Certificate changed"
        with pytest.raises(TrustChanged):
            decide(store, None, TrustKind.TLS, "127.0.0.1", port, presented=new_cert.fingerprint)
        assert same_fingerprint(str(store.pinned(TrustKind.TLS, "127.0.0.1", port)["fingerprint"]), node.fingerprint)  # type: ignore[index]
        # Accepting the change re-pins, explicitly.
        decide(
            store,
            lambda r: True,
            TrustKind.TLS,
            "127.0.0.1",
            port,
            presented=new_cert.fingerprint,
            pem=new_cert.cert_path.read_text(),
        )
        ctx2 = trusted_tls_context(store, None, "127.0.0.1", port)
        with httpx.Client(verify=ctx2, timeout=5) as http:
            assert http.get(f"https://127.0.0.1:{port}/v1/ping").status_code == 200
    finally:
        replacement.stop()


def test_ssh_host_key_pinning(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    store = TrustStore(tmp_path / "config")
    fp = node.ssh.fingerprint
    decide(store, lambda r: r.kind is TrustKind.SSH, TrustKind.SSH, "127.0.0.1", node.ssh.port, presented=fp)
    decide(store, None, TrustKind.SSH, "127.0.0.1", node.ssh.port, presented=fp)  # pinned: no question
    with pytest.raises(TrustChanged) as info:
        decide(store, None, TrustKind.SSH, "127.0.0.1", node.ssh.port, presented="SHA256:" + "A" * 43)
    assert info.value.title == "Host key changed"


def test_system_store_first_then_pin_on_confirmation(lab: Lab, tmp_path: Path) -> None:
    """CA-verified servers need no question; a self-signed one is pinned only when confirmed; a pin then rules."""
    node = lab.nodes[0]
    port = node.server.port
    store = TrustStore(tmp_path / "config")
    asked: list[TrustRequest] = []

    def record(answer: bool) -> Callable[[TrustRequest], bool]:
        def confirm(request: TrustRequest) -> bool:
            asked.append(request)
            return answer

        return confirm

    # The node's certificate as the only CA: verified by the "system" store, host name included, nothing pinned.
    other = create_node_certificate(tmp_path / "ca", ip="127.0.0.1", hostname="elsewhere")
    with pytest.raises(TrustRefused):  # a CA that did not sign it: falls back to asking, and nobody can be asked
        system_or_pinned_tls_context(store, None, "127.0.0.1", port, cafile=str(other.cert_path))
    assert store.pinned(TrustKind.TLS, "127.0.0.1", port) is None
    with pytest.raises(TrustRefused):
        system_or_pinned_tls_context(store, record(False), "127.0.0.1", port, cafile=str(other.cert_path))
    assert len(asked) == 1 and store.pinned(TrustKind.TLS, "127.0.0.1", port) is None
    ctx = system_or_pinned_tls_context(store, record(True), "127.0.0.1", port, cafile=str(other.cert_path))
    assert len(asked) == 2 and same_fingerprint(asked[-1].presented, node.fingerprint)
    with httpx.Client(verify=ctx, timeout=5) as http:
        assert http.get(f"https://127.0.0.1:{port}/v1/ping").status_code == 200
    # Once pinned, the pin rules and nobody is asked again.
    system_or_pinned_tls_context(store, None, "127.0.0.1", port)
    assert len(asked) == 2


def test_system_store_verification_needs_no_pin(tmp_path: Path) -> None:
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler

    from wizard.lab.tlsserver import TLSHTTPServer

    cert = create_node_certificate(tmp_path / "srv", ip="127.0.0.1", hostname="vcenter.example")

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = TLSHTTPServer(("127.0.0.1", 0), cert.server_context(), Hello, socket_timeout=5, label="ca-signed")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        store = TrustStore(tmp_path / "config")
        ctx = system_or_pinned_tls_context(store, None, "127.0.0.1", port, cafile=str(cert.cert_path))
        assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
        assert store.pinned(TrustKind.TLS, "127.0.0.1", port) is None  # CA-verified: nothing pinned, nobody asked
        with httpx.Client(verify=ctx, timeout=5) as http:
            assert http.get(f"https://127.0.0.1:{port}/").status_code == 204
        # A wrong expected fingerprint in the project beats CA verification: the certificate is not the one named.
        with pytest.raises(TrustChanged):
            system_or_pinned_tls_context(store, None, "127.0.0.1", port, expected="ab" * 32, cafile=str(cert.cert_path))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_pinned_certificate_that_changed_is_put_to_the_operator_as_a_change(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    port = node.server.port
    store = TrustStore(tmp_path / "config")
    trusted_tls_context(store, lambda r: True, "127.0.0.1", port)
    node.server.stop()
    new_cert = create_node_certificate(tmp_path / "new-tls", ip="127.0.0.1", hostname=node.name)
    replacement = LocalUIServer(node.state, new_cert, host="127.0.0.1", port=port).start()
    try:
        asked: list[TrustRequest] = []

        def answer(yes: bool) -> Callable[[TrustRequest], bool]:
            def confirm(request: TrustRequest) -> bool:
                asked.append(request)
                return yes

            return confirm

        # Declined, or no one to ask: a change stops, and the old pin stays.
        with pytest.raises(TrustChanged):
            trusted_tls_context(store, answer(False), "127.0.0.1", port)
        with pytest.raises(TrustChanged):
            trusted_tls_context(store, None, "127.0.0.1", port)
        assert len(asked) == 1 and asked[0].changed
        assert same_fingerprint(asked[0].presented, new_cert.fingerprint)
        assert same_fingerprint(str(asked[0].pinned), node.fingerprint)
        # Accepted: the new certificate is pinned and used.
        ctx = trusted_tls_context(store, answer(True), "127.0.0.1", port)
        with httpx.Client(verify=ctx, timeout=5) as http:
            assert http.get(f"https://127.0.0.1:{port}/v1/ping").status_code == 200
        entry = store.pinned(TrustKind.TLS, "127.0.0.1", port)
        assert entry is not None and same_fingerprint(str(entry["fingerprint"]), new_cert.fingerprint)
    finally:
        replacement.stop()


def test_a_pinned_server_not_answering_yet_gets_its_pinned_context(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    store = TrustStore(tmp_path / "config")
    trusted_tls_context(store, lambda r: True, "127.0.0.1", node.server.port)
    node.server.stop()  # rebooting: the client, not the context, reports it unreachable
    trusted_tls_context(store, lambda r: pytest.fail("asked while the node was down"), "127.0.0.1", node.server.port)
