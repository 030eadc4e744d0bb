"""Failed checks grouped the way an operator reads them: each root cause once, with every target it hit, and the
checks that could not run because of it counted under it instead of listed as failures of their own.

A wrong BMC password fails "BMC reachable" on every node and leaves the node's other BMC checks "not checked": that
is one problem ("BMC reachable …: authentication failed — edge-node-1, -2, -3"), not twelve. Works on the report's
dicts (:meth:`CheckResult.to_dict`), so the engine and a page reading the report's JSON group alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: How a check that could not run because an earlier one failed says so.
NOT_CHECKED = "not checked"


@dataclass
class Group:
    """One root cause: a check that failed the same way on ``targets``; ``dependents`` could not run because of
    it (check title, target)."""

    check: str
    title: str
    severity: str
    message: str
    remediation: str
    step: str
    targets: list[str] = field(default_factory=list)
    dependents: list[tuple[str, str]] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return self.severity == "blocker"

    def headline(self) -> str:
        where = f" — {compact(self.targets)}" if any(self.targets) else ""
        return f"{self.title}{where}: {self.message}"

    def dependents_text(self) -> str:
        n = len(self.dependents)
        return f"{n} other check{'s' if n != 1 else ''} could not run because of this" if n else ""


def dependent(result: Mapping[str, Any]) -> bool:
    """A check that did not run because something it needs failed first."""
    return str(result.get("outcome")) == "error" and str(result.get("message", "")).startswith(NOT_CHECKED)


def family(check: str) -> str:
    return check.split(".", 1)[0]


def compact(targets: Sequence[str]) -> str:
    """``edge-node-1, -2, -3`` for targets that differ only in a trailing number; else all of them."""
    names = [t for t in targets if t]
    match = [re.fullmatch(r"(.*?)(\d+)", t) for t in names]
    if len(names) > 1 and all(match) and len({m.group(1) for m in match if m}) == 1:
        first, *rest = names
        prefix = match[0].group(1) if match[0] else ""
        tail = "-" if prefix.endswith("-") else ""
        return ", ".join([first, *(tail + t[len(prefix) :] for t in rest)])
    return ", ".join(names)


def group_failures(results: Sequence[Mapping[str, Any]], *, include_overridden: bool = False) -> list[Group]:
    """The failed results as root causes (blockers first, then warnings; in the order they came otherwise), each
    with the checks that could not run because of it."""
    failed = [r for r in results if str(r.get("outcome")) != "pass" and (include_overridden or not r.get("overridden"))]
    roots: list[Group] = []
    by_key: dict[tuple[str, str, str], Group] = {}
    for r in failed:
        if dependent(r):
            continue
        key = (str(r.get("check")), str(r.get("message")), str(r.get("remediation", "")))
        group = by_key.get(key)
        if group is None:
            group = by_key[key] = Group(
                str(r.get("check", "")),
                str(r.get("title", r.get("check", ""))),
                str(r.get("severity", "blocker")),
                str(r.get("message", "")),
                str(r.get("remediation", "")),
                str(r.get("step", "")),
            )
            roots.append(group)
        group.targets.append(str(r.get("target", "")))
    for r in failed:
        if not dependent(r):
            continue
        check, target = str(r.get("check", "")), str(r.get("target", ""))
        same = [g for g in roots if family(g.check) == family(check)]
        home = next((g for g in same if target in g.targets), same[0] if same else None)
        if home is None:  # nothing failed before it: it is a cause of its own
            home = Group(
                check,
                str(r.get("title", check)),
                str(r.get("severity", "blocker")),
                str(r.get("message", "")),
                str(r.get("remediation", "")),
                str(r.get("step", "")),
                [target],
            )
            roots.append(home)
        else:
            home.dependents.append((str(r.get("title", check)), target))
    return sorted(roots, key=lambda g: not g.blocking)


def checks_outcome(result: dict[str, Any]) -> tuple[str, str] | None:
    """A check job's mark and outcome: ✓ only when a check passed, ⚠ with its warnings, ○ when nothing could be
    checked (an NTP check without NTP servers is not a pass)."""
    results = result.get("results")
    if not isinstance(results, list) or not results:
        return None
    failed = [r for r in results if isinstance(r, dict) and r.get("outcome") != "pass"]
    skipped = [r for r in results if isinstance(r, dict) and (r.get("details") or {}).get("skipped")]
    if failed:
        n = len(failed)
        return "⚠", f": {n} warning{'s' if n != 1 else ''} — {failed[0].get('message', '')}"
    if len(skipped) == len(results):
        why = str(skipped[0].get("message", "")).removeprefix("skipped: ")
        return "○", f": not checked — {why}"
    return None
