from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.projects import base_doc
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.journal import Journal
from wizard.core.paths import app_paths
from wizard.core.problems import Problem
from wizard.core.progress import Progress, Reporter, TaskStatus
from wizard.core.project import parse_project
from wizard.core.runner import Engine, Event, ExitCode, JobFinished, RunFinished, StepBlocked
from wizard.core.secrets import SecretStore


class CountingJob(Job):
    def __init__(
        self, job_id: str, counter: dict[str, int], *, fail: bool = False, delay: float = 0.0, node: str = ""
    ) -> None:
        self.id = job_id
        self.name = job_id
        self.node = node
        self.counter = counter
        self.fail = fail
        self.delay = delay
        self.active = 0

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        self.counter[self.id] = self.counter.get(self.id, 0) + 1
        for i in range(10):
            cancel.sleep(self.delay / 10)
            report.update((i + 1) / 10)
        if self.fail:
            raise WizardError("Boom", f"{self.id} failed", remediation="fix it")
        return {"ran": self.id}


class ListStep(Step):
    def __init__(
        self,
        step_id: str,
        jobs: list[Job],
        kind: StepKind = StepKind.INSTALL,
        problems: list[Problem] | None = None,
        parallel: int = 4,
    ) -> None:
        self.id = step_id
        self.title = step_id.title()
        self._jobs = jobs
        self.kind = kind
        self._problems = problems or []
        self.parallel = parallel

    def problems(self, ctx: StepContext) -> list[Problem]:
        return self._problems

    def jobs(self, ctx: StepContext) -> list[Job]:
        return self._jobs


def make_ctx(tmp_path: Path) -> StepContext:
    project = parse_project(base_doc()).project
    paths = app_paths().ensure()
    return StepContext(project, SecretStore(), Journal.open(tmp_path / "j.json", "p"), paths)


def test_jobs_run_in_parallel_and_resume_skips_finished(tmp_path: Path) -> None:
    counter: dict[str, int] = {}
    ctx = make_ctx(tmp_path)
    jobs: list[Job] = [CountingJob(f"boot/node-{i}", counter, delay=0.2, node=f"node-{i}") for i in range(3)]
    progress = Progress()
    start = time.monotonic()
    code = Engine(ctx, [ListStep("boot", jobs)], progress=progress).run()
    assert code is ExitCode.DONE
    assert time.monotonic() - start < 0.55, "three 0.2 s jobs must overlap"
    assert progress.snapshot().fraction == 1.0
    events: list[Event] = []
    code = Engine(ctx, [ListStep("boot", jobs)], on_event=events.append).run()
    assert code is ExitCode.DONE
    assert counter == {f"boot/node-{i}": 1 for i in range(3)}
    skipped = [e for e in events if isinstance(e, JobFinished) and e.status is TaskStatus.SKIPPED]
    assert len(skipped) == 3 and skipped[0].result == {"ran": skipped[0].job}


class RerunJob(CountingJob):
    rerun = True

    def fingerprint(self) -> str:
        return "same inputs"


def test_a_rerun_job_runs_every_time_and_keeps_its_fingerprint(tmp_path: Path) -> None:
    counter: dict[str, int] = {}
    ctx = make_ctx(tmp_path)
    jobs: list[Job] = [RerunJob("media/server", counter), CountingJob("media/other", counter)]
    for _ in range(2):
        assert Engine(ctx, [ListStep("media", jobs)]).run() is ExitCode.DONE
    assert counter == {"media/server": 2, "media/other": 1}
    # What a run records is a pure function of the inputs: a job asked to run again can later be skipped.
    assert ctx.journal.is_done("media/server", "same inputs")


def test_a_failed_job_fails_the_step_after_the_others_finish(tmp_path: Path) -> None:
    counter: dict[str, int] = {}
    ctx = make_ctx(tmp_path)
    jobs: list[Job] = [CountingJob("s/a", counter, fail=True), CountingJob("s/b", counter, delay=0.1)]
    events: list[Event] = []
    code = Engine(ctx, [ListStep("s", jobs)], on_event=events.append).run()
    assert code is ExitCode.INSTALL_FAILED
    final = events[-1]
    assert isinstance(final, RunFinished) and final.error is not None
    assert "s/a failed" in final.error["message"] and final.error["remediation"] == "fix it"
    assert ctx.journal.is_done("s/b", "")
    # Rerun: only the failed job runs again.
    jobs[0].fail = False  # type: ignore[attr-defined]
    assert Engine(ctx, [ListStep("s", jobs)]).run() is ExitCode.DONE
    assert counter == {"s/a": 2, "s/b": 1}


def test_preflight_failures_and_blockers_exit_3(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    blocked = ListStep("pre", [], StepKind.PREFLIGHT, [Problem("network.vip", "in use", "pick another")])
    events: list[Event] = []
    assert Engine(ctx, [blocked], on_event=events.append).run() is ExitCode.PREFLIGHT_BLOCKED
    assert any(isinstance(e, StepBlocked) for e in events)
    failing = ListStep("pre2", [CountingJob("pre2/x", {}, fail=True)], StepKind.PREFLIGHT)
    assert Engine(ctx, [failing]).run() is ExitCode.PREFLIGHT_BLOCKED
    invalid = ListStep("inp", [], StepKind.INPUT, [Problem("nodes[0].ip", "bad")])
    assert Engine(ctx, [invalid]).run() is ExitCode.INVALID_INPUT
    install = ListStep("inst", [], StepKind.INSTALL, [Problem("nodes[0]", "not reachable")])
    assert Engine(ctx, [install]).run() is ExitCode.INSTALL_FAILED


def test_unexpected_exceptions_become_errors_with_details(tmp_path: Path) -> None:
    class Crashing(Job):
        id = "s/crash"
        name = "crash"

        def run(self, report: Reporter, cancel: CancelToken) -> None:
            raise KeyError("surprise")

    events: list[Event] = []
    assert Engine(make_ctx(tmp_path), [ListStep("s", [Crashing()])], on_event=events.append).run() == 4
    final = events[-1]
    assert isinstance(final, RunFinished) and final.error is not None
    assert "KeyError" in final.error["message"] and "Traceback" in final.error["details"]


def test_cancel_stops_running_and_pending_jobs(tmp_path: Path) -> None:
    counter: dict[str, int] = {}
    ctx = make_ctx(tmp_path)
    jobs: list[Job] = [CountingJob(f"s/{i}", counter, delay=5) for i in range(4)]
    cancel = CancelToken()
    progress = Progress()
    engine = Engine(ctx, [ListStep("s", jobs, parallel=2)], cancel=cancel, progress=progress)
    threading.Timer(0.2, cancel.cancel).start()
    start = time.monotonic()
    assert engine.run() is ExitCode.CANCELLED
    assert time.monotonic() - start < 2
    assert len(counter) == 2, "pending jobs must not start after cancel"
    statuses = {t.key: t.status for t in progress.snapshot().tasks}
    assert set(statuses.values()) == {TaskStatus.CANCELLED}
    assert ctx.journal.status == "cancelled"
