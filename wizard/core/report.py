"""The run summary and HTML run report: where Palette is, what the run did, where the kubeconfig and logs are.

Both are built from the session journal (the record of what happened), never from the live engine, so the same
report can be written at the end of a run, after a failure, or later from a journal on disk. The HTML is one
self-contained file, safe to mail to support: it holds journal facts, which never carry secrets.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizard.core.fsutil import atomic_write_text
from wizard.core.logs import LOG_NAME

REPORT_HTML = "run-report.html"
SUMMARY_TEXT = "summary.txt"


@dataclass(frozen=True)
class JobLine:
    id: str
    step: str
    status: str  # done | failed | cancelled | running
    runs: int
    started: float | None
    finished: float | None
    result: Mapping[str, Any]
    error: Mapping[str, Any] | None


@dataclass(frozen=True)
class RunSummary:
    project: str
    palette_url: str
    kubeconfig: str
    logs: str
    journal: str
    status: str
    activation: str
    packs: tuple[str, ...]
    jobs: tuple[JobLine, ...]
    headline: str
    #: What happened to the default credentials (nodes' kairos/kairos, the console's admin/admin).
    credentials: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The terminal summary."""
        out = [self.headline, f"  Palette:     {self.palette_url or '(not reached yet)'}"]
        if self.palette_url:
            out.append(f"  Console:     {self.palette_url}/system")
        if self.activation:
            out.append(f"  Activation:  {self.activation}")
        if self.packs:
            out.append(f"  Packs:       {', '.join(self.packs)}")
        out.extend(f"  Credentials: {line}" for line in self.credentials)
        out.append(f"  Kubeconfig:  {self.kubeconfig or '(not saved yet)'}")
        out.append(f"  Logs:        {self.logs}")
        out.append(f"  Journal:     {self.journal}")
        failed = [j for j in self.jobs if j.status == "failed"]
        for job in failed:
            err = job.error or {}
            out.append(f"  Failed:      {job.id}: {err.get('title', '')}: {err.get('message', '')}")
        return out


def summarize(
    journal: Mapping[str, Any],
    *,
    project: str,
    vip: str,
    journal_path: Path,
    log_dir: Path,
    step_order: Sequence[str] = (),
) -> RunSummary:
    """Read a journal snapshot (``Journal.snapshot()`` or the journal file's JSON) into a summary."""
    raw_jobs: Mapping[str, Any] = journal.get("jobs") or {}
    jobs = []
    for job_id, rec in raw_jobs.items():
        step = job_id.split("/", 1)[0]
        jobs.append(
            JobLine(
                id=job_id,
                step=step,
                status=str(rec.get("status") or ""),
                runs=int(rec.get("runs") or 0),
                started=_number(rec.get("started")),
                finished=_number(rec.get("finished")),
                result=dict(rec.get("result") or {}),
                error=rec.get("error") or None,
            )
        )
    order = {s: i for i, s in enumerate(step_order)}
    jobs.sort(key=lambda j: (order.get(j.step, len(order)), j.started or 0.0, j.id))

    def result(job_id: str) -> Mapping[str, Any]:
        return next((j.result for j in jobs if j.id == job_id and j.status == "done"), {})

    url = str(result("console/admin").get("url") or "")
    if not url and result("cluster/create"):
        url = f"https://{vip}"
    kubeconfig = next(
        (str(j.result["kubeconfig"]) for j in jobs if j.status == "done" and j.result.get("kubeconfig")), ""
    )
    act = result("activate/palette")
    if act.get("activated"):
        activation = "Active" + (f" (until {act['expires_at']})" if act.get("expires_at") else "")
    elif act.get("deferred"):
        activation = (
            f"deferred — trial ends {act.get('trial_ends') or 'in 30 days'}; "
            f"Product Setup ID {act.get('product_setup_id', '')}"
        )
    else:
        activation = ""
    packs = tuple(
        f"{j.result.get('registry_name', j.id)} {j.result.get('registry_version', '')}".strip()
        for j in jobs
        if j.step == "packs" and j.status == "done" and "registry_name" in j.result
    )
    credentials: list[str] = []
    replaced = sorted(j.id.split("/", 1)[1] for j in jobs if j.step == "password" and j.result.get("replaced"))
    if replaced:
        credentials.append(
            f"the default node password was replaced on {', '.join(replaced)}; the new one is the secret named by "
            "appliance.password (in the keyring or vault)"
        )
    if result("console/admin").get("password_changed"):
        credentials.append(
            "the console's default admin password was changed; the new one is the secret named by console.password"
        )
    synced = bool(result("packs/registry-sync"))
    status = str(journal.get("status") or "")
    failed = any(j.status == "failed" for j in jobs)
    if act.get("activated") and synced:
        headline = "Palette activated, packs uploaded"
    elif act.get("activated"):
        headline = "Palette activated"
    elif failed:
        headline = "The install stopped with an error; run again to resume"
    elif url:
        headline = "Palette is installed"
    else:
        headline = "The install has not reached Palette yet"
    return RunSummary(
        project=project,
        palette_url=url,
        kubeconfig=kubeconfig,
        logs=str(log_dir / LOG_NAME),
        journal=str(journal_path),
        status=status,
        activation=activation,
        packs=packs,
        jobs=tuple(jobs),
        headline=headline,
        credentials=tuple(credentials),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(job: JobLine) -> str:
    if job.started is None or job.finished is None:
        return ""
    seconds = max(0, int(job.finished - job.started))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse;width:100%;margin-top:1em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.9em}
th{background:#f0f0f0}.done{color:#17692a}.failed{color:#a00}.cancelled,.running{color:#8a5a00}
dl{display:grid;grid-template-columns:max-content auto;gap:.3em 1em}dt{font-weight:600}
code{font-size:.9em}
"""


def render_html(summary: RunSummary) -> str:
    e = html.escape
    url = summary.palette_url
    facts: list[tuple[str, str]] = [
        ("Palette", f'<a href="{e(url)}">{e(url)}</a>' if url else "not reached yet"),
        ("System console", f'<a href="{e(url)}/system">{e(url)}/system</a>' if url else "—"),
        ("Activation", e(summary.activation or "—")),
        ("Packs in the registry", e(", ".join(summary.packs) or "—")),
        ("Default credentials", "<br>".join(e(c) for c in summary.credentials) or "not replaced yet"),
        ("Kubeconfig", f"<code>{e(summary.kubeconfig)}</code>" if summary.kubeconfig else "not saved yet"),
        ("Logs", f"<code>{e(summary.logs)}</code>"),
        ("Session journal", f"<code>{e(summary.journal)}</code>"),
    ]
    rows = []
    for job in summary.jobs:
        if job.error:
            what = f"{job.error.get('title', '')}: {job.error.get('message', '')}"
        else:
            what = json.dumps(dict(job.result), sort_keys=True, default=str)
        rows.append(
            f'<tr><td>{e(job.step)}</td><td>{e(job.id)}</td><td class="{e(job.status)}">{e(job.status)}</td>'
            f"<td>{job.runs}</td><td>{e(_when(job.finished or job.started))}</td><td>{e(_duration(job))}</td>"
            f"<td><code>{e(what)}</code></td></tr>"
        )
    facts_html = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Palette install report — {e(summary.project)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{e(summary.headline)}</h1><p>Project <b>{e(summary.project)}</b>, run status "
        f"<b>{e(summary.status or 'unknown')}</b>.</p><dl>{facts_html}</dl>"
        "<h2>What was done</h2><table><thead><tr><th>Step</th><th>Job</th><th>Status</th><th>Runs</th>"
        "<th>Finished</th><th>Took</th><th>Recorded facts</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>\n"
    )


def write_run_report(summary: RunSummary, folder: Path) -> tuple[Path, Path]:
    """Write ``run-report.html`` and ``summary.txt`` into the session folder; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    html_path, text_path = folder / REPORT_HTML, folder / SUMMARY_TEXT
    atomic_write_text(html_path, render_html(summary))
    atomic_write_text(text_path, "\n".join(summary.lines()) + "\n")
    return html_path, text_path


def read_journal_file(path: Path) -> dict[str, Any]:
    """The journal as its file holds it (every journal change is written before the call that made it returns)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
