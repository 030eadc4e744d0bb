"""The install's steps, in order. Each lives in its own module; :func:`pipeline` lists them."""

from __future__ import annotations

from wizard.core.jobs import Step
from wizard.core.steps.credentials import CredentialsStep
from wizard.core.steps.verify import VerifyFilesStep


def pipeline() -> list[Step]:
    """The steps the engine runs, in order."""
    return [CredentialsStep(), VerifyFilesStep()]
