"""A real OpenSSH sshd on loopback for client tests: own host keys, a test account with a password and a key.

It runs as root (sshd needs that to check passwords against /etc/shadow) with its config, keys and pid file under
a temporary folder, and stops with the test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from wizard.lab.ports import free_port

USER = "wizardtest"
PASSWORD = "Wizard-Test-Pass1"
SSHD = "/usr/sbin/sshd"


def ensure_account() -> None:
    """Creates the test account once; sets its password every time (idempotent)."""
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-M", "-d", "/tmp", "-s", "/bin/sh", USER], check=True, capture_output=True)
    subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True, check=True, capture_output=True)


def keygen(path: Path, kind: str = "ed25519") -> Path:
    path.unlink(missing_ok=True)
    path.with_suffix(".pub").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, capture_output=True)
    return path


def fingerprint(public_key_file: Path) -> str:
    """``SHA256:…`` as ``ssh-keygen -lf`` prints it."""
    out = subprocess.run(["ssh-keygen", "-lf", str(public_key_file)], check=True, capture_output=True, text=True)
    return out.stdout.split()[1]


class OpenSSHServer:
    """``/usr/sbin/sshd -D -e`` on 127.0.0.1:<free port>; ``restart(new_host_key=True)`` swaps its identity.

    Its files live in a folder of their own under the system temp folder: sshd reads the authorized keys as the
    login user, who cannot enter pytest's private (0700) temporary folders.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="wizard-sshd-"))
        self.folder.chmod(0o755)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.user = USER
        self.password = PASSWORD
        self.host_key = self.folder / "ssh_host_ed25519_key"
        self.client_key = self.folder / "client_ed25519"
        self.config = self.folder / "sshd_config"
        self._proc: subprocess.Popen[bytes] | None = None
        self.log = self.folder / "sshd.log"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.host_key.with_suffix(".pub"))

    def _write_config(self) -> None:
        self.config.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.host}",
                    f"Port {self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.folder / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.folder / 'authorized_keys'}",
                    "StrictModes no",  # the temporary folder's modes would make sshd ignore the key file
                    "UsePAM no",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    f"AllowUsers {USER}",
                    "MaxStartups 50:30:100",
                    "",
                ]
            )
        )

    def start(self) -> OpenSSHServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory sshd insists on
        ensure_account()
        if not self.host_key.exists():
            keygen(self.host_key)
        if not self.client_key.exists():
            keygen(self.client_key)
            shutil.copy(self.client_key.with_suffix(".pub"), self.folder / "authorized_keys")
            os.chmod(self.folder / "authorized_keys", 0o644)
        self._write_config()
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self._proc.returncode}: {self.log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def restart(self, *, new_host_key: bool = False) -> None:
        self.stop()
        if new_host_key:
            keygen(self.host_key)
        self.start()

    def __enter__(self) -> OpenSSHServer:
        try:
            return self.start()
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
