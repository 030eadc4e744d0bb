"""sushy-tools' Redfish emulator (``sushy-emulator --fake``) on loopback: BMCs for the lab's nodes.

Used by ``palette-wizard run --rehearse --provider redfish`` and by the Redfish tests. sushy-tools is an optional
dependency (the ``rehearsal`` extra); :func:`emulator_binary` says how to install it when it is missing.

One emulator serves N fake systems (powered off), from a fresh state folder and TMPDIR per instance (its sqlite
state would otherwise survive restarts, and downloaded virtual media lands in TMPDIR), over HTTPS with a
self-signed certificate and basic auth from a bcrypt htpasswd file (or plain HTTP without auth). Its virtual media
really downloads the image URL it is given. Setup follows the measured notes in the reference's peers.md §2
(source: /work/shared/reference/peers.md).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import bcrypt
import httpx

from wizard.core.errors import WizardError
from wizard.lab.certs import colon_fingerprint, create_node_certificate
from wizard.lab.ports import free_port

USERNAME = "admin"
READY_TIMEOUT = 30.0
INSTALL_HINT = "pip install 'palette-appliance-wizard[rehearsal]' (or: pip install sushy-tools)"


class EmulatorMissing(WizardError):
    """sushy-tools is not installed."""


def emulator_binary() -> Path:
    """``sushy-emulator`` next to the running interpreter (its virtualenv) or on PATH."""
    path = Path(sys.executable).parent / "sushy-emulator"
    if path.exists():
        return path
    found = shutil.which("sushy-emulator")
    if found is None:
        raise EmulatorMissing(
            "Redfish emulator not installed",
            f"the rehearsal with --provider redfish runs the nodes' BMCs in sushy-tools' sushy-emulator, which is not "
            f"installed (looked next to {sys.executable} and on PATH)",
            remediation=INSTALL_HINT,
        )
    return Path(found)


def system_ids(count: int, seed: str = "") -> tuple[str, ...]:
    """Stable System UUIDs for ``count`` fake systems (``seed`` varies them between emulators)."""
    return tuple(str(uuid.uuid5(uuid.NAMESPACE_URL, f"palette-lab-bmc/{seed}/{i}")) for i in range(count))


class SushyEmulator:
    """One emulator process; ``restart(new_certificate=True)`` brings it back on the same port with a new identity.

    ``password`` defaults to a random one (read it from the attribute); ``system_uuids`` defaults to
    :func:`system_ids`."""

    def __init__(
        self,
        *,
        tls: bool = True,
        auth: bool = True,
        systems: int = 3,
        system_uuids: tuple[str, ...] | None = None,
        password: str | None = None,
        folder: Path | None = None,
        host: str = "127.0.0.1",
        http_5xx: float = 0.0,
        seed: int = 0,
    ) -> None:
        """``http_5xx``: the share of requests answered 500/502/503 before the emulator sees them (the lab's knob;
        the emulator then runs under this Python with its WSGI app wrapped, :mod:`wizard.lab.sushyfaults`)."""
        self.folder = folder if folder is not None else Path(tempfile.mkdtemp(prefix="wizard-sushy-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.auth = auth
        self.systems = system_uuids[:systems] if system_uuids is not None else system_ids(systems)
        self.host = host
        self.port = free_port(host)
        self.username = USERNAME
        self.password = password or secrets.token_urlsafe(12)
        self.cert_path: Path | None = None
        self.key_path: Path | None = None
        self.fingerprint = ""
        self.log = self.folder / "emulator.log"
        self.http_5xx = http_5xx
        self.seed = seed
        self._proc: subprocess.Popen[bytes] | None = None
        self._generation = 0

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def address(self, index: int = 0) -> str:
        """The BMC address a project gives for node ``index``: the service plus the System that node is."""
        return f"{self.base_url}/redfish/v1/Systems/{self.systems[index]}"

    def client_context(self) -> ssl.SSLContext | None:
        """A TLS context that trusts this emulator's certificate only (None over plain HTTP)."""
        if not self.tls or self.cert_path is None:
            return None
        return ssl.create_default_context(cafile=str(self.cert_path))

    def _write_files(self, new_certificate: bool) -> Path:
        if self.tls and (new_certificate or self.cert_path is None):
            self._generation += 1
            cert = create_node_certificate(self.folder / f"tls-{self._generation}", ip=self.host, hostname="bmc")
            self.cert_path, self.key_path = cert.cert_path, cert.key_path
            self.fingerprint = colon_fingerprint(cert.fingerprint)
        state = self.folder / "state"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir()
        (self.folder / "tmp").mkdir(exist_ok=True)
        lines = [
            f"SUSHY_EMULATOR_LISTEN_IP = {self.host!r}",
            f"SUSHY_EMULATOR_LISTEN_PORT = {self.port}",
            "SUSHY_EMULATOR_FAKE_DRIVER = True",
            f"SUSHY_EMULATOR_STATE_DIR = {str(state)!r}",
            "SUSHY_EMULATOR_FAKE_SYSTEMS = ["
            + ", ".join(
                f"{{'uuid': {uid!r}, 'name': 'node-{i}', 'power_state': 'Off', 'external_notifier': False, "
                f"'nics': [{{'mac': '00:5c:52:31:{i // 256:02x}:{i % 256:02x}', 'ip': {self.host!r}}}]}}"
                for i, uid in enumerate(self.systems)
            )
            + "]",
        ]
        if self.tls:
            lines += [
                f"SUSHY_EMULATOR_SSL_CERT = {str(self.cert_path)!r}",
                f"SUSHY_EMULATOR_SSL_KEY = {str(self.key_path)!r}",
            ]
        if self.auth:
            digest = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
            htpasswd = self.folder / "htpasswd"
            htpasswd.write_text(f"{self.username}:{digest}\n")
            htpasswd.chmod(0o600)
            lines.append(f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}")
        config = self.folder / "emulator.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self, *, new_certificate: bool = False) -> SushyEmulator:
        binary = emulator_binary()
        config = self._write_files(new_certificate)
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # media downloads go straight to us
        env["TMPDIR"] = str(self.folder / "tmp")
        command = [str(binary), "--config", str(config)]
        if self.http_5xx > 0:
            if importlib.util.find_spec("sushy_tools") is None:
                raise EmulatorMissing(
                    "Redfish emulator not importable",
                    f"the http-5xx knob wraps sushy-tools' emulator in {sys.executable}, which cannot import it",
                    remediation=INSTALL_HINT,
                )
            faults = [sys.executable, "-m", "wizard.lab.sushyfaults", str(self.http_5xx), str(self.seed), "--"]
            command = [*faults, "--config", str(config)]
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        verify: ssl.SSLContext | bool = self.client_context() or False
        deadline = time.monotonic() + READY_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"sushy-emulator exited with {self._proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.base_url}/redfish/v1/", verify=verify, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.05)  # a start-up wait, nothing to cancel
        self.stop()
        raise RuntimeError(
            f"sushy-emulator not ready after {READY_TIMEOUT} s ({last}):\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)  # TERM: INT is ignored by background jobs (peers.md §0)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def restart(self, *, new_certificate: bool = False) -> None:
        self.stop()
        self.start(new_certificate=new_certificate)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def downloaded_media(self) -> list[Path]:
        """Images the emulator downloaded and still holds (it keeps each under TMPDIR until ejected)."""
        return [p for p in (self.folder / "tmp").rglob("*") if p.is_file()]

    def __enter__(self) -> SushyEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
