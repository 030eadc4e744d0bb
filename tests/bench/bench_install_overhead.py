"""The install's own overhead: a whole rehearsal's wall time against what the simulated appliance needed.

A rehearsal (3 nodes, the manual provider, the lab at speed 60: a 15-minute install takes 15 s) runs the very engine
of ``palette-wizard run``. The lab records its own timeline (:mod:`wizard.lab.timeline`): every piece of work the
wizard has to wait for, as (category, node, start, end). Each step's window is laid over the categories that step
waits for; the part of the window the appliance was busy with them is what the step needed, the rest is the
wizard's overhead — polling lag, connections, checks, uploads. Steps that wait for no appliance work (verify,
preflight, media, post-boot checks, …) are overhead throughout. The ratio is the run's wall time over the sum of
what the steps needed (goal ≤ 1.05); a table of every step and the step that adds the most go to stderr. Usage::

    python -m tests.bench.bench_install_overhead [SPEED]        # default 60
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from wizard.core.runner import Event, ExitCode, StepFinished, StepStarted
from wizard.install.session import Session
from wizard.lab.timeline import covered
from wizard.rehearsal import Rehearsal

SPEED = 60.0
NODES = 3
#: What each step waits for on the appliance (lab timeline categories); a step not named waits for nothing.
STEP_WORK: dict[str, tuple[str, ...]] = {
    "boot": ("install",),  # the nodes boot the installer from the moment they are powered on
    "install": ("install", "reboot"),  # the installer's work, then the reboot until the Local UI answers
    "password": ("configure", "reboot"),
    "configure": ("configure", "reboot"),
    "content": ("content-sync",),
    "cluster": ("cluster",),
    "console": ("cluster",),  # the console answers once the cluster runs
    "packs": ("pack-import", "registry-sync"),  # each upload imported into the registry, then the sync
}


@dataclass
class StepTime:
    step: str
    start: float
    end: float = 0.0
    needed: float = 0.0

    @property
    def wall(self) -> float:
        return self.end - self.start

    @property
    def overhead(self) -> float:
        return self.wall - self.needed


def rehearse(speed: float = SPEED, nodes: int = NODES) -> tuple[list[StepTime], float]:
    """One rehearsal; its steps with what each needed, and the run's wall time (both on the lab's clock)."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-install-overhead-") as tmp,
        Rehearsal(Path(tmp) / "rehearsal", nodes=nodes, speed=speed) as rehearsal,
    ):
        lab = rehearsal.lab
        assert lab is not None
        clock = lab.clock
        steps: dict[str, StepTime] = {}

        def on_event(event: Event) -> None:
            rehearsal.on_event(event)
            if isinstance(event, StepStarted):
                steps[event.step] = StepTime(event.step, clock())
            elif isinstance(event, StepFinished) and event.step in steps:
                steps[event.step].end = clock()

        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        started = clock()
        code = session.engine(steps=rehearsal.steps(), on_event=on_event).run()
        wall = clock() - started
        if code is not ExitCode.DONE:
            raise RuntimeError(f"the rehearsal ended with {code}: {session.journal.path.read_text()[-3000:]}")
        for step in steps.values():
            step.needed = covered(lab.timeline.intervals(STEP_WORK.get(step.step, ())), step.start, step.end)
    return list(steps.values()), wall


def run(speed: float = SPEED) -> str:
    # The lab's SSH servers log every probe of a node still booting (a refused banner) with a traceback.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    started = time.perf_counter()
    steps, wall = rehearse(speed)
    needed = sum(s.needed for s in steps)
    between = wall - sum(s.wall for s in steps)  # the engine's own time between steps
    print(f"install-overhead: {NODES} nodes at speed {speed:g}, {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(f"{'step':<12} {'wall s':>8} {'needed s':>9} {'overhead s':>11}", file=sys.stderr)
    for s in steps:
        print(f"{s.step:<12} {s.wall:8.2f} {s.needed:9.2f} {s.overhead:11.2f}", file=sys.stderr)
    print(f"{'(between)':<12} {between:8.2f} {0.0:9.2f} {between:11.2f}", file=sys.stderr)
    worst = max(steps, key=lambda s: s.overhead)
    print(
        f"install-overhead: {wall - needed:.2f} s of {wall:.2f} s is the wizard's own; "
        f"the step adding the most: {worst.step} (+{worst.overhead:.2f} s)",
        file=sys.stderr,
    )
    return (
        f"bench install-overhead: ratio {wall / needed:.2f} (ours {wall:.2f} s, reference the lab's timeline "
        f"{needed:.2f} s; most added by {worst.step}, +{worst.overhead:.2f} s)"
    )


if __name__ == "__main__":
    print(run(float(sys.argv[1]) if len(sys.argv) > 1 else SPEED), flush=True)
