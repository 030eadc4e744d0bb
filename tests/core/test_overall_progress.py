"""One overall progress for the whole install: planned up front from every step's expected duration, never going
backwards within a run or from one run of a session to the next, 1.0 only when the install's last step ends."""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.projects import base_doc, write_project
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.journal import Journal
from wizard.core.overall import CAP, OverallPlan
from wizard.core.paths import app_paths
from wizard.core.progress import Progress, Reporter
from wizard.core.project import parse_project
from wizard.core.runner import Engine, Event, ExitCode, RunFinished
from wizard.core.secrets import SecretStore
from wizard.headless import run_headless

NODES = ("node-1", "node-2", "node-3")


class PacedJob(Job):
    """Moves its fraction in ten steps; fails while ``failing`` names its node."""

    def __init__(self, job_id: str, node: str = "", failing: set[str] | None = None, *, rerun: bool = False) -> None:
        self.id = job_id
        self.name = node or job_id
        self.node = node
        self.failing = failing if failing is not None else set()
        self.rerun = rerun

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        for i in range(1, 11):
            cancel.sleep(0.002)
            report.update(i / 10 * (0.8 if self.node in self.failing else 1.0), f"{self.id} at {i}0%")
        if self.node in self.failing:
            raise WizardError("Install failed", f"{self.node} failed", remediation="retry it")
        return {}


class ListStep(Step):
    def __init__(self, step_id: str, jobs: list[Job], expected: float, kind: StepKind = StepKind.INSTALL) -> None:
        self.id = step_id
        self.title = step_id.title()
        self.kind = kind
        self.expected = expected
        self._jobs = jobs

    def jobs(self, ctx: StepContext) -> list[Job]:
        return self._jobs


def install(failing: set[str]) -> list[Step]:
    """checks (rerun every time), boot, install (the ``failing`` nodes fail), cluster: a small install's shape."""
    return [
        ListStep("checks", [PacedJob("checks/all", rerun=True)], 30.0, StepKind.PREFLIGHT),
        ListStep("boot", [PacedJob(f"boot/{n}", n) for n in NODES], 180.0),
        ListStep("install", [PacedJob(f"install/{n}", n, failing) for n in NODES], 1200.0),
        ListStep("cluster", [PacedJob("cluster/create")], 1500.0),
    ]


def make_ctx(tmp_path: Path) -> StepContext:
    project = parse_project(base_doc()).project
    return StepContext(project, SecretStore(), Journal.open(tmp_path / "j.json", "p"), app_paths().ensure())


class Sampler:
    """Reads the run's snapshot as fast as it can (as the GUI's timer would, only more often) and keeps every
    planned fraction it saw."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seen: list[float] = []
        self.early_full = False  # 1.0 seen before the install's last step ended
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read)

    def _read(self) -> None:
        while not self._stop.is_set():
            snap = self.progress.snapshot()
            if snap.planned:
                self.seen.append(snap.fraction)
                self.early_full = self.early_full or (snap.fraction >= 1.0 and not snap.finished)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        snap = self.progress.snapshot()
        if snap.planned:
            self.seen.append(snap.fraction)


def run(ctx: StepContext, steps: list[Step], plan: list[Step], **kw: Any) -> tuple[RunFinished, list[float]]:
    events: list[Event] = []
    progress = Progress()
    with Sampler(progress) as sampler:
        Engine(ctx, steps, progress=progress, on_event=events.append, plan=plan, **kw).run()
    final = events[-1]
    assert isinstance(final, RunFinished)
    assert not sampler.early_full, "100 % before the last step ended"
    return final, sampler.seen


def test_the_plan_weighs_steps_by_their_expected_duration_and_holds_on_a_dip() -> None:
    plan = OverallPlan([("a", 10.0), ("b", 30.0)], credit={"a": 1.0})
    assert plan.shown == pytest.approx(0.25)  # a's quarter, credited by an earlier run
    plan.add_job("a", "a/1", 1.0)
    plan.begin_step("a", 0.0)  # a runs again from zero: the estimate drops, the bar holds
    assert plan.raw == 0.0 and plan.shown == pytest.approx(0.25)
    plan.job("a", "a/1", 1.0)
    plan.end_step("a", True, 1.0, worked=True)
    assert plan.shown > 0.25
    plan.add_job("b", "b/1", 1.0)
    plan.begin_step("b", 1.0)
    before = plan.shown
    plan.job("b", "b/1", 0.5)
    assert before < plan.shown < 1.0
    plan.job("b", "b/1", 1.0)
    plan.end_step("b", True, 2.0, worked=True)
    assert plan.shown == CAP  # everything done, but the install has not ended yet
    plan.finish()
    assert plan.shown == 1.0


def test_the_floor_from_an_earlier_run_is_where_the_bar_starts_and_the_rest_is_rescaled() -> None:
    plan = OverallPlan([("a", 1.0), ("b", 1.0)], credit={"a": 0.5}, floor=0.6)
    assert plan.raw == pytest.approx(0.25) and plan.shown == pytest.approx(0.6)
    plan.add_job("a", "a/1", 1.0)
    plan.begin_step("a", 0.0)
    plan.job("a", "a/1", 1.0)  # the estimate goes 0 → 0.5 of the remaining 1.0: half the bar's rest
    assert plan.shown == pytest.approx(0.6 + 0.5 * 0.4)


def test_the_eta_scales_the_expected_durations_by_the_pace_this_run_shows() -> None:
    plan = OverallPlan([("a", 100.0), ("b", 100.0), ("c", 200.0)])
    assert plan.eta(0.0) == pytest.approx(400.0)
    for step, t0, t1 in (("a", 0.0, 10.0), ("b", 10.0, 20.0)):  # each took a tenth of what was expected
        plan.add_job(step, f"{step}/1", 1.0)
        plan.begin_step(step, t0)
        plan.job(step, f"{step}/1", 1.0)
        plan.end_step(step, True, t1, worked=True)
    eta = plan.eta(20.0)
    assert eta is not None and 20.0 < eta < 200.0  # faster than documented, blended with the documented pace
    plan.add_job("c", "c/1", 1.0)
    plan.begin_step("c", 20.0)
    assert plan.eta(20.0, {"c": 500.0}) == pytest.approx(500.0)  # a slower transfer's own estimate wins
    plan.finish()
    assert plan.eta(20.0) is None


def test_an_install_run_up_to_a_step_is_a_part_of_the_whole_not_all_of_it(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    whole = install(set())
    first, seen = run(ctx, whole[:1], whole)
    assert first.exit_code is ExitCode.DONE
    assert 0.0 < first.fraction < 0.05, "a preflight-only run is not the whole install"
    second, seen2 = run(ctx, whole, whole)
    assert second.exit_code is ExitCode.DONE and second.fraction == 1.0
    assert seen2[0] >= first.fraction, "the next run starts where the last one ended"
    assert all(b >= a for a, b in itertools.pairwise(seen + seen2))
    assert all(f < 1.0 for f in seen)


def test_progress_never_goes_back_over_a_failure_a_node_retry_and_a_resume(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    failing = {"node-2", "node-3"}
    steps = install(failing)
    failed, seen1 = run(ctx, steps, steps)
    assert failed.exit_code is ExitCode.INSTALL_FAILED and 0.0 < failed.fraction < 1.0
    failing.discard("node-2")
    retried, seen2 = run(ctx, steps, steps, only_nodes=["node-2"])
    assert retried.exit_code is ExitCode.INCOMPLETE and retried.held == ("node-3",), retried
    failing.clear()
    resumed, seen3 = run(ctx, steps, steps)
    assert resumed.exit_code is ExitCode.DONE and resumed.fraction == 1.0
    every = seen1 + seen2 + seen3
    assert all(b >= a for a, b in itertools.pairwise(every)), "the overall progress went backwards"
    assert every[-1] == 1.0 and all(f < 1.0 for f in seen1 + seen2)


def test_headless_json_progress_never_goes_back_and_reaches_one_only_in_run_finished(tmp_path: Path) -> None:
    project = write_project(tmp_path, base_doc())
    failing = {"node-2", "node-3"}
    steps = install(failing)
    outputs = []
    for only, fixed in ((None, ""), (["node-2"], "node-2"), (None, "node-3")):
        failing.discard(fixed)  # a failed run, a retry of one node, then the rest resumed
        out = io.StringIO()
        run_headless(project, json_mode=True, out=out, steps=steps, only_nodes=only)
        outputs.append([json.loads(line) for line in out.getvalue().splitlines()])
    fractions = [e["fraction"] for events in outputs for e in events if e["event"] in ("progress", "run_finished")]
    assert all(b >= a for a, b in itertools.pairwise(fractions)), fractions
    last = outputs[-1]
    finished = [e for e in last if e["event"] == "run_finished"]
    assert len(finished) == 1 and finished[0]["exit_code"] == 0 and finished[0]["fraction"] == 1.0
    progress = [e for events in outputs for e in events if e["event"] == "progress"]
    assert progress and all(e["fraction"] < 1.0 for e in progress)
    # One line per change: no progress event repeats the one before it.
    said = [(e["fraction"], e["message"], e["tasks"]) for e in progress]
    assert all(a != b for a, b in itertools.pairwise(said))
