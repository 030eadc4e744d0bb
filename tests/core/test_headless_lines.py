"""Headless output says each thing once and never contradicts itself: a line per change, a check that could not run
is not a pass, and where the new passwords are is said as the run's secret store has it."""

from __future__ import annotations

import io
from pathlib import Path

from wizard.core.checks.grouping import checks_outcome, compact, group_failures
from wizard.core.progress import Progress, TaskStatus
from wizard.core.report import summarize
from wizard.core.runner import JobFinished
from wizard.headless import _Printer


def _planned(progress: Progress) -> None:
    progress.plan([("work", 10.0)])


def test_progress_lines_are_written_once_per_change() -> None:
    out = io.StringIO()
    printer = _Printer(out, json_mode=False)
    progress = Progress()
    _planned(progress)
    progress.add_task("work/a", "Upload", "work")
    progress.set_status("work/a", TaskStatus.RUNNING, "sending")
    printer.progress(progress.snapshot(), force=True)
    printer.progress(progress.snapshot(), force=True)  # nothing changed: nothing written
    progress.warn("work/a", "slow")  # a new version, the same words on the line but the warning
    printer.progress(progress.snapshot(), force=True)
    lines = out.getvalue().splitlines()
    assert len([line for line in lines if line.startswith("[")]) == 2, lines
    assert lines[-1].endswith("warning: slow")


def test_json_progress_is_not_written_before_the_plan_or_after_the_end() -> None:
    out = io.StringIO()
    printer = _Printer(out, json_mode=True)
    progress = Progress()
    progress.add_task("work/a", "Upload", "work")
    printer.progress(progress.snapshot(), force=True)  # not planned: says nothing about the install
    _planned(progress)
    progress.finish()
    printer.progress(progress.snapshot(), force=True)  # finished: run_finished says so
    assert out.getvalue() == ""


def test_a_check_without_anything_to_check_is_not_a_pass() -> None:
    skipped = {"outcome": "pass", "message": "skipped: not applicable (no NTP servers)", "details": {"skipped": True}}
    assert checks_outcome({"results": [skipped]}) == ("○", ": not checked — not applicable (no NTP servers)")
    warned = {"outcome": "fail", "message": "pool.ntp.org: timed out"}
    mark, text = checks_outcome({"results": [skipped, warned]}) or ("", "")
    assert mark == "⚠" and "1 warning" in text
    assert checks_outcome({"results": [{"outcome": "pass", "message": "answers"}]}) is None
    out = io.StringIO()
    _Printer(out, json_mode=False).event(
        JobFinished("preflight", "preflight/ntp", "NTP", "", TaskStatus.DONE, result={"results": [skipped]})
    )
    assert out.getvalue().startswith("  ○ NTP: not checked")


def test_root_causes_are_grouped_with_what_they_kept_from_running() -> None:
    results = [
        {"check": "redfish.reachable", "title": "BMC reachable", "outcome": "fail", "target": f"edge-node-{i}",
         "message": "HTTP 401", "severity": "blocker", "step": "credentials"}
        for i in (1, 2, 3)
    ] + [
        {"check": f"redfish.{c}", "title": c, "outcome": "error", "target": f"edge-node-{i}",
         "message": "not checked: the BMC could not be used", "severity": "blocker", "step": "provider"}
        for i in (1, 2, 3)
        for c in ("virtual-media", "uefi", "resources")
    ]  # fmt: skip
    groups = group_failures(results)
    assert len(groups) == 1
    assert groups[0].headline() == "BMC reachable — edge-node-1, -2, -3: HTTP 401"
    assert len(groups[0].dependents) == 9 and groups[0].step == "credentials"
    assert compact(["a.example", "b.example"]) == "a.example, b.example"


def test_the_summary_says_where_the_new_passwords_are(tmp_path: Path) -> None:
    journal = {
        "status": "finished",
        "jobs": {"password/node-1": {"status": "done", "runs": 1, "result": {"replaced": True}}},
    }
    kept = summarize(journal, project="p", vip="10.0.0.5", journal_path=tmp_path / "j", log_dir=tmp_path)
    assert "in the OS keyring" in kept.credentials[0]
    memory = summarize(
        journal,
        project="p",
        vip="10.0.0.5",
        journal_path=tmp_path / "j",
        log_dir=tmp_path,
        kept="kept in memory for this run only",
    )
    assert "keyring" not in memory.credentials[0] and "memory" in memory.credentials[0]
