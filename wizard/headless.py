"""The headless runner: replays a project file with terminal progress or JSON events.

The engine runs in a worker thread; this thread only draws. Exit codes are :class:`~wizard.core.runner.ExitCode`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TextIO

from wizard import __version__
from wizard.core.cancel import CancelToken
from wizard.core.checks.grouping import checks_outcome
from wizard.core.errors import WizardError
from wizard.core.jobs import Step
from wizard.core.logs import setup_logging
from wizard.core.paths import AppPaths, app_paths
from wizard.core.progress import Progress, ProgressSnapshot, TaskState, TaskStatus
from wizard.core.redact import redact
from wizard.core.report import SUMMARY_TEXT
from wizard.core.runner import (
    Event,
    ExitCode,
    JobFinished,
    JobStarted,
    RunFinished,
    RunStarted,
    StepBlocked,
    StepFinished,
    StepStarted,
)
from wizard.core.secrets import SecretStore
from wizard.core.trust import Confirm, TrustRequest
from wizard.install.session import Session
from wizard.install.steps import pipeline


class Opener(Protocol):
    """Opens the session a run works on (:meth:`Session.open` for the install)."""

    def __call__(
        self, project_file: Path, *, paths: AppPaths | None, secrets: SecretStore | None, confirm: Confirm | None
    ) -> Session: ...


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def task_line(t: TaskState) -> str:
    who = f"{t.label} [{t.node}]" if t.node else t.label
    parts = [f"{who}: {t.fraction * 100:5.1f}%"]
    if t.bytes_total:
        parts.append(f"{human_bytes(t.bytes_done or 0)}/{human_bytes(t.bytes_total)}")
    if t.rate:
        parts.append(f"{human_bytes(t.rate)}/s")
    if t.eta is not None and t.status is TaskStatus.RUNNING:
        parts.append(f"ETA {human_duration(t.eta)}")
    if t.message:
        parts.append(t.message)
    if t.warning:
        parts.append(f"warning: {t.warning}")
    return "  ".join(parts)


def overall_line(snap: ProgressSnapshot) -> str:
    """The install's overall fraction and, once it can be told, how long it should still take."""
    text = f"{snap.fraction * 100:5.1f}%"
    if snap.eta is not None and snap.eta >= 1:
        text += f" · about {human_duration(snap.eta)} left"
    return text


def _without_clock(line: str) -> str:
    """A task line without what moves with time alone (ETA, rate), to tell whether anything else changed."""
    return "  ".join(p for p in line.split("  ") if not p.startswith("ETA ") and not p.endswith("/s"))


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class _Printer:
    """Turns events and progress snapshots into terminal text or JSON lines; all output passes redaction."""

    def __init__(self, out: TextIO, json_mode: bool) -> None:
        self.out = out
        self.json_mode = json_mode
        self.tty = out.isatty() and not json_mode
        self._lock = threading.Lock()
        self._status_shown = False
        self._last_tick = 0.0
        self._last_version = -1
        self._last_lines: object = None  # what the last progress output said, so a repeat is not written

    def write(self, text: str) -> None:
        with self._lock:
            self._clear_status()
            self.out.write(redact(text) + "\n")
            self.out.flush()

    def ask(self, question: str, prompt: str) -> str:
        """Show ``question`` and read one answer line; progress drawing waits meanwhile (it needs the lock)."""
        with self._lock:
            self._clear_status()
            self.out.write(redact(question) + "\n")
            self.out.flush()
            try:
                return input(prompt)
            except EOFError:
                return ""

    def emit(self, kind: str, **fields: Any) -> None:
        payload = {"event": kind, "t": round(time.time(), 3), **_jsonable(fields)}
        with self._lock:
            self.out.write(redact(json.dumps(payload, sort_keys=True)) + "\n")
            self.out.flush()

    def _clear_status(self) -> None:
        if self.tty and self._status_shown:
            self.out.write("\r\x1b[2K")
            self._status_shown = False

    def event(self, ev: Event) -> None:
        if self.json_mode:
            name = {
                RunStarted: "run_started",
                StepStarted: "step_started",
                JobStarted: "job_started",
                JobFinished: "job_finished",
                StepFinished: "step_finished",
                StepBlocked: "step_blocked",
                RunFinished: "run_finished",
            }[type(ev)]
            fields = _jsonable(ev)
            if isinstance(ev, RunFinished):
                fields["fraction"] = round(ev.fraction, 4)  # as the progress events round it
            self.emit(name, **fields)
            return
        if isinstance(ev, RunStarted):
            self.write("Steps: " + " → ".join(title for _, title in ev.steps))
        elif isinstance(ev, StepStarted):
            count = f" ({len(ev.jobs)} job{'s' if len(ev.jobs) != 1 else ''})" if ev.jobs else ""
            self.write(f"▶ {ev.title}{count}")
        elif isinstance(ev, JobStarted):
            again = f" (attempt {ev.attempt})" if ev.attempt > 1 else ""
            self.write(f"  … {self._who(ev.name, ev.node)} started{again}")
        elif isinstance(ev, JobFinished):
            who = self._who(ev.name, ev.node)
            if ev.status is TaskStatus.DONE:
                checked = checks_outcome(ev.result)
                self.write(f"  {checked[0]} {who}{checked[1]}" if checked else f"  ✓ {who}{self._result(ev.result)}")
            elif ev.status is TaskStatus.SKIPPED:
                self.write(f"  ↷ {who}: already done{self._result(ev.result)}")
            elif ev.status is TaskStatus.CANCELLED:
                self.write(f"  ■ {who}: cancelled")
            elif ev.status is TaskStatus.HELD:
                self.write(f"  ◌ {who}: {(ev.error or {}).get('message', 'not retried in this run')}")
            else:
                err = ev.error or {}
                self.write(f"  ✗ {who}: {err.get('title', 'failed')}: {err.get('message', '')}")
        elif isinstance(ev, StepBlocked):
            self.write(f"✗ {ev.step}: blocked by {len(ev.problems)} problem(s)")
        elif isinstance(ev, RunFinished):
            pass  # the caller prints the outcome

    @staticmethod
    def _who(name: str, node: str) -> str:
        return f"{name} [{node}]" if node else name

    @staticmethod
    def _result(result: dict[str, Any]) -> str:
        if "headline" in result:
            return f" — {result['headline']}"
        if "sha256" in result:
            extra = ", signature verified" if result.get("signature_verified") else ""
            return f" (sha256 {str(result['sha256'])[:16]}…{extra})"
        return ""

    def progress(self, snap: ProgressSnapshot, *, force: bool = False) -> None:
        """Progress output: JSON events at most once a second, lines every 5 s, a status line on a terminal; each
        only when it says something new. Nothing before the run has planned its overall fraction, and nothing once
        the install's last step has ended: ``run_finished`` says that (with the fraction 1.0)."""
        if not snap.planned or snap.finished:
            return
        now = time.monotonic()
        running = [t for t in snap.tasks if t.status is TaskStatus.RUNNING]
        if self.json_mode:
            if (force or now - self._last_tick >= 1.0) and snap.version != self._last_version:
                self._last_tick, self._last_version = now, snap.version
                tasks = [
                    {
                        "job": t.key,
                        "node": t.node,
                        "fraction": round(t.fraction, 4),
                        "bytes_done": t.bytes_done,
                        "bytes_total": t.bytes_total,
                        "rate": round(t.rate) if t.rate is not None else None,
                        "eta": round(t.eta) if t.eta is not None else None,
                        "message": t.message,
                    }
                    for t in running
                ]
                fields = {"fraction": round(snap.fraction, 4), "message": snap.message, "tasks": tasks}
                if fields == self._last_lines:
                    return
                self._last_lines = fields
                self.emit("progress", eta=round(snap.eta) if snap.eta is not None else None, **fields)
            return
        head = overall_line(snap)
        if self.tty:
            if not running:
                return
            line = f"[{head}] " + " | ".join(task_line(t) for t in running)
            width = max(40, _terminal_width() - 1)
            with self._lock:
                self.out.write("\r\x1b[2K" + redact(line[:width]))
                self.out.flush()
                self._status_shown = True
        elif running and (force or now - self._last_tick >= 5.0):
            self._last_tick = now
            lines = [f"    {task_line(t)}" for t in running]
            # The same jobs at the same point say nothing new: one line per change, never a repeat.
            said = (round(snap.fraction, 3), [_without_clock(line) for line in lines])
            if said == self._last_lines:
                return
            self._last_lines = said
            self.write(f"[{head}]")
            for line in lines:
                self.write(line)


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def _terminal_confirm(printer: _Printer) -> Confirm:
    """Asks on the terminal, one question at a time (node jobs run in parallel)."""
    one_at_a_time = threading.Lock()

    def confirm(request: TrustRequest) -> bool:
        with one_at_a_time:
            if request.changed:  # a deliberate act, not a reflexive "y": the operator types the host
                answer = printer.ask(request.describe(), f"To trust the new one, type {request.host}: ")
                return answer.strip() == request.host
            answer = printer.ask(request.describe(), "Trust it? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    return confirm


def run_headless(
    project_file: Path,
    *,
    json_mode: bool = False,
    out: TextIO | None = None,
    until: str | None = None,
    steps: Sequence[Step] | None = None,
    paths: AppPaths | None = None,
    secrets: SecretStore | None = None,
    on_event: Callable[[Event], None] | None = None,
    only_nodes: Iterable[str] | None = None,
    plan: Sequence[Step] | None = None,
    opener: Opener | None = None,
    outcome: Callable[[Session], str] | None = None,
) -> int:
    """Run the project's steps (``steps``, else the pipeline up to ``until``) with terminal progress or JSON events.
    ``only_nodes`` retries those nodes only: the others' unfinished jobs are held and the run stops after the step
    that held them (exit code 5, "incomplete").

    First-contact fingerprints are asked on the terminal when there is one (and no JSON); otherwise they are refused
    unless the project pins them. ``on_event`` also sees every engine event (the rehearsal's operator uses it).
    ``plan``: every step of the install when ``steps`` stops before its end (the overall progress counts them all);
    ``opener`` opens another kind of session than the install's (a day-2 action, :mod:`wizard.install.day2`), and
    ``outcome`` then says what a finished run did (instead of the install's summary)."""
    out = out or sys.stdout
    printer = _Printer(out, json_mode)
    paths = (paths or app_paths()).ensure()
    log_path = setup_logging(paths.logs)
    interactive = not json_mode and out.isatty() and sys.stdin.isatty()
    try:
        session = (opener or Session.open)(
            project_file,
            paths=paths,
            secrets=secrets,
            confirm=_terminal_confirm(printer) if interactive else None,
        )
    except WizardError as exc:
        if json_mode:
            printer.emit("run_finished", exit_code=int(ExitCode.INVALID_INPUT), error=exc.to_dict())
        else:
            printer.write(exc.render())
        return int(ExitCode.INVALID_INPUT)
    project = session.project
    if json_mode:
        printer.emit(
            "session",
            project=project.name,
            provider=project.provider.type.value,
            nodes=len(project.nodes),
            journal=str(session.journal.path),
            log=str(log_path),
            wizard_version=__version__,
            warnings=[w.to_dict() for w in session.warnings],
            secrets_notice=session.secrets.notice,
        )
    else:
        printer.write(
            f"Palette Appliance Wizard {__version__} — project {project.name!r}: "
            f"{project.provider.type.value}, {len(project.nodes)} node(s)"
        )
        printer.write(f"Journal: {session.journal.path}\nLog: {log_path}")
        if session.secrets.notice:
            printer.write(f"Note: {session.secrets.notice}")
        for w in session.warnings:
            printer.write(f"warning: {w}")

    progress = Progress()
    cancel = CancelToken()
    result: dict[str, ExitCode] = {}
    finished: dict[str, RunFinished] = {}

    observer = on_event

    def on_engine_event(ev: Event) -> None:
        if isinstance(ev, RunFinished):
            finished["ev"] = ev
        printer.event(ev)
        if observer is not None:
            observer(ev)

    run_steps = list(steps) if steps is not None else pipeline(until=until)
    if plan is None and steps is None:
        plan = pipeline()  # the overall progress counts the whole install, also when --until stops early
    engine = session.engine(
        steps=run_steps,
        progress=progress,
        cancel=cancel,
        on_event=on_engine_event,
        only_nodes=only_nodes,
        plan=plan,
    )

    def work() -> None:
        result["code"] = engine.run()

    worker = threading.Thread(target=work, name="engine", daemon=True)
    interrupts = {"n": 0}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        interrupts["n"] += 1
        if interrupts["n"] > 1:
            os._exit(int(ExitCode.CANCELLED))
        cancel.cancel(f"cancelled by signal {signal.Signals(signum).name}")
        printer.write("Cancelling… (press Ctrl+C again to quit at once; the journal keeps what is done)")

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
            printer.progress(progress.snapshot())
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    code = result.get("code", ExitCode.INSTALL_FAILED)
    ev = finished.get("ev")
    if json_mode:
        return int(code)
    if code is ExitCode.DONE and until is not None:
        printer.write(f"Done: every step up to {until!r} finished; stopped there as asked (--until {until}).")
    elif code is ExitCode.DONE and outcome is not None:
        printer.write(f"Done: {outcome(session)}")
    elif code is ExitCode.DONE:
        printer.write("Done: every step finished.")
        summary = session.journal.path.with_suffix("") / SUMMARY_TEXT
        if summary.is_file():  # written by the validate step: URLs, what was done, where things are
            printer.write(summary.read_text(encoding="utf-8").rstrip())
    elif code is ExitCode.CANCELLED:
        printer.write("Cancelled. Run the same command again to resume where it stopped.")
    elif code is ExitCode.INCOMPLETE and ev is not None and ev.error:
        printer.write(f"Stopped: {ev.error['title']}.\n{ev.error['message']}.\nNext: {ev.error['remediation']}.")
    elif ev is not None and ev.error:
        printer.write(
            WizardError(
                ev.error["title"],
                ev.error["message"],
                details=ev.error.get("details", ""),
                remediation=ev.error.get("remediation", ""),
            ).render()
        )
        printer.write("Run the same command again to resume once it is fixed.")
    return int(code)


def abort_headless(
    project_file: Path,
    *,
    session_id: str = "",
    json_mode: bool = False,
    out: TextIO | None = None,
    paths: AppPaths | None = None,
    secrets: SecretStore | None = None,
) -> int:
    """``palette-wizard abort``: release what the session claimed (see :mod:`wizard.install.abort`).

    Exit codes: 0 done (also when there was nothing left to undo), 2 invalid input (project, session, secrets),
    4 something could not be undone (the rest was; run it again once the cause is fixed)."""
    from wizard.core.journal import Journal, journal_path
    from wizard.install.abort import abort_session

    out = out or sys.stdout
    printer = _Printer(out, json_mode)
    paths = (paths or app_paths()).ensure()
    setup_logging(paths.logs)
    interactive = not json_mode and out.isatty() and sys.stdin.isatty()
    try:
        session = Session.open(
            project_file,
            paths=paths,
            secrets=secrets,
            confirm=_terminal_confirm(printer) if interactive else None,
        )
        if session_id and session_id != session.journal.path.stem:
            path = journal_path(paths.state, session_id)
            if not path.is_file():
                raise WizardError(
                    "No such session",
                    f"there is no session {session_id!r} in {path.parent}",
                    remediation="give a session id as listed in that folder (the journal's file name without .json)",
                )
            session = dataclasses.replace(session, journal=Journal.open(path, session_id))
    except WizardError as exc:
        if json_mode:
            printer.emit("abort_finished", exit_code=int(ExitCode.INVALID_INPUT), error=exc.to_dict())
        else:
            printer.write(exc.render())
        return int(ExitCode.INVALID_INPUT)
    try:
        result = abort_session(session.context)
    except WizardError as exc:
        if json_mode:
            printer.emit("abort_finished", exit_code=int(ExitCode.INVALID_INPUT), error=exc.to_dict())
        else:
            printer.write(exc.render())
        return int(ExitCode.INVALID_INPUT)
    code = ExitCode.DONE if result.ok else ExitCode.INSTALL_FAILED
    if json_mode:
        printer.emit("abort_finished", exit_code=int(code), journal=str(session.journal.path), **result.to_dict())
        return int(code)
    for system_id in result.released:
        printer.write(f"released MAAS machine {system_id}")
    for system_id, why in result.skipped.items():
        printer.write(f"left MAAS machine {system_id} alone: {why}")
    for node in result.ejected:
        printer.write(f"ejected the ISO from {node}")
    for error in result.errors:
        printer.write(redact(f"error: {error}"))
    if result.ok:
        printer.write(f"Session aborted ({session.journal.path}); a new run starts from the machines step.")
    else:
        printer.write("Some of the session could not be undone; fix the cause and run `palette-wizard abort` again.")
    return int(code)
