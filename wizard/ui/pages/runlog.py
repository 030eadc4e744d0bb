"""What the Run page writes in words: each job's status, and one line of the activity log per engine event."""

from __future__ import annotations

from wizard.core.checks.grouping import checks_outcome
from wizard.core.progress import TaskStatus
from wizard.core.runner import (
    ExitCode,
    JobFinished,
    JobStarted,
    RunFinished,
    RunStarted,
    StepBlocked,
    StepFinished,
    StepStarted,
)
from wizard.ui.theme import Status
from wizard.ui.wording import outcome_text, problem_text

STATUS_TEXT: dict[TaskStatus, str] = {
    TaskStatus.PENDING: "○ Pending",
    TaskStatus.RUNNING: "● Running",
    TaskStatus.DONE: "✓ Done",
    TaskStatus.SKIPPED: "✓ Done before",
    TaskStatus.FAILED: "✗ Failed",
    TaskStatus.CANCELLED: "■ Cancelled",
    TaskStatus.HELD: "◌ Not retried",
}
STATUS_KIND: dict[TaskStatus, Status] = {
    TaskStatus.DONE: Status.DONE,
    TaskStatus.SKIPPED: Status.DONE,
    TaskStatus.FAILED: Status.FAILED,
    TaskStatus.CANCELLED: Status.WARNING,
    TaskStatus.HELD: Status.WARNING,
}


def who(name: str, node: str) -> str:
    """A job as the log names it: its name, and its node when the name does not already say it."""
    return f"{name} [{node}]" if node and node != name and node not in name else name


def describe(ev: object) -> str | None:
    """One line for the activity log, or None for events that add nothing the table does not show."""
    if isinstance(ev, RunStarted):
        return "Run started: " + " → ".join(title for _, title in ev.steps)
    if isinstance(ev, StepStarted):
        count = f" ({len(ev.jobs)} job{'s' if len(ev.jobs) != 1 else ''})" if ev.jobs else ""
        return f"▶ {ev.title}{count}"
    if isinstance(ev, JobStarted):
        again = f" (attempt {ev.attempt})" if ev.attempt > 1 else ""
        return f"  … {who(ev.name, ev.node)} started{again}"
    if isinstance(ev, JobFinished):
        name = who(ev.name, ev.node)
        if ev.status is TaskStatus.DONE:
            checked = checks_outcome(ev.result)
            return f"  {checked[0]} {name}{checked[1]}" if checked else f"  ✓ {name} done"
        if ev.status is TaskStatus.SKIPPED:
            return f"  ↷ {name}: already done"
        if ev.status is TaskStatus.CANCELLED:
            return f"  ■ {name}: cancelled"
        if ev.status is TaskStatus.HELD:
            return f"  ◌ {name}: {(ev.error or {}).get('message', 'not retried in this run')}"
        err = ev.error or {}
        return f"  ✗ {name}: {err.get('title', 'failed')}: {err.get('message', '')}"
    if isinstance(ev, StepBlocked):
        lines = [f"✗ {ev.step} blocked by {len(ev.problems)} problem{'s' if len(ev.problems) != 1 else ''}:"]
        lines.extend(f"    {problem_text(p)}" for p in ev.problems)
        return "\n".join(lines)
    if isinstance(ev, StepFinished):
        return None
    if isinstance(ev, RunFinished):
        ended = f"Run ended: {outcome_text(ev.exit_code)}"
        if ev.held:
            ended += f"; {held_text(ev)}"
        return ended
    return None


def held_text(ev: RunFinished) -> str:
    """What a run limited to some nodes says about the others: "node-2 retried; node-3 still needs a retry"."""
    needs = "needs" if len(ev.held) == 1 else "need"
    retried = ", ".join(ev.retried)
    done = "retried" if ev.exit_code is ExitCode.INCOMPLETE else "failed again"
    return f"{retried} {done}; {', '.join(ev.held)} still {needs} a retry"
