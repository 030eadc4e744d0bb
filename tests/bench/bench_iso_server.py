"""The ISO server against nginx (Debian) serving the same file to 4 concurrent curl range readers.

Each run starts 4 ``curl -r`` readers at once, each reading one quarter of the file to /dev/null, and times the
whole transfer; ours and nginx alternate so both see the same page-cache state. Throughput is the file size over the
wall time; the ratio is ours over nginx (higher is better, goal >= 0.8). nginx runs from a temporary config on a
free loopback port with ``sendfile on``, as a stock install serves static files.

    python -m tests.bench.bench_iso_server [SIZE_MIB]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.bench.common import make_file
from wizard.providers.isoserver import IsoServer

SIZE = 1024 * 1024 * 1024
RUNS = 3
READERS = 4
NGINX = "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_nginx(folder: Path, root: Path, port: int) -> subprocess.Popen[bytes]:
    if not Path(NGINX).exists():
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""
user root;
worker_processes auto;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    types {{ application/octet-stream iso; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""
    )
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(folder), "-g", "daemon off;"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"nginx exited: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start listening")


def _readers(url: str, size: int) -> float:
    """Wall time for READERS curl processes reading one contiguous range each, concurrently; checks the bytes."""
    step = -(-size // READERS)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                "curl",
                "-s",
                "-o",
                os.devnull,
                "-w",
                "%{http_code} %{size_download}",
                "-r",
                f"{i * step}-{min(size, (i + 1) * step) - 1}",
                url,
            ],
            stdout=subprocess.PIPE,
        )
        for i in range(READERS)
    ]
    outs = [p.communicate()[0].decode().split() for p in procs]
    elapsed = time.perf_counter() - start
    if any(o[0] != "206" for o in outs) or sum(int(o[1]) for o in outs) != size:
        raise RuntimeError(f"readers got {outs} from {url.split('/')[2]}")
    return elapsed


def run(size: int = SIZE) -> str:
    folder = Path(tempfile.mkdtemp(prefix="bench-iso-"))
    nginx: subprocess.Popen[bytes] | None = None
    try:
        www = folder / "www"
        www.mkdir()
        iso = www / "bench.iso"
        make_file(iso, size)
        port = _free_port()
        nginx = _start_nginx(folder, www, port)
        with IsoServer() as server:
            urls = {"ours": server.publish(iso), "nginx": f"http://127.0.0.1:{port}/bench.iso"}
            _readers(urls["ours"], size)  # warm-up: page cache and both servers' first connections
            _readers(urls["nginx"], size)
            times: dict[str, list[float]] = {"ours": [], "nginx": []}
            for _ in range(RUNS):
                for name, url in urls.items():
                    times[name].append(_readers(url, size))
        ours = size / statistics.median(times["ours"]) / 1e6
        ref = size / statistics.median(times["nginx"]) / 1e6
        return f"bench iso-server: ratio {ours / ref:.2f} (ours {ours:.0f} MB/s, nginx {ref:.0f} MB/s)"
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGTERM)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("size_mib", nargs="?", type=int, default=SIZE // (1024 * 1024), help="file size in MiB")
    args = parser.parse_args()
    print(run(args.size_mib * 1024 * 1024), flush=True)


if __name__ == "__main__":
    main()
