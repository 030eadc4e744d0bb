"""The one place where the Qt world meets the engine.

:class:`RunController` runs :meth:`Engine.run` on a plain worker thread. The worker never touches a widget: the
engine's events are re-emitted through a private signal with a *queued* connection, so every slot that sees them
runs on the GUI thread, and progress is read by the GUI's own timer from thread-safe snapshots. An optional
``on_event`` observer (the rehearsal's simulated operator) also sees every event, on the worker's side.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.paths import AppPaths
from wizard.core.problems import Problem
from wizard.core.progress import Progress, ProgressSnapshot
from wizard.core.runner import Event, ExitCode, RunFinished
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustRequest

if TYPE_CHECKING:
    from wizard.core.jobs import Step
    from wizard.headless import Opener
    from wizard.install.abort import AbortResult

log = logging.getLogger(__name__)

#: Builds the steps of one run; ``None`` means the engine's standard pipeline.
StepsFactory = Callable[[], Sequence["Step"]]

#: Asks the operator about a fingerprint from a worker thread; gets the run's cancel token (see wizard.ui.trust).
TrustAsker = Callable[[TrustRequest, CancelToken | None], bool]

CANCEL_REASON = "cancelled by the operator"


@dataclass(frozen=True)
class SessionOpened:
    """Sent once per run, before the engine starts: what the operator should know about the session."""

    project_file: Path
    project_name: str
    journal: Path
    secrets_notice: str
    warnings: tuple[Problem, ...]


@dataclass(frozen=True)
class AbortFinished:
    """The end of an abort ("give back the machines"): what was undone, or why nothing could be attempted."""

    result: AbortResult | None
    error: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok


def _unexpected(exc: BaseException) -> dict[str, str]:
    return {
        "title": "Unexpected error",
        "message": f"{type(exc).__name__}: {exc}",
        "details": "".join(traceback.format_exception(exc)),
        "remediation": "retry; if it happens again, export a support bundle and report it",
    }


class RunController(QObject):
    """Starts, cancels and reports runs of one project file; one run at a time."""

    #: A :class:`SessionOpened`, on the GUI thread.
    session_opened = Signal(object)
    #: Every runner event (including the final :class:`RunFinished`), on the GUI thread.
    event_received = Signal(object)
    #: The :class:`RunFinished` of a run, after ``running`` has turned false; on the GUI thread.
    finished = Signal(object)
    #: True when a run starts, false when it has ended; on the GUI thread.
    running_changed = Signal(bool)
    #: True when an abort starts, false when it has ended (then ``abort_finished``); on the GUI thread.
    aborting_changed = Signal(bool)
    #: The :class:`AbortFinished` of an abort, after ``aborting`` has turned false; on the GUI thread.
    abort_finished = Signal(object)

    # Emitted from worker threads only; the queued connection below hops to the GUI thread.
    _posted = Signal(object)

    def __init__(
        self,
        steps: StepsFactory | None = None,
        parent: QObject | None = None,
        *,
        paths: AppPaths | None = None,
        secrets: SecretStore | None = None,
        on_event: Callable[[Event], None] | None = None,
        ask: TrustAsker | None = None,
    ) -> None:
        """``paths`` and ``secrets`` replace the operator's home and keyring for every session opened (the
        rehearsal's own folder and in-memory store); ``on_event`` is called with every engine event on engine and
        job threads, so it must never touch a widget. ``ask`` answers first-contact and changed fingerprints (the
        trust dialog); without it they are refused unless the project pins them."""
        super().__init__(parent)
        self._steps = steps
        self.paths = paths
        self.secrets = secrets
        self._observer = on_event
        self.ask = ask
        self._thread: threading.Thread | None = None
        self._progress: Progress | None = None
        self._cancel: CancelToken | None = None
        self._running = False
        self._aborting = False
        self._abort_progress: Progress | None = None
        #: The last step of the current (or last) run; None for the whole pipeline.
        self.until: str | None = None
        #: The nodes the current (or last) run was limited to; None for every node.
        self.only_nodes: frozenset[str] | None = None
        self._opener: Opener | None = None  # the current run's session opener (None: the install's)
        self._posted.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)

    # -- GUI-thread API ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """A run or an abort is under way: nothing else may start."""
        return self._running or self._aborting

    @property
    def aborting(self) -> bool:
        return self._aborting

    @property
    def cancelling(self) -> bool:
        return self.running and self._cancel is not None and self._cancel.cancelled

    def snapshot(self) -> ProgressSnapshot | None:
        """The latest progress of the current (or last) run; cheap, safe to call every timer tick."""
        return self._progress.snapshot() if self._progress is not None else None

    def abort_snapshot(self) -> ProgressSnapshot | None:
        """The progress of the current (or last) abort."""
        return self._abort_progress.snapshot() if self._abort_progress is not None else None

    def start(
        self,
        project_file: Path,
        *,
        until: str | None = None,
        only_nodes: Iterable[str] | None = None,
        steps: Sequence[Step] | None = None,
        opener: Opener | None = None,
    ) -> None:
        """Run the engine for ``project_file`` in the background, up to and including step ``until`` (all steps
        when None). Every run opens a fresh session, so a retry sees an edited project file, and the journal makes
        it skip the jobs that already finished. ``only_nodes`` retries those nodes only: the engine holds the other
        nodes' unfinished jobs and stops after the step that held them (``RunFinished.held`` names them). ``steps``
        and ``opener`` run something else than the install: a day-2 action's steps in its own session
        (:mod:`wizard.install.day2`)."""
        if self.running:
            raise RuntimeError("a run or an abort is already in progress")
        self._opener = opener
        if steps is None and self._steps is not None:
            steps = self._steps()
        steps = list(steps) if steps is not None else None
        plan = steps
        if until is not None:
            from wizard.install.steps import pipeline  # the engine loads after the first window (see app.py)

            plan = steps if steps is not None else pipeline()
            ids = [s.id for s in plan]
            if until not in ids:
                raise ValueError(f"no step {until!r} in this run; its steps are {', '.join(ids)}")
            steps = plan[: ids.index(until) + 1]
        self.until = until
        self.only_nodes = frozenset(only_nodes) if only_nodes is not None else None
        self._progress = Progress()
        self._cancel = CancelToken()
        self._running = True
        self._thread = threading.Thread(
            target=self._work,
            args=(project_file, self._progress, self._cancel, steps),
            kwargs={"only_nodes": self.only_nodes, "plan": plan},
            name="engine",
            daemon=True,  # a wedged job must not keep the process alive after the window has gone
        )
        limited = f" for {', '.join(sorted(self.only_nodes))} only" if self.only_nodes is not None else ""
        log.info("run of %s starting%s", project_file, limited)
        self.running_changed.emit(True)
        self._thread.start()

    def abort(self, project_file: Path) -> None:
        """Give back what the project's session took (:func:`wizard.install.abort.abort_session`: release the MAAS
        machines it allocated, eject the ISO it inserted through BMCs) on a worker; ``abort_finished`` tells the
        outcome. Cancellable like a run, between machines."""
        if self.running:
            raise RuntimeError("a run or an abort is already in progress")
        self._abort_progress = Progress()
        self._cancel = CancelToken()
        self._aborting = True
        self._thread = threading.Thread(
            target=self._abort_work,
            args=(project_file, self._abort_progress, self._cancel),
            name="abort",
            daemon=True,
        )
        log.info("abort of %s starting", project_file)
        self.aborting_changed.emit(True)
        self._thread.start()

    def cancel(self, reason: str = CANCEL_REASON) -> None:
        if self.running and self._cancel is not None:
            log.info("run cancel requested: %s", reason)
            self._cancel.cancel(reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Join the worker thread (for shutdown); true when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- worker side ---------------------------------------------------------------------------------------
    def _post(self, item: object) -> None:
        try:
            self._posted.emit(item)
        except RuntimeError:
            # The window (and this controller with it) is gone; nobody is left to tell.
            log.debug("run update dropped after the window closed: %r", item)

    def _work(
        self,
        project_file: Path,
        progress: Progress,
        cancel: CancelToken,
        steps: list[Step] | None,
        *,
        only_nodes: frozenset[str] | None = None,
        plan: list[Step] | None = None,
    ) -> None:
        ended = threading.Event()

        def on_event(ev: Event) -> None:  # called on engine and job threads
            if isinstance(ev, RunFinished):
                ended.set()
            if self._observer is not None:
                try:
                    self._observer(ev)
                except Exception:
                    log.exception("the run's event observer failed on %r", ev)
            self._post(ev)

        try:
            from wizard.install.session import Session  # on this worker: the GUI thread never waits for it

            ask = self.ask
            confirm = (lambda request: ask(request, cancel)) if ask is not None else None
            opener = self._opener or Session.open
            session = opener(project_file, paths=self.paths, secrets=self.secrets, confirm=confirm)
            self._post(
                SessionOpened(
                    project_file,
                    session.project.name,
                    session.journal.path,
                    session.secrets.notice,
                    tuple(session.warnings),
                )
            )
            engine = session.engine(steps=steps, progress=progress, cancel=cancel, on_event=on_event, plan=plan)
            engine.only_nodes = only_nodes
            engine.run()
        except WizardError as exc:
            # Opening the session failed: the project or its journal is unusable, nothing has run.
            log.warning("run could not start: %s", exc)
            if not ended.is_set():
                self._post(RunFinished(ExitCode.INVALID_INPUT, exc.to_dict()))
        except BaseException as exc:
            log.exception("run crashed")
            if not ended.is_set():
                self._post(RunFinished(ExitCode.INSTALL_FAILED, _unexpected(exc)))

    def _abort_work(self, project_file: Path, progress: Progress, cancel: CancelToken) -> None:
        from wizard.core.errors import Cancelled

        try:
            from wizard.install.abort import abort_session
            from wizard.install.session import Session

            ask = self.ask
            confirm = (lambda request: ask(request, cancel)) if ask is not None else None
            session = Session.open(project_file, paths=self.paths, secrets=self.secrets, confirm=confirm)
            result = abort_session(session.context, progress=progress, cancel=cancel)
            log.info("abort finished: %s", result.to_dict())
            self._post(AbortFinished(result))
        except Cancelled as exc:
            reason = str(exc) or CANCEL_REASON
            self._post(AbortFinished(None, {"title": "Abort cancelled", "message": reason, "remediation": ""}))
        except WizardError as exc:
            log.warning("abort could not be done: %s", exc)
            self._post(AbortFinished(None, exc.to_dict()))
        except BaseException as exc:
            log.exception("abort crashed")
            self._post(AbortFinished(None, _unexpected(exc)))

    # -- back on the GUI thread ----------------------------------------------------------------------------
    def _dispatch(self, item: object) -> None:
        if isinstance(item, SessionOpened):
            self.session_opened.emit(item)
            return
        if isinstance(item, AbortFinished):
            self._aborting = False
            self.aborting_changed.emit(False)
            self.abort_finished.emit(item)
            return
        self.event_received.emit(item)
        if isinstance(item, RunFinished):
            self._running = False
            log.info("run finished with exit code %d", int(item.exit_code))
            self.running_changed.emit(False)
            self.finished.emit(item)
