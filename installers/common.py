"""What the per-OS PyInstaller specs share: metadata, data files, the trimmed Qt, version info and Info.plist keys.

Plain Python, importable without PyInstaller, so tests can check it. Everything derives from two sources: the
package (``wizard.__version__``, read from ``wizard/__init__.py`` without importing it) and ``resources/app.json``
(names, organisation, identifiers). Nothing here repeats a version number.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
ENTRY = ROOT / "installers" / "entry.py"

# Qt modules the wizard imports (wizard/ui). The hooks collect only imported modules; the list below also keeps
# out modules that other packages import optionally, and tests check that wizard/ui needs nothing beyond these.
QT_MODULES = ("QtCore", "QtGui", "QtWidgets")

# Python packages a desktop bundle never needs: test tools, other GUI toolkits, scientific stacks that optional
# imports in dependencies could drag in.
EXCLUDES = (
    "tkinter",
    "_tkinter",
    "pytest",
    "_pytest",
    "pytestqt",
    "hypothesis",
    "mypy",
    "ruff",
    "IPython",
    "numpy",
    "matplotlib",
    "PIL",
    "PyQt5",
    "PyQt6",
    "shiboken6.Shiboken.tests",
    "sushy_tools",
    "tests",
)

# Qt plugins the app loads, by folder and file stem (no "lib" prefix, no suffix), for Linux, Windows and macOS. Any
# other plugin (EGLFS, VNC, the virtual keyboard, PDF and SVG image formats) would drag in QML, Quick or PDF.
QT_PLUGINS: dict[str, tuple[str, ...] | None] = {
    "platforms": ("qxcb", "qwayland", "qoffscreen", "qminimal", "qwindows", "qcocoa"),
    "platformthemes": ("qgtk3", "qxdgdesktopportal"),
    "platforminputcontexts": ("composeplatforminputcontextplugin", "ibusplatforminputcontextplugin"),
    "imageformats": ("qico", "qjpeg", "qgif"),
    "styles": ("qmodernwindowsstyle", "qwindowsvistastyle", "qmacstyle"),
    "xcbglintegrations": None,  # None: the whole folder
    "wayland-decoration-client": None,
    "wayland-graphics-integration-client": None,
    "wayland-shell-integration": None,
}
# Qt libraries only the dropped plugins and modules use.
QT_LIBS_DROPPED = (
    "Quick",
    "Qml",
    "QmlMeta",
    "QmlModels",
    "QmlWorkerScript",
    "VirtualKeyboard",
    "VirtualKeyboardQml",
    "Pdf",
    "Network",
    "EglFSDeviceIntegration",
    "EglFsKmsSupport",
)
_QT_LIB = re.compile(r"^(?:lib)?Qt6?([A-Za-z]+)(?:\.so(?:\.\d+)*|\.dll|\.dylib|\.framework)$")


def version() -> str:
    """``wizard.__version__``, read from the source so the spec never imports (or repeats) it."""
    tree = ast.parse((ROOT / "wizard" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise SystemExit("error: wizard/__init__.py defines no __version__")


def version_tuple(text: str | None = None) -> tuple[int, int, int, int]:
    """The version as four integers (Windows file versions); pre-release suffixes are dropped."""
    parts: list[int] = []
    for piece in (text or version()).split(".")[:4]:
        m = re.match(r"\d+", piece)
        parts.append(int(m.group()) if m else 0)
    while len(parts) < 4:
        parts.append(0)
    return parts[0], parts[1], parts[2], parts[3]


@dataclass(frozen=True)
class AppInfo:
    name: str
    display_name: str
    description: str
    organisation: str
    organisation_domain: str
    bundle_identifier: str
    copyright: str
    license: str
    macos_category: str
    macos_minimum: str
    version: str

    @property
    def icon_stem(self) -> Path:
        return RESOURCES / "icons" / self.name


def app_info() -> AppInfo:
    data: dict[str, Any] = json.loads((RESOURCES / "app.json").read_text(encoding="utf-8"))
    return AppInfo(
        name=data["name"],
        display_name=data["display_name"],
        description=data["description"],
        organisation=data["organisation"],
        organisation_domain=data["organisation_domain"],
        bundle_identifier=data["bundle_identifier"],
        copyright=data["copyright"],
        license=data["license"],
        macos_category=data["macos_category"],
        macos_minimum=data["macos_minimum"],
        version=version(),
    )


def datas() -> list[tuple[str, str]]:
    """(source, destination folder) pairs: the package's data files and the application resources."""
    pairs: list[tuple[str, str]] = []
    for path in sorted((ROOT / "wizard").rglob("data/*")):
        if path.is_file() and "__pycache__" not in path.parts:
            pairs.append((str(path), str(path.parent.relative_to(ROOT))))
    pairs.append((str(ROOT / "wizard" / "py.typed"), "wizard"))
    for path in sorted((RESOURCES / "icons").glob("*.png")):
        pairs.append((str(path), "resources/icons"))
    for name in ("app.json", "palette-wizard.desktop"):
        pairs.append((str(RESOURCES / name), "resources"))
    return pairs


def hiddenimports() -> list[str]:
    """Modules loaded by name at run time, which the import scan cannot see."""
    return [
        # keyring finds its backends through entry points; name the ones each OS uses.
        "keyring.backends.SecretService",
        "keyring.backends.kwallet",
        "keyring.backends.libsecret",
        "keyring.backends.macOS",
        "keyring.backends.Windows",
        "keyring.backends.chainer",
        "keyring.backends.fail",
        "keyring.backends.null",
        # the rehearsal lab runs inside the app (`--rehearse`); its modules load lazily from the CLI.
        "wizard.rehearsal",
        "wizard.ui.app",
        "wizard.ui.rehearsal",
    ]


def metadata_packages() -> list[str]:
    """Distributions whose metadata code reads at run time (entry points, versions)."""
    return ["keyring", "palette-appliance-wizard", "httpx", "jsonschema", "paramiko", "pyvmomi"]


def qt_excludes() -> list[str]:
    """Every PySide6 extension module except the ones the app uses, as excludes for Analysis."""
    try:
        import PySide6
    except ImportError:  # a spec consistency check without Qt installed
        return []
    folder = Path(PySide6.__file__).parent
    names = {p.name.split(".")[0] for p in folder.glob("Qt*.*") if p.suffix in (".so", ".pyd") or ".abi3." in p.name}
    names |= {p.name for p in folder.glob("Qt*") if p.is_dir() and (p / "__init__.py").exists()}
    return sorted(f"PySide6.{n}" for n in names if n not in QT_MODULES)


def _stem(filename: str) -> str:
    stem = filename.split(".", maxsplit=1)[0]
    return stem[3:] if stem.startswith("lib") else stem


def keep_binary_or_data(dest: str) -> bool:
    """False for collected Qt files the app never loads (other plugins, their libraries, translations, QML)."""
    parts = Path(dest).parts
    if "PySide6" not in parts:
        return True
    rest = parts[parts.index("PySide6") + 1 :]
    if rest[:1] == ("Qt",):
        rest = rest[1:]
    if rest[:1] in (("qml",), ("translations",)):  # no QML; the UI is English, so Qt's catalogues would mix languages
        return False
    if rest[:1] == ("plugins",) and len(rest) > 2:
        allowed = QT_PLUGINS.get(rest[1], ())
        return allowed is None or _stem(rest[2]) in allowed
    for part in rest:
        m = _QT_LIB.match(part)
        if m and m.group(1) in QT_LIBS_DROPPED:
            return False
    return True


def trim(toc: Any) -> Any:
    """A PyInstaller TOC (or list of tuples) without the entries :func:`keep_binary_or_data` refuses."""
    return [entry for entry in toc if keep_binary_or_data(entry[0])]


def windows_version_file(out_dir: Path) -> Path:
    """Write the Windows VERSIONINFO resource for the executables and return its path."""
    info = app_info()
    v = version_tuple(info.version)
    fields = {
        "CompanyName": info.organisation,
        "FileDescription": info.display_name,
        "FileVersion": info.version,
        "InternalName": info.name,
        "LegalCopyright": info.copyright,
        "OriginalFilename": f"{info.name}.exe",
        "ProductName": info.display_name,
        "ProductVersion": info.version,
    }
    strings = ",\n".join(f"          StringStruct({k!r}, {val!r})" for k, val in fields.items())
    text = f"""# Generated by installers/common.py from resources/app.json and wizard.__version__; do not edit.
VSVersionInfo(
  ffi=FixedFileInfo(filevers={v}, prodvers={v}, mask=0x3f, flags=0x0, OS=0x40004, fileType=0x1, subtype=0x0,
                    date=(0, 0)),
  kids=[
    StringFileInfo([
      StringTable('040904B0', [
{strings}
      ])
    ]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "version_info.txt"
    path.write_text(text, encoding="utf-8")
    return path


def info_plist() -> dict[str, Any]:
    """The macOS bundle's Info.plist keys."""
    info = app_info()
    return {
        "CFBundleName": info.display_name,
        "CFBundleDisplayName": info.display_name,
        "CFBundleIdentifier": info.bundle_identifier,
        "CFBundleShortVersionString": info.version,
        "CFBundleVersion": info.version,
        "CFBundleExecutable": info.name,
        "CFBundlePackageType": "APPL",
        "LSApplicationCategoryType": info.macos_category,
        "LSMinimumSystemVersion": info.macos_minimum,
        "NSHighResolutionCapable": True,
        "NSHumanReadableCopyright": info.copyright,
        # the wizard talks to nodes on the local network (Local UI, SSH, BMCs): say why when macOS asks.
        "NSLocalNetworkUsageDescription": "The wizard connects to the appliance nodes, their BMCs and vCenter "
        "on your network to install Palette.",
    }


def check_python() -> None:
    # The spec runs under whatever Python PyInstaller was installed into; the bundle carries that very Python.
    if sys.version_info[:2] < (3, 11):  # noqa: UP036 - the build may be started by an older interpreter
        raise SystemExit("error: the desktop bundle needs Python 3.11 or newer")
