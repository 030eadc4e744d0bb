"""Boot every node from the appliance ISO, the provider's way.

``machines`` gets the machines ready (vSphere VMs created or checked, MAAS machines allocated), ``media`` puts the
ISO where the nodes boot from (a datastore, or the wizard's ISO server for BMCs), ``boot`` boots each node from it
(or, for the ``manual`` provider, says what to do and waits for the node to answer), and ``eject`` takes the ISO
away after the install so a reboot never installs again. A provider without work in a step simply has no jobs
there.
"""

from __future__ import annotations

from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.journal import JOB_DONE
from wizard.core.project import ProviderType
from wizard.core.steps.nodes import Pacing
from wizard.core.steps.providers import maas_access, vsphere_access
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
        if provider.type is ProviderType.VSPHERE and provider.vsphere is not None:
            from wizard.providers.vsphere.checks import vm_name_for
            from wizard.providers.vsphere.jobs import PrepareVmJob

            vs = vsphere_access(ctx, provider.vsphere)
            jobs: list[Job] = []
            for i, node in enumerate(project.nodes):
                prepare = PrepareVmJob(
                    *vs.args(), node=node.name, vm_name=vm_name_for(project, node), index=i, scheme=vs.scheme
                )
                prepare.id = f"{self.id}/{node.name}"
                jobs.append(prepare)
            self.parallel = max(1, len(jobs))
            return jobs
        return []


def _verified_sha256(ctx: StepContext) -> str:
    record = ctx.journal.job("verify/files.iso")
    if not record or record.get("status") != JOB_DONE:
        raise WizardError(
            "ISO not verified",
            "the ISO's checksum is not recorded yet",
            remediation="run the Verify files step first (run without --until, or resume the session)",
        )
    return str((record.get("result") or {}).get("sha256", ""))


def _fact(ctx: StepContext, job_id: str, key: str) -> str:
    record = ctx.journal.job(job_id)
    value = ((record or {}).get("result") or {}).get(key) if record and record.get("status") == JOB_DONE else None
    if not value:
        raise WizardError(
            "Earlier step not finished",
            f"{job_id} has not recorded its {key}",
            remediation="run the earlier steps first (resume the session)",
        )
    return str(value)


class MediaStep(Step):
    id = "media"
    title = "Provide the ISO"
    weight = 1.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        provider = project.provider
        iso = project.files.iso
        if provider.type is ProviderType.VSPHERE and provider.vsphere is not None and iso is not None:
            from wizard.providers.vsphere.jobs import UploadIsoJob

            vs = vsphere_access(ctx, provider.vsphere)
            upload = UploadIsoJob(
                *vs.args(),
                local_path=iso.path,
                sha256=_verified_sha256(ctx),
                remote_name=iso.path.name,
                scheme=vs.scheme,
            )
            upload.id = f"{self.id}/iso"
            return [upload]
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
        if project.provider.type is ProviderType.VSPHERE and project.provider.vsphere is not None:
            from wizard.providers.vsphere.checks import vm_name_for
            from wizard.providers.vsphere.jobs import AntiAffinityJob, BootVmJob

            vs = vsphere_access(ctx, project.provider.vsphere)
            iso_path = _fact(ctx, "media/iso", "datastore_path")
            jobs = []
            for node in project.nodes:
                boot = BootVmJob(
                    *vs.args(),
                    node=node.name,
                    vm_name=vm_name_for(project, node),
                    iso_datastore_path=iso_path,
                    scheme=vs.scheme,
                )
                boot.id = f"{self.id}/{node.name}"
                jobs.append(boot)
            if len(project.nodes) > 1:
                rule = AntiAffinityJob(
                    *vs.args(),
                    vm_names=[vm_name_for(project, n) for n in project.nodes],
                    rule_name=f"{project.name}-spread",
                    scheme=vs.scheme,
                )
                rule.id = f"{self.id}/anti-affinity"
                jobs.append(rule)
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
        project = ctx.project
        if project.provider.type is ProviderType.VSPHERE and project.provider.vsphere is not None:
            from wizard.providers.vsphere.checks import vm_name_for
            from wizard.providers.vsphere.jobs import EjectVmJob

            vs = vsphere_access(ctx, project.provider.vsphere)
            jobs: list[Job] = []
            for node in project.nodes:
                eject = EjectVmJob(*vs.args(), node=node.name, vm_name=vm_name_for(project, node), scheme=vs.scheme)
                eject.id = f"{self.id}/{node.name}"
                jobs.append(eject)
            self.parallel = max(1, len(jobs))
            return jobs
        return []


__all__ = ["BootStep", "EjectStep", "MachinesStep", "ManualPacing", "MediaStep"]
