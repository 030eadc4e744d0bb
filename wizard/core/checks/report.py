"""Preflight results as a report (JSON and self-contained HTML), and warning overrides kept in the journal."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wizard.core.checks.catalog import CATALOG, CheckResult, CheckSeverity, Outcome
from wizard.core.errors import WizardError
from wizard.core.journal import Journal


class OverrideRefused(WizardError):
    """An override the catalog does not allow: a blocker, an unknown check or an empty reason."""


def override(journal: Journal, check_id: str, reason: str) -> None:
    """Accept a failed warning with the operator's reason; recorded in the journal and shown in the report."""
    check = CATALOG.get(check_id)
    if check is None:
        raise OverrideRefused("Unknown check", f"there is no preflight check {check_id!r}")
    if check.severity is CheckSeverity.BLOCKER:
        raise OverrideRefused(
            "Blockers cannot be overridden",
            f"{check_id} ({check.title}) is a blocker: the install would fail or damage something if it went ahead",
            remediation=check.remediation,
        )
    if not reason.strip():
        raise OverrideRefused(
            "Reason required",
            f"overriding {check_id} needs a reason; it is recorded in the journal and the report",
        )
    journal.add_override(check_id, reason.strip())


def _overridable(overrides: Sequence[dict[str, Any]]) -> dict[str, str]:
    """check id → reason for overrides of warnings; a blocker entry (a hand-edited journal) is ignored."""
    out: dict[str, str] = {}
    for entry in overrides:
        check = CATALOG.get(str(entry.get("check", "")))
        if check is not None and check.severity is CheckSeverity.WARNING:
            out[check.id] = str(entry.get("reason", ""))  # the latest override of a check wins
    return out


@dataclass(frozen=True)
class CheckReport:
    results: tuple[CheckResult, ...]
    overrides: tuple[dict[str, Any], ...] = ()
    project: str = ""
    created: float = field(default_factory=time.time)

    def _reasons(self) -> dict[str, str]:
        return _overridable(self.overrides)

    def _failed(self, severity: CheckSeverity) -> list[CheckResult]:
        return [r for r in self.results if r.failed and r.definition.severity is severity]

    def blockers(self) -> list[CheckResult]:
        """Failed blockers; nothing overrides them."""
        return self._failed(CheckSeverity.BLOCKER)

    def warnings(self) -> list[CheckResult]:
        """Failed warnings that no override accepts."""
        reasons = self._reasons()
        return [r for r in self._failed(CheckSeverity.WARNING) if r.check not in reasons]

    def overridden(self) -> list[tuple[CheckResult, str]]:
        reasons = self._reasons()
        return [(r, reasons[r.check]) for r in self._failed(CheckSeverity.WARNING) if r.check in reasons]

    def to_dict(self) -> dict[str, Any]:
        reasons = self._reasons()
        results = []
        for r in self.results:
            d = r.to_dict()
            if r.failed and r.check in reasons:
                d["overridden"] = reasons[r.check]
            results.append(d)
        return {
            "format": "palette-wizard-preflight",
            "version": 1,
            "project": self.project,
            "created": self.created,
            "summary": {
                "checks": len(self.results),
                "passed": sum(1 for r in self.results if not r.failed),
                "blockers": len(self.blockers()),
                "warnings": len(self.warnings()),
                "overridden": len(self.overridden()),
            },
            "results": results,
            "overrides": [
                {"check": str(o.get("check", "")), "reason": str(o.get("reason", "")), "t": o.get("t")}
                for o in self.overrides
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    def to_html(self) -> str:
        """A self-contained page (inline CSS, no scripts); every value from the project or a peer is escaped."""
        e = html.escape
        d = self.to_dict()
        s = d["summary"]
        when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.created))
        if s["blockers"]:
            verdict = f"Blocked: {s['blockers']} blocker{'s' if s['blockers'] != 1 else ''} must be fixed"
        else:
            verdict = "Ready: no blockers"
        rows = []
        for r in d["results"]:
            status = r["outcome"]
            if r["outcome"] != Outcome.PASS.value:
                status = "overridden" if "overridden" in r else r["severity"]
            note = [e(r["message"])]
            if r["outcome"] != Outcome.PASS.value and r["remediation"]:
                note.append(f"<div class=fix>Fix ({e(r['step'])} page): {e(r['remediation'])}</div>")
            if "overridden" in r:
                note.append(f"<div class=why>Overridden: {e(r['overridden'])}</div>")
            if r["method"]:
                note.append(f"<div class=how>How: {e('; '.join(r['method']))}</div>")
            rows.append(
                f"<tr class={e(status)}><td>{e(status)}</td><td><code>{e(r['check'])}</code><br>{e(r['title'])}</td>"
                f"<td>{e(r['category'])}</td><td>{e(r['target'])}</td><td>{''.join(note)}</td></tr>"
            )
        overrides = (
            "".join(f"<li><code>{e(o['check'])}</code>: {e(o['reason'])}</li>" for o in d["overrides"])
            or "<li>none</li>"
        )
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Preflight report – {e(self.project)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:.4em;text-align:left;vertical-align:top}} th{{background:#eee}}
tr.pass td:first-child{{color:#17702f}} tr.blocker td:first-child{{color:#b00020;font-weight:bold}}
tr.warning td:first-child{{color:#a05a00;font-weight:bold}} tr.overridden td:first-child{{color:#555}}
.fix{{margin-top:.3em}} .why{{margin-top:.3em;font-style:italic}} .how{{margin-top:.3em;color:#666;font-size:.9em}}
</style></head><body>
<h1>Preflight report: {e(self.project)}</h1>
<p>{e(when)} — <strong>{e(verdict)}</strong>. {s["checks"]} results: {s["passed"]} passed, {s["blockers"]} blockers,
{s["warnings"]} warnings, {s["overridden"]} overridden.</p>
<table><thead><tr><th>Result</th><th>Check</th><th>Category</th><th>Target</th><th>Details</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<h2>Overrides</h2><ul>{overrides}</ul>
</body></html>
"""
