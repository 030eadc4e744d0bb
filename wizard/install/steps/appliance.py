"""Which appliance this is, and the release notes' guards for it: the ``appliance`` step, after the nodes are
configured and before they are linked.

One job reads every node's Local UI — its ``status.agentVersion``, the leader's ``settings`` (``applianceType`` from
4.9.38) and whether the leader already holds the content (a full ISO) — and judges the result with
:mod:`wizard.appliance.guards`. Like the post-boot checks it writes a report (``appliance-report.{json,html}``) and
stops the run on a blocker (exit 3) before anything is linked or uploaded; warnings may be overridden with a reason.

After the password step (so every node is reached with the password it has), after ``configure`` (so with its
final address), before ``link`` (the first step that changes more than one node at once). The identity is recorded in
the journal (the job's ``appliance`` fact) for the steps after it, the summary and the run report;
:func:`detected` reads it back. Preflight shows what is known before the nodes answer (:func:`preflight_checks`).
"""

from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from wizard.appliance.guards import UploadPlan, content_needs_upload, evaluate, identity_of
from wizard.appliance.localui import Connector, Endpoint, LocalUIError
from wizard.appliance.versions import (
    ADVISORY_016,
    UPLOAD_AUTH_FROM,
    ApplianceIdentity,
    appliance_type,
    combine,
    edition_from_iso_config,
)
from wizard.core.cancel import CancelToken
from wizard.core.checks.catalog import CheckResult, CheckSeverity, errored, passed
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.problems import Problem
from wizard.core.progress import Reporter
from wizard.core.project import Project
from wizard.install.steps.nodes import Pacing, connector, endpoint, leader_and_followers
from wizard.install.steps.preflight import ReportJob, _Board, _has_blocker, post_recorded

IDENTIFY_JOB = "appliance/identify"
REPORT_JOB = "appliance/report"


def upload_plan(project: Project) -> UploadPlan:
    """What the project would upload: the content bundle, the pack bundles (only with a console to sync them)."""
    packs = len(project.files.pack_bundles) if project.console is not None else 0
    return UploadPlan(project.files.content_bundle is not None, packs, len(project.nodes))


def detected(ctx: StepContext) -> ApplianceIdentity:
    """The appliance as the ``appliance`` step found it (from the journal); an empty identity before that."""
    record = ctx.record(IDENTIFY_JOB) or {}
    facts = (record.get("result") or {}).get("appliance")
    return ApplianceIdentity.from_dict(facts if isinstance(facts, Mapping) else None)


def preflight_checks(ctx: StepContext, iso_config: Mapping[str, Any] | None = None) -> list[CheckResult]:
    """What preflight can say about the appliance before the nodes answer: a resumed run knows it from the journal
    (and its guards apply at once); a first run says when it is read, with the edition the ISO declares in its
    embedded ``config.yaml`` when the caller could read it (``iso_config``: that file parsed)."""
    identity = detected(ctx)
    if identity.version is None and identity.edition is None:
        edition = edition_from_iso_config(iso_config)
        known = f"the ISO says {edition.product}; " if edition is not None else ""
        details = {"appliance": ApplianceIdentity(edition=edition, sources=("ISO config.yaml",)).to_dict()}
        return [
            passed(
                "appliance.version",
                f"{known}the version is read from the nodes' Local UI once they are installed (the appliance step, "
                "before linking)",
                "appliance",
                details=details if edition is not None else {},
            )
        ]
    return evaluate(identity, upload_plan(ctx.project))


def upload_problems(ctx: StepContext, *, content: bool = False, packs: bool = False) -> list[Problem]:
    """The release notes' upload guard again where the upload happens: a step never uploads to a release before
    4.9.14, whatever happened to the appliance step's report."""
    identity = detected(ctx)
    if not identity.before(UPLOAD_AUTH_FROM):
        return []
    plan = upload_plan(ctx.project)
    uploading = (content and plan.content_bundle and content_needs_upload(identity)) or (packs and plan.pack_bundles)
    if not uploading:
        return []
    field = "files.content_bundle" if content else "files.pack_bundles"
    return [
        Problem(
            field,
            f"{identity.label} takes content uploads without authentication ({ADVISORY_016}); the wizard does not "
            "upload to it",
            f"install the appliance from a release of {UPLOAD_AUTH_FROM} or newer",
        )
    ]


class ApplianceReadJob(Job):
    """Read the appliance from every node (:func:`read_identity`), judge what was read and post the checks to the
    step's board; a read that fails is the check :attr:`check_id` errored."""

    check_id = "appliance.version"
    read_share = 1.0  # of the job's progress: the reads; the rest is the judging

    def __init__(
        self,
        leader: Endpoint,
        followers: list[Endpoint],
        connector: Connector,
        plan: Any,
        board: _Board,
        *,
        rerun: bool = False,
    ) -> None:
        self.leader = leader
        self.followers = followers
        self.connector = connector
        self.plan = plan
        self.board = board
        self.rerun = rerun

    def fingerprint(self) -> str:
        parts = [self.leader.where, *(f.where for f in self.followers), repr(self.plan)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        results: list[CheckResult] = []
        identity = ApplianceIdentity()
        try:
            reads = report.child(0, self.read_share) if self.read_share < 1 else report
            identity, notes = read_identity(self.leader, self.followers, self.connector, reads, cancel)
            results = self.judge(identity, notes, report, cancel)
        except WizardError as exc:
            message = f"{exc.title}: {exc.message}"
            results = [errored(self.check_id, message, "appliance", remediation=exc.remediation or "")]
        finally:
            self.board.post(self.id, results)
        return self.finish(identity, results, report)

    @abstractmethod
    def judge(
        self, identity: ApplianceIdentity, notes: list[str], report: Reporter, cancel: CancelToken
    ) -> list[CheckResult]:
        """The checks of what was read (``notes``: what was odd about it)."""

    @abstractmethod
    def finish(self, identity: ApplianceIdentity, results: list[CheckResult], report: Reporter) -> dict[str, Any]:
        """The job's facts, once the checks are posted."""


class IdentifyJob(ApplianceReadJob):
    """Read the appliance's version and edition from every node and judge the release notes' guards."""

    id = IDENTIFY_JOB
    name = "Appliance version and edition"
    weight = 1.0

    def judge(
        self, identity: ApplianceIdentity, notes: list[str], report: Reporter, cancel: CancelToken
    ) -> list[CheckResult]:
        return evaluate(identity, self.plan, tuple(notes))

    def finish(self, identity: ApplianceIdentity, results: list[CheckResult], report: Reporter) -> dict[str, Any]:
        blockers = [r for r in results if r.failed and r.definition.severity is CheckSeverity.BLOCKER]
        report.finish(f"{identity.label}" + (f", {len(blockers)} blocker(s)" if blockers else ""))
        return {"results": [r.to_dict() for r in results], "appliance": identity.to_dict()}


def read_identity(
    leader: Endpoint, followers: list[Endpoint], connector: Connector, report: Reporter, cancel: CancelToken
) -> tuple[ApplianceIdentity, list[str]]:
    """The appliance as its nodes describe it (every node's agent version, the leader's edition and whether it holds
    content already), with notes on what was odd; a follower that cannot be read is a note, the leader an error."""
    spelled: dict[str, str] = {}
    notes: list[str] = []
    sources: list[str] = []
    settings: dict[str, Any] = {}
    content: bool | None = None
    nodes = [leader, *followers]
    for i, ep in enumerate(nodes):
        cancel.raise_if_cancelled()
        report.update(i / len(nodes), f"Reading {ep.name}")
        try:
            with connector.open(ep, cancel) as client:
                spelled[ep.name] = client.host_info().agent_version
                if ep is leader:
                    settings = client.settings()
                    content = _content_on_node(client)
        except LocalUIError as exc:
            if ep is leader:
                raise
            notes.append(f"{ep.name} could not be read ({exc.message})")
    version, combined = combine(spelled)
    notes += combined
    if version is not None:
        sources.append("edgehosts/current status.agentVersion")
    edition = appliance_type(settings)
    if edition is not None:
        sources.append("settings applianceType")
    identity = ApplianceIdentity(version, edition, tuple(sources), tuple(spelled.items()), content)
    return identity, notes


def _content_on_node(client: Any) -> bool | None:
    """True when the node holds a cluster profile nobody uploaded (a full ISO's content), False when it holds none,
    None when an earlier upload put it there (then the upload decides, not the ISO)."""
    archive = client.archive_details()
    if archive is None:
        return False
    return True if client.uploaded_content() is None else None


class ApplianceStep(Step):
    id = "appliance"
    title = "Check the appliance"
    kind = StepKind.PREFLIGHT  # a blocker means "not on this release" (exit 3), nothing failed mid-action
    weight = 0.2
    expected = 10.0  # a few reads from each node

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        leader, followers = leader_and_followers(ctx)
        plan = upload_plan(ctx.project)
        rerun = _has_blocker(ctx.journal.job(IDENTIFY_JOB))
        board = _Board([IDENTIFY_JOB])
        identify = IdentifyJob(
            endpoint(ctx, leader),
            [endpoint(ctx, n) for n in followers],
            connector(ctx, self.pacing),
            plan,
            board,
            rerun=rerun,
        )
        post_recorded(board, ctx, {IDENTIFY_JOB: identify.fingerprint()}, {IDENTIFY_JOB} if rerun else set())
        folder = ctx.journal.path.with_suffix("")
        json_path, html_path = folder / "appliance-report.json", folder / "appliance-report.html"
        overrides = ctx.journal.overrides
        digest = hashlib.sha256(
            json.dumps([identify.fingerprint(), overrides, str(html_path)], default=str).encode()
        ).hexdigest()
        report = _ApplianceReportJob(
            board,
            project=ctx.project.name,
            overrides=overrides,
            json_path=json_path,
            html_path=html_path,
            inputs=digest,
            rerun=rerun,
        )
        self.parallel = 2  # the report job waits for the other
        return [identify, report]


class _ApplianceReportJob(ReportJob):
    id = REPORT_JOB
    name = "Appliance report"


__all__ = [
    "ApplianceStep",
    "IdentifyJob",
    "content_needs_upload",
    "detected",
    "identity_of",
    "preflight_checks",
    "read_identity",
    "upload_plan",
    "upload_problems",
]
