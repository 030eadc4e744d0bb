"""What several benchmarks share: making test files, and a process's own peak memory."""

from __future__ import annotations

import os
from pathlib import Path

MIB = 1024 * 1024


def make_file(path: Path, size: int, *, sparse: bool = False) -> Path:
    """A file of ``size`` random bytes (or, ``sparse``, zeros that take no disk: for memory checks, where the bytes
    do not matter and writing gigabytes of random data would take longer than the transfer)."""
    if sparse:
        with path.open("wb") as fh:
            fh.truncate(size)
        return path
    block = 16 * MIB
    with path.open("wb") as fh:
        left = size
        while left:
            data = os.urandom(min(block, left))
            fh.write(data)
            left -= len(data)
    return path


def peak_rss_mib() -> float:
    """This process's own peak resident memory (``VmHWM``), in MiB.

    Not ``getrusage().ru_maxrss``: Linux carries that over from the parent across fork and exec, so a small child of
    a big parent reports the parent's peak as its own (a 10.6 MiB child showed 511 MiB). ``VmHWM`` belongs to the
    process's own address space, which exec replaces."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (the benchmarks read Linux's process status)")
