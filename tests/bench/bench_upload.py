"""Direct content upload (``UploadContentJob``'s streamed multipart POST) against ``curl -F`` to the same lab node.

The ratio is ours divided by curl's throughput (higher is better). Both post the same random file as
``uploadFile`` to the lab node's ``upload-content`` endpoint over TLS with a session token. Our upload runs in a
child process of its own, so its peak memory is its own (``memory`` compares it at two sizes). Usage::

    python -m tests.bench.bench_upload [SIZE_MIB]        # default 256 MiB
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.bench.common import make_file, peak_rss_mib
from wizard.appliance.localui import P_LOGIN, P_UPLOAD
from wizard.lab import Lab
from wizard.lab.lab import LabNode

SIZE = 256 * 1024 * 1024
RUNS = 5


def _child(port: str, fingerprint: str, local: str, config: str) -> None:
    """Runs the direct upload of one UploadContentJob in this process; prints throughput and peak RSS."""
    from wizard.appliance.bundles import UploadContentJob
    from wizard.appliance.localui import Connector, Endpoint
    from wizard.core.cancel import CancelToken
    from wizard.core.progress import Progress
    from wizard.core.trust import TrustStore

    endpoint = Endpoint("bench", "127.0.0.1", "kairos", "kairos", port=int(port), fingerprint=fingerprint)
    connector = Connector(TrustStore(Path(config)), None, timeout=600)
    job = UploadContentJob(endpoint, Path(local), connector)
    progress = Progress()
    progress.add_task("bench", "bench", "bench")
    with connector.open(endpoint) as client:
        start = time.perf_counter()
        job._upload(client, progress.root().child(0, 1, task="bench"), CancelToken(), digest="")
        elapsed = time.perf_counter() - start
    size = Path(local).stat().st_size
    print(json.dumps({"mbps": size / elapsed / 1e6, "rss_mib": peak_rss_mib()}))


def _ours(port: int, fingerprint: str, local: Path, config: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_upload", "--child", str(port), fingerprint, str(local), str(config)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _token(port: int, node: LabNode) -> str:
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=node.client_ssl_context(), timeout=30) as http:
        r = http.post(P_LOGIN, json={"username": "kairos", "password": "kairos"})
        r.raise_for_status()
        return str(r.json()["Token"]["Authorization"])


def _curl(port: int, local: Path, header: Path, cafile: Path) -> float:
    url = f"https://127.0.0.1:{port}{P_UPLOAD}"
    out = subprocess.run(
        ["curl", "-s", "-f", "--cacert", str(cafile), "-o", "/dev/null", "-w", "%{speed_upload}",
         "-H", f"@{header}", "-F", f"uploadFile=@{local}", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout) / 1e6


def run(size: int = SIZE) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big = make_file(folder / "content.tar.zst", size)
        config = folder / "config"
        with Lab(1, folder / "lab", tick_interval=None, socket_timeout=600) as lab:
            node = lab.nodes[0]
            port = node.state.port
            assert port is not None
            header = folder / "auth-header"  # the token stays off curl's command line, as in the wizard
            header.write_text(f"Authorization: {_token(port, node)}\n")
            header.chmod(0o600)
            ours, ref, rss = [], [], []
            for _ in range(RUNS):  # interleaved so both see the same page-cache and disk state
                result = _ours(port, node.fingerprint, big, config)
                ours.append(result["mbps"])
                rss.append(result["rss_mib"])
                ref.append(_curl(port, big, header, node.cert_path))
    a, b = statistics.median(ours), statistics.median(ref)
    print(
        f"upload peak RSS of the uploading process: {max(rss):.0f} MiB for {size / 2**20:.0f} MiB; "
        f"runs ours {', '.join(f'{x:.0f}' for x in ours)}, curl {', '.join(f'{x:.0f}' for x in ref)} MB/s",
        file=sys.stderr,
    )
    return f"bench upload: ratio {a / b:.2f} (ours {a:.0f} MB/s, curl {b:.0f} MB/s)"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(*sys.argv[2:6])
    else:
        mib = int(sys.argv[1]) if len(sys.argv) > 1 else SIZE // (1024 * 1024)
        print(run(mib * 1024 * 1024))
