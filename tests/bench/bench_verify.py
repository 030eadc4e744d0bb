"""File verification (streamed sha256 with progress) against coreutils ``sha256sum`` on the same 1 GiB file."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.bench.common import make_file
from wizard.core.cancel import CancelToken
from wizard.core.integrity import hash_file
from wizard.core.progress import Progress

SIZE = 1024 * 1024 * 1024
RUNS = 3


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "bench.iso"
        make_file(f, SIZE)
        ours, ref = [], []
        for _ in range(RUNS):  # interleaved so both see the same page-cache state
            progress = Progress()
            progress.add_task("t", "bench", "bench")
            start = time.perf_counter()
            digest = hash_file(f, progress.root().child(0, 1, task="t"), CancelToken())
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            out = subprocess.run(["sha256sum", str(f)], capture_output=True, text=True, check=True)
            ref.append(time.perf_counter() - start)
            assert out.stdout.split()[0] == digest.sha256
    a, b = statistics.median(ours), statistics.median(ref)
    return f"bench verify-sha256: ratio {a / b:.2f} (ours {a:.2f} s, reference {b:.2f} s)"
