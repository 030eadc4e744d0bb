"""Build an offline wheelhouse: every wheel palette-wizard needs on one target platform and Python version, plus
install scripts that use ``pip --no-index``, for jump hosts without internet.

    python installers/wheelhouse.py --target linux-x86_64 --python 3.11            # → wheelhouse/linux-x86_64-py3.11
    python installers/wheelhouse.py --target windows-x86_64 --python 3.12 --out D:/wh
    python installers/wheelhouse.py --target linux-x86_64 --python 3.11 --dry-run  # resolve only, download nothing

Copy the folder to the jump host and run ``install.sh`` (Linux, macOS) or ``install.ps1`` (Windows) in it.

``pip download --platform`` resolves environment markers (``; sys_platform == "win32"``) for the machine it runs
on, not for the target, so a wheelhouse for Windows built on Linux would miss Windows-only dependencies and carry
Linux-only ones. This tool therefore walks the dependency graph again from the wheels' own metadata with the
target's markers, fetches what is missing, drops what the target never installs, and repeats until nothing
changes. Only wheels are accepted (``--only-binary=:all:``): a jump host has no compilers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
DIST_NAME = "palette-appliance-wizard"
MANIFEST = "wheelhouse.json"
CHECKSUMS = "SHA256SUMS"


@dataclass(frozen=True)
class Target:
    name: str
    system: str  # platform_system
    sys_platform: str
    os_name: str
    machine: str  # platform_machine as that OS reports it

    def platforms(self, *, glibc: str, macos: str) -> list[str]:
        """The ``--platform`` tags pip may take wheels for, most specific first."""
        arch = {"AMD64": "amd64"}.get(self.machine, self.machine)
        if self.system == "Linux":
            major, minor = (int(x) for x in glibc.split("."))
            tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
            tags.append(f"manylinux2014_{arch}")  # = manylinux_2_17, the legacy spelling older wheels use
            if arch in ("x86_64", "i686"):
                tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
            return tags
        if self.system == "Windows":
            return [f"win_{arch}"]
        # pip expands one macOS tag to every older release and to universal2 itself.
        return [f"macosx_{macos.replace('.', '_')}_{arch}"]

    def environment(self, python: str) -> dict[str, str]:
        """PEP 508 marker variables as seen on the target."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{python}.0",
            "os_name": self.os_name,
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": self.system,
            "platform_version": "",
            "python_full_version": f"{python}.0",
            "python_version": python,
            "sys_platform": self.sys_platform,
        }


TARGETS = {
    t.name: t
    for t in (
        Target("linux-x86_64", "Linux", "linux", "posix", "x86_64"),
        Target("linux-aarch64", "Linux", "linux", "posix", "aarch64"),
        Target("windows-x86_64", "Windows", "win32", "nt", "AMD64"),
        Target("macos-arm64", "Darwin", "darwin", "posix", "arm64"),
        Target("macos-x86_64", "Darwin", "darwin", "posix", "x86_64"),
    )
}


# -- Requirements and the dependency graph ---------------------------------------------------------------------------


def project_requirements(extras: Iterable[str] = ()) -> list[Requirement]:
    """The project's own dependencies (and those of ``extras``), read from pyproject.toml."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    reqs = [Requirement(r) for r in project.get("dependencies", [])]
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"error: the project has no extra {extra!r} (it has: {', '.join(sorted(optional))})")
        reqs += [Requirement(r) for r in optional[extra]]
    return reqs


def project_version() -> str:
    text = (ROOT / "wizard" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    if not m:
        raise SystemExit("error: wizard/__init__.py defines no __version__")
    return m.group(1)


@dataclass(frozen=True)
class Dist:
    name: str  # canonical
    version: Version
    requires: tuple[Requirement, ...]
    filename: str = ""


def applies(req: Requirement, env: Mapping[str, str], extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    choices = list(extras) or [""]
    return any(req.marker.evaluate({**env, "extra": e}) for e in choices)


def closure(
    roots: Iterable[Requirement], dists: Mapping[str, Dist], env: Mapping[str, str]
) -> tuple[dict[str, set[str]], list[Requirement], list[str]]:
    """Walk the graph from ``roots`` with the target's markers.

    Returns (needed name → extras asked for it, requirements no dist satisfies (absent or wrong version),
    human-readable conflicts)."""
    needed: dict[str, set[str]] = {}
    unmet: list[Requirement] = []
    conflicts: list[str] = []
    queue: list[tuple[Requirement, tuple[str, ...]]] = [(r, ()) for r in roots]
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    while queue:
        req, parent_extras = queue.pop()
        if not applies(req, env, parent_extras):
            continue
        name = canonicalize_name(req.name)
        key = (name, str(req), tuple(sorted(req.extras)))
        if key in seen:
            continue
        seen.add(key)
        dist = dists.get(name)
        if dist is None:
            unmet.append(req)
            continue
        if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            conflicts.append(f"{dist.name} {dist.version} does not satisfy {req}")
            unmet.append(req)
            continue
        extras = needed.setdefault(name, set())
        extras |= set(req.extras)
        # ``seen`` stops repeats; a dist reached again with more extras is walked again with all of them.
        queue.extend((sub, tuple(sorted(extras))) for sub in dist.requires)
    return needed, unmet, conflicts


def wheel_dist(path: Path) -> Dist:
    """Name, version and Requires-Dist of a wheel, from its METADATA."""
    name, version, _build, _tags = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        meta = Parser().parsestr(zf.read(meta_name).decode("utf-8"))
    requires = tuple(Requirement(r) for r in meta.get_all("Requires-Dist") or [])
    return Dist(canonicalize_name(name), version, requires, path.name)


def report_dists(report: Mapping[str, object]) -> dict[str, Dist]:
    """Dists from a ``pip install --report`` document."""
    out: dict[str, Dist] = {}
    for item in report.get("install", []):  # type: ignore[union-attr]
        meta = item["metadata"]
        requires = tuple(Requirement(r) for r in meta.get("requires_dist", []) or [])
        url = str(item.get("download_info", {}).get("url", ""))
        name = canonicalize_name(meta["name"])
        out[name] = Dist(name, Version(meta["version"]), requires, url.rsplit("/", 1)[-1])
    return out


# -- pip --------------------------------------------------------------------------------------------------------------


class Pip:
    def __init__(self, python: str, target: Target, python_version: str, *, glibc: str, macos: str) -> None:
        self.python = python
        self.target = target
        self.python_version = python_version
        self.platform_args: list[str] = ["--only-binary=:all:", "--implementation", "cp"]
        self.platform_args += ["--python-version", python_version]
        for tag in target.platforms(glibc=glibc, macos=macos):
            self.platform_args += ["--platform", tag]

    def run(self, *args: str) -> None:
        cmd = [self.python, "-m", "pip", "--disable-pip-version-check", *args]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)

    def download(self, dest: Path, reqs: Iterable[str], *, deps: bool = True, find_links: Path | None = None) -> None:
        args = ["download", "--dest", str(dest), *self.platform_args]
        if not deps:
            args.append("--no-deps")
        if find_links is not None:
            args += ["--find-links", str(find_links)]
        self.run(*args, *reqs)

    def resolve(self, reqs: Iterable[str]) -> dict[str, object]:
        """``pip install --dry-run --report`` for the target: what pip would install, without installing."""
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            self.run(
                "install",
                "--dry-run",
                "--quiet",
                "--ignore-installed",
                "--target",
                str(Path(tmp) / "target"),
                "--report",
                str(report),
                *self.platform_args,
                *reqs,
            )
            return dict(json.loads(report.read_text(encoding="utf-8")))


def build_project_wheel(python: str, dest: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [python, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps", "--wheel-dir", tmp, str(ROOT)]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        built = next(Path(tmp).glob("*.whl"))
        out = dest / built.name
        shutil.copy2(built, out)
        return out


# -- Build ------------------------------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def reconcile(
    out: Path, pip: Pip, roots: list[Requirement], env: Mapping[str, str], *, max_rounds: int = 5
) -> dict[str, Dist]:
    """Make the wheels in ``out`` exactly the target's closure of ``roots``; returns name → Dist."""
    for _ in range(max_rounds):
        dists = {d.name: d for d in (wheel_dist(p) for p in sorted(out.glob("*.whl")))}
        needed, unmet, conflicts = closure(roots, dists, env)
        if conflicts:
            raise SystemExit("error: conflicting versions:\n  " + "\n  ".join(conflicts))
        extra = [name for name in dists if name not in needed]
        for name in extra:
            print(f"dropping {dists[name].filename}: the target never installs it")
            (out / dists[name].filename).unlink()
        if not unmet:
            return {n: d for n, d in dists.items() if n in needed}
        print("fetching what the target's markers add: " + ", ".join(str(r) for r in unmet))
        # Without markers (already evaluated for the target); their own dependencies come in the next round.
        pip.download(
            out,
            [f"{r.name}{'[' + ','.join(sorted(r.extras)) + ']' if r.extras else ''}{r.specifier}" for r in unmet],
            deps=False,
            find_links=out,
        )
    raise SystemExit("error: the dependency set did not settle; run with a clean --out folder")


def write_scripts(out: Path, target: Target, python_version: str, version: str, extras: list[str]) -> None:
    spec = f"{DIST_NAME}[{','.join(extras)}]=={version}" if extras else f"{DIST_NAME}=={version}"
    values = {"@PYTHON_VERSION@": python_version, "@REQUIREMENT@": spec, "@TARGET@": target.name}
    names = ("install.ps1",) if target.system == "Windows" else ("install.sh",)
    for name in names:
        text = (HERE / "offline" / name).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        path = out / name
        path.write_text(text, encoding="utf-8", newline="\r\n" if name.endswith(".ps1") else "\n")
        path.chmod(0o755)
    shutil.copy2(HERE / "offline" / "README.txt", out / "README.txt")


def build(args: argparse.Namespace) -> int:
    target = TARGETS[args.target]
    env = target.environment(args.python)
    extras = sorted(set(args.extra))
    pip = Pip(args.pip_python, target, args.python, glibc=args.glibc, macos=args.macos)
    version = project_version()
    roots = project_requirements(extras)
    if args.dry_run:
        dists = report_dists(pip.resolve([str(r) for r in roots]))
        needed, unmet, conflicts = closure(roots, dists, env)
        host_only = sorted(set(dists) - set(needed))
        for name in sorted(needed):
            print(f"  {name}=={dists[name].version}  {dists[name].filename}")
        print(
            f"wheelhouse dry-run {target.name} py{args.python}: {len(needed)} wheels resolve"
            + (f"; target markers add {', '.join(str(r) for r in unmet)}" if unmet else "")
            + (f"; not for the target: {', '.join(host_only)}" if host_only else "")
        )
        if conflicts:
            print("conflicts:\n  " + "\n  ".join(conflicts), file=sys.stderr)
            return 1
        return 0

    out: Path = args.out or ROOT / "wheelhouse" / f"{target.name}-py{args.python}"
    if out.exists() and any(out.iterdir()):
        if not args.force:
            print(f"error: {out} is not empty (use --force to replace it)", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    own = build_project_wheel(args.pip_python, out)
    root = Requirement(f"{DIST_NAME}[{','.join(extras)}]=={version}" if extras else f"{DIST_NAME}=={version}")
    pip.download(out, [f"{own}[{','.join(extras)}]" if extras else str(own)], find_links=out)
    dists = reconcile(out, pip, [root], env)
    stray = [p.name for p in out.iterdir() if p.suffix != ".whl"]
    if stray:
        print(f"error: pip fetched non-wheel files: {', '.join(stray)}", file=sys.stderr)
        return 1
    wheels = sorted(out.glob("*.whl"))
    (out / CHECKSUMS).write_text("".join(f"{sha256(p)}  {p.name}\n" for p in wheels), encoding="utf-8")
    manifest = {
        "project": DIST_NAME,
        "version": version,
        "extras": extras,
        "target": target.name,
        "python": args.python,
        "platforms": target.platforms(glibc=args.glibc, macos=args.macos),
        "wheels": {d.name: {"version": str(d.version), "file": d.filename} for d in dists.values()},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    write_scripts(out, target, args.python, version, extras)
    size = sum(p.stat().st_size for p in wheels)
    print(f"wheelhouse {out}: {len(wheels)} wheels, {size / 1e6:.0f} MB for {target.name} py{args.python}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--target", choices=sorted(TARGETS), default="linux-x86_64", help="target platform")
    p.add_argument("--python", default="3.11", help="target Python version, X.Y (default 3.11)")
    p.add_argument("--extra", action="append", default=[], help="also the project's optional extra (repeatable)")
    p.add_argument("--out", type=Path, help="output folder (default wheelhouse/TARGET-pyX.Y)")
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--dry-run", action="store_true", help="resolve for the target and list the wheels; no download")
    p.add_argument("--glibc", default="2.28", help="oldest glibc on Linux targets (default 2.28: RHEL 8, Debian 10)")
    p.add_argument("--macos", default="13.0", help="oldest macOS on the macOS targets (default 13.0)")
    p.add_argument("--pip-python", default=sys.executable, help="Python whose pip downloads (default: this one)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python):
        print(f"error: --python wants X.Y, e.g. 3.11 (got {args.python!r})", file=sys.stderr)
        return 2
    return build(args)


if __name__ == "__main__":
    raise SystemExit(main())
