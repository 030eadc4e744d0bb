"""Configure the nodes through their Local UI (``appliance.configure: localui``), right after the password step.

After the password step, so the wizard logs in with the operator's password once it replaced the default; before
linking, because a linked host's address cannot change. With the other configure modes (seed ISO, guided console)
the nodes are configured during the install and this step has no jobs.
"""

from __future__ import annotations

from wizard.appliance.configure import ConfigureNodeJob, configuration_for_node
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.project import ConfigureMode, read_ca_certs
from wizard.install.steps.nodes import Pacing, connector, endpoint


class ConfigureStep(Step):
    id = "configure"
    title = "Configure the nodes"
    kind = StepKind.INSTALL
    weight = 1.0
    expected = 60.0

    def expected_duration(self, ctx: StepContext) -> float:
        if ctx.project.appliance.configure is not ConfigureMode.LOCALUI:
            return 0.0
        return super().expected_duration(ctx)

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        project = ctx.project
        if project.appliance.configure is not ConfigureMode.LOCALUI:
            return []
        ca_certs = read_ca_certs(project.network.proxy)
        pace = self.pacing
        conn = connector(ctx, pace)
        jobs: list[Job] = [
            ConfigureNodeJob(
                endpoint(ctx, node),
                configuration_for_node(project, node, ca_certs),
                conn,
                step=self.id,
                # A Local UI poll like the link step's; the budget is that of a node rebooting (10–15 min on real
                # hardware), the same outage the cluster step tolerates.
                poll_interval=pace.link_poll,
                timeout=pace.cluster_outage_timeout,
            )
            for node in project.nodes
        ]
        self.parallel = max(1, len(jobs))  # each node applies and reboots on its own
        return jobs
