"""The engine and the headless runner never load Qt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.core.helpers import ROOT, cli_env
from tests.support.projects import base_doc, signed_iso, write_project

CODE = """
import sys, pkgutil, importlib
import wizard, wizard.core, wizard.headless, wizard.cli
for mod in pkgutil.walk_packages(wizard.core.__path__, "wizard.core."):
    importlib.import_module(mod.name)
from pathlib import Path
code = wizard.cli.main(["run", sys.argv[1], "--until", "preflight"])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6"))
assert not loaded, loaded
assert code == 0, code
print("qt-free")
"""


def test_engine_and_headless_run_never_import_qt(tmp_path: Path) -> None:
    _, public = signed_iso(tmp_path, size=1024)
    path = write_project(tmp_path, base_doc(files={"iso": "appliance.iso", "public_key": public.name}))
    out = subprocess.run(
        [sys.executable, "-c", CODE, str(path)],
        capture_output=True,
        text=True,
        env=cli_env(tmp_path / "home"),
        timeout=120,
    )
    assert out.returncode == 0 and "qt-free" in out.stdout, out.stdout + out.stderr


def test_ruff_bans_qt_outside_the_ui_package() -> None:
    config = (ROOT / "pyproject.toml").read_text()
    assert '"PySide6".msg' in config and '"wizard/ui/**" = ["TID251"]' in config
    offender = ROOT / "wizard" / "core" / "_qt_probe_tmp.py"
    offender.write_text("import PySide6\n")
    try:
        out = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--select", "TID251", str(offender)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    finally:
        offender.unlink()
    assert out.returncode != 0 and "TID251" in out.stdout, out.stdout + out.stderr
