"""The install's steps, in order. Each lives in its own module; :func:`pipeline` lists them."""

from __future__ import annotations

from wizard.core.jobs import Step
from wizard.core.steps.credentials import CredentialsStep
from wizard.core.steps.preflight import PreflightSettings, PreflightStep
from wizard.core.steps.verify import VerifyFilesStep


def pipeline(preflight: PreflightSettings | None = None) -> list[Step]:
    """The steps the engine runs, in order; ``preflight`` sets how the preflight checks probe."""
    return [CredentialsStep(), VerifyFilesStep(), PreflightStep(preflight)]
