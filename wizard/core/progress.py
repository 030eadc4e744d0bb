"""Thread-safe, weighted, monotonic progress.

One :class:`Progress` per run holds the overall fraction and one :class:`TaskState` per job. Workers get a
:class:`Reporter`; ``child(start, span)`` maps a sub-task into part of the parent's range, so many jobs add up to
one bar. Progress only moves forward: a reporter adds the *increase* of its own fraction, scaled by its span, to
its parent, so parallel children sum up instead of overwriting each other. Readers (the terminal, the GUI's 100 ms
timer) take immutable snapshots and never touch worker state.

The engine plans a run's overall fraction up front (:meth:`Progress.plan`, see :mod:`wizard.core.overall`): every
step of the install weighted by its expected duration, jobs counted by their weights within their step. Then the
snapshot's fraction is the plan's (never backwards, 1.0 only once :meth:`Progress.finish` is called) and it carries
an ETA for the whole install.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from wizard.core.overall import OverallPlan
from wizard.core.redact import redact

#: How many live log lines a task keeps for display.
LOG_LINES = 200


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: Not run: the run was limited to other nodes (a retry of one node); a later run picks it up.
    HELD = "held"


@dataclass(frozen=True)
class TaskState:
    """What one job looks like right now; plain values only."""

    key: str
    label: str
    step: str
    node: str = ""
    status: TaskStatus = TaskStatus.PENDING
    fraction: float = 0.0
    message: str = ""
    bytes_done: int | None = None
    bytes_total: int | None = None
    rate: float | None = None  # bytes per second over the recent window
    eta: float | None = None  # seconds
    started: float | None = None
    finished: float | None = None
    warning: str = ""
    #: The newest lines of the job's live log (a node's installer log tail), oldest first, secrets masked.
    log: tuple[str, ...] = ()
    #: How many log lines the task has received in all (``log`` keeps only the newest): a reader that remembers
    #: the count it last drew appends just the lines after it, without comparing texts.
    log_total: int = 0
    #: The milestones the job follows, in order, as its peer reports them (a cluster's conditions): each is
    #: (label, state, detail) with state ``done``, ``current`` or ``pending``.
    stages: tuple[tuple[str, str, str], ...] = ()

    def log_since(self, seen: int) -> tuple[str, ...]:
        """The lines received after the first ``seen`` (as many of them as are still kept)."""
        new = self.log_total - seen
        if new <= 0:
            return ()
        return self.log[-new:] if new < len(self.log) else self.log

    @property
    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.monotonic()) - self.started


@dataclass(frozen=True)
class ProgressSnapshot:
    fraction: float
    message: str
    tasks: tuple[TaskState, ...]
    version: int
    #: The run planned its overall fraction (the engine does before its first step); before that ``fraction`` says
    #: nothing about the install and a reader keeps showing what it showed.
    planned: bool = False
    #: The whole install's last step has ended: ``fraction`` is 1.0 from now on.
    finished: bool = False
    #: Seconds until the install's last step ends (expected durations scaled by this run's pace), when known.
    eta: float | None = None
    #: Each planned step's fraction, by step id (empty without a plan).
    steps: tuple[tuple[str, float], ...] = ()

    def task(self, key: str) -> TaskState | None:
        for t in self.tasks:
            if t.key == key:
                return t
        return None


class _RateWindow:
    """Throughput over the last few seconds, so a stall shows as a falling rate, not a stale average."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, done: int) -> float | None:
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.popleft()
        t0, d0 = self.samples[0]
        if now - t0 < 0.2:
            return None
        return max(0.0, (done - d0) / (now - t0))


class Progress:
    """The shared progress store of one run. All mutation happens under one lock."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._fraction = 0.0
        self._message = ""
        self._tasks: dict[str, TaskState] = {}
        self._rates: dict[str, _RateWindow] = {}
        self._version = 0
        self._on_change = on_change
        self._plan: OverallPlan | None = None
        self._weights: dict[str, float] = {}

    # -- reading -------------------------------------------------------------------------------------------
    def snapshot(self) -> ProgressSnapshot:
        now = time.monotonic()
        with self._lock:
            tasks = tuple(self._tasks.values())
            plan = self._plan
            if plan is None:
                return ProgressSnapshot(self._fraction, self._message, tasks, self._version)
            transfers: dict[str, float] = {}
            for t in tasks:
                if t.status is TaskStatus.RUNNING and t.eta is not None:
                    transfers[t.step] = max(transfers.get(t.step, 0.0), t.eta)
            return ProgressSnapshot(
                plan.shown,
                self._message,
                tasks,
                self._version,
                planned=True,
                finished=plan.finished,
                eta=plan.eta(now, transfers),
                steps=tuple(plan.step_fractions().items()),
            )

    # -- planning (the engine) -----------------------------------------------------------------------------
    def plan(
        self, steps: Sequence[tuple[str, float]], credit: Mapping[str, float] | None = None, floor: float = 0.0
    ) -> None:
        """Plan the overall fraction: (step id, expected seconds) for every step of the install, each step's
        fraction that earlier runs finished, and the fraction an earlier run showed last."""
        with self._lock:
            self._plan = OverallPlan(steps, credit, floor)
            for t in self._tasks.values():
                self._plan.add_job(t.step, t.key, self._weights.get(t.key, 1.0))
                self._plan.job(t.step, t.key, t.fraction)
            self._version += 1
        self._changed()

    def begin_step(self, step: str) -> None:
        """The step's jobs are added and those finished before marked: they say where the step is from now on."""
        with self._lock:
            if self._plan is not None:
                self._plan.begin_step(step, time.monotonic())
                self._version += 1
        self._changed()

    def end_step(self, step: str, ok: bool, worked: bool = True) -> None:
        with self._lock:
            if self._plan is not None:
                self._plan.end_step(step, ok, time.monotonic(), worked)
                self._version += 1
        self._changed()

    def planned_steps(self) -> dict[str, float]:
        """Each planned step's fraction now (what the journal keeps for the next run's plan)."""
        with self._lock:
            return self._plan.step_fractions() if self._plan is not None else {}

    # -- writing (used by Reporter and the runner) -----------------------------------------------------------
    def root(self) -> Reporter:
        return Reporter(self, None, 1.0, None)

    def add_task(self, key: str, label: str, step: str, node: str = "", weight: float = 1.0) -> None:
        """A job's row; ``weight`` is its share of its step in the overall plan."""
        with self._lock:
            if key not in self._tasks:
                self._tasks[key] = TaskState(key=key, label=label, step=step, node=node)
                self._weights[key] = weight
                if self._plan is not None:
                    self._plan.add_job(step, key, weight)
                self._version += 1
        self._changed()

    def set_status(self, key: str, status: TaskStatus, message: str | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            t = self._tasks[key]
            changes: dict[str, object] = {"status": status}
            if status is TaskStatus.RUNNING and t.started is None:
                changes["started"] = now
            if status in (TaskStatus.DONE, TaskStatus.SKIPPED, TaskStatus.FAILED, TaskStatus.CANCELLED):
                changes["finished"] = now
                changes["eta"] = None
            if status in (TaskStatus.DONE, TaskStatus.SKIPPED):
                changes["fraction"] = 1.0
                if self._plan is not None:
                    self._plan.job(t.step, key, 1.0)
            if message is not None:
                changes["message"] = message
            self._tasks[key] = replace(t, **changes)  # type: ignore[arg-type]
            self._version += 1
        self._changed()

    def warn(self, key: str, warning: str) -> None:
        with self._lock:
            self._tasks[key] = replace(self._tasks[key], warning=warning)
            self._version += 1
        self._changed()

    def set_stages(self, key: str, stages: Sequence[tuple[str, str, str]]) -> None:
        """The task's milestones as its peer reports them now (see :attr:`TaskState.stages`)."""
        value = tuple((redact(a), b, redact(c)) for a, b, c in stages)
        with self._lock:
            t = self._tasks.get(key)
            if t is None or t.stages == value:
                return
            self._tasks[key] = replace(t, stages=value)
            self._version += 1
        self._changed()

    def log(self, key: str, lines: Sequence[str], keep: int = LOG_LINES) -> None:
        """Append ``lines`` to the task's live log, keeping the newest ``keep``."""
        if not lines:
            return
        masked = tuple(redact(line.rstrip("\n")) for line in lines)
        with self._lock:
            t = self._tasks.get(key)
            if t is None:
                return
            self._tasks[key] = replace(t, log=(t.log + masked)[-keep:], log_total=t.log_total + len(masked))
            self._version += 1
        self._changed()

    def _add(self, delta: float, message: str | None) -> None:
        with self._lock:
            self._fraction = min(1.0, self._fraction + delta)
            if message:
                self._message = message
            self._version += 1
        self._changed()

    def _task_update(
        self,
        key: str,
        fraction: float,
        message: str | None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
    ) -> None:
        now = time.monotonic()
        with self._lock:
            t = self._tasks.get(key)
            if t is None:
                return
            changed = max(t.fraction, min(1.0, fraction))
            changes: dict[str, object] = {"fraction": changed}
            if self._plan is not None and changed != t.fraction:
                self._plan.job(t.step, key, changed)
            if message is not None:
                changes["message"] = message
            if bytes_done is not None:
                rate = self._rates.setdefault(key, _RateWindow()).add(now, bytes_done)
                changes["bytes_done"] = bytes_done
                changes["bytes_total"] = bytes_total
                changes["rate"] = rate
                if rate and bytes_total is not None and rate > 0:
                    changes["eta"] = max(0.0, (bytes_total - bytes_done) / rate)
            self._tasks[key] = replace(t, **changes)  # type: ignore[arg-type]
            self._version += 1

    def finish(self, message: str = "") -> None:
        """Deliver the final state: the whole bar is full once the last step has ended."""
        with self._lock:
            self._fraction = 1.0
            if self._plan is not None:
                self._plan.finish()
            if message:
                self._message = message
            self._version += 1
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


@dataclass
class Reporter:
    """Reports the progress of one piece of work into a range of its parent.

    ``update(fraction, message)`` never moves backwards; ``child(start, span)`` hands a sub-task the range
    ``[start, start + span]`` of this reporter's own 0..1 scale.
    """

    _progress: Progress
    _parent: Reporter | None
    _span: float
    _task: str | None
    _task_root: bool = False
    _local: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, fraction: float, message: str | None = None) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        with self._lock:
            delta = max(0.0, fraction - self._local)
            self._local += delta
            local = self._local
        self._mirror(local, message)
        if delta > 0 or message:
            self._propagate(delta, message)

    def _mirror(self, local: float, message: str | None) -> None:
        if self._task is None:
            return
        if self._task_root:
            self._progress._task_update(self._task, local, message)
        elif message is not None:
            # A sub-task's message still belongs on its job's row; the fraction there is the task root's.
            self._progress._task_update(self._task, 0.0, message)

    def _propagate(self, delta: float, message: str | None) -> None:
        scaled = delta * self._span
        if self._parent is None:
            self._progress._add(scaled, message)
        else:
            self._parent._child_advanced(scaled, message)

    def _child_advanced(self, delta: float, message: str | None) -> None:
        with self._lock:
            real = max(0.0, min(1.0, self._local + delta) - self._local)
            self._local += real
            local = self._local
        self._mirror(local, message)
        if real > 0 or message:
            self._propagate(real, message)

    def transfer(self, done: int, total: int, message: str | None = None) -> None:
        """Byte progress: updates the fraction and the task's bytes, throughput and ETA."""
        fraction = (done / total) if total > 0 else 1.0
        if self._task is not None:
            self._progress._task_update(self._task, 0.0, None, bytes_done=done, bytes_total=total)
        self.update(fraction, message)

    def warn(self, warning: str) -> None:
        """Show ``warning`` on this reporter's job row (kept apart from the changing progress message)."""
        if self._task is not None:
            self._progress.warn(self._task, warning)

    def log(self, lines: Sequence[str]) -> None:
        """Add lines to this reporter's job's live log (shown beside the job, e.g. a node's installer log)."""
        if self._task is not None:
            self._progress.log(self._task, lines)

    def stages(self, stages: Sequence[tuple[str, str, str]]) -> None:
        """The milestones this job follows, as its peer reports them: (label, ``done``/``current``/``pending``,
        detail) in order."""
        if self._task is not None:
            self._progress.set_stages(self._task, stages)

    def child(self, start: float, span: float, task: str | None = None) -> Reporter:
        """A reporter for a sub-task covering ``span`` of this reporter's scale.

        ``start`` documents where the sub-task sits; progress is additive, so only ``span`` affects the sum.
        Passing ``task`` makes the child the reporter of that task's row in the snapshot.
        """
        if not 0.0 <= start <= 1.0 or span < 0.0 or start + span > 1.0 + 1e-9:
            raise ValueError(f"child range out of bounds: start={start} span={span}")
        if task is not None:
            return Reporter(self._progress, self, span, task, _task_root=True)
        return Reporter(self._progress, self, span, self._task)

    def finish(self, message: str | None = None) -> None:
        self.update(1.0, message)

    @property
    def fraction(self) -> float:
        with self._lock:
            return self._local
