"""The bundles' inputs agree with the package: one version, data files that exist, Qt trimmed to what is used,
icons of the sizes each platform asks for, and scripts that parse."""

from __future__ import annotations

import ast
import configparser
import json
import plistlib
import re
import struct
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import wizard
from tests.shipping.conftest import ROOT

SPECS = {
    "linux": ROOT / "installers" / "linux" / "palette-wizard.spec",
    "windows": ROOT / "installers" / "windows" / "palette-wizard.spec",
    "macos": ROOT / "installers" / "macos" / "palette-wizard.spec",
}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# -- One version -------------------------------------------------------------------------------------------------------


def test_version_comes_from_the_package_only(common: ModuleType) -> None:
    assert common.version() == wizard.__version__
    assert common.app_info().version == wizard.__version__
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "wizard.__version__"}
    literal = re.compile(rf"(?<![\d.]){re.escape(wizard.__version__)}(?![\d.])")
    shipped = [*SPECS.values(), ROOT / "resources" / "app.json", ROOT / "resources" / "palette-wizard.desktop"]
    shipped += [p for p in (ROOT / "installers").rglob("*") if p.is_file() and p.suffix in (".sh", ".ps1", ".txt")]
    shipped += [ROOT / "scripts" / "build-app.sh", ROOT / "scripts" / "build-wheelhouse.sh"]
    assert [p.name for p in shipped if literal.search(p.read_text())] == []


def test_version_tuple_for_windows(common: ModuleType) -> None:
    assert common.version_tuple("1.2.3") == (1, 2, 3, 0)
    assert common.version_tuple("2.0.0rc1") == (2, 0, 0, 0)
    assert common.version_tuple("0.1") == (0, 1, 0, 0)


def test_windows_version_info_and_macos_plist_carry_the_version(common: ModuleType, tmp_path: Path) -> None:
    path = common.windows_version_file(tmp_path)
    text = path.read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    ast.parse(body, mode="eval")  # PyInstaller evaluates it as one expression
    assert f"filevers={common.version_tuple()}" in text
    assert f"StringStruct('ProductVersion', '{wizard.__version__}')" in text
    plist = common.info_plist()
    assert plist["CFBundleShortVersionString"] == wizard.__version__
    assert plist["CFBundleIdentifier"] == common.app_info().bundle_identifier
    assert plist["CFBundleExecutable"] == wizard.APP_NAME
    plistlib.loads(plistlib.dumps(plist))


# -- Specs -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("os_name", sorted(SPECS))
def test_each_spec_parses_and_uses_the_shared_inputs(os_name: str) -> None:
    text = SPECS[os_name].read_text()
    ast.parse(text)
    for needed in ("common.datas()", "common.hiddenimports()", "common.EXCLUDES", "common.qt_excludes()",
                   "common.trim(a.binaries)", "common.trim(a.datas)", "common.ENTRY", "copy_metadata"):  # fmt: skip
        assert needed in text, f"{os_name} spec lacks {needed}"
    if os_name == "windows":
        assert "windows_version_file" in text and '.with_suffix(".ico")' in text
    if os_name == "macos":
        assert "BUNDLE(" in text and "info_plist=common.info_plist()" in text and '.with_suffix(".icns")' in text


def test_data_files_exist_and_cover_the_package_data(common: ModuleType) -> None:
    pairs = common.datas()
    for source, dest in pairs:
        assert Path(source).is_file(), source
        assert not Path(dest).is_absolute()
    sources = {Path(s).resolve() for s, _ in pairs}
    # Everything pyproject ships as package data must be in the bundle too.
    for pattern in PYPROJECT["tool"]["setuptools"]["package-data"]["wizard"]:
        for path in (ROOT / "wizard").glob(pattern):
            if path.is_file() and "__pycache__" not in path.parts:
                assert path.resolve() in sources, f"{path} is package data but not in the bundle"
    assert (ROOT / "wizard" / "appliance" / "data" / "localui-api.json").resolve() in sources
    dests = {(Path(s).name, d) for s, d in pairs}
    assert ("localui-api.json", "wizard/appliance/data") in dests
    assert ("palette-wizard-256.png", "resources/icons") in dests


def test_hidden_imports_exist(common: ModuleType) -> None:
    import importlib.util

    for name in common.hiddenimports():
        if name.startswith("wizard."):
            path = ROOT / Path(*name.split("."))
            assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), name
        else:
            assert importlib.util.find_spec(name) is not None, name


def test_entry_point_is_the_cli(common: ModuleType) -> None:
    tree = ast.parse(common.ENTRY.read_text())
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("wizard.cli", "main") in imported
    assert PYPROJECT["project"]["scripts"][wizard.APP_NAME] == "wizard.cli:main"


# -- Qt trimming -------------------------------------------------------------------------------------------------------


def test_every_qt_module_the_wizard_imports_is_kept(common: ModuleType) -> None:
    used: set[str] = set()
    for path in (ROOT / "wizard").rglob("*.py"):
        used |= set(re.findall(r"PySide6\.(Qt[A-Za-z]+)", path.read_text()))
    assert used, "the scan found no Qt imports at all"
    assert used <= set(common.QT_MODULES), f"used but trimmed: {sorted(used - set(common.QT_MODULES))}"
    excluded = set(common.qt_excludes())
    assert excluded, "PySide6 is installed here, so there is something to exclude"
    assert not {f"PySide6.{m}" for m in common.QT_MODULES} & excluded


@pytest.mark.parametrize(
    ("dest", "kept"),
    [
        ("PySide6/Qt/plugins/platforms/libqxcb.so", True),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", True),
        ("PySide6/Qt/plugins/platforms/libqwayland.so", True),
        ("PySide6/plugins/platforms/qwindows.dll", True),
        ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", True),
        ("PySide6/Qt/plugins/styles/libqmacstyle.dylib", True),
        ("PySide6/plugins/styles/qmodernwindowsstyle.dll", True),
        ("PySide6/Qt/plugins/imageformats/libqico.so", True),
        ("PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so", True),
        ("PySide6/Qt/lib/libQt6Widgets.so.6", True),
        ("PySide6/Qt/lib/libQt6XcbQpa.so.6", True),
        ("PySide6/QtWidgets.abi3.so", True),
        ("cryptography/hazmat/bindings/_rust.abi3.so", True),
        ("wizard/appliance/data/localui-api.json", True),
        ("PySide6/Qt/plugins/platforms/libqvnc.so", False),
        ("PySide6/Qt/plugins/platforms/libqminimalegl.so", False),
        ("PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so", False),
        ("PySide6/Qt/plugins/imageformats/libqpdf.so", False),
        ("PySide6/Qt/plugins/egldeviceintegrations/libqeglfs-x11-integration.so", False),
        ("PySide6/Qt/lib/libQt6Quick.so.6", False),
        ("PySide6/Qt/lib/libQt6Qml.so.6", False),
        ("PySide6/Qt6Pdf.dll", False),
        ("PySide6/Qt/lib/QtQuick.framework/Versions/A/QtQuick", False),
        ("PySide6/Qt/translations/qtbase_de.qm", False),
        ("PySide6/Qt/qml/QtQuick/Controls/qmldir", False),
    ],
)
def test_trim_keeps_what_the_app_loads(common: ModuleType, dest: str, kept: bool) -> None:
    assert common.keep_binary_or_data(dest) is kept
    assert common.trim([(dest, "/src", "BINARY")]) == ([(dest, "/src", "BINARY")] if kept else [])


# -- Resources ---------------------------------------------------------------------------------------------------------

ICONS = ROOT / "resources" / "icons"


def test_png_icons_have_their_sizes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_make_icons", ROOT / "resources" / "make_icons.py")
    assert spec is not None and spec.loader is not None
    make_icons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icons)
    assert min(make_icons.PNG_SIZES) == 16 and max(make_icons.PNG_SIZES) == 512
    for size in make_icons.PNG_SIZES:
        assert png_size((ICONS / f"palette-wizard-{size}.png").read_bytes()) == (size, size)


def test_ico_holds_png_entries_16_to_256() -> None:
    data = (ICONS / "palette-wizard.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1)
    sizes = []
    for i in range(count):
        w, h, _colors, _res, planes, bpp, length, offset = struct.unpack("<BBBBHHII", data[6 + 16 * i : 22 + 16 * i])
        size = w or 256
        assert (w, planes, bpp) == (h, 1, 32)
        assert png_size(data[offset : offset + length]) == (size, size)
        sizes.append(size)
    assert sorted(sizes) == [16, 24, 32, 48, 64, 128, 256]


def test_icns_holds_standard_and_retina_renditions() -> None:
    data = (ICONS / "palette-wizard.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack(">I", data[4:8])[0] == len(data)
    found: dict[bytes, tuple[int, int]] = {}
    pos = 8
    while pos < len(data):
        ostype, length = data[pos : pos + 4], struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        found[ostype] = png_size(data[pos + 8 : pos + length])
        pos += length
    assert pos == len(data)
    assert found[b"icp4"] == (16, 16) and found[b"ic09"] == (512, 512) and found[b"ic10"] == (1024, 1024)
    assert found[b"ic11"] == (32, 32) and found[b"ic14"] == (512, 512)


def test_svg_is_the_source_of_the_icons() -> None:
    svg = (ICONS / "palette-wizard.svg").read_text()
    assert 'viewBox="0 0 512 512"' in svg
    import xml.etree.ElementTree as ET

    ET.fromstring(svg)


def test_app_metadata() -> None:
    data = json.loads((ROOT / "resources" / "app.json").read_text())
    assert data["name"] == wizard.APP_NAME
    assert "version" not in data  # single-sourced from the package
    assert re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", data["bundle_identifier"])
    assert (ROOT / "resources" / f"{data['icon']}.svg").is_file()
    assert data["license"] == PYPROJECT["project"]["license"]  # an SPDX expression


def test_desktop_entry() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(ROOT / "resources" / "palette-wizard.desktop")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] == json.loads((ROOT / "resources" / "app.json").read_text())["display_name"]
    assert entry["Exec"].split()[0] == wizard.APP_NAME and entry["TryExec"] == wizard.APP_NAME
    assert entry["Icon"] == wizard.APP_NAME
    assert entry["Categories"].endswith(";")
    assert entry["Terminal"] == "false"


# -- Scripts -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        "scripts/build-app.sh",
        "scripts/build-wheelhouse.sh",
        "installers/macos/build.sh",
        "installers/offline/install.sh",
    ],
)
def test_shell_scripts_parse_and_are_executable(script: str) -> None:
    path = ROOT / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    shell = "sh" if script.endswith("install.sh") else "bash"
    subprocess.run([shell, "-n", str(path)], check=True)


@pytest.mark.ui
def test_smoke_switch_quits_once_the_main_window_is_shown(tmp_path: Path) -> None:
    """The switch the build scripts rely on, run from source: exit 0 and the window's title, by itself."""
    import os
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PALETTE_WIZARD_SMOKE_TEST="1",
               PALETTE_WIZARD_HOME=str(tmp_path / "home"))  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(ROOT / "installers" / "entry.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke test: main window 'Palette Appliance Wizard' shown" in proc.stdout
