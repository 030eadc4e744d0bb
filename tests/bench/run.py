"""Run every benchmark (or the ones named) and print one ratio line each."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tests.bench import bench_iso_server, bench_iso_upload, bench_verify

BENCHMARKS: dict[str, Callable[[], str]] = {
    "verify-sha256": bench_verify.run,
    "iso-upload": bench_iso_upload.run,
    "iso-server": bench_iso_server.run,
}


def main(names: list[str]) -> int:
    chosen = names or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in chosen:
        print(BENCHMARKS[name](), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
