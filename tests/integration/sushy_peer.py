"""sushy-tools' ``sushy-emulator --fake`` on loopback: a Redfish BMC peer for the Redfish client tests.

Three fake systems (node-0..2, powered off), a fresh state folder and TMPDIR per instance (its sqlite state would
otherwise survive restarts, and downloaded virtual media lands in TMPDIR), HTTPS with a self-signed certificate
and basic auth from a bcrypt htpasswd file (or plain HTTP without auth). The emulator's virtual media really
downloads the image URL it is given. Setup follows the measured notes in reference/peers.md §2
(source: /work/shared/reference/peers.md).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bcrypt
import httpx

from wizard.lab.certs import colon_fingerprint, create_node_certificate

USERNAME = "admin"
PASSWORD = "S3cret!-bmc"
SYSTEM_IDS = tuple(f"27946b59-9e44-4fa7-8e91-f3527a1ef09{i}" for i in range(3))
READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def emulator_binary() -> Path:
    """``sushy-emulator`` next to the running interpreter (the test virtualenv); fails loudly when absent."""
    path = Path(sys.executable).parent / "sushy-emulator"
    if not path.exists():
        found = shutil.which("sushy-emulator")
        if found is None:
            raise RuntimeError(
                f"sushy-emulator not found next to {sys.executable} nor on PATH: install sushy-tools "
                "into the test virtualenv (pip install sushy-tools)"
            )
        path = Path(found)
    return path


class SushyEmulator:
    """One emulator process; ``restart(new_certificate=True)`` brings it back on the same port with a new identity."""

    def __init__(self, *, tls: bool = True, auth: bool = True, systems: int = 3) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="wizard-sushy-"))
        self.tls = tls
        self.auth = auth
        self.systems = SYSTEM_IDS[:systems]
        self.host = "127.0.0.1"
        self.port = free_port()
        self.username = USERNAME
        self.password = PASSWORD
        self.cert_path: Path | None = None
        self.key_path: Path | None = None
        self.fingerprint = ""
        self.log = self.folder / "emulator.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._generation = 0

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def address(self, index: int = 0) -> str:
        """The BMC address the project gives for node ``index``: the service plus the System that node is."""
        return f"{self.base_url}/redfish/v1/Systems/{self.systems[index]}"

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
                f"'nics': [{{'mac': '00:5c:52:31:3a:9{i}', 'ip': '127.0.0.1'}}]}}"
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
            lines.append(f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}")
        config = self.folder / "emulator.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self, *, new_certificate: bool = False) -> SushyEmulator:
        config = self._write_files(new_certificate)
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # downloads go straight to us
        env["TMPDIR"] = str(self.folder / "tmp")
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(emulator_binary()), "--config", str(config)], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        verify: ssl.SSLContext | bool = False
        if self.tls and self.cert_path is not None:
            verify = ssl.create_default_context(cafile=str(self.cert_path))
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
            time.sleep(0.05)
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
