"""Reliability: SFTP staging to a real OpenSSH sshd, its connection cut at seeded random byte positions.

Every cut must end in a completed upload whose sha256 on the node (``sha256sum`` over SSH) equals the local one.
The seed is printed; set ``WIZARD_CUT_SEED`` to replay a run, ``WIZARD_CUT_POINTS`` for more points.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.reliability.transfer_peers import CuttingProxy, SftpOpenSSHServer
from tests.support.projects import random_file
from wizard.appliance.sftpupload import ResumableUpload, SSHTarget, Tuning
from wizard.appliance.ssh import SSHCredentials
from wizard.appliance.staging import remote_sha256
from wizard.core.cancel import CancelToken
from wizard.core.progress import Progress
from wizard.core.trust import TrustStore

pytestmark = pytest.mark.ssh

MiB = 1024 * 1024
SIZE = 6 * MiB + 321
DEFAULT_SEED = 20261123
TUNING = Tuning(rollback=1 * MiB, openssh_from=0, backoff_initial=0.01, backoff_max=0.05, io_timeout=10)


@pytest.fixture(scope="module")
def sshd() -> Iterator[SftpOpenSSHServer]:
    with SftpOpenSSHServer() as server:
        yield server


@pytest.fixture
def remote_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="wizard-cuts-", dir="/tmp"))
    folder.chmod(0o777)  # written by the sshd's test account
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("client", ["openssh", "paramiko"])
def test_transfer_cut_at_random_points_always_resumes(
    sshd: SftpOpenSSHServer, remote_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], client: str
) -> None:
    seed = int(os.environ.get("WIZARD_CUT_SEED") or DEFAULT_SEED)
    count = max(20, int(os.environ.get("WIZARD_CUT_POINTS") or 20))
    rng = random.Random(seed)
    local = random_file(tmp_path / "bundle.bin", SIZE)
    expected = hashlib.sha256(local.read_bytes()).hexdigest()
    # Anywhere from the SSH banner to near the end of the data (the client sends a little more than the file).
    points = [rng.randrange(1, SIZE - 256 * 1024) for _ in range(count)]
    resumed = corrupt = 0
    failures: list[str] = []
    with CuttingProxy((sshd.host, sshd.port)) as proxy:
        target = SSHTarget(
            "127.0.0.1",
            proxy.port,
            SSHCredentials(sshd.user, key_path=sshd.client_key),
            TrustStore(tmp_path / "config"),
            expected_fingerprint=sshd.fingerprint,
            connect_timeout=5,
        )
        tuning = replace(TUNING, client=client)
        for i, point in enumerate(points):
            # The connection carrying the bytes: paramiko's session, or the ssh opened after it.
            proxy.set_cuts([point] if client == "paramiko" else [10**12, point])
            cuts_before = proxy.cut_count
            remote = str(remote_dir / f"cut-{i}.bin")
            progress = Progress()
            progress.add_task("t", "cut", "reliability")
            result = ResumableUpload(target, local, remote, tuning=tuning).run(
                progress.root().child(0.0, 1.0, task="t"), CancelToken()
            )
            with target.client() as ssh:
                got = remote_sha256(ssh, remote, timeout=60)
            # A cut during the SSH handshake is retried by the connect itself, so it need not count as a drop.
            if proxy.cut_count != cuts_before + 1 or proxy.connections < 2 or result.client != client:
                failures.append(f"point {point}: the connection was not cut")
            elif got != expected:
                corrupt += 1
                failures.append(f"point {point}: sha256 {got} after resuming from {result.resumed_from}")
            else:
                resumed += 1
            Path(remote).unlink(missing_ok=True)
    with capsys.disabled():
        print(f"\nreliability transfer-cuts ({client}): seed {seed}, points {points}")
        print(f"reliability transfer-cuts ({client}): {resumed}/{count} resumed, {corrupt} corrupt")
    assert not failures, "\n".join(failures)
    assert resumed == count and corrupt == 0
