"""Boot every node from the appliance ISO, the provider's way.

``machines`` gets the machines ready (vSphere VMs created or checked, MAAS machines allocated), ``media`` puts the
ISO where the nodes boot from (a datastore, or the wizard's ISO server for BMCs), ``boot`` boots each node from it
(or, for the ``manual`` provider, says what to do and waits for the node to answer), and ``eject`` takes the ISO
away after the install so a reboot never installs again. A provider without work in a step simply has no jobs
there.
"""

from __future__ import annotations

from wizard.core.jobs import Job, Step, StepContext
from wizard.core.project import ProviderType
from wizard.core.steps.nodes import Pacing
from wizard.core.steps.providers import maas_access
from wizard.providers.manual import ManualBootJob, ManualPacing


def _iso_name(ctx: StepContext) -> str:
    iso = ctx.project.files.iso
    return iso.path.name if iso else "the appliance ISO"


class MachinesStep(Step):
    id = "machines"
    title = "Prepare the machines"
    weight = 0.5

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        provider = project.provider
        if provider.type is ProviderType.MAAS and provider.maas is not None:
            from wizard.providers.maas import AllocateMachinesJob

            access = maas_access(ctx, provider.maas)
            job = AllocateMachinesJob(
                access.url,
                access.api_key,
                access.verify(),
                refs=[n.maas for n in project.nodes],
                comment=f"Palette management appliance {project.name!r}, allocated by palette-wizard",
                agent_name=f"palette-wizard/{project.name}",
            )
            job.id = f"{self.id}/maas"
            return [job]
        return []


class MediaStep(Step):
    id = "media"
    title = "Provide the ISO"
    weight = 1.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        return []


class BootStep(Step):
    id = "boot"
    title = "Boot the nodes from the ISO"
    weight = 1.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        if project.provider.type is ProviderType.MANUAL:
            jobs: list[Job] = [
                ManualBootJob(
                    node.name,
                    node.hostname,
                    node.ip,
                    ports=(node.ssh_port, node.localui_port),
                    iso_name=_iso_name(ctx),
                    pacing=self.pacing.manual,
                    step=self.id,
                )
                for node in project.nodes
            ]
            self.parallel = max(1, len(jobs))
            return jobs
        return []


class EjectStep(Step):
    id = "eject"
    title = "Eject the ISO"
    weight = 0.3

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        return []


__all__ = ["BootStep", "EjectStep", "MachinesStep", "ManualPacing", "MediaStep"]
