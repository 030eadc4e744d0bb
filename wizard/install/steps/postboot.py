"""Post-boot checks: each installed node's CPU, RAM, disks, clock, NTP and leftover partitions, over SSH.

Runs right after ``install`` and before anything is built on the nodes, with the preflight step's machinery: one
check job per node posts its results to a board, and a report job writes ``postboot-report.{json,html}`` beside the
preflight report and fails with every blocker (exit 3, like preflight). Failed warnings are listed and may be
overridden with a reason (``palette-wizard`` override, recorded in the journal) exactly as preflight warnings are.

A node job that passed is skipped on resume; one that found a blocker runs again, since the operator may have
fixed the node (a bigger disk, a synchronised clock) in between.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wizard.appliance.ssh import SSHCredentials
from wizard.core.checks.catalog import CheckResult
from wizard.core.checks.ports import check_ports
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.project import Node
from wizard.core.trust import TrustStore
from wizard.install.checks.postboot import Requirements, check_node
from wizard.install.steps.install import ssh_credentials

# The preflight step's board and jobs are reused as they are: the two steps differ only in what they check.
from wizard.install.steps.preflight import CheckJob, ReportJob, _Board, _has_blocker, post_recorded

REPORT_JOB = "postboot/report"


@dataclass(frozen=True)
class PostbootSettings:
    requirements: Requirements = field(default_factory=Requirements)
    connect_timeout: float = 10.0
    command_timeout: float = 30.0
    #: The jump host's clock that node clocks are compared with (tests pass the lab's clock).
    clock: Callable[[], float] = time.time


def report_paths(journal_path: Path) -> tuple[Path, Path]:
    folder = journal_path.with_suffix("")
    return folder / "postboot-report.json", folder / "postboot-report.html"


class PostbootReportJob(ReportJob):
    id = REPORT_JOB
    name = "Post-boot report"
    before = "before the install goes on"


def _fingerprint(ctx: StepContext, node: Node) -> str:
    """The host key to expect: the project's pin, else the one the install monitor recorded (and pinned)."""
    if node.ssh_host_key:
        return node.ssh_host_key
    record = ctx.journal.job(f"install/{node.name}") or {}
    return str((record.get("result") or {}).get("host_fingerprint") or "")


class PostbootStep(Step):
    id = "postboot"
    title = "Post-boot checks"
    kind = StepKind.PREFLIGHT  # blockers mean "fix this before going on" (exit 3), nothing failed mid-action
    weight = 0.3
    expected = 30.0

    def __init__(self, settings: PostbootSettings | None = None) -> None:
        self.settings = settings or PostbootSettings()
        self.parallel = 4

    def jobs(self, ctx: StepContext) -> list[Job]:
        s = self.settings
        project = ctx.project
        trust = TrustStore(ctx.paths.config)
        confirm = ctx.confirm
        specs: list[tuple[str, Node, Callable[[], list[CheckResult]], str]] = []
        for node in project.nodes:
            job_id = f"{self.id}/{node.name}"
            creds = ssh_credentials(ctx, node)
            expected = _fingerprint(ctx, node)

            def run(node: Node = node, creds: SSHCredentials = creds, expected: str = expected) -> list[CheckResult]:
                # The service ports first, from this machine: what the next steps and the operator connect to.
                ports = [("SSH", node.ssh_port), ("Local UI", node.localui_port)]
                reach = check_ports("node.ports", node.name, node.ip, ports, timeout=s.connect_timeout)
                return [
                    reach,
                    *check_node(
                        node.name,
                        node.ip,
                        node.ssh_port,
                        creds,
                        trust=trust,
                        confirm=confirm,
                        expected_fingerprint=expected,
                        requirements=s.requirements,
                        clock=s.clock,
                        connect_timeout=s.connect_timeout,
                        command_timeout=s.command_timeout,
                    ),
                ]

            inputs = f"{node.ip}|{node.ssh_port}|{node.localui_port}|{s.requirements}"
            specs.append((job_id, node, run, inputs))

        # A job that found a blocker runs again next time, whatever its inputs (the operator may have fixed it).
        rerun = {job_id for job_id, *_ in specs if _has_blocker(ctx.journal.job(job_id))}
        board = _Board([job_id for job_id, *_ in specs])
        post_recorded(board, ctx, {job_id: inputs for job_id, _, _, inputs in specs}, rerun)
        jobs: list[Job] = [
            CheckJob(
                job_id,
                f"Checks on {node.name}",
                run,
                inputs=inputs,
                fallback_check="node.cpu",
                board=board,
                node=node.name,
                rerun=job_id in rerun,
            )
            for job_id, node, run, inputs in specs
        ]
        overrides = ctx.journal.overrides
        json_path, html_path = report_paths(ctx.journal.path)
        digest = hashlib.sha256(
            json.dumps([[(j, i) for j, _, _, i in specs], overrides, str(html_path)], default=str).encode()
        ).hexdigest()
        jobs.append(
            PostbootReportJob(
                board,
                project=project.name,
                overrides=overrides,
                json_path=json_path,
                html_path=html_path,
                inputs=digest,
                rerun=bool(rerun),  # a check that runs again may change the report
            )
        )
        self.parallel = len(jobs)  # the report job waits for all the others
        return jobs
