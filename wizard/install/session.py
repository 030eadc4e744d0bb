"""A session ties a project file to its journal, secrets and the engine; the GUI and headless runner share it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wizard.core.cancel import CancelToken
from wizard.core.jobs import Step, StepContext
from wizard.core.journal import Journal, journal_path, project_id
from wizard.core.paths import AppPaths, app_paths
from wizard.core.problems import Problem
from wizard.core.progress import Progress
from wizard.core.project import Project, load_project
from wizard.core.runner import Engine, Event
from wizard.core.secrets import SecretStore
from wizard.core.trust import Confirm
from wizard.install.steps import pipeline


@dataclass
class Session:
    project: Project
    warnings: list[Problem]
    journal: Journal
    secrets: SecretStore
    paths: AppPaths
    #: Asks the operator to trust first-contact fingerprints; None refuses them unless the project pins them.
    confirm: Confirm | None = None
    #: A day-2 session's install journal (:attr:`wizard.core.jobs.StepContext.origin`); None for the install.
    origin: Journal | None = None

    @classmethod
    def open(
        cls,
        project_file: Path,
        *,
        paths: AppPaths | None = None,
        secrets: SecretStore | None = None,
        confirm: Confirm | None = None,
    ) -> Session:
        """Load and validate the project and open (or create) its journal; raises on invalid input."""
        paths = (paths or app_paths()).ensure()
        loaded = load_project(project_file)
        pid = project_id(project_file, loaded.project.name)
        journal = Journal.open(journal_path(paths.state, pid), pid, str(project_file.resolve()))
        return cls(loaded.project, loaded.warnings, journal, secrets or SecretStore(), paths, confirm)

    @property
    def context(self) -> StepContext:
        return StepContext(self.project, self.secrets, self.journal, self.paths, self.confirm, origin=self.origin)

    def engine(
        self,
        *,
        steps: Sequence[Step] | None = None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        on_event: Callable[[Event], None] | None = None,
        only_nodes: Iterable[str] | None = None,
        plan: Sequence[Step] | None = None,
    ) -> Engine:
        """``plan``: every step of the install, for its overall progress, when ``steps`` stops before the end."""
        return Engine(
            self.context,
            list(steps) if steps is not None else pipeline(),
            progress=progress,
            cancel=cancel,
            on_event=on_event,
            only_nodes=only_nodes,
            plan=plan,
        )
