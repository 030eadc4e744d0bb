"""Day-2 sessions: an action on an installed appliance (an upgrade, new console certificates) with a journal of its
own beside the install's, which it only reads (:attr:`wizard.core.jobs.StepContext.origin`).

The journal of a day-2 action is ``<install journal>.<action>-<key>.json``: one per upgrade bundle, so running the
same upgrade again continues it, and another bundle starts afresh; its folder (the journal's name without
``.json``) holds the action's reports and backups.
"""

from __future__ import annotations

from pathlib import Path

from wizard.core.errors import WizardError
from wizard.core.journal import JOB_DONE, Journal, journal_path, project_id
from wizard.core.paths import AppPaths, app_paths
from wizard.core.project import load_project
from wizard.core.secrets import SecretStore
from wizard.core.trust import Confirm
from wizard.install.session import Session


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:80] or "action"


def install_journal(project_file: Path, paths: AppPaths) -> Journal:
    """The install's journal of ``project_file``; raises when the project was never installed by this wizard."""
    loaded = load_project(project_file)
    pid = project_id(project_file, loaded.project.name)
    path = journal_path(paths.state, pid)
    if not path.is_file():
        raise WizardError(
            "Not installed",
            f"no install session of {loaded.project.name!r} ({project_file}) in {path.parent}",
            remediation="day-2 actions work on an appliance this wizard installed: run `palette-wizard run "
            f"{project_file}` first (it finds and follows an existing cluster of the project's name)",
        )
    journal = Journal.open(path, pid)
    created = journal.job("cluster/create")
    if created is None or created.get("status") != JOB_DONE:
        raise WizardError(
            "Cluster not created yet",
            f"the install of {loaded.project.name!r} has not created its management cluster",
            remediation=f"finish the install first: `palette-wizard run {project_file}`",
        )
    return journal


def open_day2(
    project_file: Path,
    action: str,
    key: str,
    *,
    paths: AppPaths | None = None,
    secrets: SecretStore | None = None,
    confirm: Confirm | None = None,
) -> Session:
    """A session for ``action`` (``upgrade``, ``certificates``) on the installed project; ``key`` tells runs of the
    same action apart (the bundle's name for an upgrade)."""
    paths = (paths or app_paths()).ensure()
    loaded = load_project(project_file)
    origin = install_journal(project_file, paths)
    pid = project_id(project_file, loaded.project.name)
    path = origin.path.with_name(f"{origin.path.stem}.{_safe(action)}-{_safe(key)}.json")
    journal = Journal.open(path, pid, str(project_file.resolve()))
    return Session(loaded.project, loaded.warnings, journal, secrets or SecretStore(), paths, confirm, origin=origin)


def installed_release(project_file: Path, paths: AppPaths | None = None) -> str | None:
    """The release the project's appliance runs as this wizard last saw it (the newest finished upgrade, else the
    install's reading); "" when unknown, None when the project was never installed by this wizard."""
    paths = (paths or app_paths()).ensure()
    try:
        origin = install_journal(project_file, paths)
    except WizardError:
        return None
    newest: tuple[float, str] = (0.0, "")
    for path in origin.path.parent.glob(f"{origin.path.stem}.upgrade-*.json"):
        try:
            record = Journal.open(path, origin.snapshot()["project"]).job("update/follow")
        except WizardError:
            continue
        if record is not None and record.get("status") == JOB_DONE:
            version = str((record.get("result") or {}).get("version") or "")
            newest = max(newest, (float(record.get("finished") or 0.0), version))
    if newest[1]:
        return newest[1]
    facts = ((origin.job("appliance/identify") or {}).get("result") or {}).get("appliance") or {}
    return str(facts.get("version") or "")
