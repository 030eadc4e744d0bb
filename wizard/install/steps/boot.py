"""Boot every node from the ISO, the provider's way.

``machines`` gets the machines ready (vSphere VMs created or checked, MAAS machines allocated), ``media`` puts the
boot ISO where the nodes boot from (:mod:`wizard.install.steps.media`), ``boot`` boots each node from it (or, for the
``manual`` provider, says what to do and waits for the node to answer), and ``eject`` takes the ISO away after the
install so a reboot never installs again. A provider without work in a step simply has no jobs there.

MAAS machines boot by their power type: ``boot`` boots those with a Redfish BMC through it with the credentials MAAS
keeps (read again when the job runs, never stored) and shows MAAS's instruction for the others, then waits for them
to answer; ``eject`` ejects the Redfish ones. A node that finished installing is never booted again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wizard.appliance.media import inspect_iso
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.journal import JOB_DONE
from wizard.core.progress import Reporter
from wizard.core.project import BootMode, MaasSettings, ProviderType
from wizard.core.trust import TrustStore
from wizard.install.steps.media import (
    ISO_SERVER_FACT,
    MediaStep,
    boot_iso_path,
    done_result,
    external_iso,
    iso_server,
    maas_machines,
    seed_file,
    seed_name,
    seeding,
    step_fact,
)
from wizard.install.steps.nodes import Pacing, session_folder
from wizard.install.steps.providers import bmc_accesses, maas_access, vsphere_access
from wizard.providers.manual import ManualBootJob, ManualPacing
from wizard.providers.redfish.session import parse_address

if TYPE_CHECKING:
    from wizard.providers.vsphere.console import ConsoleScreens, KeyPlan

log = logging.getLogger(__name__)


#: What to do at GRUB's menu when the project names no ISO to read it from (the appliance ISO's menu, reference §10.1).
GENERIC_GUIDANCE = (
    "when GRUB's menu appears (it waits 5 seconds), press Home Enter to boot 'Palette eXtended Kubernetes Edge "
    "Installer' (entry 0); its default 'Palette Edge Interactive Installer' ignores the seed and waits for the "
    "installer's questions"
)


def _iso_name(ctx: StepContext) -> str:
    """The file the operator boots (the unattended copy's full path when the wizard made one)."""
    path = boot_iso_path(ctx)
    if path is None:
        return "the appliance ISO"
    return str(path) if ctx.project.boot_mode() is BootMode.UNATTENDED else path.name


def console_guidance(ctx: StepContext) -> str:
    """With ``appliance.boot: console``: what to do at each node's console so it boots the automatic installer."""
    if ctx.project.boot_mode() is not BootMode.CONSOLE:
        return ""
    iso = ctx.project.files.iso
    if iso is None:
        return GENERIC_GUIDANCE
    try:
        return inspect_iso(iso.path).console_guidance()
    except WizardError:
        return GENERIC_GUIDANCE


class _Guided(Job):
    """A provider's boot job that first tells the operator what to do at the node's console (``appliance.boot:
    console``): the provider powers the node on, the operator picks the installer entry within GRUB's countdown."""

    def __init__(self, inner: Job, text: str) -> None:
        self.inner = inner
        self.text = text
        self.id = inner.id
        self.name = inner.name
        self.node = inner.node
        self.weight = inner.weight

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        report.update(0.0, self.text)
        report.warn(self.text)
        facts = dict(self.inner.run(report, cancel) or {})
        facts["console"] = self.text
        return facts


class MachinesStep(Step):
    id = "machines"
    title = "Prepare the machines"
    weight = 0.5
    expected = 60.0  # MAAS allocation or vSphere VMs created; nothing for manual and Redfish nodes

    def expected_duration(self, ctx: StepContext) -> float:
        if ctx.project.provider.type not in (ProviderType.MAAS, ProviderType.VSPHERE):
            return 0.0
        return super().expected_duration(ctx)

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


def _installed(ctx: StepContext, node: str) -> bool:
    record = ctx.journal.job(f"install/{node}")
    return record is not None and record.get("status") == JOB_DONE


class _ServedBootJob(Job):
    """A boot job whose identity includes the URL it gives the BMC: when a resumed run serves the ISO elsewhere (the
    last port was taken), the node still installing is booted with the new URL."""

    def __init__(self, inner: Job, url: str) -> None:
        self.inner = inner
        self.url = url
        self.id = inner.id
        self.name = inner.name
        self.node = inner.node
        self.weight = inner.weight

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.inner.fingerprint()}\n{self.url}".encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        return self.inner.run(report, cancel)


SCREENS = "vsphere-screens"
SCREEN_FOLDER = "screens"


def console_screens(ctx: StepContext, pacing: Pacing) -> ConsoleScreens:
    """The run's console screenshots of the booting VMs (``<session>/screens/<node>.png``), taken until each node is
    installed or the run ends."""
    from wizard.providers.vsphere.console import ConsoleScreens
    from wizard.providers.vsphere.session import connect

    settings = ctx.project.provider.vsphere
    assert settings is not None
    vs = vsphere_access(ctx, settings)
    args = vs.args()

    def start() -> ConsoleScreens:
        return ConsoleScreens(
            lambda: connect(*args, scheme=vs.scheme),
            session_folder(ctx) / SCREEN_FOLDER,
            interval=pacing.screen_interval,
        )

    return ctx.resources.get(SCREENS, start, lambda screens: screens.close())


def _manual(job: Job) -> bool:
    """A job that already tells the operator what to do (the manual provider's, MAAS's by-hand routes)."""
    return isinstance(job, ManualBootJob)


class BootStep(Step):
    id = "boot"
    title = "Boot the nodes from the ISO"
    weight = 1.0
    expected = 180.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        jobs = self._jobs(ctx)
        guidance = console_guidance(ctx)
        if guidance and ctx.project.provider.type is not ProviderType.MANUAL:
            jobs = [
                _Guided(job, f"{job.node}: at its console, {guidance}") if job.node and not _manual(job) else job
                for job in jobs
            ]
        return jobs

    def _jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        guidance = console_guidance(ctx)
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
                    seed=str(seed_file(ctx, node.name) or ""),
                    console=guidance,
                )
                for node in project.nodes
            ]
            self.parallel = max(1, len(jobs))
            return jobs
        if project.provider.type is ProviderType.REDFISH:
            from wizard.providers.redfish.jobs import RedfishBootJob

            external = external_iso(ctx)
            server = None if external else iso_server(ctx)
            iso = boot_iso_path(ctx)
            jobs = []
            for access in bmc_accesses(ctx):
                if _installed(ctx, access.node):
                    continue  # installed: it must never boot the ISO again, whatever URL is served now
                seed_url = ""
                if server is not None and iso is not None:
                    url = server.publish(iso, f"{access.node}-{iso.name}")
                    seed = seed_file(ctx, access.node)
                    if seed is not None:  # the BMC reads the seed from the same server, by its own URL
                        seed_url = server.publish(seed, seed_name(access.node))
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
                    seed_url=seed_url,
                )
                boot_job.id = f"{self.id}/{access.node}"
                jobs.append(_ServedBootJob(boot_job, url))
            self.parallel = max(1, len(jobs))
            return jobs
        if project.provider.type is ProviderType.MAAS and project.provider.maas is not None:
            return self._maas_jobs(ctx, project.provider.maas)
        if project.provider.type is ProviderType.VSPHERE and project.provider.vsphere is not None:
            from wizard.providers.vsphere.checks import vm_name_for
            from wizard.providers.vsphere.jobs import AntiAffinityJob, BootVmJob

            vs = vsphere_access(ctx, project.provider.vsphere)
            iso_path = step_fact(ctx, "media/iso", "datastore_path")
            keys = self._key_plan(ctx) if project.boot_mode() is BootMode.KEYS else None
            screens = console_screens(ctx, self.pacing)
            jobs = []
            for node in project.nodes:
                seed_path = step_fact(ctx, f"media/seed/{node.name}", "datastore_path") if seeding(ctx) else ""
                boot = BootVmJob(
                    *vs.args(),
                    node=node.name,
                    vm_name=vm_name_for(project, node),
                    iso_datastore_path=iso_path,
                    seed_datastore_path=seed_path,
                    scheme=vs.scheme,
                    keys=keys,
                    watch_screen=screens.watch,
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

    def _key_plan(self, ctx: StepContext) -> KeyPlan:
        """The keys that boot the ISO's automatic installer, from its own menu."""
        from wizard.providers.vsphere.console import KeyPlan

        iso = ctx.project.files.iso
        assert iso is not None  # the project requires it for vSphere
        info = inspect_iso(iso.path)
        automatic = info.automatic
        if automatic is None:
            raise WizardError(
                "No automatic installer",
                f"{iso.path.name} has no automatic installer entry for the keys to pick",
                remediation="use appliance.boot: console, and answer the interactive installer on each console",
            )
        return KeyPlan(
            keys=tuple(info.console_keys()),
            target=automatic.title,
            countdown=info.timeout or 0.0,
            interval=self.pacing.keys_interval,
            window=self.pacing.keys_window,
        )

    def _maas_jobs(self, ctx: StepContext, settings: MaasSettings) -> list[Job]:
        """Redfish routes boot through the BMC MAAS knows; the others get MAAS's instruction and are watched."""
        from wizard.providers.maas import MaasRedfishBootJob

        routes: dict[str, Any] = done_result(ctx, "media/maas").get("routes") or {}
        machines = maas_machines(ctx)
        access = maas_access(ctx, settings)
        iso = boot_iso_path(ctx)
        guidance = console_guidance(ctx)
        external = external_iso(ctx)
        redfish = [n for n in ctx.project.nodes if (routes.get(n.name) or {}).get("route") == "redfish"]
        server = None
        if redfish and not external:
            server = iso_server(ctx, [parse_address(routes[n.name]["bmc"]).host for n in redfish])
        trust = TrustStore(ctx.paths.config)
        verify = access.verify()
        jobs: list[Job] = []
        for node in ctx.project.nodes:
            route = routes.get(node.name) or {}
            if route.get("route") == "redfish":
                if _installed(ctx, node.name):
                    continue  # installed: it must never boot the ISO again, whatever URL is served now
                url = external
                seed_url = ""
                if server is not None and iso is not None:
                    url = server.publish(iso, f"{node.name}-{iso.name}")
                    seed = seed_file(ctx, node.name)
                    if seed is not None:  # the BMC reads the seed from the same server, by its own URL
                        seed_url = server.publish(seed, seed_name(node.name))
                jobs.append(
                    MaasRedfishBootJob(
                        node.name,
                        access.url,
                        access.api_key,
                        verify,
                        system_id=machines[node.name],
                        iso_url=url,
                        trust=trust,
                        confirm=ctx.confirm,
                        iso_server=server,
                        timeouts=self.pacing.redfish,
                        step=self.id,
                        seed_url=seed_url,
                    )
                )
            else:
                jobs.append(
                    ManualBootJob(
                        node.name,
                        node.hostname,
                        node.ip,
                        ports=(node.ssh_port, node.localui_port),
                        iso_name=_iso_name(ctx),
                        pacing=self.pacing.manual,
                        step=self.id,
                        how=str(route.get("instruction") or ""),
                        seed=str(seed_file(ctx, node.name) or ""),
                        console=guidance,
                    )
                )
        self.parallel = max(1, len(jobs))
        return jobs


def eject_jobs(ctx: StepContext, pacing: Pacing, *, step: str = "eject") -> list[Job]:
    """The provider's eject job for each node it booted (each with ``.node``): the install monitor runs a node's as
    soon as its installer finished, and the eject step runs them all again to confirm (they are idempotent)."""
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
                timeouts=pacing.redfish,
            )
            eject_job.id = f"{step}/{access.node}"
            ejects.append(eject_job)
        return ejects
    if project.provider.type is ProviderType.MAAS and project.provider.maas is not None:
        from wizard.providers.maas import MaasRedfishEjectJob

        routes: dict[str, Any] = done_result(ctx, "media/maas").get("routes") or {}
        maas = maas_access(ctx, project.provider.maas)
        verify = maas.verify()
        trust = TrustStore(ctx.paths.config)
        return [
            MaasRedfishEjectJob(
                node.name,
                maas.url,
                maas.api_key,
                verify,
                system_id=str(routes[node.name]["system_id"]),
                trust=trust,
                confirm=ctx.confirm,
                timeouts=pacing.redfish,
                step=step,
            )
            for node in project.nodes
            # nodes booted by hand had their ISO attached by the operator, who detaches it the same way
            if (routes.get(node.name) or {}).get("route") == "redfish"
        ]
    if project.provider.type is ProviderType.VSPHERE and project.provider.vsphere is not None:
        from wizard.providers.vsphere.checks import vm_name_for
        from wizard.providers.vsphere.jobs import EjectVmJob

        vs = vsphere_access(ctx, project.provider.vsphere)
        jobs: list[Job] = []
        for node in project.nodes:
            eject = EjectVmJob(*vs.args(), node=node.name, vm_name=vm_name_for(project, node), scheme=vs.scheme)
            eject.id = f"{step}/{node.name}"
            jobs.append(eject)
        return jobs
    return []


class EjectStep(Step):
    """Confirms every node's media is ejected: the install monitor ejected each node's as soon as its installer
    finished; this runs the same idempotent jobs once more (and catches an eject that failed then)."""

    id = "eject"
    title = "Eject the ISO"
    weight = 0.3
    expected = 20.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        jobs = eject_jobs(ctx, self.pacing, step=self.id)
        self.parallel = max(1, len(jobs))
        return jobs


__all__ = [
    "ISO_SERVER_FACT",
    "BootStep",
    "EjectStep",
    "MachinesStep",
    "ManualPacing",
    "MediaStep",
    "eject_jobs",
    "seeding",
]
