"""How long a 3-node rehearsal lab takes to start (every node's SSH and Local UI answering) and to stop.

The issue's budget is 2 s to start; the ratio is ours over that budget (lower is better). Median of 5 runs, each in a
fresh folder (node keys and certificates are made on first start, as for a first rehearsal).
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from pathlib import Path

from wizard.lab import Lab, ManualClock

BUDGET = 2.0
RUNS = 5


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _once(folder: Path) -> tuple[float, float]:
    start = time.perf_counter()
    lab = Lab(3, folder, ManualClock(), tick_interval=None).start()
    ports = [n.server.port for n in lab.nodes] + [n.ssh.port for n in lab.nodes]
    while not all(_answers(p) for p in ports):
        time.sleep(0.005)
    started = time.perf_counter() - start
    t0 = time.perf_counter()
    lab.stop()
    stopped = time.perf_counter() - t0
    if any(_answers(p) for p in ports):
        raise RuntimeError("a lab port still answers after stop")
    return started, stopped


def run() -> str:
    starts: list[float] = []
    stops: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-lab-start-") as tmp:
        for i in range(RUNS):
            started, stopped = _once(Path(tmp) / str(i))
            starts.append(started)
            stops.append(stopped)
    ours = statistics.median(starts)
    return (
        f"bench lab-start: ratio {ours / BUDGET:.2f} (ours {ours:.2f} s to start 3 nodes, stop "
        f"{statistics.median(stops):.2f} s; reference budget {BUDGET:.2f} s)"
    )


if __name__ == "__main__":
    print(run())
