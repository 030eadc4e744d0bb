"""Peak memory of the big transfers does not grow with the file: each at 100 MiB and at 4 GiB.

The content upload to a lab node's Local UI, SFTP staging to a real sshd (by default, and with the built-in SSH
client) and the ISO upload to the simulated vCenter's datastore each run in a child process of their own
(``VmHWM``, see :func:`tests.bench.common.peak_rss_mib`) with a 100 MiB and a 4 GiB file. Each transfer prints a
value line with its growth (goal: at most 50 MiB more for the 4 GiB file); the ratio is the largest peak at 4 GiB
over its peak at 100 MiB. The files are sparse: what is measured is the transfer's buffering, not the bytes. With
OpenSSH the bytes pass through ``ssh`` (a process of a few MiB), not ours. Usage::

    python -m tests.bench.bench_memory [BIG_MIB]        # default 4096
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.bench import bench_iso_upload, bench_sftp, bench_upload
from tests.bench.common import MIB, make_file
from tests.integration.vcsim_peer import VcsimServer, build_vcsim
from tests.reliability.transfer_peers import SftpOpenSSHServer
from wizard.lab import Lab

SMALL, BIG = 100 * MIB, 4096 * MIB
GROWTH_GOAL_MIB = 50.0

Transfer = Callable[[Path, str], float]  # (local file, a fresh remote name) → the child's peak RSS in MiB


def _content_upload(folder: Path, measure: Callable[[str, Transfer], None]) -> None:
    with Lab(1, folder / "lab", tick_interval=None, socket_timeout=600) as lab:
        node = lab.nodes[0]
        port = node.state.port
        assert port is not None
        config = folder / "config-upload"
        measure("upload", lambda local, _: bench_upload._ours(port, node.fingerprint, local, config)["rss_mib"])


def _sftp(folder: Path, measure: Callable[[str, Transfer], None]) -> None:
    target = Path(tempfile.mkdtemp(prefix="bench-memory-sftp-", dir="/tmp"))
    target.chmod(0o777)  # written by the sshd's test account
    config = folder / "config-sftp"
    try:
        with SftpOpenSSHServer() as server:
            # The default (OpenSSH's ssh carries the bytes) and the built-in fallback, which reads them itself.
            for name, client in (("sftp", "auto"), ("sftp-paramiko", "paramiko")):

                def one(local: Path, remote: str, client: str = client) -> float:
                    try:
                        result = bench_sftp._ours(server, local, str(target / remote), config, client)
                        return float(str(result["rss_mib"]))
                    finally:
                        (target / remote).unlink(missing_ok=True)

                measure(name, one)
    finally:
        subprocess.run(["rm", "-rf", str(target)], check=False)


def _iso_upload(folder: Path, measure: Callable[[str, Transfer], None]) -> None:
    config = folder / "config-iso"
    with VcsimServer(build_vcsim()) as server:
        datastore = bench_iso_upload._datastore_dir(server, config)

        def one(local: Path, remote: str) -> float:
            try:
                sha = bench_iso_upload.sha256_of(local)
                return bench_iso_upload._ours(server, local, sha, remote, config)["rss_mib"]
            finally:
                bench_iso_upload._remove(datastore, remote)

        measure("iso-upload", one)


def run(big: int = BIG) -> str:
    peaks: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        small_file = make_file(folder / "small.bin", SMALL, sparse=True)
        big_file = make_file(folder / "big.bin", big, sparse=True)

        def measure(name: str, transfer: Transfer) -> None:
            at_small = transfer(small_file, f"{name}-small.bin")
            at_big = transfer(big_file, f"{name}-big.bin")
            peaks[name] = (at_small, at_big)
            print(
                f"bench memory.{name}: value {at_big - at_small:.1f} MiB (goal ≤ {GROWTH_GOAL_MIB:.0f}; "
                f"peak {at_small:.1f} MiB at {SMALL // MIB} MiB, {at_big:.1f} MiB at {big // MIB} MiB)",
                flush=True,
            )

        for transfer in (_content_upload, _sftp, _iso_upload):
            transfer(folder, measure)
    name, (small_peak, big_peak) = max(peaks.items(), key=lambda kv: kv[1][1] / kv[1][0])
    return (
        f"bench memory: ratio {big_peak / small_peak:.2f} "
        f"(ours {name} at {big // MIB} MiB {big_peak:.1f} MiB, reference at {SMALL // MIB} MiB {small_peak:.1f} MiB)"
    )


if __name__ == "__main__":
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else BIG // MIB
    print(run(mib * MIB), flush=True)
