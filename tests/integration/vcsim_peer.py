"""The govmomi vCenter simulator (vcsim) as a test peer, built from Debian's govmomi sources on first use.

``tests/peers/vcsim/*.go`` (the simulator, and the VM console methods it lacks) is compiled with the system Go
toolchain against ``golang-github-vmware-govmomi-dev`` (``GOPATH=/usr/share/gocode``, no module downloads) into a
cache folder keyed by the sources' hash, so later runs start at once. Each server runs on a free loopback port, over
HTTP or HTTPS, and is stopped with TERM (which makes vcsim remove its datastore folders). A missing toolchain or
package fails the tests loudly: in CI a skip is a failure.

Import the fixtures into a test module: ``from tests.integration.vcsim_peer import vcsim_fixture  # noqa: F401``
(each registers under the name without ``_fixture``).
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import ipaddress
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.sshd_peer import free_port
from wizard.core.cancel import CancelToken
from wizard.core.jobs import Job
from wizard.core.progress import Progress, TaskStatus
from wizard.core.project import SecretRef, VmMode, VmSpec, VsphereSettings

SOURCE = Path(__file__).resolve().parents[1] / "peers" / "vcsim" / "main.go"
GOPATH = "/usr/share/gocode"
GOVMOMI = Path(GOPATH) / "src/github.com/vmware/govmomi/simulator"
#: What the simulator's model contains (main.go): the names tests can rely on.
DATACENTER = "DC0"
CLUSTER = "DC0_C0"
DATASTORE = "LocalDS_0"
NETWORK = "VM Network"
PORTGROUP = "DC0_DVPG0"
HOSTS = ("DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2")
EXISTING_VMS = ("DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1")
USER = "administrator@vsphere.local"
PASSWORD = "vcsim-Pass1"  # vcsim accepts any non-empty credentials
#: A node size the simulated hosts (2 cores, 4 GiB each) can hold.
SMALL_VM = VmSpec(cpus=2, memory_gb=1, os_disk_gb=4, data_disk_gb=8)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "palette-wizard-tests"


def build_vcsim() -> Path:
    """The simulator binary for the current main.go, built once per source hash (safe across parallel runs)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("vcsim peer: `go` is not installed (apt-get install golang-go)", pytrace=False)
    if not GOVMOMI.is_dir():
        pytest.fail(
            f"vcsim peer: {GOVMOMI} is missing (apt-get install golang-github-vmware-govmomi-dev)", pytrace=False
        )
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(SOURCE.parent.glob("*.go")))).hexdigest()[:16]
    root = _cache_root()
    folder = root / f"vcsim-{digest}"
    binary = folder / "vcsim"
    if binary.exists():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building the same source right now
        if binary.exists():
            return binary
        env = dict(os.environ, GOPATH=GOPATH, GO111MODULE="off", GOCACHE=str(root / "gocache"), GOFLAGS="")
        tmp = folder / f"vcsim.{os.getpid()}.tmp"
        done = subprocess.run(
            [go, "build", "-o", str(tmp), "."], cwd=SOURCE.parent, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.fail(f"vcsim peer: go build failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
        os.replace(tmp, binary)
    return binary


def make_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A fresh self-signed certificate for 127.0.0.1 (each call gives a different one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"vcsim-{name}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class VcsimServer:
    """One running simulator. ``settings()`` gives project settings that point at it."""

    def __init__(
        self,
        binary: Path,
        *,
        tls: bool = False,
        cert: tuple[Path, Path] | None = None,
        port: int | None = None,
    ) -> None:
        self.binary = binary
        self.tls = tls
        self.cert = cert
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._lines: list[str] = []

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def start(self, timeout: float = 20.0) -> VcsimServer:
        argv = [str(self.binary), "-l", f"{self.host}:{self.port}"]
        if self.tls:
            argv.append("-tls")
            if self.cert is not None:
                argv += ["-cert", str(self.cert[0]), "-key", str(self.cert[1])]
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._log, text=True)
        got = threading.Event()

        def read_url() -> None:
            assert self._proc is not None and self._proc.stdout is not None
            for line in self._proc.stdout:
                self._lines.append(line.strip())
                if line.strip():
                    got.set()

        threading.Thread(target=read_url, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not got.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                err = self._stderr()
                self.stop()
                pytest.fail(f"vcsim peer did not start on {self.host}:{self.port}: {err}", pytrace=False)
        self.url = self._lines[0]
        parsed = urlsplit(self.url)
        assert parsed.port == self.port, self.url
        return self

    def _stderr(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-4000:]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def settings(self, **overrides: object) -> VsphereSettings:
        base = VsphereSettings(
            server=self.host,
            username=USER,
            password=SecretRef("vcsim"),
            datacenter=DATACENTER,
            datastore=DATASTORE,
            network=NETWORK,
            port=self.port,
            cluster=CLUSTER,
            vm_mode=VmMode.CREATE,
            vm=SMALL_VM,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def __enter__(self) -> VcsimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session", name="vcsim_binary")
def vcsim_binary_fixture() -> Path:
    return build_vcsim()


@pytest.fixture(name="vcsim")
def vcsim_fixture(vcsim_binary: Path) -> Iterator[VcsimServer]:
    """A fresh plain-HTTP simulator per test (it starts in about 0.1 s, so tests never share state)."""
    with VcsimServer(vcsim_binary) as server:
        yield server


@pytest.fixture(name="vcsim_tls")
def vcsim_tls_fixture(vcsim_binary: Path, tmp_path: Path) -> Iterator[VcsimServer]:
    """A fresh HTTPS simulator with its own self-signed certificate."""
    with VcsimServer(vcsim_binary, tls=True, cert=make_certificate(tmp_path, "first")) as server:
        yield server


def run_job(job: Job, cancel: CancelToken | None = None) -> tuple[dict[str, Any], Progress]:
    """Runs a job the way the engine does (its own task row, a fresh cancel token); returns facts and progress."""
    progress = Progress()
    progress.add_task(job.id, job.name, "vsphere", job.node)
    progress.set_status(job.id, TaskStatus.RUNNING)
    facts = job.run(progress.root().child(0.0, 1.0, task=job.id), cancel or CancelToken())
    progress.set_status(job.id, TaskStatus.DONE)
    return dict(facts or {}), progress
