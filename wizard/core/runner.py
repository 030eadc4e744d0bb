"""The engine that runs steps and their jobs; the headless runner and the GUI both drive it.

Jobs of a step run in parallel worker threads. Progress goes to a :class:`~wizard.core.progress.Progress` that
readers poll; lifecycle events go to a callback as plain dataclasses (the GUI forwards them through a queued
signal, the terminal prints them). Every job is recorded in the journal before and after it runs, so a run killed
anywhere resumes without repeating finished work.

A run may retry some nodes only (``only_nodes``): the pending jobs of other nodes are *held* — not run, not
journaled — and the run stops cleanly after the first step that held any, because no later step can run on an
incomplete one. The held nodes keep their journal state for a later run. Check steps (input and preflight kinds) are
never limited: they touch nothing, and a check step's report waits for every check, so a limited run checks all nodes.

The overall progress is planned up front for the whole install (``plan``: every step, also those after the last one
this run goes to), from each step's expected duration; what earlier runs finished counts as done, and the fraction
shown last is where this run's bar starts (both kept in the journal). It reaches 1.0 only when the install's last
step ends.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled, PreflightBlocked, ProjectInvalid, WizardError
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.journal import RUN_CANCELLED, RUN_FAILED, RUN_FINISHED, RUN_INCOMPLETE
from wizard.core.problems import Problem
from wizard.core.progress import Progress, Reporter, TaskStatus

log = logging.getLogger(__name__)


class ExitCode(IntEnum):
    """The headless runner's documented exit codes."""

    DONE = 0
    INVALID_INPUT = 2
    PREFLIGHT_BLOCKED = 3
    INSTALL_FAILED = 4
    #: Only some nodes were retried (``only_nodes``); the others were held back and still need a run.
    INCOMPLETE = 5
    CANCELLED = 130


# -- events (plain values) ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunStarted:
    steps: tuple[tuple[str, str], ...]  # (id, title)


@dataclass(frozen=True)
class StepStarted:
    step: str
    title: str
    jobs: tuple[tuple[str, str, str], ...]  # (job id, name, node)


@dataclass(frozen=True)
class JobStarted:
    step: str
    job: str
    name: str
    node: str
    attempt: int


@dataclass(frozen=True)
class JobFinished:
    step: str
    job: str
    name: str
    node: str
    status: TaskStatus
    error: dict[str, str] | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepFinished:
    step: str
    ok: bool


@dataclass(frozen=True)
class StepBlocked:
    step: str
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class RunFinished:
    exit_code: ExitCode
    error: dict[str, str] | None = None
    #: The nodes this run was limited to (``only_nodes``), sorted; empty for a run of every node.
    retried: tuple[str, ...] = ()
    #: Nodes whose pending jobs were held back because the run was limited to others; they still need a run.
    held: tuple[str, ...] = ()
    #: The install's overall fraction at the end of the run: 1.0 only when its last step has ended.
    fraction: float = 0.0


Event = RunStarted | StepStarted | JobStarted | JobFinished | StepFinished | StepBlocked | RunFinished


def _error_dict(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, WizardError):
        return exc.to_dict()
    return {
        "title": "Unexpected error",
        "message": f"{type(exc).__name__}: {exc}",
        "details": "".join(traceback.format_exception(exc)),
        "remediation": "retry; if it happens again, export a support bundle and report it",
    }


class Engine:
    """Runs ``steps`` in order for one project, recording everything in the journal."""

    def __init__(
        self,
        ctx: StepContext,
        steps: Sequence[Step],
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        on_event: Callable[[Event], None] | None = None,
        only_nodes: Iterable[str] | None = None,
        plan: Sequence[Step] | None = None,
    ) -> None:
        """``only_nodes`` limits the run to those nodes' jobs (plus every job that belongs to no node); None runs
        every node's. ``plan`` is every step of the install, for the overall progress (default: ``steps``); a run
        that stops early (``--until``) runs a prefix of it."""
        self.ctx = ctx
        self.steps = list(steps)
        self.plan = list(plan) if plan is not None else list(self.steps)
        self.progress = progress or Progress()
        self.cancel = cancel or CancelToken()
        self.only_nodes: frozenset[str] | None = frozenset(only_nodes) if only_nodes is not None else None
        self._on_event = on_event
        self._event_lock = threading.Lock()
        self._held: set[str] = set()

    def _emit(self, event: Event) -> None:
        log.debug("event %s", event)
        if self._on_event is not None:
            with self._event_lock:
                self._on_event(event)

    def run(self) -> ExitCode:
        journal = self.ctx.journal
        journal.start_run()
        self._plan_progress()
        self._emit(RunStarted(tuple((s.id, s.title) for s in self.steps)))
        root = self.progress.root()
        total = sum(s.weight for s in self.steps) or 1.0
        start = 0.0
        code = ExitCode.DONE
        error: dict[str, str] | None = None
        self._held.clear()
        try:
            self._check_only_nodes()
            for step in self.steps:
                self.cancel.raise_if_cancelled()
                span = step.weight / total
                self._run_step(step, root.child(min(start, 1.0), min(span, 1.0 - min(start, 1.0))))
                start += span
                if self._held:
                    code, error = ExitCode.INCOMPLETE, self._incomplete(step)
                    break
        except Cancelled:
            code = ExitCode.CANCELLED
        except ProjectInvalid as exc:
            code, error = ExitCode.INVALID_INPUT, exc.to_dict()
        except PreflightBlocked as exc:
            code, error = ExitCode.PREFLIGHT_BLOCKED, exc.to_dict()
        except WizardError as exc:
            code, error = ExitCode.INSTALL_FAILED, exc.to_dict()
        finally:
            self.ctx.resources.close()
        statuses = {ExitCode.DONE: RUN_FINISHED, ExitCode.CANCELLED: RUN_CANCELLED, ExitCode.INCOMPLETE: RUN_INCOMPLETE}
        if code is ExitCode.DONE and self._whole_install():
            self.progress.finish("All steps finished")
        self._save_progress()
        journal.finish_run(statuses.get(code, RUN_FAILED))
        fraction = self.progress.snapshot().fraction
        retried, held = tuple(sorted(self.only_nodes or ())), tuple(sorted(self._held))
        self._emit(RunFinished(code, error, retried, held, fraction))
        return code

    def _whole_install(self) -> bool:
        """This run went to the install's last step (not only up to an earlier one)."""
        return bool(self.steps) and (not self.plan or self.steps[-1].id == self.plan[-1].id)

    def _plan_progress(self) -> None:
        """Plan the overall progress from every step's expected duration, starting where the journal says."""
        expected: list[tuple[str, float]] = []
        for step in self.plan or self.steps:
            try:
                seconds = step.expected_duration(self.ctx)
            except Exception:  # an estimate must never stop a run; the step itself reports what is wrong
                log.debug("no expected duration for step %s", step.id, exc_info=True)
                seconds = step.weight * 60.0
            expected.append((step.id, seconds))
        shown, credit = self.ctx.journal.saved_progress()
        self.progress.plan(expected, credit, shown)

    def _save_progress(self) -> None:
        snap = self.progress.snapshot()
        if snap.planned:
            self.ctx.journal.save_progress(snap.fraction, dict(snap.steps))

    def _check_only_nodes(self) -> None:
        if self.only_nodes is None:
            return
        known = {n.name for n in self.ctx.project.nodes}
        unknown = sorted(self.only_nodes - known)
        if unknown or not self.only_nodes:
            raise ProjectInvalid(
                [
                    Problem(
                        "only_nodes",
                        f"no node named {name!r} in this project (its nodes: {', '.join(sorted(known))})"
                        if name
                        else "no node was named to retry",
                    )
                    for name in (unknown or [""])
                ]
            )

    def _incomplete(self, step: Step) -> dict[str, str]:
        """What a run limited to some nodes says when it stops because others were held back."""
        retried = ", ".join(sorted(self.only_nodes or ()))
        held = ", ".join(sorted(self._held))
        needs = "needs" if len(self._held) == 1 else "need"
        return {
            "title": f"{retried} retried; {held} still {needs} a retry",
            "message": (
                f"this run was limited to {retried}; the {step.title.lower()} step is not finished for {held}, so "
                "the steps after it did not run"
            ),
            "details": "",
            "remediation": f"retry {held} (or every failed node) to go on from the {step.title.lower()} step",
        }

    def _hold(self, step: Step, job: Job) -> None:
        """Leaves ``job`` alone in a run limited to other nodes: no journal entry, shown as held."""
        retried = ", ".join(sorted(self.only_nodes or ()))
        message = f"not retried in this run (limited to {retried})"
        self._held.add(job.node)
        self.progress.set_status(job.id, TaskStatus.HELD, message)
        self._emit(
            JobFinished(
                step.id, job.id, job.name, job.node, TaskStatus.HELD, {"title": "Held back", "message": message}
            )
        )

    def _run_step(self, step: Step, report: Reporter) -> None:
        ctx = self.ctx
        problems = [p for p in step.problems(ctx) if p.is_error]
        if problems:
            self._emit(StepBlocked(step.id, tuple(problems)))
            if step.kind is StepKind.PREFLIGHT:
                raise PreflightBlocked(
                    f"{step.title}: blocked",
                    f"{len(problems)} problem{'s' if len(problems) != 1 else ''} must be fixed first",
                    details="\n".join(str(p) for p in problems),
                    remediation="fix each problem listed, then run again",
                )
            if step.kind is StepKind.INPUT:
                raise ProjectInvalid(list(problems))
            raise WizardError(
                f"{step.title}: blocked",
                "; ".join(str(p) for p in problems),
                remediation="fix each problem listed, then run again",
            )
        ctx.journal.set_step(step.id)
        jobs = step.jobs(ctx)
        ids = [j.id for j in jobs]
        if len(set(ids)) != len(ids):
            raise WizardError("Internal error", f"step {step.id} built jobs with duplicate ids: {ids}")
        for job in jobs:
            self.progress.add_task(job.id, job.name, step.id, job.node, job.weight)
        self._emit(StepStarted(step.id, step.title, tuple((j.id, j.name, j.node) for j in jobs)))
        weights = sum(j.weight for j in jobs) or 1.0
        reporters = {j.id: report.child(0.0, j.weight / weights, task=j.id) for j in jobs}
        pending: list[Job] = []
        held: list[Job] = []
        limited = self.only_nodes is not None and step.kind is StepKind.INSTALL
        for job in jobs:
            if not job.rerun and ctx.journal.is_done(job.id, job.fingerprint()):
                self.progress.set_status(job.id, TaskStatus.SKIPPED, "already done")
                reporters[job.id].finish()
                self._emit(
                    JobFinished(
                        step.id,
                        job.id,
                        job.name,
                        job.node,
                        TaskStatus.SKIPPED,
                        None,
                        ctx.journal.result(job.id),
                    )
                )
            elif limited and job.node and job.node not in (self.only_nodes or ()):
                self._hold(step, job)
                held.append(job)
            else:
                pending.append(job)
        self.progress.begin_step(step.id)
        failures: list[tuple[Job, BaseException]] = []
        cancelled = False
        if pending:
            with ThreadPoolExecutor(max_workers=max(1, step.parallel), thread_name_prefix=f"job-{step.id}") as pool:
                running: dict[Future[None], Job] = {}
                queue = list(pending)
                while queue or running:
                    while queue and len(running) < max(1, step.parallel) and not self.cancel.cancelled:
                        job = queue.pop(0)
                        running[pool.submit(self._run_job, step, job, reporters[job.id])] = job
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in done:
                        job = running.pop(fut)
                        exc = fut.exception()
                        if isinstance(exc, Cancelled):
                            cancelled = True
                        elif exc is not None:
                            failures.append((job, exc))
                for job in queue:  # never started because the run was cancelled
                    self.progress.set_status(job.id, TaskStatus.CANCELLED, "not started")
        if cancelled or self.cancel.cancelled:
            self._emit(StepFinished(step.id, False))
            raise Cancelled(self.cancel.reason or "cancelled")
        ok = not failures and not held
        if ok:
            report.finish()  # a step without jobs (or with skipped ones) still fills its share of the bar
        self.progress.end_step(step.id, ok, worked=bool(pending))
        self._save_progress()
        self._emit(StepFinished(step.id, ok))
        if failures:
            job, exc = failures[0]
            err = _error_dict(exc)
            others = [f"{j.name}: {_error_dict(e)['message']}" for j, e in failures[1:]]
            details = err["details"] + ("\n\nAlso failed:\n" + "\n".join(others) if others else "")
            cls = PreflightBlocked if step.kind is StepKind.PREFLIGHT else WizardError
            if isinstance(exc, PreflightBlocked) and not others:
                # A check's verdict, not a job that broke: its own words ("2 problems to fix …") lead.
                raise cls(
                    f"{step.title}: {err['title']}",
                    err["message"],
                    details=details.strip(),
                    remediation=err["remediation"],
                )
            raise cls(
                f"{step.title}: {job.name} failed",
                f"{err['title']}: {err['message']}",
                details=details.strip(),
                remediation=err["remediation"],
            )

    def _run_job(self, step: Step, job: Job, report: Reporter) -> None:
        journal = self.ctx.journal
        fingerprint = job.fingerprint()
        attempt = journal.job_started(job.id, fingerprint)
        self.progress.set_status(job.id, TaskStatus.RUNNING)
        self._emit(JobStarted(step.id, job.id, job.name, job.node, attempt))
        log.info("job %s started (attempt %d)", job.id, attempt)
        try:
            result = dict(job.run(report, self.cancel) or {})
        except Cancelled as exc:
            journal.job_failed(job.id, {"title": "Cancelled", "message": str(exc)}, cancelled=True)
            self.progress.set_status(job.id, TaskStatus.CANCELLED, "cancelled")
            self._emit(JobFinished(step.id, job.id, job.name, job.node, TaskStatus.CANCELLED))
            raise
        except BaseException as exc:
            err = _error_dict(exc)
            log.error("job %s failed: %s", job.id, err["message"], exc_info=not isinstance(exc, WizardError))
            journal.job_failed(job.id, err)
            self.progress.set_status(job.id, TaskStatus.FAILED, err["message"])
            self._emit(JobFinished(step.id, job.id, job.name, job.node, TaskStatus.FAILED, err))
            raise
        journal.job_done(job.id, fingerprint, result)
        report.finish()
        self.progress.set_status(job.id, TaskStatus.DONE)
        log.info("job %s done", job.id)
        self._emit(JobFinished(step.id, job.id, job.name, job.node, TaskStatus.DONE, None, result))
