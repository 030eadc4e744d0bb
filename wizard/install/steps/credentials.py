"""Before anything else: every keyring reference in the project resolves to a stored secret."""

from __future__ import annotations

from wizard.core.errors import SecretError
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.problems import Problem


class CredentialsStep(Step):
    id = "credentials"
    title = "Check credentials"
    kind = StepKind.INPUT
    weight = 0.1

    def problems(self, ctx: StepContext) -> list[Problem]:
        store = ctx.secrets
        try:
            missing = store.missing(ctx.project.secret_refs())
        except SecretError as exc:  # the store itself fails (a broken keyring backend): bad input, not a failed run
            return [Problem("secrets", f"{exc.title}: {exc.message}", exc.remediation)]
        return [
            Problem(path, f"secret {ref.key!r} is not in {store.where}", store.how_to_store(ref.key))
            for path, ref in missing
        ]

    def jobs(self, ctx: StepContext) -> list[Job]:
        return []
