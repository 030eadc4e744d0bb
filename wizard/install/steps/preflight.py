"""Preflight checks: find what would make the install fail before anything is touched.

The checks run as parallel jobs, one per group or target (jump host, files, each node address, the VIP, DNS,
NTP), each recording its :class:`~wizard.core.checks.CheckResult` list as the job's result. A last job,
``preflight/report``, waits for the others, writes the report and fails with every remaining blocker, which the
engine turns into exit 3. Failed checks are results, not job failures, so the report always holds everything.

The report is written to ``<state>/sessions/<project-id>/preflight-report.{json,html}``: a folder named after the
journal, beside it (not in ``sessions/`` itself, whose ``*.json`` files are all read as journals).

Resuming: a check job that passed is skipped like any finished job; one that found a blocker runs again
(``Job.rerun``) until it passes. The address checks also know what the session did: a node it booted and the VIP
its cluster holds are never probed again, whatever else changed (:mod:`wizard.install.checks.addresses`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizard.core.cancel import CancelToken
from wizard.core.checks import (
    DEFAULT_MIN_FREE,
    DEFAULT_PORTS,
    CheckReport,
    CheckResult,
    CheckSeverity,
    NodeName,
    VerifiedFile,
    check_dns,
    check_free_space,
    check_iso,
    check_ntp,
    check_verified,
)
from wizard.core.checks.catalog import errored
from wizard.core.checks.gateway import StaticAddress, check_gateways
from wizard.core.errors import PreflightBlocked
from wizard.core.fsutil import atomic_write_text
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.journal import JOB_DONE
from wizard.core.progress import Reporter
from wizard.core.project import AddressMode
from wizard.core.trust import TrustStore
from wizard.install.checks.addresses import Probe, node_check, vip_check
from wizard.install.steps.providers import provider_checks

REPORT_JOB = "preflight/report"


@dataclass(frozen=True)
class PreflightSettings:
    """How the checks probe; the defaults are for real networks, tests pass their peers' ports."""

    ports: tuple[int, ...] = DEFAULT_PORTS
    connect_timeout: float = 1.0
    icmp: bool = True
    arp: bool = True
    dns_port: int = 53
    dns_timeout: float = 2.0
    ntp_port: int = 123
    ntp_timeout: float = 2.0
    max_ntp_offset: float = 2.0
    min_free: int = DEFAULT_MIN_FREE


def report_paths(journal_path: Path) -> tuple[Path, Path]:
    folder = journal_path.with_suffix("")
    return folder / "preflight-report.json", folder / "preflight-report.html"


class _Board:
    """Where check jobs post their results for the report job, which waits until all have posted."""

    def __init__(self, expected: Sequence[str]) -> None:
        self.expected = list(expected)
        self._results: dict[str, list[CheckResult]] = {}
        self._cond = threading.Condition()

    def post(self, job_id: str, results: list[CheckResult]) -> None:
        with self._cond:
            self._results[job_id] = results
            self._cond.notify_all()

    def wait_all(self, cancel: CancelToken) -> list[CheckResult]:
        with self._cond:
            while not all(j in self._results for j in self.expected):
                cancel.raise_if_cancelled()
                self._cond.wait(0.1)
            return [r for j in self.expected for r in self._results[j]]


class CheckJob(Job):
    def __init__(
        self,
        job_id: str,
        name: str,
        checks: Callable[[], list[CheckResult]],
        *,
        inputs: str,
        fallback_check: str,
        board: _Board,
        node: str = "",
        rerun: bool = False,
    ) -> None:
        self.id = job_id
        self.name = name
        self.node = node
        self.rerun = rerun
        self._checks = checks
        self._inputs = inputs
        self._fallback = fallback_check
        self._board = board

    def fingerprint(self) -> str:
        return self._inputs

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        results: list[CheckResult] = []
        try:
            cancel.raise_if_cancelled()
            results = self._checks()
        except Exception as exc:  # a check that crashes could not run: an error result, never a lost report
            results = [errored(self._fallback, f"the check could not run: {type(exc).__name__}: {exc}")]
        finally:
            self._board.post(self.id, results)
        failed = [r for r in results if r.failed]
        blockers = sum(1 for r in failed if r.definition.severity is CheckSeverity.BLOCKER)
        warned = len(failed) - blockers
        counts = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((blockers, "blocker"), (warned, "warning")) if n]
        report.finish(", ".join(counts) if counts else "passed")
        return {"results": [r.to_dict() for r in results]}


class ReportJob(Job):
    id = REPORT_JOB
    name = "Preflight report"
    weight = 0.1

    def __init__(
        self,
        board: _Board,
        *,
        project: str,
        overrides: list[dict[str, Any]],
        json_path: Path,
        html_path: Path,
        inputs: str,
        rerun: bool = False,
    ) -> None:
        self.rerun = rerun
        self._board = board
        self._project = project
        self._overrides = overrides
        self._json = json_path
        self._html = html_path
        self._inputs = inputs

    def fingerprint(self) -> str:
        return self._inputs

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        results = self._board.wait_all(cancel)
        rep = CheckReport(tuple(results), tuple(self._overrides), self._project)
        self._json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._json, rep.to_json())
        atomic_write_text(self._html, rep.to_html())
        blockers = rep.blockers()
        if blockers:
            lines = []
            for r in blockers:
                d = r.to_dict()
                lines.append(f"✗ [{r.check}] {d['title']}{f' — {r.target}' if r.target else ''}: {r.message}")
                lines.append(f"    fix ({d['step']} page): {d['remediation']}")
            count = f"{len(blockers)} blocker{'s' if len(blockers) != 1 else ''}"
            raise PreflightBlocked(
                "Blocked",
                f"{count}: " + "; ".join(f"{r.check} {r.target}: {r.message}".replace("  ", " ") for r in blockers),
                details="\n".join(lines) + f"\nReport: {self._html}",
                remediation=f"fix each blocker (blockers cannot be overridden), then run again; report: {self._html}",
            )
        summary = rep.to_dict()["summary"]
        warned = summary["warnings"]
        report.finish(f"{warned} warning{'s' if warned != 1 else ''}, {summary['overridden']} overridden")
        return {**summary, "report": str(self._html)}


def _stat(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def _has_blocker(record: dict[str, Any] | None) -> bool:
    if not record or record.get("status") != JOB_DONE:
        return False
    for r in (record.get("result") or {}).get("results", []):
        if r.get("outcome") != "pass" and r.get("severity") == CheckSeverity.BLOCKER.value:
            return True
    return False


def post_recorded(board: _Board, ctx: StepContext, fingerprints: Mapping[str, str], rerun: Set[str]) -> None:
    """Posts what each check job the engine will skip found when it ran (the report includes every job)."""
    for job_id, inputs in fingerprints.items():
        if job_id not in rerun and ctx.journal.is_done(job_id, inputs):
            recorded = ctx.journal.result(job_id).get("results", [])
            board.post(job_id, [CheckResult.from_dict(r) for r in recorded])


class PreflightStep(Step):
    id = "preflight"
    title = "Preflight checks"
    kind = StepKind.PREFLIGHT
    weight = 0.5

    def __init__(self, settings: PreflightSettings | None = None) -> None:
        self.settings = settings or PreflightSettings()
        self.parallel = 8

    def jobs(self, ctx: StepContext) -> list[Job]:
        s = self.settings
        project = ctx.project
        specs: list[tuple[str, str, Callable[[], list[CheckResult]], str, str, str]] = []  # id, name, fn, in, fb, node

        folders = {"session state": ctx.paths.state, "logs": ctx.paths.logs, "staging": ctx.paths.cache}
        specs.append(
            (
                "preflight/host",
                "Jump host",
                lambda: check_free_space(folders, s.min_free),
                f"{sorted((k, str(v)) for k, v in folders.items())}|{s.min_free}",
                "host.free-space",
                "",
            )
        )

        files = project.files.all()
        if files:
            verified = []
            for field_path, ref in files:
                rec = ctx.journal.job(f"verify/{field_path}")
                result = dict(rec.get("result") or {}) if rec and rec.get("status") == JOB_DONE else None
                verified.append(VerifiedFile(field_path, ref.path.name, result))
            iso = project.files.iso.path if project.files.iso else None

            def file_checks() -> list[CheckResult]:
                return check_verified(verified) + (check_iso(iso) if iso is not None else [])

            stamp = "|".join(f"{v.field}:{(v.result or {}).get('sha256')}" for v in verified)
            specs.append(
                (
                    "preflight/files",
                    "Files and ISO",
                    file_checks,
                    f"{stamp}|{_stat(iso) if iso else '-'}",
                    "files.verified",
                    "",
                )
            )

        probe = Probe(s.ports, s.connect_timeout, s.icmp, s.arp)
        trust = TrustStore(ctx.paths.config)
        for check in [*(node_check(ctx, node, probe, trust) for node in project.nodes), vip_check(ctx, probe, trust)]:
            specs.append((check.job_id, check.name, check.run, check.inputs, check.fallback_check, check.node))
        vip = project.network.vip
        statics = [
            StaticAddress(n.name, n.ip, n.prefix, n.gateway)
            for n in project.nodes
            if n.address_mode is AddressMode.STATIC and n.ip and n.prefix and n.gateway
        ]
        specs.append(
            (
                "preflight/gateway",
                "Gateway",
                lambda: check_gateways(statics, vip, ports=s.ports, timeout=s.connect_timeout, icmp=s.icmp, arp=s.arp),
                f"{[(a.ip, a.prefix, a.gateway) for a in statics]}|{vip}|{probe.key()}",
                "net.gateway-consistent",
                "",
            )
        )

        net = project.network
        names = [
            NodeName(n.name, n.hostname, n.ip if n.address_mode is AddressMode.STATIC else "") for n in project.nodes
        ]
        specs.append(
            (
                "preflight/dns",
                "DNS",
                lambda: check_dns(net.dns, names, net.search_domains, port=s.dns_port, timeout=s.dns_timeout),
                f"{net.dns}|{net.search_domains}|{names}|{s.dns_port}|{s.dns_timeout}",
                "net.dns-server",
                "",
            )
        )
        specs.append(
            (
                "preflight/ntp",
                "NTP",
                lambda: check_ntp(net.ntp, port=s.ntp_port, timeout=s.ntp_timeout, max_offset=s.max_ntp_offset),
                f"{net.ntp}|{s.ntp_port}|{s.ntp_timeout}|{s.max_ntp_offset}",
                "net.ntp-reachable",
                "",
            )
        )

        for checks in provider_checks(ctx):
            specs.append((checks.job_id, checks.name, checks.run, checks.inputs, checks.fallback_check, ""))

        # A job that found a blocker runs again next time, whatever its inputs (the operator may have fixed it).
        fingerprints = {job_id: inputs for job_id, _, _, inputs, _, _ in specs}
        rerun = {job_id for job_id in fingerprints if _has_blocker(ctx.journal.job(job_id))}
        board = _Board(list(fingerprints))
        post_recorded(board, ctx, fingerprints, rerun)
        jobs: list[Job] = [
            CheckJob(
                job_id,
                name,
                fn,
                inputs=fingerprints[job_id],
                fallback_check=fb,
                board=board,
                node=node,
                rerun=job_id in rerun,
            )
            for job_id, name, fn, _, fb, node in specs
        ]
        overrides = ctx.journal.overrides
        json_path, html_path = report_paths(ctx.journal.path)
        digest = hashlib.sha256(
            json.dumps([sorted(fingerprints.items()), overrides, str(html_path)], default=str).encode()
        ).hexdigest()
        jobs.append(
            ReportJob(
                board,
                project=project.name,
                overrides=overrides,
                json_path=json_path,
                html_path=html_path,
                inputs=digest,
                rerun=bool(rerun),  # a check that runs again may change the report
            )
        )
        self.parallel = len(jobs)  # the report job waits for all the others, so all must run at once
        return jobs
