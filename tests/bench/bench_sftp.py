"""SFTP staging (``ResumableUpload``) against OpenSSH's ``sftp`` to the same real sshd, default ciphers on both.

The ratio is ours divided by ``sftp``'s throughput (higher is better; the goal is ≥ 0.9). Both upload the same
random file to the same sshd; each side runs with its own default settings (ours prefers AES-GCM, ``sftp``
keeps OpenSSH's chacha20-poly1305). Our upload runs in a child process of its own, so its peak RSS is its own;
it is measured for the full size and for 100 MiB, and both are printed (to stderr) to show memory does not grow
with the file. Usage::

    python -m tests.bench.bench_sftp [SIZE_MIB]        # default 512 MiB; up to 4096 for the RSS check
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.reliability.transfer_peers import SftpOpenSSHServer

GOAL_MIN = 0.9  # ours / reference throughput, at least

SIZE = 512 * 1024 * 1024
SMALL = 100 * 1024 * 1024
RUNS = 3


def _make(path: Path, size: int) -> None:
    block = 16 * 1024 * 1024
    with path.open("wb") as fh:
        left = size
        while left:
            data = os.urandom(min(block, left))
            fh.write(data)
            left -= len(data)


def _child(args: list[str]) -> None:
    """Runs one ResumableUpload in this process; prints its throughput, cipher and this process's peak RSS."""
    port, fingerprint, key, user, local, remote, config = args
    from wizard.appliance.sftpupload import ResumableUpload, SSHTarget
    from wizard.appliance.ssh import SSHCredentials
    from wizard.core.cancel import CancelToken
    from wizard.core.progress import Progress
    from wizard.core.trust import TrustStore

    target = SSHTarget(
        "127.0.0.1",
        int(port),
        SSHCredentials(user, key_path=Path(key)),
        TrustStore(Path(config)),
        expected_fingerprint=fingerprint,
    )
    progress = Progress()
    progress.add_task("bench", "bench", "bench")
    upload = ResumableUpload(target, Path(local), remote)
    start = time.perf_counter()
    result = upload.run(progress.root().child(0, 1, task="bench"), CancelToken())
    elapsed = time.perf_counter() - start
    size = Path(local).stat().st_size
    assert result.size == size and not result.already_there
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mbps": size / elapsed / 1e6, "rss_mib": rss_kib / 1024, "cipher": result.cipher}))


def _ours(server: SftpOpenSSHServer, local: Path, remote: str, config: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_sftp", "--child", str(server.port), server.fingerprint,
         str(server.client_key), server.user, str(local), remote, str(config)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _sftp(server: SftpOpenSSHServer, local: Path, remote: str, folder: Path) -> float:
    batch = folder / "batch"
    batch.write_text(f"put {local} {remote}\n")
    cmd = [
        "sftp", "-q", "-b", str(batch), "-i", str(server.client_key), "-P", str(server.port),
        "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={folder / 'known_hosts'}",
        "-o", "BatchMode=yes", f"{server.user}@{server.host}",
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return local.stat().st_size / (time.perf_counter() - start) / 1e6


def run(size: int = SIZE) -> str:
    with tempfile.TemporaryDirectory() as tmp, SftpOpenSSHServer() as server:
        folder = Path(tmp)
        folder.chmod(0o755)
        big = folder / "bench.bin"
        small = folder / "small.bin"
        _make(big, size)
        _make(small, min(SMALL, size))
        config = folder / "config"
        target = Path(tempfile.mkdtemp(prefix="bench-sftp-", dir="/tmp"))
        target.chmod(0o777)  # written by the sshd's test account
        try:
            ours, ref, rss = [], [], []
            cipher = ""
            for i in range(RUNS):  # interleaved so both see the same page-cache and disk state
                result = _ours(server, big, str(target / f"ours-{i}.bin"), config)
                ours.append(float(str(result["mbps"])))
                rss.append(float(str(result["rss_mib"])))
                cipher = str(result["cipher"])
                (target / f"ours-{i}.bin").unlink()
                ref.append(_sftp(server, big, str(target / f"sftp-{i}.bin"), folder))
                (target / f"sftp-{i}.bin").unlink()
            small_rss = float(str(_ours(server, small, str(target / "small.bin"), config)["rss_mib"]))
        finally:
            subprocess.run(["rm", "-rf", str(target)], check=False)
    a, b = statistics.median(ours), statistics.median(ref)
    print(
        f"sftp peak RSS of the uploading process: {max(rss):.0f} MiB for {size / 2**20:.0f} MiB, "
        f"{small_rss:.0f} MiB for {min(SMALL, size) / 2**20:.0f} MiB; our cipher {cipher}; "
        f"runs ours {', '.join(f'{x:.0f}' for x in ours)}, sftp {', '.join(f'{x:.0f}' for x in ref)} MB/s",
        file=sys.stderr,
    )
    return f"bench sftp: ratio {a / b:.2f} (ours {a:.0f} MB/s, sftp {b:.0f} MB/s)"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:9])
    else:
        mib = int(sys.argv[1]) if len(sys.argv) > 1 else SIZE // (1024 * 1024)
        print(run(mib * 1024 * 1024))
