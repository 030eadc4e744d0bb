"""The upgrade of an installed appliance to a newer content bundle (``palette-wizard upgrade``, the Upgrade page).

The steps, in order (:data:`UPGRADE_STEP_IDS`): ``credentials`` (every secret present), ``bundle`` (the new bundle's
sha256, signature and the release its name spells), ``assess`` (the appliance's version on every node, the cluster
healthy, the release notes' rules — supported hops, pre-upgrade scripts, the registry password, what may be lost —
as catalog checks with a report; a blocker stops here, before anything is uploaded, exit 3), ``backup`` (what an
upgrade may lose, into the session folder), ``upload`` (the bundle to the leader, as the install's content step does
it), ``update`` (answer and apply the update archive), ``follow`` (to the new release, Running and Healthy),
``certificates`` (the project's console certificate installed again if the upgrade lost it), ``validate`` (the
install's validation, and every node's version read again).

A session of its own: one journal per upgrade bundle beside the install's (:mod:`wizard.install.day2`), so a rerun
continues where it stopped and the install's journal is only read (its passwords, its kubeconfig).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizard.appliance.bundles import TRANSFER_SFTP, UploadContentJob
from wizard.appliance.cluster import variable_for
from wizard.appliance.kube import storage_class_parameters, zot_access_modes
from wizard.appliance.localui import Connector, Endpoint
from wizard.appliance.statuswords import norm
from wizard.appliance.upgrade import (
    CERTIFICATES,
    CLUSTER,
    PATH,
    PRE_SCRIPT,
    REGISTRY_PASSWORD,
    TARGET,
    UPLOAD_AUTH,
    VALUES,
    VERSION,
    certificates_lost,
    path_problem,
    pre_upgrade_script,
    script_instructions,
    values_reset,
)
from wizard.appliance.upgrade_jobs import (
    BackupJob,
    FollowUpdateJob,
    SubmitUpdateJob,
    UpgradeRequest,
    VerifyBundleJob,
)
from wizard.appliance.versions import UPLOAD_AUTH_FROM, ApplianceIdentity, Version
from wizard.core.cancel import CancelToken
from wizard.core.checks.catalog import CheckResult, errored, failed, passed
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.problems import Problem
from wizard.core.progress import Reporter
from wizard.core.project import join_path, signature_beside
from wizard.install.steps.appliance import IDENTIFY_JOB, ApplianceReadJob, read_identity
from wizard.install.steps.console import (
    ValidateJob,
    console_certificate_job,
    console_connector,
    console_endpoint,
    console_password,
)
from wizard.install.steps.credentials import CredentialsStep
from wizard.install.steps.localui import kubeconfig_path, sftp_transfer, transfer_mode
from wizard.install.steps.nodes import Pacing, connector, endpoint, leader_and_followers, session_folder
from wizard.install.steps.preflight import ReportJob, _Board, _has_blocker, post_recorded

UPGRADE_STEP_IDS = (
    "credentials",
    "bundle",
    "assess",
    "backup",
    "upload",
    "update",
    "follow",
    "certificates",
    "validate",
)
ASSESS_JOB = "assess/appliance"
ASSESS_REPORT_JOB = "assess/report"
#: The Zot registry's password as the docs' Create cluster form labels it (the variable's name is not published).
REGISTRY_PASSWORD_LABEL = "OCI Pack Registry Password"  # noqa: S105 - a form label


@dataclass(frozen=True)
class UpgradeBundle:
    """The new content bundle and its signature (beside it, as Artifact Studio ships them, unless given)."""

    path: Path
    signature: Path | None = None

    @classmethod
    def at(cls, path: Path, signature: Path | None = None) -> UpgradeBundle:
        path = path.expanduser().resolve()
        return cls(path, signature.expanduser().resolve() if signature else signature_beside(path))

    @property
    def key(self) -> str:
        """What names this upgrade's journal: the bundle's file name, so a rerun with it continues."""
        stem = self.path.name.removesuffix(".zst").removesuffix(".tar")
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in stem)[:60] or "bundle"


def upgrade_request(ctx: StepContext) -> UpgradeRequest:
    settings = ctx.project.cluster
    return UpgradeRequest(
        cluster=ctx.project.name,
        values=dict(settings.variables),
        secrets={
            name: ctx.secrets.require(ref, join_path("cluster.secret_variables", name))
            for name, ref in settings.secret_variables
        },
        secret_names={name: ref.key for name, ref in settings.secret_variables},
    )


def _version(text: object) -> Version | None:
    return Version.parse(text) if isinstance(text, str) else None


class BundleStep(Step):
    id = "bundle"
    title = "Verify the new content bundle"
    kind = StepKind.PREFLIGHT  # a bad bundle: nothing was touched (exit 3)
    weight = 0.5

    def __init__(self, bundle: UpgradeBundle) -> None:
        self.bundle = bundle

    def problems(self, ctx: StepContext) -> list[Problem]:
        if not self.bundle.path.is_file():
            return [
                Problem(
                    "content",
                    f"{self.bundle.path} is not a file",
                    "give the new content bundle (.tar.zst) downloaded from Artifact Studio",
                )
            ]
        if ctx.project.files.public_key is not None and self.bundle.signature is None:
            return [
                Problem(
                    "content",
                    f"no signature beside {self.bundle.path.name} (looked for {self.bundle.path.stem}.sig.bin and "
                    f"{self.bundle.path.name}.sig.bin)",
                    "download the bundle's .sig.bin with it, or give it with --signature",
                )
            ]
        return []

    def jobs(self, ctx: StepContext) -> list[Job]:
        return [VerifyBundleJob(self.bundle.path, self.bundle.signature, ctx.project.files.public_key)]


@dataclass(frozen=True)
class AssessPlan:
    cluster: str
    bundle_version: Version | None
    secret_keys: tuple[str, ...]  # the project's sensitive answers, by name (never their values)
    nodes: int
    kubeconfig: Path | None


class AssessJob(ApplianceReadJob):
    """Read the appliance and judge the upgrade against the release notes (see :mod:`wizard.appliance.upgrade`)."""

    id = ASSESS_JOB
    name = "Appliance and upgrade path"
    weight = 1.0
    check_id = VERSION
    read_share = 0.6
    plan: AssessPlan

    def finish(self, identity: ApplianceIdentity, results: list[CheckResult], report: Reporter) -> dict[str, Any]:
        current = identity.version
        report.finish(f"{identity.label} → {self.plan.bundle_version or 'the bundle’s release'}")
        return {
            "results": [r.to_dict() for r in results],
            "appliance": identity.to_dict(),
            "current": str(current) if current else "",
        }

    def judge(
        self, identity: ApplianceIdentity, notes: list[str], report: Reporter, cancel: CancelToken
    ) -> list[CheckResult]:
        plan, label, current = self.plan, identity.label, identity.version
        out: list[CheckResult] = []
        with self.connector.open(self.leader, cancel) as client:
            report.update(0.7, "Reading the cluster")
            status = client.cluster_status()
            archive = client.archive_details()
        if status is None or status.name != plan.cluster:
            out.append(failed(CLUSTER, f"{self.leader.name} reports no cluster {plan.cluster!r}", "cluster"))
        elif not status.done:
            out.append(failed(CLUSTER, f"{status.name} is {status.state}/{status.health}: {status.reason}", "cluster"))
        else:
            out.append(passed(CLUSTER, f"{status.name} is Running and Healthy", "cluster"))
        if current is None or notes:
            out.append(failed(VERSION, f"{label}: {'; '.join(notes) or 'no node reported a version'}", "appliance"))
        else:
            out.append(passed(VERSION, f"{label} on every node", "appliance"))
        target = plan.bundle_version
        if target is None:
            out.append(
                passed(
                    TARGET,
                    "the bundle's name spells no release (public material fixes no naming scheme): the update "
                    "archive names it after the upload, and the path is checked again then",
                    "bundle",
                )
            )
            out.append(passed(PATH, "checked once the update archive names its release", "bundle"))
        elif current is None:
            out.append(passed(TARGET, f"the bundle's name says {target}; the installed release is unknown", "bundle"))
            out.append(passed(PATH, "the installed release is unknown: checked after the upload", "bundle"))
        else:
            problem = path_problem(current, target)
            backwards = target <= current
            out.append(
                failed(TARGET, problem or "", "bundle")
                if backwards
                else passed(TARGET, f"{current} → {target} (the release the bundle's name spells)", "bundle")
            )
            if problem and not backwards:
                out.append(failed(PATH, problem, "bundle"))
            else:
                out.append(passed(PATH, "no release in between is required" if not backwards else "n/a", "bundle"))
        out.append(self._pre_script(current, cancel))
        out.append(self._registry(archive))
        if current is not None and certificates_lost(current):
            out.append(failed(CERTIFICATES, f"upgrading from {current} loses custom TLS certificates", "appliance"))
        else:
            out.append(passed(CERTIFICATES, "custom certificates are kept by this upgrade", "appliance"))
        if current is not None and values_reset(current):
            out.append(failed(VALUES, f"upgrading from {current} resets profile values to defaults", "appliance"))
        else:
            out.append(passed(VALUES, "profile values are kept; the project's answers are sent again", "appliance"))
        if current is not None and current < UPLOAD_AUTH_FROM:
            out.append(failed(UPLOAD_AUTH, f"{label} takes uploads without authentication", "appliance"))
        else:
            out.append(passed(UPLOAD_AUTH, "uploads go with the session token", "appliance"))
        return out

    def _pre_script(self, current: Version | None, cancel: CancelToken) -> CheckResult:
        if current is None:
            return passed(PRE_SCRIPT, "the installed release is unknown: no documented script applies", "cluster")
        script = pre_upgrade_script(current, self.plan.nodes)
        if script is None:
            return passed(PRE_SCRIPT, f"the docs give no pre-upgrade script for {current}", "cluster")
        todo = script_instructions(script)
        if self.plan.kubeconfig is None or not self.plan.kubeconfig.is_file():
            return failed(PRE_SCRIPT, f"{todo} (no saved kubeconfig to check whether it ran)", "cluster")
        try:
            if script.script == "change-pvc-access-mode.sh":
                modes = zot_access_modes(self.plan.kubeconfig, cancel)
                done = modes is not None and "ReadWriteOnce" in modes and "ReadWriteMany" not in modes
                seen = f"zot-pvc is {', '.join(modes or []) or 'missing'}"
            else:
                params = storage_class_parameters(self.plan.kubeconfig, cancel=cancel) or {}
                done = params.get("resourceGroup") == "lvm-ha" and params.get("placementCount") == "3"
                seen = f"linstor-lvm-storage has resourceGroup={params.get('resourceGroup', '?')}, placementCount=" + (
                    params.get("placementCount", "?")
                )
        except WizardError as exc:
            return errored(PRE_SCRIPT, f"{todo} (the cluster could not be read: {exc.message})", "cluster")
        if done:
            return passed(PRE_SCRIPT, f"{script.script} has run ({seen})", "cluster")
        return failed(PRE_SCRIPT, f"{seen}: {todo}", "cluster")

    def _registry(self, archive: Any) -> CheckResult:
        if archive is None:
            return errored(REGISTRY_PASSWORD, "the leader describes no cluster profile", "cluster")
        wanted = next((v for v in archive.variables if norm(v.display_name) == norm(REGISTRY_PASSWORD_LABEL)), None)
        wanted = wanted or variable_for(archive, "ociPackRegistryPassword")
        if wanted is None:
            return passed(REGISTRY_PASSWORD, "the profile has no OCI Pack Registry Password", "cluster")
        in_cluster = next((v for v in archive.variables if norm(v.display_name) == norm("In Cluster Registry")), None)
        if in_cluster is not None and norm(in_cluster.default) == "false":
            return passed(REGISTRY_PASSWORD, "the registry is external: no Zot password to keep", "cluster")
        for key in self.plan.secret_keys:
            found = variable_for(archive, key)
            if found is not None and found.name == wanted.name:
                return passed(
                    REGISTRY_PASSWORD,
                    f"{wanted.label} is answered from the project's secret (cluster.secret_variables.{key}), the "
                    "value the install used",
                    "cluster",
                )
        return failed(REGISTRY_PASSWORD, f"the project does not answer {wanted.label} from a secret", "cluster")


class _AssessReportJob(ReportJob):
    id = ASSESS_REPORT_JOB
    name = "Upgrade report"


class AssessStep(Step):
    id = "assess"
    title = "Check the appliance and the upgrade path"
    kind = StepKind.PREFLIGHT  # a blocker: nothing was uploaded or changed (exit 3)
    weight = 0.5

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        leader, followers = leader_and_followers(ctx)
        named = _version(ctx.result("bundle/verify").get("name_version"))
        kubeconfig = kubeconfig_path(ctx)
        plan = AssessPlan(
            ctx.project.name,
            named,
            tuple(name for name, _ in ctx.project.cluster.secret_variables),
            len(ctx.project.nodes),
            kubeconfig if kubeconfig.is_file() else None,
        )
        rerun = _has_blocker(ctx.journal.job(ASSESS_JOB))
        board = _Board([ASSESS_JOB])
        job = AssessJob(
            endpoint(ctx, leader),
            [endpoint(ctx, n) for n in followers],
            connector(ctx, self.pacing),
            plan,
            board,
            rerun=rerun,
        )
        post_recorded(board, ctx, {ASSESS_JOB: job.fingerprint()}, {ASSESS_JOB} if rerun else set())
        folder = session_folder(ctx)
        json_path, html_path = folder / "upgrade-report.json", folder / "upgrade-report.html"
        overrides = ctx.journal.overrides
        digest = hashlib.sha256(json.dumps([job.fingerprint(), overrides, str(html_path)], default=str).encode())
        self.parallel = 2  # the report waits for the other job
        return [
            job,
            _AssessReportJob(
                board,
                project=ctx.project.name,
                overrides=overrides,
                json_path=json_path,
                html_path=html_path,
                inputs=digest.hexdigest(),
                rerun=rerun,
            ),
        ]


def _console_domain_reader(ctx: StepContext, pacing: Pacing) -> Any:
    """Reads the console's domain settings for the backup (optional; the console may not say)."""
    if ctx.project.console is None:
        return None
    where, conn, password = console_endpoint(ctx), console_connector(ctx, pacing), console_password(ctx)

    def read(cancel: CancelToken) -> dict[str, Any] | None:
        from wizard.appliance.console import ConsoleError

        try:
            with conn.open(where, password, cancel) as client:
                return client.domain_settings()
        except ConsoleError:
            return None

    return read


class BackupStep(Step):
    id = "backup"
    title = "Back up what the upgrade may lose"
    kind = StepKind.INSTALL
    weight = 0.3

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        leader, _ = leader_and_followers(ctx)
        console = ctx.project.console
        return [
            BackupJob(
                endpoint(ctx, leader),
                connector(ctx, self.pacing),
                session_folder(ctx) / "backup",
                upgrade_request(ctx),
                console=(ctx.project.network.vip, console.port) if console is not None else None,
                console_reader=_console_domain_reader(ctx, self.pacing),
            )
        ]


class UploadStep(Step):
    id = "upload"
    title = "Upload the new content bundle"
    kind = StepKind.INSTALL
    weight = 2.0

    def __init__(self, bundle: UpgradeBundle, pacing: Pacing | None = None) -> None:
        self.bundle = bundle
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        leader, _ = leader_and_followers(ctx)
        transfer = sftp_transfer(ctx, leader) if transfer_mode(ctx.project) == TRANSFER_SFTP else None
        pace = self.pacing
        return [
            UploadContentJob(
                endpoint(ctx, leader),
                self.bundle.path,
                connector(ctx, pace),
                signature=self.bundle.signature,
                public_key=ctx.project.files.public_key,
                poll_interval=pace.content_poll,
                sync_timeout=pace.content_sync_timeout,
                transfer=transfer,
            )
        ]


class UpdateStep(Step):
    id = "update"
    title = "Apply the update archive"
    kind = StepKind.INSTALL
    weight = 0.5

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        leader, _ = leader_and_followers(ctx)
        pace = self.pacing
        return [
            SubmitUpdateJob(
                endpoint(ctx, leader),
                connector(ctx, pace),
                upgrade_request(ctx),
                current=_version(ctx.result(ASSESS_JOB).get("current")),
                bundle_version=_version(ctx.result("bundle/verify").get("name_version")),
                poll_interval=pace.content_poll,
                details_timeout=pace.update_details_timeout,
            )
        ]


class FollowStep(Step):
    id = "follow"
    title = "Follow the upgrade"
    kind = StepKind.INSTALL
    weight = 5.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        leader, _ = leader_and_followers(ctx)
        pace = self.pacing
        return [
            FollowUpdateJob(
                endpoint(ctx, leader),
                connector(ctx, pace),
                ctx.project.name,
                kubeconfig_path(ctx),
                target=_version(ctx.result("update/submit").get("target")),
                previous=_version(ctx.result(ASSESS_JOB).get("current")),
                poll_interval=pace.cluster_poll,
                expected_duration=pace.upgrade_expected,
                timeout=pace.upgrade_timeout,
                outage_timeout=pace.cluster_outage_timeout,
            )
        ]


class CertificatesAgainStep(Step):
    """The operator's console certificate (``console.certificate``) installed again where the upgrade lost it (the
    release notes: custom certificates are lost on upgrades from 4.8.47 up to 4.9.14); nothing without one."""

    id = "certificates"
    title = "Keep the console certificate"
    kind = StepKind.INSTALL
    weight = 0.2

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        console = ctx.project.console
        if console is None or console.certificate is None:
            return []
        return [console_certificate_job(ctx, self.pacing, only_if_lost=True)]


class NodesVersionJob(Job):
    """Every node's release read again after the upgrade (recorded as the appliance's identity for this session):
    a node left on the old release fails the validation."""

    id = IDENTIFY_JOB
    name = "Every node's release"
    weight = 0.5

    def __init__(
        self, leader: Endpoint, followers: list[Endpoint], connector: Connector, target: Version | None
    ) -> None:
        self.leader = leader
        self.followers = followers
        self.connector = connector
        self.target = target

    def fingerprint(self) -> str:
        return str(time.time())  # a check of the present

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        identity, notes = read_identity(self.leader, self.followers, self.connector, report, cancel)
        behind = []
        if self.target is not None:
            for name, spelled in identity.hosts:
                found = Version.parse(spelled)
                if found is None or found < self.target:
                    behind.append(name)
        if behind or (notes and self.target is not None):
            raise WizardError(
                "Nodes on different releases",
                "; ".join([*(f"{n} still runs {dict(identity.hosts)[n]}" for n in behind), *notes]),
                remediation="look at that node in the Local UI (Cluster → Overview); run the upgrade again to follow",
            )
        report.finish(f"{identity.label} on every node")
        return {"appliance": identity.to_dict()}


class UpgradeValidateStep(Step):
    id = "validate"
    title = "Validate the upgraded appliance"
    kind = StepKind.INSTALL
    weight = 0.5
    parallel = 1

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        leader, followers = leader_and_followers(ctx)
        pace = self.pacing
        target = _version(ctx.result("update/follow").get("version")) or _version(
            ctx.result("update/submit").get("target")
        )
        console = None
        if ctx.project.console is not None:
            console = (console_endpoint(ctx), console_connector(ctx, pace), console_password(ctx))
        kubeconfig = kubeconfig_path(ctx)
        from wizard.install.steps.console import kube_api_address

        vip = ctx.project.network.vip
        api = kube_api_address(kubeconfig, vip) if kubeconfig.is_file() else (vip, 6443)
        identity = ApplianceIdentity.from_dict(ctx.result(ASSESS_JOB).get("appliance"))
        if target is not None:
            identity = ApplianceIdentity(target, identity.edition, identity.sources, identity.hosts)
        return [
            NodesVersionJob(endpoint(ctx, leader), [endpoint(ctx, n) for n in followers], connector(ctx, pace), target),
            ValidateJob(
                endpoint(ctx, leader),
                connector(ctx, pace),
                console,
                api,
                kubeconfig=kubeconfig if kubeconfig.is_file() else None,
                identity=identity,
            ),
        ]


def upgrade_pipeline(bundle: UpgradeBundle, pacing: Pacing | None = None) -> list[Step]:
    """The upgrade's steps, in order (:data:`UPGRADE_STEP_IDS`)."""
    steps: list[Step] = [
        CredentialsStep(),
        BundleStep(bundle),
        AssessStep(pacing),
        BackupStep(pacing),
        UploadStep(bundle, pacing),
        UpdateStep(pacing),
        FollowStep(pacing),
        CertificatesAgainStep(pacing),
        UpgradeValidateStep(pacing),
    ]
    assert tuple(s.id for s in steps) == UPGRADE_STEP_IDS
    return steps
