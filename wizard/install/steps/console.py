"""The steps after the cluster: the system console's first login, activation, pack bundles, and the validation that
ends with the run report."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wizard.appliance.bundles import TRANSFER_SFTP
from wizard.appliance.certificates import CertificateFiles, ConsoleCertificateJob
from wizard.appliance.console import ConsoleConnector, ConsoleEndpoint
from wizard.appliance.console_jobs import ActivateJob, ConsoleSetupJob, RegistrySyncJob
from wizard.appliance.hostsync import HostsSyncedJob
from wizard.appliance.kube import judge_pods, list_pods
from wizard.appliance.localui import Connector, Endpoint, LocalUIClient
from wizard.appliance.packs import UploadPackJob, packs_inputs
from wizard.appliance.sessions import SessionPool
from wizard.appliance.ssh import SSHClient
from wizard.appliance.statuswords import CLUSTER_STATE
from wizard.appliance.versions import LOCALUI_SYNC_FROM, ApplianceIdentity
from wizard.appliance.witness import ClusterWitness, NodeWitness, first_able
from wizard.core.cancel import CancelToken
from wizard.core.checks.catalog import CheckResult
from wizard.core.checks.ports import check_ports
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.problems import Problem
from wizard.core.progress import Reporter
from wizard.core.project import Node
from wizard.core.report import read_journal_file, summarize, write_run_report
from wizard.core.trust import TrustStore
from wizard.install.steps.appliance import detected, upload_problems
from wizard.install.steps.localui import kubeconfig_path, sftp_transfer, transfer_mode
from wizard.install.steps.nodes import Pacing, connector, endpoint, leader_and_followers, session_folder

log = logging.getLogger(__name__)

P_APPLICATIONS = "/v1/edge-mgmt/cluster/applications"


def console_endpoint(ctx: StepContext) -> ConsoleEndpoint:
    settings = ctx.project.console
    assert settings is not None
    return ConsoleEndpoint(ctx.project.network.vip, settings.port, settings.tls_fingerprint)


CONSOLE_SESSIONS = "console-sessions"  # the run's kept system console sessions (RunResources key)


def console_connector(ctx: StepContext, pacing: Pacing) -> ConsoleConnector:
    """Opens console clients, which share the run's sessions (one login per password, not one per job); on first
    contact the nodes, over their pinned SSH sessions, vouch for the certificate they see at the VIP (the leader
    first), then the cluster through the saved kubeconfig for the certificates it holds, so the run pins it without a
    prompt when both sides agree."""
    trust = TrustStore(ctx.paths.config)
    return ConsoleConnector(
        trust,
        ctx.confirm,
        timeout=pacing.localui_timeout,
        retry=pacing.retry,
        witness=first_able([*node_witnesses(ctx, pacing, trust), ClusterWitness(kubeconfig_path(ctx))]),
        pool=ctx.resources.get(CONSOLE_SESSIONS, SessionPool, SessionPool.close),
    )


def node_witnesses(ctx: StepContext, pacing: Pacing, trust: TrustStore) -> list[NodeWitness]:
    from wizard.install.steps.install import ssh_credentials  # install imports the boot step; keep this one light

    leader, followers = leader_and_followers(ctx)
    out = []
    for node in (leader, *followers):
        # Only an SSH session whose host key is pinned already is a trusted channel: nobody is asked (confirm=None).
        def make(node: Node = node) -> SSHClient:
            return SSHClient(
                node.ip,
                node.ssh_port,
                ssh_credentials(ctx, node),
                trust=trust,
                confirm=None,
                expected_fingerprint=node.ssh_host_key,
                connect_timeout=pacing.monitor.connect_timeout,
                command_timeout=pacing.monitor.command_timeout,
                keepalive=0,
            )

        out.append(NodeWitness(node.name, make))
    return out


def console_password(ctx: StepContext) -> str:
    """The operator's admin password; the steps after ``console`` run once it replaced admin/admin."""
    settings = ctx.project.console
    assert settings is not None and settings.password is not None
    return ctx.secrets.require(settings.password, "console.password")


class ConsoleStep(Step):
    """First login to the system console and the forced change of the admin password; without a ``console``
    section the wizard stops after the cluster."""

    id = "console"
    title = "Set up the system console"
    expected = 60.0
    kind = StepKind.INSTALL
    weight = 0.5

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    parallel = 1  # the operator's certificate goes in after the first login

    def jobs(self, ctx: StepContext) -> list[Job]:
        settings = ctx.project.console
        if settings is None:
            return []
        pace = self.pacing
        jobs: list[Job] = [
            ConsoleSetupJob(
                console_endpoint(ctx),
                console_connector(ctx, pace),
                settings.email,
                console_password(ctx),
                poll=pace.content_poll,
                available_timeout=pace.cluster_outage_timeout,
            )
        ]
        if settings.certificate is not None:
            jobs.append(console_certificate_job(ctx, pace))
        return jobs


def console_certificate_job(
    ctx: StepContext,
    pacing: Pacing,
    files: CertificateFiles | None = None,
    domain: str | None = None,
    *,
    only_if_lost: bool = False,
    rerun: bool = False,
) -> ConsoleCertificateJob:
    """The operator's certificate for the console: ``files`` and ``domain`` (a day-2 command's), else the project's
    ``console.certificate`` and ``console.domain``."""
    settings = ctx.project.console
    assert settings is not None
    if files is None:
        assert settings.certificate is not None
        files = CertificateFiles(settings.certificate.cert, settings.certificate.key, settings.certificate.ca)
    job = ConsoleCertificateJob(
        console_endpoint(ctx),
        console_connector(ctx, pacing),
        console_password(ctx),
        files,
        domain=settings.domain if domain is None else domain,
        only_if_lost=only_if_lost,
        poll=pacing.content_poll,
        timeout=max(60.0, pacing.content_poll * 30),
        available_timeout=pacing.cluster_outage_timeout,
    )
    job.rerun = rerun
    return job


class ActivateStep(Step):
    """Activate with the key in the keyring, or (``defer``) record the Product Setup ID and when the trial ends."""

    id = "activate"
    title = "Activate Palette"
    expected = 30.0
    kind = StepKind.INSTALL
    weight = 0.3

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        if ctx.project.console is None:
            return []
        ref = ctx.project.activation.key
        key = ctx.secrets.require(ref, "activation.key") if ref is not None else None
        return [ActivateJob(console_endpoint(ctx), console_connector(ctx, self.pacing), console_password(ctx), key=key)]


class PacksStep(Step):
    """Upload the pack bundles one at a time to the leader's Local UI, then sync the pack registry."""

    id = "packs"
    title = "Upload the pack bundles"
    expected = 300.0  # uploads at the network's pace, then the registry sync
    kind = StepKind.INSTALL
    weight = 2.0
    parallel = 1  # a queue: the leader keeps one "last upload", checked right after each file

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def problems(self, ctx: StepContext) -> list[Problem]:
        return upload_problems(ctx, packs=True) if ctx.project.console is not None else []

    def jobs(self, ctx: StepContext) -> list[Job]:
        files = ctx.project.files
        if ctx.project.console is None or not files.pack_bundles:
            return []
        pace = self.pacing
        leader, _ = leader_and_followers(ctx)
        conn = connector(ctx, pace)
        transfer = sftp_transfer(ctx, leader) if transfer_mode(ctx.project) == TRANSFER_SFTP else None
        jobs: list[Job] = [
            UploadPackJob(
                endpoint(ctx, leader),
                ref.path,
                conn,
                signature=ref.signature,
                public_key=files.public_key,
                poll_interval=pace.content_poll,
                appear_timeout=min(pace.content_sync_timeout, 600.0),
                transfer=transfer,
            )
            for ref in files.pack_bundles
        ]
        identity = detected(ctx)
        if identity.before(LOCALUI_SYNC_FROM) is not False and len(ctx.project.nodes) > 1:
            # PE-9263: uploads through one host's Local UI may not reach the others; look at every host.
            jobs.append(
                HostsSyncedJob(
                    [endpoint(ctx, n) for n in ctx.project.nodes],
                    conn,
                    label=identity.label,
                    inputs=packs_inputs([ref.path for ref in files.pack_bundles]),
                    poll_interval=pace.content_poll,
                    timeout=pace.content_sync_timeout,
                )
            )
        jobs.append(
            RegistrySyncJob(
                console_endpoint(ctx),
                console_connector(ctx, pace),
                console_password(ctx),
                inputs=packs_inputs([ref.path for ref in files.pack_bundles]),
                poll=pace.content_poll,
                timeout=pace.content_sync_timeout,
            )
        )
        return jobs


class ValidateJob(Job):
    """What the docs' "Validate" asks (reference §1.6): the cluster Running and Healthy, its applications Running,
    and the system console answering."""

    id = "validate/palette"
    name = "Validation"
    weight = 1.0

    def __init__(
        self,
        leader: Endpoint,
        localui: Connector,
        console: tuple[ConsoleEndpoint, ConsoleConnector, str] | None,
        api: tuple[str, int] | None = None,
        port_timeout: float = 3.0,
        *,
        kubeconfig: Path | None = None,
        identity: ApplianceIdentity | None = None,
    ) -> None:
        self.leader = leader
        self.localui = localui
        self.console = console
        self.api = api  # where the kubeconfig says the Kubernetes API answers
        self.port_timeout = port_timeout
        self.kubeconfig = kubeconfig  # the saved admin kubeconfig: the pods the docs' validation looks at
        self.identity = identity or ApplianceIdentity()

    def fingerprint(self) -> str:
        return str(time.time())  # a check of the present: it runs again on every run

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        problems: list[str] = []
        with self.localui.open(self.leader, cancel) as client:
            report.update(0.1, f"Checking the cluster on {self.leader.name}")
            status = client.cluster_status()
            if status is None:
                raise WizardError(
                    "No cluster", f"{self.leader.name} has no cluster", remediation="run the cluster step"
                )
            if not status.done:
                problems.append(f"the cluster is {status.state}/{status.health or 'unknown'}: {status.reason}")
            report.update(0.4, "Checking the cluster's applications")
            apps = _applications(client)
        not_running = sorted(f"{n} ({s or 'no status'})" for n, s in apps.items() if not CLUSTER_STATE.is_done(s))
        if not apps:
            problems.append("the cluster lists no applications")
        elif not_running:
            problems.append("applications not Running: " + ", ".join(not_running))
        version = activation = ""
        if self.console is not None:
            where, conn, password = self.console
            report.update(0.7, f"Checking the system console at {where.url}/system")
            with conn.open(where, password, cancel) as console:
                console.ensure_session()
                version = console.version()
                activation = console.activation().state
            if not version:  # informational: a console without the version endpoint is not unhealthy
                log.info("%s/system does not report its installed version", where.url)
        reach = self._reachable()
        problems.extend(r.message for r in reach if r.failed)
        ingress = ""
        if self.kubeconfig is not None and not any(r.failed for r in reach):
            report.update(0.85, "Checking the management plane's pods")
            try:
                pod_problems, ingress = judge_pods(list_pods(self.kubeconfig, cancel=cancel), self.identity)
            except WizardError as exc:
                pod_problems = [f"the pods could not be listed: {exc.message}"]
            problems.extend(pod_problems)
        if problems:
            raise WizardError(
                "Palette is not healthy",
                "; ".join(problems),
                remediation="check Cluster → Overview in the leader's Local UI and the system console, then run "
                "again (only the validation repeats)",
            )
        report.finish(f"Cluster Running and Healthy, {len(apps)} applications Running, system console healthy")
        return {
            "cluster": status.name,
            "state": status.state,
            "health": status.health,
            "applications": len(apps),
            "console_version": version,
            "activation": activation,
            "checks": [r.to_dict() for r in reach],
            "ingress": ingress,
        }

    def _reachable(self) -> list[CheckResult]:
        """``cluster.ports``: the console and the Kubernetes API answer at the VIP from this machine (what operators
        and kubectl use next), one result per address."""
        wanted: dict[str, list[tuple[str, int]]] = {}
        if self.console is not None:
            wanted.setdefault(self.console[0].host, []).append(("Palette system console", self.console[0].port))
        if self.api is not None:
            wanted.setdefault(self.api[0], []).append(("Kubernetes API", self.api[1]))
        return [
            check_ports("cluster.ports", f"VIP {host}", host, ports, timeout=self.port_timeout)
            for host, ports in wanted.items()
        ]


def kube_api_address(kubeconfig: Path, vip: str) -> tuple[str, int]:
    """The API's address from the saved admin kubeconfig's ``server:``; the VIP and 6443 when it cannot be read."""
    try:
        text = kubeconfig.read_text(encoding="utf-8")
    except OSError:
        return vip, 6443
    match = re.search(r"^\s*server:\s*(\S+)", text, re.MULTILINE)
    if match is None:
        return vip, 6443
    url = urlsplit(match.group(1))
    return url.hostname or vip, url.port or 443


def _applications(client: LocalUIClient) -> dict[str, str]:
    """Pack name → status from the Local UI's ``cluster/applications``."""
    data = client.get_json(P_APPLICATIONS) or {}
    out: dict[str, str] = {}
    for template in data.get("clusterProfileTemplates") or []:
        for pack in template.get("packs") or []:
            out[str(pack.get("name") or "")] = str(pack.get("status") or "")
    return out


class RunReportJob(Job):
    """Write the run summary and the HTML run report into the session folder, from the journal."""

    id = "validate/report"
    name = "Run report"
    weight = 0.1

    def __init__(
        self,
        journal_path: Path,
        folder: Path,
        log_dir: Path,
        *,
        project: str,
        vip: str,
        step_order: Sequence[str],
        kept: str = "in the OS keyring",
    ) -> None:
        self.kept = kept
        self.journal_path = journal_path
        self.folder = folder
        self.log_dir = log_dir
        self.project = project
        self.vip = vip
        self.step_order = tuple(step_order)

    def fingerprint(self) -> str:
        return str(time.time())  # the report describes the latest run: always written again

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        summary = summarize(
            read_journal_file(self.journal_path),
            project=self.project,
            vip=self.vip,
            journal_path=self.journal_path,
            log_dir=self.log_dir,
            step_order=self.step_order,
            kept=self.kept,
        )
        html_path, text_path = write_run_report(summary, self.folder)
        report.finish(summary.headline)
        return {"report": str(html_path), "summary": str(text_path), "headline": summary.headline}


class ValidateStep(Step):
    """Validate the install, then write the run report (also when the validation fails)."""

    id = "validate"
    title = "Validate and summarise"
    expected = 30.0
    kind = StepKind.INSTALL
    weight = 0.3
    parallel = 1  # the report comes last and records the validation's outcome

    def __init__(self, pacing: Pacing | None = None, step_order: Sequence[str] = ()) -> None:
        self.pacing = pacing or Pacing()
        self.step_order = tuple(step_order)

    def problems(self, ctx: StepContext) -> list[Problem]:
        return []

    def jobs(self, ctx: StepContext) -> list[Job]:
        leader, _ = leader_and_followers(ctx)
        console = None
        if ctx.project.console is not None:
            console = (console_endpoint(ctx), console_connector(ctx, self.pacing), console_password(ctx))
        created = ctx.result("cluster/create")
        vip = ctx.project.network.vip
        kubeconfig = Path(str(created["kubeconfig"])) if created.get("kubeconfig") else None
        api = kube_api_address(kubeconfig, vip) if kubeconfig is not None else (vip, 6443)
        return [
            ValidateJob(
                endpoint(ctx, leader),
                connector(ctx, self.pacing),
                console,
                api,
                kubeconfig=kubeconfig,
                identity=detected(ctx),
            ),
            RunReportJob(
                ctx.journal.path,
                session_folder(ctx),
                ctx.paths.logs,
                project=ctx.project.name,
                vip=ctx.project.network.vip,
                step_order=self.step_order,
                # Where the new passwords are: a store without a secure keyring keeps them for this run only.
                kept=f"in {ctx.secrets.where}"
                if ctx.secrets.persistent
                else "kept in memory for this run only (no secure keyring): note it now",
            ),
        ]
