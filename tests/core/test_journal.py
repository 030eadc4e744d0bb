from __future__ import annotations

import json
from pathlib import Path

import pytest

from wizard.core.errors import JournalError
from wizard.core.journal import JOB_DONE, Journal, list_sessions, project_id


def test_records_jobs_and_facts_atomically(tmp_path: Path) -> None:
    path = tmp_path / "sessions" / "p.json"
    j = Journal.open(path, "p", "/x/project.yaml")
    assert j.job_started("verify/iso", "fp1") == 1
    j.set_fact("node-1:vm", "vm-42")
    j.job_done("verify/iso", "fp1", {"sha256": "ab"})
    data = json.loads(path.read_text())
    assert data["jobs"]["verify/iso"]["status"] == JOB_DONE
    assert data["facts"]["node-1:vm"] == "vm-42"
    assert not list(path.parent.glob("*.tmp")), "temporary files left behind"
    again = Journal.open(path, "p")
    assert again.is_done("verify/iso", "fp1")
    assert not again.is_done("verify/iso", "fp2"), "changed inputs must run again"
    assert again.result("verify/iso") == {"sha256": "ab"}
    assert again.job_started("verify/iso", "fp2") == 2


def test_corrupt_journal_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"format": "palette-wizard-journal", "version": 1, "jobs": ')
    with pytest.raises(JournalError) as info:
        Journal.open(path, "p")
    assert info.value.title == "Journal corrupt"
    assert "move" in info.value.remediation
    assert path.read_text().startswith('{"format"'), "a corrupt journal must never be reset"


def test_foreign_and_newer_journals_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(JournalError, match="Not a wizard journal"):
        Journal.open(other, "p")
    j = Journal.open(tmp_path / "a.json", "project-a")
    with pytest.raises(JournalError, match="another project"):
        Journal.open(j.path, "project-b")
    data = json.loads(j.path.read_text())
    data["version"] = 99
    j.path.write_text(json.dumps(data))
    with pytest.raises(JournalError, match="newer wizard"):
        Journal.open(j.path, "project-a")


def test_list_sessions_reports_broken_ones(tmp_path: Path) -> None:
    Journal.open(tmp_path / "sessions" / "a.json", "a", "/a.yaml")
    (tmp_path / "sessions" / "b.json").write_text("not json")
    entries = list(list_sessions(tmp_path))
    assert any(getattr(e, "project", None) == "a" for e in entries)
    assert any(isinstance(e, JournalError) for e in entries)


def test_project_id_is_stable_and_distinct(tmp_path: Path) -> None:
    a = project_id(tmp_path / "a.yaml", "palette")
    assert a == project_id(tmp_path / "a.yaml", "palette")
    assert a != project_id(tmp_path / "b.yaml", "palette")


def test_run_started_at_is_the_latest_run(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "s.json", "s")
    assert journal.run_started_at() is None
    journal.start_run()
    first = journal.run_started_at()
    journal.finish_run("done")
    journal.start_run()
    second = journal.run_started_at()
    assert first is not None and second is not None and second >= first
    assert Journal.open(tmp_path / "s.json", "s").run_started_at() == second  # read back from the file
