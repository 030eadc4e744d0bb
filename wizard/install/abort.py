"""Abort a session: give back what it took, so the operator can walk away or start over cleanly.

What an operator expects from "abort" is that nothing the wizard claimed stays claimed and nothing it set up boots the
installer again by surprise:

* MAAS machines this session allocated are released (the allocate job's ``allocated`` facts, and — when that job
  never recorded its facts — the machines MAAS lists under the session's agent name). Machines the operator had
  allocated beforehand (``kept``) and machines that belong to anyone else are never released. MAAS powers a released
  machine off itself.
* Nodes whose BMC got the ISO through this session (Redfish, or MAAS through Redfish) and were not ejected yet have
  it ejected and the CD boot override cleared, before their MAAS machine is released. They are not powered off:
  the wizard did not power them on as a separate act, and an operator aborting may want to look at the console.
  vSphere VMs are left as they are (the operator decides whether to delete them; the wizard never deletes VMs).

Every action is idempotent: an abort run twice releases nothing the second time and succeeds. The session's jobs
from ``machines`` on are marked cancelled, so a later run starts those steps over rather than skipping them.
The GUI calls :func:`abort_session` with its session's context, as ``palette-wizard abort`` does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, StepContext
from wizard.core.journal import JOB_DONE, RUN_CANCELLED
from wizard.core.progress import Progress, Reporter
from wizard.core.project import ProviderType
from wizard.core.trust import TrustStore
from wizard.install.steps import STEP_IDS
from wizard.install.steps.providers import bmc_accesses, maas_access

log = logging.getLogger(__name__)

#: The journal fact recording the last abort.
ABORT_FACT = "abort"
#: Steps whose work an abort undoes; their jobs are marked cancelled so a later run does them again.
UNDONE_STEPS = STEP_IDS[STEP_IDS.index("machines") :]


@dataclass
class AbortResult:
    released: list[str] = field(default_factory=list)  # MAAS system ids
    skipped: dict[str, str] = field(default_factory=dict)  # system id → why it was left alone
    ejected: list[str] = field(default_factory=list)  # node names
    errors: list[str] = field(default_factory=list)  # what could not be undone (the rest still was)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"released": self.released, "skipped": self.skipped, "ejected": self.ejected, "errors": self.errors}


def _done(ctx: StepContext, job_id: str) -> dict[str, Any] | None:
    record = ctx.journal.job(job_id)
    if record is None or record.get("status") != JOB_DONE:
        return None
    return dict(record.get("result") or {})


def _booted_nodes(ctx: StepContext) -> list[str]:
    """Nodes this session booted through a BMC whose media is still in (boot done or attempted, eject not done)."""
    out = []
    # A node booted before the last abort was dealt with then; its machine may be someone else's by now.
    last_abort = float((ctx.journal.fact(ABORT_FACT) or {}).get("t", 0.0))
    for node in ctx.project.nodes:
        boot = ctx.journal.job(f"boot/{node.name}")
        if boot is None or (boot.get("result") or {}).get("booted_by") == "operator":
            continue
        if float(boot.get("started") or 0.0) <= last_abort:
            continue
        if _done(ctx, f"eject/{node.name}") is None:
            out.append(node.name)
    return out


def _eject_jobs(ctx: StepContext, nodes: list[str]) -> list[Job]:
    from wizard.providers.redfish.jobs import RedfishEjectJob

    provider = ctx.project.provider
    jobs: list[Job] = []
    if provider.type is ProviderType.REDFISH:
        for access in bmc_accesses(ctx):
            if access.node in nodes:
                jobs.append(
                    RedfishEjectJob(
                        access.node, access.bmc, access.password, trust=access.trust, confirm=access.confirm
                    )
                )
    elif provider.type is ProviderType.MAAS and provider.maas is not None:
        from wizard.providers.maas import MaasRedfishEjectJob

        routes: dict[str, Any] = (_done(ctx, "media/maas") or {}).get("routes") or {}
        maas = maas_access(ctx, provider.maas)
        verify = maas.verify()
        trust = TrustStore(ctx.paths.config)
        for name in nodes:
            route = routes.get(name) or {}
            if route.get("route") == "redfish":
                jobs.append(
                    MaasRedfishEjectJob(
                        name,
                        maas.url,
                        maas.api_key,
                        verify,
                        system_id=str(route["system_id"]),
                        trust=trust,
                        confirm=ctx.confirm,
                        step="abort",
                    )
                )
    return jobs


def _release_job(ctx: StepContext) -> Job | None:
    provider = ctx.project.provider
    if provider.type is not ProviderType.MAAS or provider.maas is None:
        return None
    record = ctx.journal.job("machines/maas")
    if record is None:
        return None  # the machines step never started: MAAS was not asked for anything
    from wizard.providers.maas import ReleaseMachinesJob

    facts = dict(record.get("result") or {}) if record.get("status") == JOB_DONE else {}
    agent = f"palette-wizard/{ctx.project.name}"  # as the machines step allocates them
    access = maas_access(ctx, provider.maas)
    if facts:
        system_ids = [str(s) for s in facts.get("allocated") or []]
    else:
        # Stopped before its facts were recorded: what MAAS lists under this session's agent name is ours.
        from wizard.providers.maas import MaasClient

        with MaasClient(access.url, access.api_key, verify=access.verify()) as client:
            me = client.whoami().username
            system_ids = [m.system_id for m in client.machines(agent_name=agent) if m.owner == me]
    return ReleaseMachinesJob(
        access.url,
        access.api_key,
        access.verify(),
        system_ids=system_ids,
        comment=f"palette-wizard: install of {ctx.project.name!r} aborted by the operator",
        agent_name=agent,
    )


def abort_session(
    ctx: StepContext, *, progress: Progress | None = None, cancel: CancelToken | None = None
) -> AbortResult:
    """Undo what the session claimed (see the module text); returns what was done. Raises :class:`WizardError` only
    when nothing could be attempted (e.g. a secret is missing); per-node failures are collected in ``errors``."""
    progress = progress or Progress()
    cancel = cancel or CancelToken()
    result = AbortResult()
    jobs: list[Job] = _eject_jobs(ctx, _booted_nodes(ctx))
    release = _release_job(ctx)
    if release is not None:
        jobs.append(release)  # after the ejects: they read the BMC credentials from MAAS while still allocated
    root = progress.root()
    for i, job in enumerate(jobs):
        cancel.raise_if_cancelled()
        key = f"abort/{job.id}"
        progress.add_task(key, job.name, "abort", job.node)
        report: Reporter = root.child(i / len(jobs), 1 / len(jobs), task=key)
        try:
            facts = dict(job.run(report, cancel) or {})
        except WizardError as exc:
            log.error("abort: %s failed: %s", job.name, exc.message)
            result.errors.append(f"{job.name}: {exc.title}: {exc.message}")
            continue
        if job is release:
            result.released += list(facts.get("released") or [])
            result.skipped.update(facts.get("skipped") or {})
        elif facts.get("ejected"):
            result.ejected.append(job.node or job.name)
    journal = ctx.journal
    if result.ok:
        for job_id, record in journal.snapshot()["jobs"].items():
            if job_id.split("/", 1)[0] in UNDONE_STEPS and record.get("status") == JOB_DONE:
                journal.job_failed(
                    job_id, {"title": "Aborted", "message": "undone when the session was aborted"}, cancelled=True
                )
        journal.reset_progress()  # what the install's progress counted done is undone: the next run plans anew
    journal.set_fact(ABORT_FACT, {"t": time.time(), **result.to_dict()})
    journal.finish_run(RUN_CANCELLED)
    progress.finish("Session aborted" if result.ok else "Session aborted with errors")
    return result
