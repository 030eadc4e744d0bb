"""The offline wheelhouse builder: platform tags, target markers, the dependency walk, the install scripts, and a
resolver dry-run for linux-x86_64 / Python 3.11 against the package index."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.shipping.conftest import ROOT


def dist(wh: ModuleType, name: str, version: str, *requires: str) -> object:
    return wh.Dist(canonicalize_name(name), Version(version), tuple(Requirement(r) for r in requires), f"{name}.whl")


def test_platform_tags(wheelhouse: ModuleType) -> None:
    linux = wheelhouse.TARGETS["linux-x86_64"].platforms(glibc="2.28", macos="13.0")
    assert linux[0] == "manylinux_2_28_x86_64" and "manylinux_2_17_x86_64" in linux
    assert {"manylinux2014_x86_64", "manylinux1_x86_64"} <= set(linux)
    assert "linux_x86_64" not in linux  # not portable: built for one machine
    arm = wheelhouse.TARGETS["linux-aarch64"].platforms(glibc="2.31", macos="13.0")
    assert arm[0] == "manylinux_2_31_aarch64" and "manylinux1_aarch64" not in arm
    assert wheelhouse.TARGETS["windows-x86_64"].platforms(glibc="2.28", macos="13.0") == ["win_amd64"]
    assert wheelhouse.TARGETS["macos-arm64"].platforms(glibc="2.28", macos="13.0") == ["macosx_13_0_arm64"]


def test_target_markers(wheelhouse: ModuleType) -> None:
    win = wheelhouse.TARGETS["windows-x86_64"].environment("3.12")
    linux = wheelhouse.TARGETS["linux-x86_64"].environment("3.11")
    r = Requirement('pywin32-ctypes>=0.2; sys_platform == "win32"')
    assert wheelhouse.applies(r, win, ()) and not wheelhouse.applies(r, linux, ())
    old = Requirement('tomli; python_version < "3.11"')
    assert not wheelhouse.applies(old, linux, ())
    extra = Requirement('socksio; extra == "socks"')
    assert wheelhouse.applies(extra, linux, ("socks",)) and not wheelhouse.applies(extra, linux, ())


def test_closure_follows_the_targets_markers_and_extras(wheelhouse: ModuleType) -> None:
    dists = {
        d.name: d
        for d in (
            dist(wheelhouse, "app", "1.0", "keyring>=24", 'httpx[socks]>=0.27; python_version >= "3.8"'),
            dist(
                wheelhouse,
                "keyring",
                "25.0",
                'SecretStorage>=3.2; sys_platform == "linux"',
                'pywin32-ctypes>=0.2; sys_platform == "win32"',
            ),
            dist(wheelhouse, "secretstorage", "3.3", "jeepney>=0.6"),
            dist(wheelhouse, "jeepney", "0.8"),
            dist(wheelhouse, "httpx", "0.28", "idna", 'socksio==1.*; extra == "socks"', 'h2; extra == "http2"'),
            dist(wheelhouse, "idna", "3.7"),
            dist(wheelhouse, "socksio", "1.0"),
        )
    }
    roots = [Requirement("app==1.0")]
    linux = wheelhouse.TARGETS["linux-x86_64"].environment("3.11")
    needed, unmet, conflicts = wheelhouse.closure(roots, dists, linux)
    assert set(needed) == {"app", "keyring", "secretstorage", "jeepney", "httpx", "idna", "socksio"}
    assert needed["httpx"] == {"socks"}
    assert unmet == [] and conflicts == []

    win = wheelhouse.TARGETS["windows-x86_64"].environment("3.11")
    needed, unmet, conflicts = wheelhouse.closure(roots, dists, win)
    assert "secretstorage" not in needed and "jeepney" not in needed
    assert [str(r) for r in unmet] == ['pywin32-ctypes>=0.2; sys_platform == "win32"']

    dists["idna"] = dist(wheelhouse, "idna", "3.7")
    dists["httpx"] = dist(wheelhouse, "httpx", "0.28", "idna>=4")
    _, unmet, conflicts = wheelhouse.closure(roots, dists, linux)
    assert conflicts == ["idna 3.7 does not satisfy idna>=4"]


def test_project_requirements_are_read_from_pyproject(wheelhouse: ModuleType) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert [str(r) for r in wheelhouse.project_requirements()] == [str(Requirement(r)) for r in project["dependencies"]]
    with_test = wheelhouse.project_requirements(["test"])
    assert len(with_test) == len(project["dependencies"]) + len(project["optional-dependencies"]["test"])
    with pytest.raises(SystemExit, match="no extra"):
        wheelhouse.project_requirements(["no-such-extra"])


@pytest.mark.parametrize("target", ["linux-x86_64", "windows-x86_64"])
def test_install_scripts_are_rendered_for_the_target(wheelhouse: ModuleType, tmp_path: Path, target: str) -> None:
    wheelhouse.write_scripts(tmp_path, wheelhouse.TARGETS[target], "3.11", "9.8.7", ["test"])
    script = tmp_path / ("install.ps1" if target.startswith("windows") else "install.sh")
    text = script.read_text()
    assert "@" + "PYTHON_VERSION@" not in text and "@REQUIREMENT@" not in text and "@TARGET@" not in text
    assert "palette-appliance-wizard[test]==9.8.7" in text
    assert "--no-index" in text and "SHA256SUMS" in text
    if script.suffix == ".sh":
        subprocess.run(["sh", "-n", str(script)], check=True)
        assert script.stat().st_mode & 0o111
    assert (tmp_path / "README.txt").is_file()


def test_wheel_metadata_is_read_from_the_wheel(wheelhouse: ModuleType, tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "demo_pkg-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "demo_pkg-1.2.3.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.2.3\nRequires-Dist: idna>=3\n"
            'Requires-Dist: colorama; sys_platform == "win32"\n',
        )
    d = wheelhouse.wheel_dist(path)
    assert (d.name, str(d.version), d.filename) == ("demo-pkg", "1.2.3", path.name)
    assert [str(r) for r in d.requires] == ["idna>=3", 'colorama; sys_platform == "win32"']


def test_resolver_dry_run_linux_x86_64_py311() -> None:
    """The real resolver against the package index: every dependency resolves to a wheel for the target."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "installers" / "wheelhouse.py"),
            "--dry-run",
            "--target",
            "linux-x86_64",
            "--python",
            "3.11",
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = [line for line in proc.stdout.splitlines() if line.startswith("wheelhouse dry-run")]
    assert len(summary) == 1 and summary[0].startswith("wheelhouse dry-run linux-x86_64 py3.11: ")
    assert "target markers add" not in summary[0]  # resolved on Linux for Linux: nothing missing
    listed = {
        canonicalize_name(line.split("==")[0].strip())
        for line in proc.stdout.splitlines()
        if line.startswith("  ") and "==" in line
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"]:
        assert canonicalize_name(Requirement(req).name) in listed, req
    wheels = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("  ") and "==" in line]
    assert all(w.endswith(".whl") for w in wheels), [w for w in wheels if not w.endswith(".whl")]
