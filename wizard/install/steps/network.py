"""Node networking beyond one NIC (``nodes[i].network``), applied through each node's Local UI network API: the
``network`` step, after ``configure`` (host name, DNS, proxy) and before the appliance is checked and the nodes are
linked (a linked host's address cannot change).

Only with ``appliance.configure: localui`` (the project refuses bonds and VLANs with the other modes), only for nodes
that describe a network. Where the node answers before (``network.reach``) and its own address (``nodes[i].ip``) may
differ: the job moves the wizard's session from one to the other (:mod:`wizard.appliance.network`).
"""

from __future__ import annotations

from dataclasses import replace

from wizard.appliance.network import ApplyNetworkJob, NetworkPlan
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.project import AddressMode, ConfigureMode, Node
from wizard.install.steps.nodes import Pacing, connector, endpoint


def network_plan(ctx: StepContext, node: Node) -> NetworkPlan | None:
    net = node.network
    if net is None or ctx.project.appliance.configure is not ConfigureMode.LOCALUI:
        return None
    if not (net.needs_network_api or net.interfaces):
        return None
    return NetworkPlan(
        node=node.name,
        address=node.ip,
        prefix=node.prefix,
        gateway=node.gateway,
        dhcp=node.address_mode is AddressMode.DHCP,
        management=net.management,
        nics=net.interfaces,
        bonds=net.bonds,
        vlans=net.vlans,
        dns=ctx.project.network.dns,
    )


class NetworkStep(Step):
    id = "network"
    title = "Configure node networking"
    kind = StepKind.INSTALL
    weight = 0.5
    expected = 120.0  # each write applied by the node (202, then polled), the management interface last

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()

    def expected_duration(self, ctx: StepContext) -> float:
        if not any(network_plan(ctx, node) is not None for node in ctx.project.nodes):
            return 0.0
        return super().expected_duration(ctx)

    def jobs(self, ctx: StepContext) -> list[Job]:
        pace = self.pacing
        conn = connector(ctx, pace)
        jobs: list[Job] = []
        for node in ctx.project.nodes:
            plan = network_plan(ctx, node)
            if plan is None:
                continue
            final = endpoint(ctx, node)
            reach = replace(final, host=node.network.reach) if node.network and node.network.reach else final
            jobs.append(
                ApplyNetworkJob(
                    reach,
                    final,
                    plan,
                    conn,
                    step=self.id,
                    poll_interval=pace.link_poll,
                    timeout=pace.cluster_outage_timeout,
                )
            )
        self.parallel = max(1, len(jobs))  # each node on its own
        return jobs
