"""A kept rehearsal for day-2 tests: an appliance installed by the wizard in the lab, then started again."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.support.quickboot import quick
from wizard.core.jobs import Step
from wizard.core.runner import Event, ExitCode, JobFinished
from wizard.install.day2 import open_day2
from wizard.install.session import Session
from wizard.install.upgrade import UpgradeBundle, upgrade_pipeline
from wizard.lab.keep import STATE_FILE
from wizard.rehearsal import Rehearsal, pacing_for

SPEED = 600.0


def install_kept(folder: Path, *, nodes: int = 1, knobs: str = "version=4.9.38") -> Path:
    """Install the lab's appliance through the wizard and keep the rehearsal; its folder."""
    with Rehearsal(folder, nodes=nodes, speed=SPEED, lab=quick(knobs), keep=True) as rehearsal:
        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        code = session.engine(steps=rehearsal.steps(), on_event=rehearsal.on_event).run()
        assert code is ExitCode.DONE, session.journal.snapshot()["jobs"]
    assert (folder / STATE_FILE).is_file()
    return folder


def edit_state(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / STATE_FILE
    state = json.loads(path.read_text())
    change(state)
    path.write_text(json.dumps(state))


def run_day2(
    rehearsal: Rehearsal,
    action: str,
    key: str,
    steps: Iterable[Step],
    *,
    setup: Callable[[Session], None] | None = None,
) -> tuple[ExitCode, dict[str, JobFinished], Session]:
    """Run ``steps`` as the day-2 ``action`` on the reopened rehearsal; the exit code and every finished job."""
    session = open_day2(rehearsal.project_file, action, key, paths=rehearsal.paths, secrets=rehearsal.secrets)
    if setup is not None:
        setup(session)
    seen: list[Event] = []
    code = session.engine(steps=list(steps), on_event=seen.append).run()
    return code, {e.job: e for e in seen if isinstance(e, JobFinished)}, session


def upgrade(
    rehearsal: Rehearsal, bundle: Path | None = None, **kw: Any
) -> tuple[ExitCode, dict[str, JobFinished], Session]:
    chosen = UpgradeBundle.at(bundle or rehearsal.upgrade_bundle)  # type: ignore[arg-type]
    return run_day2(rehearsal, "upgrade", chosen.key, upgrade_pipeline(chosen, pacing_for(rehearsal.speed)), **kw)
