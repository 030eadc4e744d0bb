"""The session journal: what has happened in an install, recorded as it happens, so a run can resume.

One JSON file per project in the state folder, rewritten atomically (temporary file + ``os.replace``) on every
change. It records each job's state with the fingerprint of its inputs, facts that jobs learn as they go (VM ids,
node addresses, bytes the server confirmed), overrides with their reasons, and the run's status. A corrupt or
foreign journal is an error with the way out, never silently reset: it may be the only record of what exists.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizard import __version__
from wizard.core.errors import JournalError
from wizard.core.fsutil import atomic_write_text
from wizard.core.redact import REDACTOR

FORMAT = "palette-wizard-journal"
VERSION = 1

JOB_RUNNING = "running"
JOB_DONE = "done"
JOB_FAILED = "failed"
JOB_CANCELLED = "cancelled"

RUN_RUNNING = "running"
RUN_FINISHED = "finished"
RUN_FAILED = "failed"
RUN_CANCELLED = "cancelled"
RUN_INCOMPLETE = "incomplete"  # a retry of some nodes stopped after the step it held others in


def project_id(source: Path | None, name: str) -> str:
    """A stable id for a project: its name plus a hash of where its file lives."""
    where = str(source.resolve()) if source is not None else "(unsaved)"
    digest = hashlib.sha256(where.encode("utf-8")).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40] or "project"
    return f"{safe}-{digest}"


class Journal:
    """Thread-safe; every mutation is written to disk before the call returns."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self._data = data
        self._lock = threading.RLock()

    # -- opening -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, project: str, project_file: str = "") -> Journal:
        """Open the journal at ``path`` for project id ``project``, creating it if absent."""
        if not path.exists():
            now = time.time()
            data: dict[str, Any] = {
                "format": FORMAT,
                "version": VERSION,
                "project": project,
                "project_file": project_file,
                "created": now,
                "updated": now,
                "wizard_version": __version__,
                "status": RUN_RUNNING,
                "step": "",
                "jobs": {},
                "facts": {},
                "overrides": [],
                "history": [],
            }
            journal = cls(path, data)
            journal._save()
            return journal
        data = cls._read(path)
        if data.get("project") != project:
            raise JournalError(
                "Journal belongs to another project",
                f"{path} records project {data.get('project')!r}, not {project!r}",
                remediation="open the project it belongs to, or move the journal aside to start over",
            )
        journal = cls(path, data)
        if project_file and data.get("project_file") != project_file:
            journal._data["project_file"] = project_file
            journal._save()
        return journal

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise JournalError(
                "Journal unreadable",
                f"{path} cannot be read: {exc}",
                remediation="check the file's permissions",
            ) from exc
        aside = f"move {path} aside (it may be the only record of what was created) and start again"
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise JournalError(
                "Journal corrupt",
                f"{path} is not valid JSON ({exc})",
                details=text[:500],
                remediation=aside,
            ) from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise JournalError(
                "Not a wizard journal",
                f"{path} is not a palette-wizard journal",
                remediation=aside,
            )
        version = data.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise JournalError(
                "Journal from a newer wizard",
                f"{path} has journal version {version!r}; this wizard reads version {VERSION}",
                remediation="resume with the newer wizard that wrote it",
            )
        for key, kind in (("jobs", dict), ("facts", dict), ("overrides", list), ("history", list)):
            if not isinstance(data.get(key), kind):
                raise JournalError(
                    "Journal corrupt",
                    f"{path}: field {key!r} is missing or has the wrong type",
                    remediation=aside,
                )
        return data

    # -- writing -------------------------------------------------------------------------------------------
    def _save(self) -> None:
        self._data["updated"] = time.time()
        text = json.dumps(self._data, indent=1, sort_keys=True, default=str)
        if REDACTOR.contains_secret(text):
            # A fact must never carry a secret; mask it rather than write it.
            text = REDACTOR.redact(text)
        atomic_write_text(self.path, text)

    def _history(self, event: str, **fields: Any) -> None:
        entry = {"t": time.time(), "event": event, **fields}
        history: list[dict[str, Any]] = self._data["history"]
        history.append(entry)
        del history[:-500]  # the log file has the full story; the journal keeps the recent past

    def start_run(self) -> None:
        with self._lock:
            self._data["status"] = RUN_RUNNING
            self._history("run-started", wizard_version=__version__)
            self._save()

    def set_step(self, step: str) -> None:
        with self._lock:
            self._data["step"] = step
            self._history("step", step=step)
            self._save()

    def finish_run(self, status: str) -> None:
        with self._lock:
            self._data["status"] = status
            self._history("run-ended", status=status)
            self._save()

    def job_started(self, job_id: str, fingerprint: str) -> int:
        """Record that a job starts; returns how many times it has been started, this time included."""
        with self._lock:
            rec = self._data["jobs"].setdefault(job_id, {"runs": 0})
            rec["runs"] = int(rec.get("runs", 0)) + 1
            rec.update(status=JOB_RUNNING, fingerprint=fingerprint, started=time.time(), error=None)
            self._save()
            return int(rec["runs"])

    def job_done(self, job_id: str, fingerprint: str, result: dict[str, Any] | None = None) -> None:
        with self._lock:
            rec = self._data["jobs"].setdefault(job_id, {"runs": 1})
            rec.update(status=JOB_DONE, fingerprint=fingerprint, finished=time.time(), result=result or {})
            self._save()

    def job_failed(self, job_id: str, error: dict[str, str], *, cancelled: bool = False) -> None:
        with self._lock:
            rec = self._data["jobs"].setdefault(job_id, {"runs": 1})
            rec.update(status=JOB_CANCELLED if cancelled else JOB_FAILED, finished=time.time(), error=error)
            self._save()

    def set_fact(self, key: str, value: Any) -> None:
        with self._lock:
            self._data["facts"][key] = value
            self._save()

    def delete_fact(self, key: str) -> None:
        with self._lock:
            if self._data["facts"].pop(key, None) is not None:
                self._save()

    def save_progress(self, shown: float, steps: dict[str, float]) -> None:
        """What the overall progress showed last and each step's fraction then: the next run's plan starts there."""
        with self._lock:
            self._data["progress"] = {"shown": float(shown), "steps": {str(k): float(v) for k, v in steps.items()}}
            self._save()

    def reset_progress(self) -> None:
        """Forget the recorded progress (an abort undoes what it counted)."""
        with self._lock:
            if self._data.pop("progress", None) is not None:
                self._save()

    def add_override(self, check_id: str, reason: str) -> None:
        with self._lock:
            self._data["overrides"].append({"check": check_id, "reason": reason, "t": time.time()})
            self._save()

    # -- reading -------------------------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            rec = self._data["jobs"].get(job_id)
            return copy.deepcopy(rec) if rec is not None else None

    def is_done(self, job_id: str, fingerprint: str) -> bool:
        """True when the job finished with these very inputs; a changed fingerprint means run it again."""
        rec = self.job(job_id)
        return rec is not None and rec.get("status") == JOB_DONE and rec.get("fingerprint") == fingerprint

    def result(self, job_id: str) -> dict[str, Any]:
        rec = self.job(job_id)
        return dict(rec.get("result") or {}) if rec else {}

    def fact(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return copy.deepcopy(self._data["facts"].get(key, default))

    def facts(self, prefix: str = "") -> dict[str, Any]:
        with self._lock:
            return {k: copy.deepcopy(v) for k, v in self._data["facts"].items() if k.startswith(prefix)}

    def saved_progress(self) -> tuple[float, dict[str, float]]:
        """The overall fraction shown last and each step's fraction then; (0, {}) when nothing was recorded."""
        with self._lock:
            record = self._data.get("progress")
        if not isinstance(record, dict):
            return 0.0, {}
        try:
            shown = min(1.0, max(0.0, float(record.get("shown", 0.0))))
            steps = {str(k): min(1.0, max(0.0, float(v))) for k, v in dict(record.get("steps") or {}).items()}
        except (TypeError, ValueError):
            return 0.0, {}  # a hand-edited record: plan from nothing rather than fail a run
        return shown, steps

    @property
    def status(self) -> str:
        with self._lock:
            return str(self._data.get("status", ""))

    @property
    def step(self) -> str:
        with self._lock:
            return str(self._data.get("step", ""))

    @property
    def overrides(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._data["overrides"])

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._data)

    def run_started_at(self) -> float | None:
        """When the current (most recent) run of this session started."""
        with self._lock:
            starts = [float(h["t"]) for h in self._data["history"] if h.get("event") == "run-started"]
        return starts[-1] if starts else None


class Facts:
    """A job's handle for recording facts as they happen, scoped under the job's id; plain, no session."""

    def __init__(self, journal: Journal, scope: str) -> None:
        self._journal = journal
        self._scope = scope

    def get(self, key: str, default: Any = None) -> Any:
        return self._journal.fact(f"{self._scope}:{key}", default)

    def set(self, key: str, value: Any) -> None:
        self._journal.set_fact(f"{self._scope}:{key}", value)


@dataclass(frozen=True)
class SessionInfo:
    path: Path
    project: str
    project_file: str
    status: str
    step: str
    updated: float


def journal_path(state_dir: Path, project: str) -> Path:
    return state_dir / "sessions" / f"{project}.json"


def list_sessions(state_dir: Path) -> Iterator[SessionInfo | JournalError]:
    """Every journal in the state folder, newest first; unreadable ones come back as their error."""
    folder = state_dir / "sessions"
    if not folder.is_dir():
        return
    entries: list[SessionInfo | JournalError] = []
    for path in folder.glob("*.json"):
        try:
            data = Journal._read(path)
        except JournalError as exc:
            entries.append(exc)
            continue
        entries.append(
            SessionInfo(
                path=path,
                project=str(data.get("project", "")),
                project_file=str(data.get("project_file", "")),
                status=str(data.get("status", "")),
                step=str(data.get("step", "")),
                updated=float(data.get("updated", 0.0)),
            )
        )
    entries.sort(key=lambda e: -e.updated if isinstance(e, SessionInfo) else 0.0)
    yield from entries
