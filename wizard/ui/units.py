"""Byte counts, durations and engine file names as the pages show them, without loading the engine.

The headless runner (``wizard.headless``) and the steps own these; importing them from there loads the whole engine
(about half a second), which the first window must not wait for. tests/ui/test_cold_start.py proves they agree.
"""

from __future__ import annotations

from pathlib import Path

#: The kubeconfig's name in the session folder (``wizard.install.steps.localui.KUBECONFIG``).
KUBECONFIG = "kubeconfig"


def human_bytes(n: float) -> str:
    """``wizard.headless.human_bytes``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_duration(seconds: float) -> str:
    """``wizard.headless.human_duration``."""
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def preflight_report_paths(journal: Path) -> tuple[Path, Path]:
    """The preflight report's JSON and HTML beside a session journal (as
    ``wizard.install.steps.preflight.report_paths`` puts them)."""
    folder = journal.with_suffix("")
    return folder / "preflight-report.json", folder / "preflight-report.html"
