"""Retrying one node: the engine runs only that node's jobs (and the jobs of no node), holds the others, journals
nothing for them and stops cleanly; a later full run goes on from there."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.core.helpers import cli_env, json_events, run_cli
from tests.support.projects import base_doc, write_project
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.journal import RUN_INCOMPLETE, Journal
from wizard.core.paths import app_paths
from wizard.core.progress import Progress, Reporter, TaskStatus
from wizard.core.project import parse_project
from wizard.core.runner import Engine, Event, ExitCode, JobFinished, JobStarted, RunFinished
from wizard.core.secrets import SecretStore

NODES = ("node-1", "node-2", "node-3")


class FlakyJob(Job):
    """Fails its first ``failures`` attempts (counted in ``attempts``, shared across runs), then succeeds."""

    def __init__(self, job_id: str, attempts: dict[str, int], *, node: str = "", failures: int = 0) -> None:
        self.id = job_id
        self.name = node or job_id
        self.node = node
        self.attempts = attempts
        self.failures = failures
        self._lock = threading.Lock()

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        cancel.raise_if_cancelled()
        with self._lock:
            self.attempts[self.id] = n = self.attempts.get(self.id, 0) + 1
        report.update(0.5, f"attempt {n}")
        if n <= self.failures:
            raise WizardError("Install failed", f"{self.id} failed on attempt {n}", remediation="retry it")
        return {"attempt": n}


class ListStep(Step):
    def __init__(self, step_id: str, jobs: list[Job], kind: StepKind = StepKind.INSTALL) -> None:
        self.id = step_id
        self.title = step_id.title()
        self.kind = kind
        self.parallel = 4
        self._jobs = jobs

    def problems(self, ctx: StepContext) -> list[Any]:
        return []

    def jobs(self, ctx: StepContext) -> list[Job]:
        return self._jobs


def make_ctx(tmp_path: Path) -> StepContext:
    project = parse_project(base_doc()).project
    return StepContext(project, SecretStore(), Journal.open(tmp_path / "j.json", "p"), app_paths().ensure())


def pipeline(attempts: dict[str, int], failing: dict[str, int]) -> list[Step]:
    """boot (all nodes fine), install (the ``failing`` nodes fail that many times, plus a node-less job that fails
    once), cluster (node-less)."""
    return [
        ListStep("boot", [FlakyJob(f"boot/{n}", attempts, node=n) for n in NODES]),
        ListStep(
            "install",
            [
                *(FlakyJob(f"install/{n}", attempts, node=n, failures=failing.get(n, 0)) for n in NODES),
                FlakyJob("install/watch", attempts, failures=1),
            ],
        ),
        ListStep("cluster", [FlakyJob("cluster/create", attempts)]),
    ]


def run(ctx: StepContext, steps: list[Step], only: set[str] | None = None) -> tuple[ExitCode, list[Event], Progress]:
    events: list[Event] = []
    progress = Progress()
    code = Engine(ctx, steps, progress=progress, on_event=events.append, only_nodes=only).run()
    return code, events, progress


def started(events: list[Event]) -> list[str]:
    return sorted(e.job for e in events if isinstance(e, JobStarted))


def test_retry_of_one_node_runs_only_its_job_then_a_full_retry_finishes(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    attempts: dict[str, int] = {}
    steps = pipeline(attempts, {"node-2": 1, "node-3": 1})

    code, events, _ = run(ctx, steps)
    assert code is ExitCode.INSTALL_FAILED
    failed = {e.job for e in events if isinstance(e, JobFinished) and e.status is TaskStatus.FAILED}
    assert failed == {"install/node-2", "install/node-3", "install/watch"}
    node3_before = ctx.journal.job("install/node-3")
    assert node3_before is not None and node3_before["status"] == "failed"

    # Retry node-2 only.
    code, events, progress = run(ctx, steps, {"node-2"})
    assert code is ExitCode.INCOMPLETE
    assert started(events) == ["install/node-2", "install/watch"], "node-less jobs run as usual; node-3 waits"
    assert attempts["install/node-2"] == 2 and attempts["install/node-3"] == 1
    assert "cluster/create" not in attempts, "nothing after an incomplete step runs"
    held = [e for e in events if isinstance(e, JobFinished) and e.status is TaskStatus.HELD]
    assert [e.job for e in held] == ["install/node-3"]
    snap = progress.snapshot()
    node3 = snap.task("install/node-3")
    assert node3 is not None and node3.status is TaskStatus.HELD and "node-2" in node3.message
    node2 = snap.task("install/node-2")
    assert node2 is not None and node2.status is TaskStatus.DONE
    assert ctx.journal.job("install/node-3") == node3_before, "the journal records nothing for a held job"
    assert ctx.journal.is_done("install/node-2", "")
    assert ctx.journal.status == RUN_INCOMPLETE
    end = events[-1]
    assert isinstance(end, RunFinished) and end.retried == ("node-2",) and end.held == ("node-3",)
    assert end.error is not None and end.error["title"] == "node-2 retried; node-3 still needs a retry"
    assert not [e for e in events if isinstance(e, JobFinished) and e.status is TaskStatus.FAILED]

    # A full retry goes on: only node-3 (and the cluster step) run.
    code, events, _ = run(ctx, steps)
    assert code is ExitCode.DONE
    assert started(events) == ["cluster/create", "install/node-3"]
    assert attempts == {
        **{f"boot/{n}": 1 for n in NODES},
        "install/node-1": 1,
        "install/node-2": 2,
        "install/node-3": 2,
        "install/watch": 2,
        "cluster/create": 1,
    }


def test_a_retried_node_that_fails_again_fails_the_run_and_still_holds_the_others(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    attempts: dict[str, int] = {}
    steps = pipeline(attempts, {"node-2": 2, "node-3": 1})
    assert run(ctx, steps)[0] is ExitCode.INSTALL_FAILED

    code, events, _ = run(ctx, steps, {"node-2"})
    assert code is ExitCode.INSTALL_FAILED
    end = events[-1]
    assert isinstance(end, RunFinished) and end.held == ("node-3",)
    assert end.error is not None and "node-2" in end.error["title"]
    assert attempts["install/node-3"] == 1

    # Retrying both failed nodes at once is the same as a full retry of what failed.
    code, events, _ = run(ctx, steps, {"node-2", "node-3"})
    assert code is ExitCode.DONE
    assert started(events) == ["cluster/create", "install/node-2", "install/node-3"]


def test_a_retry_of_a_node_whose_jobs_all_finished_holds_the_failed_one(tmp_path: Path) -> None:
    """Limiting the run to a healthy node runs nothing of the failed one and says so, rather than failing."""
    ctx = make_ctx(tmp_path)
    attempts: dict[str, int] = {}
    steps = pipeline(attempts, {"node-3": 1})
    assert run(ctx, steps)[0] is ExitCode.INSTALL_FAILED
    code, events, _ = run(ctx, steps, {"node-1"})
    assert code is ExitCode.INCOMPLETE
    assert started(events) == ["install/watch"]
    end = events[-1]
    assert isinstance(end, RunFinished) and end.held == ("node-3",)


def test_an_unknown_node_is_invalid_input_and_runs_nothing(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    attempts: dict[str, int] = {}
    code, events, _ = run(ctx, pipeline(attempts, {}), {"node-9"})
    assert code is ExitCode.INVALID_INPUT
    assert attempts == {}
    end = events[-1]
    assert isinstance(end, RunFinished) and end.error is not None and "node-9" in end.error["details"]


def test_a_limited_run_with_nothing_held_finishes(tmp_path: Path) -> None:
    """When every other node's jobs are done already, a run limited to one node is simply complete."""
    ctx = make_ctx(tmp_path)
    attempts: dict[str, int] = {}
    steps = pipeline(attempts, {"node-2": 1})
    assert run(ctx, steps)[0] is ExitCode.INSTALL_FAILED
    code, events, _ = run(ctx, steps, {"node-2"})
    assert code is ExitCode.DONE
    assert started(events) == ["cluster/create", "install/node-2", "install/watch"]


class _Rechecked(Job):
    """A check that runs on every run (as a preflight check that found a blocker does) and posts to ``posted``."""

    def __init__(self, node: str, posted: dict[str, threading.Event]) -> None:
        self.id = f"preflight/{node}"
        self.name = node
        self.node = node
        self.posted = posted
        self.runs = 0

    def fingerprint(self) -> str:
        return f"recheck-{self.runs}"  # never the recorded one: it always runs again

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        self.runs += 1
        self.posted[self.node].set()
        return {}


class _Report(Job):
    """A node-less job that waits for every check, as the preflight report does."""

    id = "preflight/report"
    name = "report"

    def __init__(self, posted: dict[str, threading.Event]) -> None:
        self.posted = posted

    def fingerprint(self) -> str:
        return str(threading.get_ident())

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        for event in self.posted.values():
            while not event.wait(0.05):
                cancel.raise_if_cancelled()
        return {}


def test_check_steps_are_never_limited(tmp_path: Path) -> None:
    """A limited run still checks every node: checks touch nothing, and a report waiting for all of them would
    wait forever for a held one."""
    ctx = make_ctx(tmp_path)
    attempts: dict[str, int] = {}
    posted = {n: threading.Event() for n in NODES}
    checks = [_Rechecked(n, posted) for n in NODES]
    steps: list[Step] = [
        ListStep("preflight", [*checks, _Report(posted)], kind=StepKind.PREFLIGHT),
        *pipeline(attempts, {"node-2": 1, "node-3": 1}),
    ]
    assert run(ctx, steps)[0] is ExitCode.INSTALL_FAILED
    for event in posted.values():
        event.clear()
    cancel = CancelToken()
    timer = threading.Timer(30, cancel.cancel, ("the report waited for a held check",))
    timer.start()
    try:
        events: list[Event] = []
        code = Engine(ctx, steps, cancel=cancel, on_event=events.append, only_nodes={"node-2"}).run()
    finally:
        timer.cancel()
    assert code is ExitCode.INCOMPLETE, events[-1]
    assert [c.runs for c in checks] == [2, 2, 2]
    assert attempts["install/node-2"] == 2 and attempts["install/node-3"] == 1


def test_cli_only_node_reaches_the_engine(tmp_path: Path) -> None:
    """``palette-wizard run PROJECT --only-node NAME``: a node the project does not have is refused before anything
    runs; with --rehearse the option is refused."""
    project = write_project(tmp_path, base_doc())
    env = cli_env(tmp_path / "home")
    out = run_cli(["run", str(project), "--json", "--until", "credentials", "--only-node", "node-9"], env)
    assert out.returncode == int(ExitCode.INVALID_INPUT), out.stderr
    end = [e for e in json_events(out.stdout) if e["event"] == "run_finished"]
    assert end and "no node named 'node-9'" in end[-1]["error"]["details"]
    assert not [e for e in json_events(out.stdout) if e["event"] == "job_started"]
    out = run_cli(["run", str(project), "--json", "--until", "credentials", "--only-node", "node-2"], env)
    assert out.returncode == int(ExitCode.DONE), out.stdout + out.stderr
    end = [e for e in json_events(out.stdout) if e["event"] == "run_finished"]
    assert end and end[-1]["retried"] == ["node-2"] and end[-1]["held"] == []
    out = run_cli(["run", "--rehearse", "--only-node", "node-2"], env)
    assert out.returncode == int(ExitCode.INVALID_INPUT) and "--only-node" in out.stderr
