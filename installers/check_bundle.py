"""Check a built Linux one-folder bundle: every Qt library that a bundled ELF file links against is in the bundle.

The spec drops Qt plugins and libraries the wizard does not use; this proves the trimming removed nothing a kept
file needs (a missing library would only show when that plugin loads, on some desktop, at run time).

    python installers/check_bundle.py dist/palette-wizard
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
# Libraries the bundle must carry itself; anything else missing is the host's business (GTK for the GTK theme).
MUST_BUNDLE = re.compile(r"^(libQt6|libicu|libpyside6|libshiboken6|libpython3)")
_NOT_FOUND = re.compile(r"^\s*(\S+) => not found")


def elf_files(folder: Path) -> list[Path]:
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == ELF_MAGIC:
                    out.append(path)
    return out


def missing_libraries(folder: Path) -> dict[Path, list[str]]:
    """ELF file → the libraries ``ldd`` cannot resolve for it (with the bundle's library folders on the path)."""
    files = elf_files(folder)
    lib_dirs = sorted({str(p.parent) for p in files if ".so" in p.name})
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(lib_dirs))
    result: dict[Path, list[str]] = {}
    for path in files:
        proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env, check=False)
        missing = sorted({m.group(1) for line in proc.stdout.splitlines() if (m := _NOT_FOUND.match(line))})
        if missing:
            result[path] = missing
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="the one-folder app, e.g. dist/palette-wizard")
    args = parser.parse_args(argv)
    if not args.bundle.is_dir():
        print(f"error: {args.bundle} is not a folder", file=sys.stderr)
        return 2
    problems = 0
    for path, libs in missing_libraries(args.bundle).items():
        rel = path.relative_to(args.bundle)
        bundled = [lib for lib in libs if MUST_BUNDLE.match(lib)]
        if bundled:
            problems += 1
            print(f"MISSING in bundle: {rel} needs {', '.join(bundled)}")
        others = [lib for lib in libs if lib not in bundled]
        if others:
            print(f"note: {rel} uses host libraries not present here: {', '.join(others)}")
    if problems:
        print(f"{problems} bundled file(s) need libraries the bundle lacks", file=sys.stderr)
        return 1
    print(f"bundle libraries complete: {args.bundle}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
