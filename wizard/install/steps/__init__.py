"""The install's steps, in order. Each lives in its own module; :func:`pipeline` lists them."""

from __future__ import annotations

from wizard.core.jobs import Step
from wizard.core.stepids import STEP_IDS
from wizard.install.steps.appliance import ApplianceStep
from wizard.install.steps.boot import BootStep, EjectStep, MachinesStep, MediaStep
from wizard.install.steps.configure import ConfigureStep
from wizard.install.steps.console import ActivateStep, ConsoleStep, PacksStep, ValidateStep
from wizard.install.steps.credentials import CredentialsStep
from wizard.install.steps.install import InstallStep
from wizard.install.steps.localui import ClusterStep, ContentStep, LinkStep, PasswordStep
from wizard.install.steps.network import NetworkStep
from wizard.install.steps.nodes import Pacing
from wizard.install.steps.postboot import PostbootStep
from wizard.install.steps.preflight import PreflightSettings, PreflightStep
from wizard.install.steps.verify import VerifyFilesStep

# STEP_IDS: every step id in run order; ``pipeline(until=…)`` and ``palette-wizard run --until`` take one of these.
__all__ = ["STEP_IDS", "pipeline"]


def pipeline(
    preflight: PreflightSettings | None = None,
    *,
    pacing: Pacing | None = None,
    until: str | None = None,
) -> list[Step]:
    """The steps the engine runs, in order; ``preflight`` sets how the preflight checks probe, ``pacing`` how the
    appliance steps poll, and ``until`` names the last step to run (``"preflight"``: check everything, touch
    nothing)."""
    steps: list[Step] = [
        CredentialsStep(),
        VerifyFilesStep(),
        PreflightStep(preflight),
        MachinesStep(pacing),
        MediaStep(pacing),
        BootStep(pacing),
        InstallStep(pacing),
        PostbootStep(),
        EjectStep(pacing),
        PasswordStep(pacing),
        ConfigureStep(pacing),
        NetworkStep(pacing),
        ApplianceStep(pacing),
        LinkStep(pacing),
        ContentStep(pacing),
        ClusterStep(pacing),
        ConsoleStep(pacing),
        ActivateStep(pacing),
        PacksStep(pacing),
        ValidateStep(pacing, STEP_IDS),
    ]
    assert tuple(s.id for s in steps) == STEP_IDS
    if pacing is not None:
        for step in steps:
            step.speed = pacing.speed  # the expected durations the overall progress is planned from
    if until is None:
        return steps
    if until not in STEP_IDS:
        raise ValueError(f"no step {until!r}; the steps are {', '.join(STEP_IDS)}")
    return steps[: STEP_IDS.index(until) + 1]
