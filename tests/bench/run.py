"""Run every benchmark (or the ones named): one ratio line each as it finishes, then a table of ratios and goals.

Each benchmark module has ``run() -> str`` returning its ``bench NAME: ratio X.XX (ours A, reference B)`` line and
may set a goal: ``GOAL``, the highest ratio allowed where the ratio compares times (lower is better), or
``GOAL_MIN``, the lowest ratio allowed where it compares throughput (higher is better). Modules are imported only
when chosen, so one that cannot start (a missing reference tool) fails its own row, not the suite.

Exit status: 0 when every chosen benchmark ran and met its goal, 1 when one failed or missed its goal, 2 for an
unknown name.
"""

from __future__ import annotations

import importlib
import re
import sys
import traceback
from dataclasses import dataclass

# name → module under tests.bench, or "module:function" (default ``run``); the table keeps this order
BENCHMARKS: dict[str, str] = {
    "verify-sha256": "bench_verify",
    "iso-upload": "bench_iso_upload",
    "iso-server": "bench_iso_server",
    "upload": "bench_upload",
    "sftp": "bench_sftp",
    "lab-flow": "bench_lab_flow",
    "lab-start": "bench_lab_start",
    "ui-stall": "bench_ui:run_stall",
    "cold-start": "bench_ui:run_cold",
}

_RATIO = re.compile(r"^bench (?P<name>\S+): ratio (?P<ratio>\d+(?:\.\d+)?) \((?P<detail>.*)\)$")


@dataclass
class Row:
    name: str
    ratio: float | None = None
    goal: float | None = None
    higher_is_better: bool = False
    detail: str = ""
    error: str = ""

    @property
    def verdict(self) -> str:
        if self.error:
            return "FAILED"
        if self.goal is None or self.ratio is None:
            return "no goal"
        met = self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal
        return "met" if met else "MISSED"


def run_one(name: str) -> Row:
    row = Row(name)
    try:
        mod_name, _, func = BENCHMARKS[name].partition(":")
        module = importlib.import_module(f"tests.bench.{mod_name}")
        goal, floor = getattr(module, "GOAL", None), getattr(module, "GOAL_MIN", None)
        if floor is not None:
            row.goal, row.higher_is_better = float(floor), True
        elif goal is not None:
            row.goal = float(goal)
        line = str(getattr(module, func or "run")())
    except Exception as exc:  # one broken benchmark must not hide the others' results
        traceback.print_exc()
        row.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        print(f"bench {name}: failed ({row.error})", flush=True)
        return row
    print(line, flush=True)
    m = next((m for m in map(_RATIO.match, line.strip().splitlines()) if m), None)
    if m is None:
        row.error = f"unexpected output: {line.strip()[:80]}"
    else:
        row.ratio, row.detail = float(m["ratio"]), m["detail"]
    return row


def table(rows: list[Row]) -> str:
    head = ("benchmark", "ratio", "goal", "result", "ours vs reference")
    cells = [
        (
            r.name,
            "—" if r.ratio is None else f"{r.ratio:.2f}",
            "—" if r.goal is None else f"{'≥' if r.higher_is_better else '≤'} {r.goal:.2f}",
            r.verdict,
            r.error or r.detail,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head) - 1)]

    def fmt(c: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(c[:-1], widths, strict=True)) + "  " + c[-1]

    rule = "  ".join("-" * w for w in widths) + "  " + "-" * len(head[-1])
    return "\n".join([fmt(head), rule, *(fmt(c) for c in cells)])


def main(names: list[str]) -> int:
    chosen = names or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    rows = [run_one(name) for name in chosen]
    print()
    print(table(rows), flush=True)
    return 0 if all(r.verdict in ("met", "no goal") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
