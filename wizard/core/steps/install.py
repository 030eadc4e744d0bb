"""Watch every node install itself from the appliance ISO, in parallel, until its Local UI answers.

Booting the nodes belongs to the provider (vSphere, Redfish, MAAS); until those boot steps exist, and always for
the ``manual`` provider, the operator boots each node from the ISO and this step watches. For ``manual`` a node that
already runs its installed system at first contact is accepted (the operator may have installed it by hand before
starting the wizard); for the other providers that means the node did not boot the ISO, and the job says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from wizard.appliance.monitor import InstallMonitor
from wizard.appliance.ssh import SSHCredentials
from wizard.core.cancel import CancelToken
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.problems import Problem
from wizard.core.progress import Reporter
from wizard.core.project import ProviderType
from wizard.core.steps.nodes import Pacing, login_password
from wizard.core.trust import TrustStore

log = logging.getLogger(__name__)


class _Monitor(InstallMonitor):
    """An install monitor whose warnings land on its job's row and in the log."""

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        def warn(node: str, message: str) -> None:
            log.warning("%s: %s", node, message)
            report.warn(message)

        self.on_warning = warn
        return super().run(report, cancel)


class InstallStep(Step):
    id = "install"
    title = "Install the nodes"
    kind = StepKind.INSTALL
    weight = 4.0

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def problems(self, ctx: StepContext) -> list[Problem]:
        return [
            Problem(
                f"nodes[{i}].ip",
                "the wizard needs the node's address to watch its install",
                "give the node's address (for DHCP, the address its reservation hands out)",
            )
            for i, n in enumerate(ctx.project.nodes)
            if not n.ip
        ]

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        trust = TrustStore(ctx.paths.config)
        jobs: list[Job] = [
            _Monitor(
                node.name,
                node.ip,
                node.ssh_port,
                SSHCredentials(project.appliance.username, password=login_password(ctx, node)),
                trust=trust,
                confirm=ctx.confirm,
                expected_fingerprint=node.ssh_host_key,
                local_ui_port=node.localui_port,
                budgets=self.pacing.budgets,
                poll=self.pacing.monitor,
                allow_installed=project.provider.type is ProviderType.MANUAL,
                step=self.id,
            )
            for node in project.nodes
        ]
        self.parallel = max(1, len(jobs))  # every node installs at once; each monitor mostly waits
        return jobs
