"""Errors the engine shows to people: a title, a message, details and, where it helps, the fix."""

from __future__ import annotations

from collections.abc import Sequence

from wizard.core.problems import Problem


class WizardError(Exception):
    """An error with everything a dialog or a terminal needs to explain it."""

    def __init__(
        self,
        title: str,
        message: str,
        *,
        details: str = "",
        remediation: str = "",
    ) -> None:
        super().__init__(f"{title}: {message}")
        self.title = title
        self.message = message
        self.details = details
        self.remediation = remediation

    def to_dict(self) -> dict[str, str]:
        return {
            "title": self.title,
            "message": self.message,
            "details": self.details,
            "remediation": self.remediation,
        }

    def render(self) -> str:
        lines = [f"{self.title}: {self.message}"]
        if self.remediation:
            lines.append(f"  fix: {self.remediation}")
        if self.details:
            lines.extend("  " + line for line in self.details.splitlines())
        return "\n".join(lines)


class Cancelled(Exception):
    """Raised by :class:`~wizard.core.cancel.CancelToken` when the operator cancels. Not an error."""


class ProjectInvalid(WizardError):
    """The project file has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[Problem], source: str = "") -> None:
        self.problems: list[Problem] = list(problems)
        where = f" in {source}" if source else ""
        count = len(self.problems)
        super().__init__(
            "Invalid project",
            f"{count} problem{'s' if count != 1 else ''}{where}",
            details="\n".join(str(p) for p in self.problems),
            remediation="Correct each field named above and try again.",
        )

    # A traceback or a log line shows only str(): name the problems there too (the first few), not just their count.
    _SHOWN = 3

    def __str__(self) -> str:
        first = sorted(self.problems, key=lambda p: not p.is_error)[: self._SHOWN]  # errors before warnings
        shown = "; ".join(f"{p.path}: {p.message}" for p in first)
        more = len(self.problems) - self._SHOWN
        if more > 0:
            shown += f"; and {more} more"
        return f"{self.title}: {self.message}" + (f": {shown}" if shown else "")


class JournalError(WizardError):
    """The session journal cannot be used (corrupt, foreign, or unwritable)."""


class SecretError(WizardError):
    """A secret is missing from the keyring or the keyring refused an operation."""


class PreflightBlocked(WizardError):
    """A blocking check failed before anything was touched."""


class StepFailed(WizardError):
    """A step's job failed; the original error is kept as ``cause``."""

    def __init__(self, step: str, job: str, cause: WizardError) -> None:
        super().__init__(
            cause.title,
            cause.message,
            details=cause.details,
            remediation=cause.remediation,
        )
        self.step = step
        self.job = job
        self.cause = cause
