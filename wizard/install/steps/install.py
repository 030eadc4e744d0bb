"""Watch every node install itself from the appliance ISO, in parallel, until its Local UI answers.

With a seed ISO attached (``appliance.configure: seed``) the nodes authorise the wizard's own key, which the monitor
offers first. As soon as a node's installer finished, the monitor has the provider eject that node's media (not
waiting for the others), so its reboot comes up from disk; the eject step then only confirms.

Booting the nodes belongs to the provider (vSphere, Redfish, MAAS); until those boot steps exist, and always for
the ``manual`` provider, the operator boots each node from the ISO and this step watches. For ``manual`` a node that
already runs its installed system at first contact is accepted (the operator may have installed it by hand before
starting the wizard); for the other providers that means the node did not boot the ISO, and the job says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from wizard.appliance.media import inspect_iso
from wizard.appliance.monitor import InstallMonitor
from wizard.appliance.seed import WIZARD_KEY_FILE, wizard_key
from wizard.appliance.ssh import SSHClient, SSHCredentials
from wizard.appliance.stuck import StuckPolicy
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.journal import JOB_DONE, Journal
from wizard.core.problems import Problem
from wizard.core.progress import Reporter
from wizard.core.project import AddressMode, BootMode, ConfigureMode, Node, ProviderType
from wizard.core.trust import TrustStore
from wizard.install.checks.addresses import nodes_exist
from wizard.install.steps.boot import GENERIC_GUIDANCE, SCREENS, eject_jobs
from wizard.install.steps.media import identity_seed
from wizard.install.steps.nodes import DEFAULT_PASSWORD, Pacing, login_password
from wizard.providers.manual import ConsoleConfigJob, console_instruction

log = logging.getLogger(__name__)


class _Monitor(InstallMonitor):
    """An install monitor whose warnings land on its job's row and in the log."""

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        def warn(node: str, message: str) -> None:
            log.warning("%s: %s", node, message)
            report.warn(message)

        self.on_warning = warn
        return super().run(report, cancel)


class _ThenConsole(Job):
    """A node's install monitor, then its guided console step (``appliance.configure: console``)."""

    def __init__(self, monitor: Job, console: ConsoleConfigJob) -> None:
        self.monitor = monitor
        self.console = console
        self.id = monitor.id
        self.name = monitor.name
        self.node = monitor.node
        self.weight = monitor.weight + console.weight

    def fingerprint(self) -> str:
        return f"{self.monitor.fingerprint()}|{self.console.fingerprint()}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        facts = dict(self.monitor.run(report.child(0.0, 0.8), cancel) or {})
        facts["console"] = dict(self.console.run(report.child(0.8, 0.2), cancel) or {})
        return facts


class _ThenDropScreen(Job):
    """A node's install job; when it ends, its console screenshots stop (the node is installed, or failed)."""

    def __init__(self, inner: Job, drop: Callable[[str], None]) -> None:
        self.inner = inner
        self.drop = drop
        self.id = inner.id
        self.name = inner.name
        self.node = inner.node
        self.weight = inner.weight

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        try:
            return self.inner.run(report, cancel)
        finally:
            self.drop(self.node)


def _record_installer(journal: Journal, node: str, boot_id: str) -> None:
    journal.set_fact(installer_seen_fact(node), boot_id)


def _booted_in_an_earlier_run(ctx: StepContext, node: str) -> bool:
    """True when this session booted ``node`` from the ISO in a run before this one: the wizard stopped (a crash, a
    kill) while the node went on installing, so an installed system at first contact is that install's result."""
    booted = ctx.journal.job(f"boot/{node}")
    started = ctx.journal.run_started_at()
    if booted is None or booted.get("status") != JOB_DONE or started is None:
        return False
    return float(booted.get("finished") or started) < started


def installer_seen_fact(node: str) -> str:
    """The journal fact holding the boot id of ``node``'s live installer, once the install monitor has seen it."""
    return f"install.{node}.installer_seen"


def ssh_credentials(ctx: StepContext, node: Node) -> SSHCredentials:
    """How the wizard logs in to ``node`` over SSH: its own key when the node was seeded with it (tried first),
    then the account's current password. Nodes that may have been set up before this session (the manual
    provider, existing VMs) may have the operator's password already: it is tried once if the default is refused."""
    pkey = wizard_key(ctx.paths.config) if identity_seed(ctx) else None
    # The key's file too: staging hands it to the jump host's OpenSSH client (wizard.appliance.sshstream).
    key_path = ctx.paths.config / WIZARD_KEY_FILE if pkey is not None else None
    password = login_password(ctx, node)
    ref = ctx.project.appliance.password
    then = None
    if password == DEFAULT_PASSWORD and ref is not None and nodes_exist(ctx.project):
        then = ctx.secrets.require(ref, "appliance.password")
    return SSHCredentials(
        ctx.project.appliance.username, password=password, then_password=then, pkey=pkey, key_path=key_path
    )


class InstallStep(Step):
    id = "install"
    title = "Install the nodes"
    kind = StepKind.INSTALL
    weight = 4.0
    #: "Wait ≥15 min" per node (the appliance docs); nodes install in parallel, a batch at a time.
    expected = 20 * 60.0

    def expected_duration(self, ctx: StepContext) -> float:
        batches = -(-max(1, len(ctx.project.nodes)) // max(1, self.parallel))
        return super().expected_duration(ctx) * batches

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def problems(self, ctx: StepContext) -> list[Problem]:
        return [
            Problem(
                f"nodes[{i}].ip",
                "the wizard needs the node's address to watch its install",
                "give the node's address (for DHCP, the address its reservation hands out)",
            )
            for i, n in enumerate(ctx.project.nodes)
            if not n.ip
        ]

    def _console_job(self, ctx: StepContext, node: Node, trust: TrustStore) -> ConsoleConfigJob:
        static = node.address_mode is AddressMode.STATIC
        net = ctx.project.network
        text = console_instruction(
            node.hostname,
            username=ctx.project.appliance.username,
            address=node.ip if static else "",
            prefix=node.prefix if static else None,
            gateway=node.gateway if static else "",
            dns=net.dns,
            search=net.search_domains,
        )
        client = SSHClient(
            node.ip,
            node.ssh_port,
            ssh_credentials(ctx, node),
            trust=trust,
            confirm=ctx.confirm,
            expected_fingerprint=node.ssh_host_key,
            connect_timeout=self.pacing.monitor.connect_timeout,
            command_timeout=self.pacing.monitor.command_timeout,
        )

        def hostname_of() -> str:
            try:
                return client.run("hostname").stdout
            finally:
                client.close()

        return ConsoleConfigJob(
            node.name, node.hostname, f"{node.name}: {text}", hostname_of, pacing=self.pacing.manual
        )

    def _stuck_policy(self, ctx: StepContext) -> StuckPolicy:
        """What a node waiting at the interactive installer is told, from the ISO's own menu: with ``appliance.boot:
        console`` a warning (the operator is at the console), otherwise the node's install stops with it."""
        guidance = GENERIC_GUIDANCE
        iso = ctx.project.files.iso
        if iso is not None:
            with contextlib.suppress(WizardError):
                guidance = inspect_iso(iso.path).console_guidance()
        return StuckPolicy(
            budget=self.pacing.stuck_budget,
            guidance=f"reset it and, {guidance}",
            fatal=ctx.project.boot_mode() is not BootMode.CONSOLE,
        )

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        trust = TrustStore(ctx.paths.config)
        ejects = {job.node: job for job in eject_jobs(ctx, self.pacing, step="eject")}
        stuck = self._stuck_policy(ctx)
        jobs: list[Job] = []
        for node in project.nodes:
            creds = ssh_credentials(ctx, node)
            public = creds.password if creds.password == DEFAULT_PASSWORD else None
            eject = ejects.get(node.name)
            jobs.append(
                _Monitor(
                    node.name,
                    node.ip,
                    node.ssh_port,
                    creds,
                    trust=trust,
                    confirm=ctx.confirm,
                    expected_fingerprint=node.ssh_host_key,
                    installer_fingerprint=node.ssh_installer_host_key,
                    # Proving the reboot logs in before the new key is trusted: only the wizard's key and the
                    # public default password may be offered then.
                    probe_credentials=SSHCredentials(creds.username, password=public, pkey=creds.pkey),
                    local_ui_port=node.localui_port,
                    budgets=self.pacing.budgets,
                    poll=self.pacing.monitor,
                    # Manual boots are the operator's; otherwise only a node this session saw in its installer
                    # (a run stopped mid-install and resumed) may answer from an installed system at first contact.
                    allow_installed=project.provider.type is ProviderType.MANUAL
                    or ctx.journal.fact(installer_seen_fact(node.name)) is not None
                    or _booted_in_an_earlier_run(ctx, node.name),
                    on_installer_seen=partial(_record_installer, ctx.journal, node.name),
                    step=self.id,
                    on_installed=eject.run if eject is not None else None,
                    stuck=stuck,
                )
            )
        if project.appliance.configure is ConfigureMode.CONSOLE:
            consoles = [self._console_job(ctx, node, trust) for node in project.nodes]
            jobs = [_ThenConsole(job, console) for job, console in zip(jobs, consoles, strict=True)]
        screens = ctx.resources.peek(SCREENS)
        if screens is not None:
            jobs = [_ThenDropScreen(job, screens.drop) for job in jobs]
        self.parallel = max(1, len(jobs))  # every node installs at once; each monitor mostly waits
        return jobs
