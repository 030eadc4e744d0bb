"""Boot every node from the appliance ISO, the provider's way.

``machines`` gets the machines ready (vSphere VMs created or checked, MAAS machines allocated), ``media`` puts the
ISO where the nodes boot from (a datastore, or the wizard's ISO server for BMCs), ``boot`` boots each node from it
(or, for the ``manual`` provider, says what to do and waits for the node to answer), and ``eject`` takes the ISO
away after the install so a reboot never installs again. A provider without work in a step simply has no jobs
there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.journal import JOB_DONE
from wizard.core.progress import Reporter
from wizard.core.project import ProviderType
from wizard.core.steps.nodes import Pacing
from wizard.core.steps.providers import bmc_accesses, maas_access, vsphere_access
from wizard.providers.manual import ManualBootJob, ManualPacing
from wizard.providers.redfish.client import parse_address

if TYPE_CHECKING:
    from wizard.providers.isoserver import IsoServer


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


ISO_SERVER = "iso-server"


def _external_iso(ctx: StepContext) -> str:
    """The operator's own ISO URL for the BMCs, when the ISO is hosted elsewhere ("" means the wizard serves it)."""
    redfish = ctx.project.provider.redfish
    return redfish.iso_url if redfish is not None else ""


def iso_server(ctx: StepContext) -> IsoServer:
    """The run's ISO server, started on first use and stopped by the engine when the run ends (the BMCs read the
    ISO for as long as the nodes install, so it outlives the boot step)."""
    from wizard.providers.isoserver import IsoServer, choose_bind_address

    def start() -> IsoServer:
        redfish = ctx.project.provider.redfish
        bind = redfish.iso_server_bind if redfish is not None else ""
        if not bind:
            bmcs = [parse_address(n.bmc.address).host for n in ctx.project.nodes if n.bmc is not None]
            bind = choose_bind_address(bmcs)
        port = redfish.iso_server_port if redfish is not None else 0
        return IsoServer(bind, port).start()

    return ctx.resources.get(ISO_SERVER, start, lambda server: server.stop())


class ServeIsoJob(Job):
    """Starts the ISO server the BMCs download from and says where it listens, so the operator can check that the
    BMC network reaches it."""

    weight = 0.2

    def __init__(self, server: Callable[[], IsoServer], iso: Path, nodes: list[str], *, step: str = "media") -> None:
        self.server = server
        self.iso = iso
        self.nodes = nodes
        self.id = f"{step}/iso-server"
        self.name = "ISO server"

    def fingerprint(self) -> str:
        return f"{self.iso}|{self.nodes}|{time.time_ns()}"  # a new run needs a running server: never skipped

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        if not self.iso.is_file():
            raise WizardError("ISO missing", f"{self.iso} does not exist", remediation="pick the ISO again")
        server = self.server()
        report.finish(f"serving {self.iso.name} at {server.url_base} for {len(self.nodes)} BMC(s)")
        return {"url_base": server.url_base}


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
        if provider.type is ProviderType.REDFISH and iso is not None and not _external_iso(ctx):
            return [ServeIsoJob(lambda: iso_server(ctx), iso.path, [n.name for n in project.nodes], step=self.id)]
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
        if project.provider.type is ProviderType.REDFISH:
            from wizard.providers.redfish.jobs import RedfishBootJob

            external = _external_iso(ctx)
            server = None if external else iso_server(ctx)
            iso = project.files.iso
            jobs = []
            for access in bmc_accesses(ctx):
                if server is not None and iso is not None:
                    url = server.publish(iso.path, f"{access.node}-{iso.path.name}")
                else:
                    url = external
                boot_job = RedfishBootJob(
                    access.node,
                    access.bmc,
                    access.password,
                    url,
                    trust=access.trust,
                    confirm=access.confirm,
                    iso_server=server,
                    timeouts=self.pacing.redfish,
                )
                boot_job.id = f"{self.id}/{access.node}"
                jobs.append(boot_job)
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
        if project.provider.type is ProviderType.REDFISH:
            from wizard.providers.redfish.jobs import RedfishEjectJob

            ejects: list[Job] = []
            for access in bmc_accesses(ctx):
                eject_job = RedfishEjectJob(
                    access.node,
                    access.bmc,
                    access.password,
                    trust=access.trust,
                    confirm=access.confirm,
                    timeouts=self.pacing.redfish,
                )
                eject_job.id = f"{self.id}/{access.node}"
                ejects.append(eject_job)
            self.parallel = max(1, len(ejects))
            return ejects
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
