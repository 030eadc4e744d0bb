"""SFTP staging (``ResumableUpload``) against the best OpenSSH client for the job, to the same real sshd.

The reference is the faster of OpenSSH's ``sftp`` and ``scp`` run with AES-GCM (``-c aes128-gcm@openssh.com``),
which an operator who cares about speed would pick; the ratio is ours divided by its throughput (higher is better).
All upload the same random file to the same sshd. Ours is the whole upload as the wizard runs it by default
(``client="auto"``): the paramiko session that checks the pinned host key, creates the folder and finds the resume
point, the bytes streamed by the jump host's ``ssh`` into ``dd`` on the node, and the final rename. Our upload runs
in a child process of its own, so its peak memory is its own (``memory`` compares it at two sizes). Usage::

    python -m tests.bench.bench_sftp [SIZE_MIB]        # default 512 MiB
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import make_file, peak_rss_mib
from tests.reliability.transfer_peers import SftpOpenSSHServer

SIZE = 512 * 1024 * 1024
RUNS = 3
GCM = "aes128-gcm@openssh.com"


def _child(args: list[str]) -> None:
    """Runs one ResumableUpload in this process; prints its throughput, cipher and this process's peak RSS."""
    port, fingerprint, key, user, local, remote, config, client = args
    from wizard.appliance.sftpupload import ResumableUpload, SSHTarget, Tuning
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
    upload = ResumableUpload(target, Path(local), remote, tuning=Tuning(client=client))
    start = time.perf_counter()
    result = upload.run(progress.root().child(0, 1, task="bench"), CancelToken())
    elapsed = time.perf_counter() - start
    size = Path(local).stat().st_size
    assert result.size == size and not result.already_there
    print(
        json.dumps(
            {"mbps": size / elapsed / 1e6, "rss_mib": peak_rss_mib(), "cipher": result.cipher, "client": result.client}
        )
    )


def _ours(server: SftpOpenSSHServer, local: Path, remote: str, config: Path, client: str = "auto") -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_sftp", "--child", str(server.port), server.fingerprint,
         str(server.client_key), server.user, str(local), remote, str(config), client],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _openssh(tool: str, server: SftpOpenSSHServer, local: Path, remote: str, folder: Path) -> float:
    """One upload with OpenSSH's ``sftp`` or ``scp`` and AES-GCM, in MB/s."""
    common = [
        "-c", GCM, "-i", str(server.client_key), "-P", str(server.port),
        "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={folder / 'known_hosts'}", "-o", "BatchMode=yes",
    ]  # fmt: skip
    if tool == "sftp":
        batch = folder / "batch"
        batch.write_text(f"put {local} {remote}\n")
        cmd = ["sftp", "-q", "-b", str(batch), *common, f"{server.user}@{server.host}"]
    else:
        cmd = ["scp", "-q", *common, str(local), f"{server.user}@{server.host}:{remote}"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return local.stat().st_size / (time.perf_counter() - start) / 1e6


def run(size: int = SIZE) -> str:
    with tempfile.TemporaryDirectory() as tmp, SftpOpenSSHServer() as server:
        folder = Path(tmp)
        folder.chmod(0o755)
        big = make_file(folder / "bench.bin", size)
        config = folder / "config"
        target = Path(tempfile.mkdtemp(prefix="bench-sftp-", dir="/tmp"))
        target.chmod(0o777)  # written by the sshd's test account
        try:
            ours, rss = [], []
            ref: dict[str, list[float]] = {"sftp": [], "scp": []}
            cipher = client = ""
            for i in range(RUNS):  # interleaved so all see the same page-cache and disk state
                result = _ours(server, big, str(target / f"ours-{i}.bin"), config)
                ours.append(float(str(result["mbps"])))
                rss.append(float(str(result["rss_mib"])))
                cipher, client = str(result["cipher"]), str(result["client"])
                (target / f"ours-{i}.bin").unlink()
                for tool, runs in ref.items():
                    runs.append(_openssh(tool, server, big, str(target / f"{tool}-{i}.bin"), folder))
                    (target / f"{tool}-{i}.bin").unlink()
        finally:
            subprocess.run(["rm", "-rf", str(target)], check=False)
    a = statistics.median(ours)
    best, b = max(((tool, statistics.median(runs)) for tool, runs in ref.items()), key=lambda t: t[1])
    print(
        f"sftp peak RSS of the uploading process: {max(rss):.0f} MiB for {size / 2**20:.0f} MiB; "
        f"our client {client}, cipher {cipher}; "
        f"runs ours {', '.join(f'{x:.0f}' for x in ours)}; "
        + "; ".join(f"{tool} {', '.join(f'{x:.0f}' for x in runs)}" for tool, runs in ref.items())
        + " MB/s",
        file=sys.stderr,
    )
    return f"bench sftp: ratio {a / b:.2f} (ours {a:.0f} MB/s, OpenSSH {best} with AES-GCM {b:.0f} MB/s)"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:10])
    else:
        mib = int(sys.argv[1]) if len(sys.argv) > 1 else SIZE // (1024 * 1024)
        print(run(mib * 1024 * 1024))
