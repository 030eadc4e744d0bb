"""Screenshots of the desktop wizard for a visual check (not a test).

    python tests/ui/screenshots.py OUTDIR

Walks Welcome → Project (valid, then invalid) → Run (in progress, finished, failed) → Welcome with the unfinished
session, then a whole desktop rehearsal run on the lab, saving one PNG per state. Works offscreen or under
``xvfb-run -a``. Everything it writes (journals, logs, the sample project and its ISO, the rehearsal) goes to a
temporary folder; the OS keyring is not touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

import keyring
from PySide6.QtTest import QTest

from tests.support.projects import appliance_iso
from tests.ui.helpers import (
    ISO_SIZE,
    ZERO_SHA,
    InMemoryKeyring,
    PacedStep,
    invalid_doc,
    valid_doc,
    write_project,
)
from wizard.core.logs import setup_logging
from wizard.core.paths import app_paths
from wizard.core.progress import TaskState
from wizard.core.steps import pipeline
from wizard.lab.rehearsal import Rehearsal
from wizard.ui.app import application
from wizard.ui.rehearsal import rehearsal_window
from wizard.ui.shell import MainWindow


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the wizard did not reach the expected state")
        QTest.qWait(20)


def snapshot_tasks(window: MainWindow) -> tuple[TaskState, ...]:
    snap = window.controller.snapshot()
    return snap.tasks if snap is not None else ()


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wizard-shots-"))
    os.environ["PALETTE_WIZARD_HOME"] = str(work / "home")
    keyring.set_keyring(InMemoryKeyring())
    setup_logging(app_paths().ensure().logs)  # engine messages go to the log, not the terminal

    appliance_iso(work / "appliance.iso", ISO_SIZE)
    valid = write_project(work, valid_doc(), "project.yaml")
    invalid = write_project(work, invalid_doc(), "broken.yaml")
    bad_sum = valid_doc(files={"iso": {"path": "appliance.iso", "sha256": ZERO_SHA}})
    failing = write_project(work, bad_sum, "bad-sum.yaml")

    app = application()
    window = MainWindow(steps=lambda: [*pipeline(until="preflight"), PacedStep(seconds=3.0)])
    window.show()
    shots: list[Path] = []

    def shot(name: str, of: MainWindow | None = None) -> None:
        QTest.qWait(150)  # let layouts settle
        path = out / f"{name}.png"
        (of or window).grab().save(str(path))
        shots.append(path)

    shot("01-welcome")

    window.open_project(invalid)
    shot("02-project-invalid")

    window.open_project(valid)
    shot("03-project-valid")

    window.next()
    shot("04-run-ready")
    window.run.start()
    wait_until(lambda: any(t.key.startswith("paced/") and t.fraction > 0.4 for t in snapshot_tasks(window)))
    shot("05-run-in-progress")
    wait_until(lambda: not window.controller.running)
    shot("06-run-finished")

    window.open_project(failing, goto=MainWindow.RUN)
    window.run.start()
    wait_until(lambda: not window.controller.running)
    shot("07-run-failed")
    window.run.error_panel.details_toggle.setChecked(True)
    shot("08-run-failed-details")
    window.resize(window.minimumSize())
    shot("08b-run-failed-details-minimum-size")
    window.resize(1100, 720)

    (app_paths().state / "sessions" / "damaged-0123456789ab.json").write_text("{not json")
    window.go_to(MainWindow.WELCOME)
    shot("09-welcome-sessions")

    window.close()
    app.processEvents()

    with Rehearsal(work / "rehearsal", nodes=3, speed=300) as rehearsal:
        rehearsed = rehearsal_window(rehearsal)
        rehearsed.show()
        rehearsed.go_to(MainWindow.RUN)
        rehearsed.run.start()
        wait_until(lambda: rehearsed.run.last_result is not None and not rehearsed.controller.running, timeout=120)
        shot("10-rehearsal-finished", rehearsed)
        rehearsed.close()
        app.processEvents()
    for path in shots:
        print(path)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main(Path(sys.argv[1])))
