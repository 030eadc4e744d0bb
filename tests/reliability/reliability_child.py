"""The headless run a kill-and-resume test SIGKILLs:
``python -m tests.reliability.reliability_child PROJECT HOME SPEED [UNTIL]``.

It is ``palette-wizard run PROJECT --json`` (the same :func:`wizard.headless.run_headless`, engine and journal) with
the rehearsal's pacing, so a lab kept alive by the test process installs in seconds; its secrets come from the
file keyring named by ``TEST_KEYRING_FILE`` (set through ``PYTHON_KEYRING_BACKEND``), its state from ``HOME``'s
folders, which are the ones the lab's :class:`~wizard.rehearsal.Rehearsal` made — the journal and trust store
outlive every killed process.
"""

from __future__ import annotations

import sys
from pathlib import Path

from wizard.core.paths import AppPaths
from wizard.core.secrets import SecretStore
from wizard.headless import run_headless
from wizard.rehearsal import Rehearsal


def main(argv: list[str]) -> int:
    project, home, speed = Path(argv[0]), Path(argv[1]), float(argv[2])
    until = argv[3] if len(argv) > 3 and argv[3] else None
    paths = AppPaths(home / "state", home / "logs", home / "config", home / "cache")
    # Rehearsal.steps() only reads the speed; no lab is started here (prepare() is never called).
    steps = Rehearsal(home.parent, speed=speed).steps(until)
    return run_headless(project, json_mode=True, steps=steps, paths=paths, secrets=SecretStore())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
