"""The govmomi vCenter simulator (``vcsim``) as the lab's vCenter: ``palette-wizard run --rehearse --provider
vsphere`` runs the nodes as VMs the wizard creates in it.

The binary is not a Python package: it is found on PATH (``vcsim``, from govmomi's releases or ``go install
github.com/vmware/govmomi/vcsim@latest``) or given by path. It serves its default model (datacenter ``DC0``, cluster
``DC0_C0`` of three hosts, datastore ``LocalDS_0``, network ``VM Network``) over HTTPS on a free loopback port with a
certificate made here (vcsim's built-in one has a key too weak for today's TLS defaults, and a known certificate
needs no trust on first use), and is stopped with TERM (which makes it remove its datastore folders).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from wizard.core.errors import WizardError
from wizard.lab.certs import NodeCertificate, colon_fingerprint, create_node_certificate
from wizard.lab.ports import free_port

DATACENTER = "DC0"
CLUSTER = "DC0_C0"
DATASTORE = "LocalDS_0"
NETWORK = "VM Network"
USER = "administrator@vsphere.local"
READY_TIMEOUT = 30.0
INSTALL_HINT = "put govmomi's `vcsim` on PATH (go install github.com/vmware/govmomi/vcsim@latest) or pass --vcsim PATH"


class SimulatorMissing(WizardError):
    """No vcsim binary."""


def find_vcsim(given: Path | str | None = None) -> Path:
    """The vcsim binary: ``given`` when set (it must exist), else ``vcsim`` on PATH."""
    if given:
        path = Path(given)
        if not path.is_file():
            raise SimulatorMissing("vCenter simulator not found", f"{path} is not a file", remediation=INSTALL_HINT)
        return path
    found = shutil.which("vcsim")
    if found is None:
        raise SimulatorMissing(
            "vCenter simulator not installed",
            "the rehearsal with --provider vsphere runs the nodes as VMs in govmomi's vcsim, which is not on PATH",
            remediation=INSTALL_HINT,
        )
    return Path(found)


class VcsimProcess:
    """One running simulator on ``host``:``port`` (free by default)."""

    def __init__(self, binary: Path, folder: Path, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.binary = binary
        self.folder = folder
        self.host = host
        self.port = port or free_port(host)
        self.log = folder / "vcsim.log"
        self.certificate: NodeCertificate | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def fingerprint(self) -> str:
        """The SHA-256 fingerprint of the certificate it serves (colon-separated hex)."""
        assert self.certificate is not None, "start() first"
        return colon_fingerprint(self.certificate.fingerprint)

    def _certificate_flags(self) -> tuple[str, str]:
        """govmomi's vcsim takes ``-tlscert``/``-tlskey``; simulators built on its library may take ``-cert``."""
        usage = subprocess.run([str(self.binary), "-h"], capture_output=True, text=True, timeout=30, check=False)
        text = usage.stdout + usage.stderr
        return ("-tlscert", "-tlskey") if "-tlscert" in text else ("-cert", "-key")

    def start(self) -> VcsimProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.certificate = create_node_certificate(self.folder / "tls", ip=self.host, hostname="vcenter")
        cert_flag, key_flag = self._certificate_flags()
        argv = [str(self.binary), "-l", f"{self.host}:{self.port}", "-tls"]
        argv += [cert_flag, str(self.certificate.cert_path), key_flag, str(self.certificate.key_path)]
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RuntimeError(f"vcsim exited with {code}:\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"vcsim did not listen on {self.host}:{self.port} within {READY_TIMEOUT} s"
                    ) from None
                time.sleep(0.05)  # a start-up wait, nothing to cancel

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
