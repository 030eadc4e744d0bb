"""ISO upload to the simulated vCenter's datastore (``UploadIsoJob``) against ``curl -T`` to the same ``/folder`` URL.

Two rows: ``iso-upload`` over plain HTTP (the simulator's default) and ``iso-upload-tls`` over HTTPS, as every real
vCenter serves it, with our certificate pinned and curl verifying the same certificate (``--cacert``). The ratio is
ours divided by curl's throughput (higher is better); runs are interleaved so both see the same page cache and load.

Our side is the whole job, timed from ``job.run`` to its return: login, datacenter and datastore lookups, the sidecar
read and "incomplete" claim, the body, the ``HEAD`` size check, the "complete" record and logout. curl only sends the
body. The job runs in a child process of its own (its peak memory is its own: ``memory`` compares it at two sizes)
that has logged in to the simulator once before the timed run, as the wizard has when the upload starts (its vSphere
checks ran first in the same process): what is timed is the job, not pyVmomi loading its type tables. Usage::

    python -m tests.bench.bench_iso_upload [SIZE_MIB] [--tls]        # default 1024 MiB, plain HTTP
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import make_file, peak_rss_mib
from tests.integration.vcsim_peer import PASSWORD, VcsimServer, build_vcsim, make_certificate

SIZE = 1024 * 1024 * 1024
RUNS = 7


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(16 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _child(args: list[str]) -> None:
    """Runs one UploadIsoJob in this process and prints its throughput and this process's peak RSS."""
    port, path, sha256, remote, config, fingerprint = args
    from wizard.core.cancel import CancelToken
    from wizard.core.progress import Progress
    from wizard.core.trust import TrustStore
    from wizard.providers.vsphere.jobs import UploadIsoJob
    from wizard.providers.vsphere.session import connect

    scheme = "https" if fingerprint else "http"
    server = VcsimServer(Path("unused"), port=int(port))
    settings = server.settings(tls_fingerprint=fingerprint)
    trust = TrustStore(Path(config))
    with connect(settings, PASSWORD, trust, None, scheme=scheme) as session:
        session.datacenter()  # what the vSphere checks did before the upload step
    job = UploadIsoJob(
        settings, PASSWORD, trust, None, local_path=Path(path), sha256=sha256, remote_name=remote, scheme=scheme
    )
    progress = Progress()
    progress.add_task(job.id, job.name, "bench")
    start = time.perf_counter()
    facts = job.run(progress.root().child(0, 1, task=job.id), CancelToken())
    elapsed = time.perf_counter() - start
    assert facts is not None and facts["uploaded"] is True
    size = Path(path).stat().st_size
    print(json.dumps({"mbps": size / elapsed / 1e6, "rss_mib": peak_rss_mib()}))


def _ours(
    server: VcsimServer, path: Path, sha256: str, remote: str, config: Path, *, fingerprint: str = ""
) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_iso_upload", "--child", str(server.port), str(path), sha256, remote,
         str(config), fingerprint],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _curl(server: VcsimServer, path: Path, remote: str, cacert: Path | None = None) -> float:
    url = f"{server.scheme}://{server.host}:{server.port}/folder/palette-iso/{remote}?dcPath=DC0&dsName=LocalDS_0"
    verify = ["--cacert", str(cacert)] if cacert is not None else []
    out = subprocess.run(
        ["curl", "-s", "-f", *verify, "-o", "/dev/null", "-w", "%{speed_upload}", "-T", str(path), url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout) / 1e6


def measure(size: int = SIZE, *, tls: bool = False) -> str:
    name = "iso-upload-tls" if tls else "iso-upload"
    binary = build_vcsim()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cert = make_certificate(folder, "vcsim") if tls else None
        fingerprint = ""
        if cert is not None:
            from wizard.core.trust import tls_fingerprint

            fingerprint = tls_fingerprint(ssl.PEM_cert_to_DER_cert(cert[0].read_text()))
        with VcsimServer(binary, tls=tls, cert=cert) as server:
            big = make_file(folder / "bench.iso", size)
            big_sha = sha256_of(big)
            config = folder / "config"
            datastore = _datastore_dir(server, config, fingerprint)
            ours: list[float] = []
            ref: list[float] = []
            rss: list[float] = []

            def one_of_ours(i: int) -> None:
                result = _ours(server, big, big_sha, f"ours-{i}.iso", config, fingerprint=fingerprint)
                ours.append(result["mbps"])
                rss.append(result["rss_mib"])
                _remove(datastore, f"ours-{i}.iso")

            def one_of_curl(i: int) -> None:
                ref.append(_curl(server, big, f"curl-{i}.iso", cert[0] if cert else None))
                _remove(datastore, f"curl-{i}.iso")

            # Interleaved, each pair in alternating order, so both see the same page cache and load; the last run's
            # gigabyte is written back to disk before the next starts, so no run pays for the one before it.
            for i in range(RUNS):
                for one in (one_of_ours, one_of_curl) if i % 2 == 0 else (one_of_curl, one_of_ours):
                    os.sync()
                    one(i)
    a, b = statistics.median(ours), statistics.median(ref)
    print(
        f"{name} peak RSS of the uploading process: {max(rss):.0f} MiB for {size / 2**20:.0f} MiB; "
        f"runs ours {', '.join(f'{x:.0f}' for x in ours)}, curl {', '.join(f'{x:.0f}' for x in ref)} MB/s",
        file=sys.stderr,
    )
    return f"bench {name}: ratio {a / b:.2f} (ours {a:.0f} MB/s, curl {b:.0f} MB/s)"


def run() -> str:
    return measure()


def run_tls() -> str:
    return measure(tls=True)


def _datastore_dir(server: VcsimServer, config: Path, fingerprint: str = "") -> Path:
    from wizard.core.trust import TrustStore
    from wizard.providers.vsphere.session import connect

    settings = server.settings(tls_fingerprint=fingerprint)
    with connect(settings, PASSWORD, TrustStore(config), None, scheme=server.scheme) as session:
        return Path(session.datastore().info.url)


def _remove(datastore: Path, name: str) -> None:
    for p in (datastore / "palette-iso").glob(name + "*"):
        p.unlink()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:8])
    else:
        args = [a for a in sys.argv[1:] if a != "--tls"]
        mib = int(args[0]) if args else SIZE // (1024 * 1024)
        print(measure(mib * 1024 * 1024, tls="--tls" in sys.argv[1:]))
