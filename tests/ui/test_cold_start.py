"""The first window does not wait for the engine: what it shows is computed without loading it, and the window
reports when it has painted (the cold-start benchmark's marker)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wizard.headless import human_bytes, human_duration
from wizard.install.steps.localui import KUBECONFIG
from wizard.install.steps.preflight import report_paths
from wizard.ui import units
from wizard.ui.app import EXIT_WHEN_SHOWN_ENV, SHOWN_MARKER

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[2]
# What a run needs and the first window must not load (each is a large share of the start-up time).
ENGINE = (
    "wizard.install.steps",
    "wizard.install.session",
    "wizard.install.abort",
    "wizard.headless",
    "wizard.providers",
)


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", PALETTE_WIZARD_HOME=str(tmp_path / "home"))


@pytest.mark.parametrize("n", [0, 1, 1023, 1024, 1536, 5 * 1024**2, 3.5 * 1024**3, 2 * 1024**5])
def test_byte_counts_read_as_the_headless_runner_writes_them(n: float) -> None:
    assert units.human_bytes(n) == human_bytes(n)


@pytest.mark.parametrize("seconds", [-3, 0, 0.9, 59, 60, 3599, 3600, 86399.5])
def test_durations_read_as_the_headless_runner_writes_them(seconds: float) -> None:
    assert units.human_duration(seconds) == human_duration(seconds)


def test_engine_file_names_are_the_engines(tmp_path: Path) -> None:
    journal = tmp_path / "sessions" / "palette-mgmt-1234.json"
    assert units.preflight_report_paths(journal) == report_paths(journal)
    assert units.KUBECONFIG == KUBECONFIG


def test_the_window_module_loads_without_the_engine(tmp_path: Path) -> None:
    probe = (
        "import sys, wizard.ui.app\n"
        f"print(sorted(m for m in sys.modules if m.startswith({ENGINE!r}) or m in ('paramiko', 'pyVmomi')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=_env(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_the_first_window_builds_only_what_it_shows(tmp_path: Path) -> None:
    """The first window has the Welcome and Project pages; the others, and the keyring's backends, load later."""
    probe = (
        "import sys\n"
        "from wizard.ui.app import application\n"
        "from wizard.ui.shell import MainWindow\n"
        "app = application()\n"
        "window = MainWindow()\n"
        "def loaded():\n"
        "    return sorted(m for m in sys.modules if m.startswith(('wizard.ui.pages.', 'keyring.backends.')))\n"
        "print(loaded())\n"
        "window.credentials\n"
        "print('keyring.backends.chainer' in loaded(), 'wizard.ui.pages.summary' in loaded())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=_env(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    first, later = out.stdout.splitlines()
    assert first == str(["wizard.ui.pages.project", "wizard.ui.pages.welcome"]), first
    assert later == "True True", later


def test_the_wizard_says_when_its_window_is_shown(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wizard", "gui"],
        env=dict(_env(tmp_path), **{EXIT_WHEN_SHOWN_ENV: "1"}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert SHOWN_MARKER in out.stdout.splitlines(), out.stdout


def test_the_engine_loads_in_the_background(tmp_path: Path) -> None:
    """After the first paint the engine is imported on a worker, the check modules the first preflight reads too,
    so Start does not wait for them and the run does not load them under the window."""
    probe = (
        "import sys, wizard.ui.app as app\n"
        "thread = app.warm_up()\n"
        "thread.join(60)\n"
        "from wizard.core.checks.catalog import CHECK_MODULES\n"
        "print(thread.name, not thread.is_alive(), all(m in sys.modules for m in app.ENGINE_MODULES),\n"
        "      all(m in sys.modules for m in CHECK_MODULES))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=_env(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["warm-up", "True", "True", "True"], out.stdout
