"""The support bundle: everything collected, every seeded secret gone from every member (nested archives too).

Node diagnostics come from a real HTTPS peer on loopback that follows the Local UI's published log endpoints
(login, generate-logs, generate-logs-status, download-logs, error-logs), so the client path is the real one.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.projects import base_doc, write_project
from wizard.core.errors import WizardError
from wizard.core.journal import Journal, journal_path, project_id
from wizard.core.paths import app_paths
from wizard.core.project import SecretRef
from wizard.core.redact import MASK
from wizard.core.secrets import SecretStore
from wizard.install.support import (
    BundleRedactor,
    NodeDiagnostics,
    SupportBundleError,
    build_support_bundle,
    redact_tar,
)
from wizard.lab.certs import create_node_certificate
from wizard.lab.tlsserver import TLSHTTPServer

# -- The seeded secrets ------------------------------------------------------------------------------------------------

NODE_PW = "N0de-Pa55word!x7Q"  # the operator's appliance password (keyring)
OCI_PW = "oci/registry+secret&=9"  # a cluster secret variable (keyring), with URL- and JSON-special characters
BEARER = "tok3n-abcdefghijklmnop"
PROXY_PW = "Pr0xyPassw0rd"
KUBE_TOKEN = "kube-token-0123456789abcdef"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrYWlyb3MiLCJleHAiOjE3MDB9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
HARMLESS = "harmless-marker-line"


def _pem_key() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    body = pem.splitlines()[1]  # a line of the key material itself
    return pem, body


PEM, PEM_BODY = _pem_key()


def forbidden() -> list[str]:
    """Every string that must not appear anywhere in the bundle."""
    out = [NODE_PW, OCI_PW, BEARER, PROXY_PW, KUBE_TOKEN, JWT, PEM_BODY]
    for value in (NODE_PW, OCI_PW):
        out += [
            json.dumps(value)[1:-1],
            urllib.parse.quote(value, safe=""),
            urllib.parse.quote_plus(value),
            base64.b64encode(value.encode()).decode().rstrip("="),
        ]
    out.append(base64.b64encode(PEM.encode()).decode()[:40])
    return out


# -- A node's Local UI log endpoints -----------------------------------------------------------------------------------


def node_log_archive() -> bytes:
    """A gzip-compressed tar like the appliance's download: text logs, a gzip'd rotated log, binaries."""
    members = {
        "edge-logs/var/log/stylus-agent.log": (
            f"{HARMLESS}\nlogin ok for kairos password={NODE_PW}\nAuthorization: Bearer {BEARER}\n"
        ).encode(),
        "edge-logs/etc/registry.json": json.dumps({"registry": "r.local", "password": OCI_PW}).encode(),
        "edge-logs/ssh/id_ed25519": PEM.encode(),
        "edge-logs/var/log/old.log.gz": gzip.compress(f"rotated {HARMLESS}\nsecret {OCI_PW}\n".encode()),
        "edge-logs/bin/core-with-secret": b"\x00\x01ELF" + NODE_PW.encode() + b"\x00\xff",
        "edge-logs/bin/clean-binary": b"\x00\x01\x02binary-without-secrets\x00",
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.uname = "kairos"
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


class LogPeer:
    """One node's Local UI log endpoints on 127.0.0.1, behind the login the real API has."""

    def __init__(self, folder: Path, *, username: str, password: str, offers_logs: bool = True) -> None:
        self.cert = create_node_certificate(folder, ip="127.0.0.1", hostname="edge-node")
        self.username, self.password, self.offers_logs = username, password, offers_logs
        self.token = "session-token-" + "z" * 20
        self.calls: list[str] = []
        self.status_polls = 0
        self._server: TLSHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LogPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            routes: ClassVar[dict[str, str]] = {}

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json", **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k.replace("_", "-"), v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, data: Any) -> None:
                self._send(status, json.dumps(data).encode())

            def _body(self) -> Any:
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"{}")

            def _handle(self, method: str) -> None:
                path = urllib.parse.urlsplit(self.path).path
                peer.calls.append(f"{method} {path}")
                if method == "POST" and path == "/v1/users/default/login":
                    body = self._body()
                    if body.get("username") == peer.username and body.get("password") == peer.password:
                        self._json(200, {"Token": {"Authorization": peer.token}, "IsFirstLogin": False})
                    else:
                        self._json(401, {"code": "Unauthorized", "message": "invalid credentials"})
                    return
                self._body() if method == "POST" else None
                if self.headers.get("Authorization") != peer.token:
                    self._json(401, {"code": "Unauthorized", "message": "no session"})
                    return
                if not peer.offers_logs:
                    self._json(404, {"code": "NotFound", "message": f"{path} not found"})
                elif method == "POST" and path.endswith("/generate-logs"):
                    self._json(202, {"msg": "log collection started"})
                elif path.endswith("/generate-logs-status"):
                    peer.status_polls += 1
                    self._json(200, {"status": "InProgress" if peer.status_polls < 2 else "Completed", "msg": ""})
                elif path.endswith("/download-logs"):
                    self._send(
                        200,
                        node_log_archive(),
                        "application/x-tar",
                        Content_Disposition='attachment; filename="edge-host-logs.tar.gz"',
                    )
                elif path.endswith("/error-logs"):
                    self._json(
                        200,
                        {"items": [{"message": f"login failed: password {NODE_PW} rejected", "type": "Error"}]},
                    )
                else:
                    self._json(404, {"code": "NotFound", "message": path})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self._server = TLSHTTPServer(
            ("127.0.0.1", 0), self.cert.server_context(), Handler, socket_timeout=10.0, label="log-peer"
        )
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(10)


# -- Seeding a session -------------------------------------------------------------------------------------------------


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[tuple[LogPeer, LogPeer]]:
    with (
        LogPeer(tmp_path / "n1", username="kairos", password=NODE_PW) as one,
        LogPeer(tmp_path / "n2", username="kairos", password=NODE_PW, offers_logs=False) as two,
    ):
        yield one, two


def seed_session(tmp_path: Path, peers: tuple[LogPeer, LogPeer]) -> Path:
    """A project with three nodes (two peers and one that answers nothing), secrets in the keyring and known
    secrets planted raw in the logs, journal, reports and kubeconfig; returns the project file."""
    one, two = peers
    doc = base_doc()
    doc["nodes"] = [
        {"name": "node-1", "hostname": "edge-node-1", "ip": "127.0.0.1", "prefix": 24, "gateway": "127.0.0.254",
         "localui_port": one.port, "localui_fingerprint": one.cert.fingerprint},
        {"name": "node-2", "hostname": "edge-node-2", "ip": "127.0.0.1", "prefix": 24, "gateway": "127.0.0.254",
         "localui_port": two.port, "localui_fingerprint": two.cert.fingerprint, "ssh_port": 2222},
        {"name": "node-3", "hostname": "edge-node-3", "ip": "127.0.0.1", "prefix": 24, "gateway": "127.0.0.254",
         "localui_port": 1, "ssh_port": 2223},
    ]  # fmt: skip
    doc["network"] = {"vip": "127.0.0.250", "proxy": {"https": "http://proxy.example.com:3128"}}
    doc["appliance"] = {"username": "kairos", "password": {"secret": "node-password"}}
    doc["cluster"] = {"secret_variables": {"ociPackRegistryPassword": {"secret": "oci-registry"}}}
    project = write_project(tmp_path, doc)
    store = SecretStore()
    store.set(SecretRef("node-password"), NODE_PW)
    store.set(SecretRef("oci-registry"), OCI_PW)

    paths = app_paths().ensure()
    pid = project_id(project, "palette-mgmt")
    journal = Journal.open(journal_path(paths.state, pid), pid, str(project.resolve()))
    for node in ("node-1", "node-2"):  # the password step ran: the nodes have the operator's password now
        journal.job_started(f"password/{node}", "fp")
        journal.job_done(f"password/{node}", "fp", {"changed": True})
    journal.set_fact("link:leader", "node-1")
    # A journal written by an older wizard that knew no redaction: raw values, one JSON-escaped.
    raw = json.loads(journal.path.read_text())
    raw["facts"]["debug:login"] = f"kairos/{NODE_PW}"
    raw["facts"]["debug:registry"] = {"url": f"https://admin:{PROXY_PW}@registry.local", "password": OCI_PW}
    raw["history"].append({"event": "note", "text": f"registry secret {OCI_PW}"})
    journal.path.write_text(json.dumps(raw, indent=1))

    (paths.logs / "wizard.log").write_text(
        f"2026-01-01 INFO {HARMLESS}\n"
        f"2026-01-01 DEBUG POST /v1/users/default/login body={{'username': 'kairos', 'password': '{NODE_PW}'}}\n"
        f"2026-01-01 DEBUG headers {{'Authorization': 'Bearer {BEARER}'}}\n"
        f"2026-01-01 DEBUG token {JWT}\n"
        f"2026-01-01 DEBUG GET /login?password={urllib.parse.quote_plus(OCI_PW)}&x=1\n"
        f"2026-01-01 DEBUG proxy https://operator:{PROXY_PW}@proxy.example.com:3128\n"
    )
    (paths.logs / "wizard.log.1").write_text(f"older rotation: the OCI secret was {OCI_PW}\n")
    (paths.logs / "crash-20260101.log").write_text(f"Traceback …\nkey material:\n{PEM}\nend\n")

    folder = journal.path.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "preflight-report.json").write_text(
        json.dumps({"results": [{"check": "net.dns", "detail": f"password {NODE_PW} used"}], "ok": HARMLESS})
    )
    (folder / "run-report.html").write_text(
        f"<p>{HARMLESS}</p><a href='https://n1/?token={urllib.parse.quote(NODE_PW, safe='')}'>x</a>"
    )
    kubeconfig = (
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0EtZGF0YQ==\n"
        "    server: https://127.0.0.250:6443\n  name: palette\nusers:\n- name: admin\n  user:\n"
        "    client-certificate-data: Y2VydA==\n"
        f"    client-key-data: {base64.b64encode(PEM.encode()).decode()}\n"
        f"    token: {KUBE_TOKEN}\n"
    )
    (folder / "kubeconfig").write_text(kubeconfig)
    return project


def members(bundle: Path) -> dict[str, bytes]:
    """Every file in the zip, and every file inside each tar in it (as ``name!inner``)."""
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(bundle) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            out[name] = data
            if name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                    for m in tf:
                        f = tf.extractfile(m) if m.isfile() else None
                        out[f"{name}!{m.name}"] = f.read() if f is not None else m.linkname.encode()
    return out


# -- Tests -------------------------------------------------------------------------------------------------------------


def test_no_seeded_secret_survives_in_any_member(tmp_path: Path, peers: tuple[LogPeer, LogPeer]) -> None:
    seed_session(tmp_path, peers)
    sessions = app_paths().state / "sessions"
    before = {p.name: p.read_bytes() for p in sessions.glob("*.json")}
    bundle = build_support_bundle(tmp_path / "out" / "support.zip", node_poll=0.05, node_timeout=20)
    assert {p.name: p.read_bytes() for p in sessions.glob("*.json")} == before  # collecting changes nothing
    assert bundle == tmp_path / "out" / "support.zip"
    assert bundle.stat().st_mode & 0o777 == 0o600

    files = members(bundle)
    leaks = [(name, s) for name, data in files.items() for s in forbidden() if s.encode() in data]
    assert leaks == []
    for name, data in files.items():
        assert b"PRIVATE KEY-----\n" not in data, name

    # What was collected is there, with the harmless text around the secrets intact.
    names = set(files)
    for expected in (
        "manifest.json",
        "logs/wizard.log",
        "logs/wizard.log.1",
        "logs/crash-20260101.log",
        "session/journal.json",
        "session/files/preflight-report.json",
        "session/files/run-report.html",
        "session/files/kubeconfig",
        "session/project/project.yaml",
        "nodes/node-1/edge-host-logs.tar",
        "nodes/node-1/error-logs.json",
        "nodes/node-2/problems.txt",
        "nodes/node-3/problems.txt",
    ):
        assert expected in names, expected
    assert HARMLESS.encode() in files["logs/wizard.log"]
    assert b"'username': 'kairos'" in files["logs/wizard.log"]  # the public default account is not masked
    assert MASK.encode() in files["logs/wizard.log"]
    kube = files["session/files/kubeconfig"].decode()
    assert "server: https://127.0.0.250:6443" in kube and "client-certificate-data: Y2VydA==" in kube
    assert f"client-key-data: {MASK}" in kube
    assert b"secret: node-password" in files["session/project/project.yaml"]  # references stay readable
    journal = json.loads(files["session/journal.json"])  # still valid JSON after masking
    assert journal["facts"]["link:leader"] == "node-1"

    tar = "nodes/node-1/edge-host-logs.tar"
    assert HARMLESS.encode() in files[f"{tar}!edge-logs/var/log/stylus-agent.log"]
    assert HARMLESS.encode() in files[f"{tar}!edge-logs/var/log/old.log"]  # gunzipped, then redacted
    assert f"{tar}!edge-logs/bin/clean-binary" in names
    assert f"{tar}!edge-logs/bin/core-with-secret" not in names  # binary holding a secret: left out

    manifest = json.loads(files["manifest.json"])
    assert manifest["redaction"]["known_secrets"] >= 2
    nodes = {n["node"]: n["problems"] for n in manifest["nodes"]}
    assert any("core-with-secret" in p for p in nodes["node-1"])
    assert any("404" in p for p in nodes["node-2"])
    assert nodes["node-3"]  # nothing listens there: the reason is recorded, the bundle still written
    assert manifest["session"]["status"] == "running"

    one, _ = peers
    assert "POST /v1/edge-mgmt/edgehosts/current/generate-logs" in one.calls
    assert one.calls.index("POST /v1/edge-mgmt/edgehosts/current/generate-logs") < one.calls.index(
        "GET /v1/edge-mgmt/edgehosts/current/download-logs"
    )
    assert one.status_polls >= 2  # it waited for the collection to complete before downloading


def test_bundle_without_any_session_holds_logs_and_manifest(tmp_path: Path) -> None:
    paths = app_paths().ensure()
    (paths.logs / "wizard.log").write_text(f"{HARMLESS}\nAuthorization: Basic {BEARER}\n")
    bundle = build_support_bundle(tmp_path, extra_secrets=[])
    assert bundle.parent == tmp_path and bundle.name.startswith("palette-wizard-support-")
    files = members(bundle)
    assert set(files) == {"logs/wizard.log", "manifest.json"}
    assert BEARER.encode() not in files["logs/wizard.log"]
    assert json.loads(files["manifest.json"])["session"] is None


def test_unknown_session_is_an_error_with_the_known_ones(tmp_path: Path, peers: tuple[LogPeer, LogPeer]) -> None:
    seed_session(tmp_path, peers)
    with pytest.raises(SupportBundleError) as err:
        build_support_bundle(tmp_path / "x.zip", session="no-such-session", nodes=False)
    assert "palette-mgmt-" in (err.value.remediation or "")
    assert not (tmp_path / "x.zip").exists()


def test_redactor_masks_encoded_forms_and_refuses_binary_with_a_secret() -> None:
    r = BundleRedactor([OCI_PW])
    text = f"a {json.dumps(OCI_PW)} b {urllib.parse.quote(OCI_PW, safe='')} c {base64.b64encode(OCI_PW.encode())!r}"
    clean = r.text(text)
    assert OCI_PW not in clean and urllib.parse.quote(OCI_PW, safe="") not in clean
    assert base64.b64encode(OCI_PW.encode()).decode() not in clean
    assert r.data(b"\x00bin" + OCI_PW.encode()) is None
    assert r.data(b"\x00bin-clean") == b"\x00bin-clean"
    assert r.text("password: {secret: oci-registry}") == "password: {secret: oci-registry}"
    assert r.text("  password: hunter22") == f"  password: {MASK}"
    assert r.text(PEM).count(PEM_BODY) == 0


def test_redact_tar_drops_uid_names_and_masks_member_names() -> None:
    r = BundleRedactor([NODE_PW])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        info = tarfile.TarInfo(f"logs/{NODE_PW}.txt")
        info.size, info.uname = 2, "operator-name"
        tf.addfile(info, io.BytesIO(b"ok"))
    clean, notes = redact_tar(out.getvalue(), r)
    with tarfile.open(fileobj=io.BytesIO(clean)) as tf:
        (m,) = tf.getmembers()
    assert NODE_PW not in m.name and m.uname == "" and notes == []


def test_supplied_diagnostics_that_are_not_a_tar_are_kept_redacted(tmp_path: Path) -> None:
    diag = NodeDiagnostics("node-9", logs=f"plain text, not a tar; password={NODE_PW}".encode())
    bundle = build_support_bundle(tmp_path / "b.zip", node_diagnostics=[diag], extra_secrets=[NODE_PW])
    files = members(bundle)
    assert not any(NODE_PW.encode() in data for data in files.values())
    assert "nodes/node-9/logs.tar.bin" in files


def test_a_secret_that_survives_redaction_stops_the_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = app_paths().ensure()
    (paths.logs / "wizard.log").write_text(f"x {NODE_PW} y\n")
    monkeypatch.setattr(BundleRedactor, "text", lambda self, text: text)  # a redaction bug
    with pytest.raises(WizardError, match="secret"):
        build_support_bundle(tmp_path / "leak.zip", extra_secrets=[NODE_PW])
    assert list(tmp_path.glob("*.zip")) == [] and list(tmp_path.glob(".support-*")) == []
