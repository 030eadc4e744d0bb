"""The Step and Job contracts.

A :class:`Step` is one stage of the install (verify files, boot nodes, link, …). It reports the problems that keep
it from starting (empty means the GUI's Next is enabled) and builds its :class:`Job` objects from plain values.
A job does one idempotent piece of work: ``run(report, cancel)`` reports progress, checks the token between chunks
and returns the facts it wants recorded. Its ``fingerprint`` names its inputs (and nothing else: never a clock), so
a resumed run skips a job only when it finished with the very same inputs; a job that must run again although it
finished with them says so with ``rerun``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from wizard.core.cancel import CancelToken
from wizard.core.journal import Facts, Journal
from wizard.core.paths import AppPaths
from wizard.core.problems import Problem
from wizard.core.progress import Reporter
from wizard.core.project import Project
from wizard.core.resources import RunResources
from wizard.core.secrets import SecretStore
from wizard.core.trust import Confirm


class StepKind(StrEnum):
    """What a step's blockers mean: input to correct (exit 2), a failed check before anything was touched
    (exit 3), or a failed install action (exit 4)."""

    INPUT = "input"
    PREFLIGHT = "preflight"
    INSTALL = "install"


class Job(ABC):
    #: Stable across runs, unique within the run: ``<step>/<noun>``.
    id: str
    #: A noun for people: "ISO image", "node-2".
    name: str
    weight: float = 1.0
    node: str = ""
    #: Run even when the journal records this job done with the same fingerprint: a service every run needs (the
    #: ISO server), or a check whose last result was a blocker (the operator may have fixed it since). Once it
    #: finishes, its record carries the same fingerprint as ever, so a later run that does not ask again skips it.
    rerun: bool = False

    def fingerprint(self) -> str:
        """Identifies the job's inputs, a pure function of them; when it changes, a finished job runs again."""
        return ""

    @abstractmethod
    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        """Do the work; return facts to record with the job's result."""


@dataclass(frozen=True)
class StepContext:
    """What a step may read to build its jobs. Jobs receive plain values taken from here, never the context."""

    project: Project
    secrets: SecretStore
    journal: Journal
    paths: AppPaths
    #: Asks the operator to trust a first-contact fingerprint; None when no one can be asked (headless without a
    #: terminal), so first contact is refused unless the project pins the fingerprint.
    confirm: Confirm | None = None
    #: Services shared by jobs for the length of one run (the ISO server); the engine closes them at its end.
    resources: RunResources = field(default_factory=RunResources, compare=False)
    #: The journal of the install a day-2 session (an upgrade, a certificate change, a node added) works on; read
    #: through :meth:`record` where the session's own journal has no record yet. None for the install itself.
    origin: Journal | None = field(default=None, compare=False)

    def facts(self, scope: str) -> Facts:
        return Facts(self.journal, scope)

    def record(self, job_id: str) -> dict[str, Any] | None:
        """A job's record: this session's own, else the install's (``origin``) for a day-2 session."""
        found = self.journal.job(job_id)
        if found is None and self.origin is not None:
            found = self.origin.job(job_id)
        return found

    def result(self, job_id: str) -> dict[str, Any]:
        """The result :meth:`record` finds (empty when there is none)."""
        found = self.record(job_id)
        return dict(found.get("result") or {}) if found else {}


class Step(ABC):
    id: str
    title: str
    kind: StepKind = StepKind.INSTALL
    weight: float = 1.0
    #: How many of the step's jobs run at once (nodes are worked on in parallel).
    parallel: int = 4
    #: How long the step usually takes on a real install, in seconds (the appliance docs' durations where they give
    #: one); None counts ``weight`` as minutes. The overall progress is planned from these and the ETA scales them
    #: by the pace the run shows.
    expected: float | None = None
    #: How many times faster than real time the nodes this step works with run (the rehearsal's lab, see
    #: ``Pacing.speed``); the expected duration is divided by it.
    speed: float = 1.0

    def expected_duration(self, ctx: StepContext) -> float:
        """The step's expected duration in seconds, for this project (0 when it has nothing to do)."""
        base = self.expected if self.expected is not None else self.weight * 60.0
        return base / max(self.speed, 1e-6)

    def problems(self, ctx: StepContext) -> list[Problem]:
        """What keeps this step from starting; empty means it can run."""
        return []

    @abstractmethod
    def jobs(self, ctx: StepContext) -> list[Job]:
        """The step's jobs, built from plain values."""
