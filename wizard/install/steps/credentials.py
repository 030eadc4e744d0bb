"""Before anything else: every keyring reference in the project resolves to a stored secret."""

from __future__ import annotations

from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.problems import Problem


class CredentialsStep(Step):
    id = "credentials"
    title = "Check credentials"
    kind = StepKind.INPUT
    weight = 0.1
    expected = 0.1

    def expected_duration(self, ctx: StepContext) -> float:
        return self.expected or 0.0  # reads the keyring on this machine: as fast in a rehearsal

    def problems(self, ctx: StepContext) -> list[Problem]:
        missing = ctx.secrets.missing(ctx.project.secret_refs())
        hint = f" ({ctx.secrets.notice})" if ctx.secrets.notice else ""
        return [
            Problem(
                path,
                f"secret {ref.key!r} is not in the keyring{hint}",
                f"store it with `palette-wizard secret set {ref.key}` or enter it on the Credentials page",
            )
            for path, ref in missing
        ]

    def jobs(self, ctx: StepContext) -> list[Job]:
        return []
