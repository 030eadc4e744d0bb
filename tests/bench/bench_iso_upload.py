"""ISO upload to the simulated vCenter's datastore (``UploadIsoJob``) against ``curl -T`` to the same ``/folder`` URL.

The ratio is ours divided by curl's throughput (higher is better). Our upload runs in a child process of its own, so
its peak memory is its own (``memory`` compares it at two sizes). Usage::

    python -m tests.bench.bench_iso_upload [SIZE_MIB]        # default 1024 MiB
"""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import make_file, peak_rss_mib
from tests.integration.vcsim_peer import PASSWORD, VcsimServer, build_vcsim

SIZE = 1024 * 1024 * 1024
RUNS = 3


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(16 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _child(port: int, path: str, sha256: str, remote: str, config: str) -> None:
    """Runs one UploadIsoJob in this process and prints its throughput and this process's peak RSS."""
    from wizard.core.cancel import CancelToken
    from wizard.core.progress import Progress
    from wizard.core.trust import TrustStore
    from wizard.providers.vsphere.jobs import UploadIsoJob

    server = VcsimServer(Path("unused"), port=port)
    job = UploadIsoJob(
        server.settings(),
        PASSWORD,
        TrustStore(Path(config)),
        None,
        local_path=Path(path),
        sha256=sha256,
        remote_name=remote,
        scheme="http",
    )
    progress = Progress()
    progress.add_task(job.id, job.name, "bench")
    start = time.perf_counter()
    facts = job.run(progress.root().child(0, 1, task=job.id), CancelToken())
    elapsed = time.perf_counter() - start
    assert facts is not None and facts["uploaded"] is True
    size = Path(path).stat().st_size
    print(json.dumps({"mbps": size / elapsed / 1e6, "rss_mib": peak_rss_mib()}))


def _ours(server: VcsimServer, path: Path, sha256: str, remote: str, config: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_iso_upload", "--child", str(server.port), str(path), sha256, remote,
         str(config)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _curl(server: VcsimServer, path: Path, remote: str) -> float:
    url = f"http://{server.host}:{server.port}/folder/palette-iso/{remote}?dcPath=DC0&dsName=LocalDS_0"
    out = subprocess.run(
        ["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{speed_upload}", "-T", str(path), url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout) / 1e6


def run(size: int = SIZE) -> str:
    binary = build_vcsim()
    with tempfile.TemporaryDirectory() as tmp, VcsimServer(binary) as server:
        folder = Path(tmp)
        big = make_file(folder / "bench.iso", size)
        big_sha = sha256_of(big)
        config = folder / "config"
        datastore = _datastore_dir(server, config)
        ours, ref, rss = [], [], []
        for i in range(RUNS):  # interleaved so both see the same page-cache and disk state
            result = _ours(server, big, big_sha, f"ours-{i}.iso", config)
            ours.append(result["mbps"])
            rss.append(result["rss_mib"])
            _remove(datastore, f"ours-{i}.iso")
            ref.append(_curl(server, big, f"curl-{i}.iso"))
            _remove(datastore, f"curl-{i}.iso")
    a, b = statistics.median(ours), statistics.median(ref)
    print(
        f"iso-upload peak RSS of the uploading process: {max(rss):.0f} MiB for {size / 2**20:.0f} MiB; "
        f"runs ours {', '.join(f'{x:.0f}' for x in ours)}, curl {', '.join(f'{x:.0f}' for x in ref)} MB/s",
        file=sys.stderr,
    )
    return f"bench iso-upload: ratio {a / b:.2f} (ours {a:.0f} MB/s, curl {b:.0f} MB/s)"


def _datastore_dir(server: VcsimServer, config: Path) -> Path:
    from wizard.core.trust import TrustStore
    from wizard.providers.vsphere.session import connect

    with connect(server.settings(), PASSWORD, TrustStore(config), None, scheme="http") as session:
        return Path(session.datastore().info.url)


def _remove(datastore: Path, name: str) -> None:
    for p in (datastore / "palette-iso").glob(name + "*"):
        p.unlink()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
    else:
        mib = int(sys.argv[1]) if len(sys.argv) > 1 else SIZE // (1024 * 1024)
        print(run(mib * 1024 * 1024))
