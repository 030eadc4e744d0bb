"""Run every benchmark (or the ones named), each in a fresh interpreter of its own, then a table of results and goals.

A benchmark is a function in a module under ``tests.bench`` that returns its ratio line::

    bench NAME: ratio X.XX (ours A, reference B)

and may print, on stdout, absolute measures that have goals of their own (the GUI's worst stall, the cold start,
peak memory)::

    bench NAME: value V UNIT (goal ≤ G)          (or ≥)

Each benchmark runs in its own process (``python -m tests.bench.run --child NAME``), so none inherits another's heap,
threads or imported modules: a benchmark that loaded pyVmomi and a lab must not make the next one's garbage
collections slower. The ratio goals and the reference each ratio is against live in :data:`BENCHMARKS`; a value line
carries its goal. Exit status: 0 when every chosen benchmark ran and every ratio and value met its goal, 1 when one
failed or missed, 2 for an unknown name.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Bench:
    target: str  # module under tests.bench, or "module:function" (default ``run``)
    reference: str  # what the ratio compares ours with
    goal: float | None = None  # the highest ratio allowed (times: lower is better)
    goal_min: float | None = None  # the lowest ratio allowed (throughput: higher is better)


# The table keeps this order.
BENCHMARKS: dict[str, Bench] = {
    "verify-sha256": Bench("bench_verify", "sha256sum, time"),
    "iso-upload": Bench("bench_iso_upload", "curl -T to the same datastore URL over HTTP, MB/s", goal_min=1.0),
    # Over HTTPS the body alone is on a par with curl (256 KiB writes: 1288 vs 1271 MB/s, medians of 8); the job's
    # ~15 ms of pinned-TLS login, lookups and sidecar (curl sends the body only) are ~1.5 % of a 1 GiB upload.
    "iso-upload-tls": Bench(
        "bench_iso_upload:run_tls", "curl -T --cacert to the same datastore URL over HTTPS, MB/s", goal_min=0.95
    ),
    "iso-server": Bench("bench_iso_server", "nginx, 4 concurrent curl range readers, MB/s", goal_min=0.8),
    "upload": Bench("bench_upload", "curl -F to the same Local UI, MB/s", goal_min=0.9),
    "sftp": Bench("bench_sftp", "best of OpenSSH sftp and scp with AES-GCM, same sshd, MB/s", goal_min=1.0),
    "memory": Bench("bench_memory", "the same transfers of 100 MiB, peak RSS"),
    "install-overhead": Bench(
        "bench_install_overhead", "the lab's own timeline of appliance work the steps waited for, time", goal=1.05
    ),
    "lab-start": Bench("bench_lab_start", "the 2 s budget, time", goal=1.0),
    "ui-stall": Bench("bench_ui:run_stall", "the idle event loop's p99, time"),
    "cold-start": Bench("bench_ui:run_cold", "a bare PySide6 window, time"),
}

_RATIO = re.compile(r"^bench (?P<name>\S+): ratio (?P<ratio>\d+(?:\.\d+)?) \((?P<detail>.*)\)$")
_VALUE = re.compile(
    r"^bench (?P<name>\S+): value (?P<value>-?\d+(?:\.\d+)?) (?P<unit>\S+) \(goal (?P<op>[≤≥]) "
    r"(?P<goal>-?\d+(?:\.\d+)?)\b[^)]*\)$"
)


@dataclass
class Row:
    name: str
    ratio: float | None = None
    goal: float | None = None
    higher_is_better: bool = False
    reference: str = ""
    detail: str = ""
    error: str = ""
    unit: str = ""  # "" for a ratio; a value row's unit

    @property
    def verdict(self) -> str:
        if self.error:
            return "FAILED"
        if self.goal is None or self.ratio is None:
            return "no goal"
        met = self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal
        return "met" if met else "MISSED"


def parse(name: str, lines: list[str]) -> list[Row]:
    """The rows one benchmark's output makes: its ratio line (goal from :data:`BENCHMARKS`) and its value lines."""
    bench = BENCHMARKS[name]
    ratio = Row(name, reference=bench.reference)
    if bench.goal_min is not None:
        ratio.goal, ratio.higher_is_better = bench.goal_min, True
    elif bench.goal is not None:
        ratio.goal = bench.goal
    values: list[Row] = []
    for line in (raw.strip() for raw in lines):
        if (m := _RATIO.match(line)) and m["name"] == name:
            ratio.ratio, ratio.detail = float(m["ratio"]), m["detail"]
        elif m := _VALUE.match(line):
            values.append(
                Row(
                    m["name"],
                    float(m["value"]),
                    float(m["goal"]),
                    higher_is_better=m["op"] == "≥",
                    reference="absolute",
                    unit=m["unit"],
                )
            )
    if ratio.ratio is None:
        ratio.error = "printed no ratio line"
    return [ratio, *values]


def run_child(name: str) -> int:
    """In the benchmark's own process: run it and print its ratio line."""
    mod_name, _, func = BENCHMARKS[name].target.partition(":")
    try:
        module = importlib.import_module(f"tests.bench.{mod_name}")
        line = str(getattr(module, func or "run")())
    except Exception:
        traceback.print_exc()
        return 1
    print(line, flush=True)
    return 0


def run_one(name: str) -> list[Row]:
    """Runs ``name`` in a fresh interpreter, echoing what it prints, and reads its rows from that."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.run", "--child", name],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    code = proc.wait()
    rows = parse(name, lines)
    if code != 0:
        rows[0].error = f"exited with {code} (its traceback is above)"
        print(f"bench {name}: failed ({rows[0].error})", flush=True)
    return rows


def table(rows: list[Row]) -> str:
    head = ("benchmark", "result", "goal", "verdict", "against", "detail")
    cells = [
        (
            r.name,
            "—" if r.ratio is None else f"{r.ratio:.2f}{' ' + r.unit if r.unit else ''}",
            "—" if r.goal is None else f"{'≥' if r.higher_is_better else '≤'} {r.goal:.2f}",
            r.verdict,
            r.reference,
            r.error or r.detail,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head) - 1)]

    def fmt(c: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(c[:-1], widths, strict=True)) + "  " + c[-1]

    rule = "  ".join("-" * w for w in widths) + "  " + "-" * len(head[-1])
    return "\n".join([fmt(head), rule, *(fmt(c) for c in cells)])


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        return run_child(argv[1])
    chosen = argv or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    rows = [row for name in chosen for row in run_one(name)]
    print()
    print(table(rows), flush=True)
    return 0 if all(r.verdict in ("met", "no goal") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
