"""Adding nodes to an installed appliance (``palette-wizard add-node PROJECT NODE…``), after the operator added them
to the project file.

The install's own steps bring each new node up with the same provider — boot, install, post-boot checks, eject,
password, configure, network — and the ``appliance`` step reads every node's release, all in the install's session
limited to the new nodes (:class:`OnlyNodes`, and the engine's ``only_nodes``): the installed nodes' jobs are left as
they are. Then
``join`` links each new node to the running cluster, ``pool`` adds them to a machine pool and follows them to
Running and Healthy (:mod:`wizard.appliance.addnode`), and ``validate`` is the install's.
"""

from __future__ import annotations

from collections.abc import Sequence

from wizard.appliance.addnode import JoinLinkJob, JoinPoolJob
from wizard.appliance.versions import Version
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.problems import Problem
from wizard.core.stepids import STEP_IDS
from wizard.install.steps import pipeline
from wizard.install.steps.appliance import detected
from wizard.install.steps.console import ValidateStep
from wizard.install.steps.nodes import Pacing, connector, endpoint, leader_and_followers
from wizard.install.steps.preflight import PreflightSettings

ADD_NODE_STEP_IDS = (*STEP_IDS[: STEP_IDS.index("appliance") + 1], "join", "pool", "validate")


def _new_and_cluster(ctx: StepContext, nodes: Sequence[str]) -> tuple[list[str], list[str]]:
    known = [n.name for n in ctx.project.nodes]
    return [n for n in nodes if n in known], [n for n in known if n not in nodes]


class JoinStep(Step):
    id = "join"
    title = "Link the new nodes to the cluster"
    kind = StepKind.INSTALL
    weight = 1.0

    def __init__(self, nodes: Sequence[str], pacing: Pacing | None = None) -> None:
        self.nodes = list(nodes)
        self.pacing = pacing or Pacing()

    def problems(self, ctx: StepContext) -> list[Problem]:
        leader, _ = leader_and_followers(ctx)
        out = [
            Problem("nodes", f"{name} is the project's leader, which the cluster was made with", "add another node")
            for name in self.nodes
            if name == leader.name
        ]
        identity = detected(ctx)
        spelled = dict(identity.hosts)
        cluster = {name: Version.parse(spelled.get(name)) for name in spelled if name not in self.nodes}
        expected = min((v for v in cluster.values() if v is not None), default=None)
        for name in self.nodes:
            found = Version.parse(spelled.get(name))
            if expected is not None and found is not None and found != expected:
                out.append(
                    Problem(
                        f"nodes[{[n.name for n in ctx.project.nodes].index(name)}]",
                        f"{name} runs {found}, the cluster {expected}",
                        f"install {name} from the Appliance ISO of {expected}",
                    )
                )
        return out

    def jobs(self, ctx: StepContext) -> list[Job]:
        new, members = _new_and_cluster(ctx, self.nodes)
        leader, _ = leader_and_followers(ctx)
        issuers = [endpoint(ctx, leader)] + [endpoint(ctx, ctx.project.node(n)) for n in members if n != leader.name]
        pace = self.pacing
        self.parallel = 1  # one link at a time: each takes a token of its own
        return [
            JoinLinkJob(
                endpoint(ctx, ctx.project.node(name)),
                issuers,
                connector(ctx, pace),
                poll_interval=pace.link_poll,
                ready_timeout=pace.link_ready_timeout,
            )
            for name in new
        ]


class PoolStep(Step):
    id = "pool"
    title = "Join the machine pool"
    kind = StepKind.INSTALL
    weight = 3.0

    def __init__(self, nodes: Sequence[str], pacing: Pacing | None = None) -> None:
        self.nodes = list(nodes)
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        """One job per pool the new nodes join (``nodes[i].pool``; none: the control plane): a pool takes its new
        hosts in one request, so the control plane can grow by two and stay odd."""
        new, _ = _new_and_cluster(ctx, self.nodes)
        leader, _ = leader_and_followers(ctx)
        pace = self.pacing
        pools: dict[str, list[str]] = {}
        for name in new:
            pools.setdefault(ctx.project.node(name).pool, []).append(name)
        return [
            JoinPoolJob(
                endpoint(ctx, leader),
                [endpoint(ctx, ctx.project.node(name)) for name in names],
                connector(ctx, pace),
                pool=pool,
                poll_interval=pace.cluster_poll,
                timeout=pace.cluster_timeout,
                outage_timeout=pace.cluster_outage_timeout,
            )
            for pool, names in pools.items()
        ]


class OnlyNodes(Step):
    """An install step whose node jobs are the new nodes' only: the installed nodes' work is done (their cluster
    runs), and a job of theirs whose inputs changed since (the project grew, a password was stored again) is left
    as it is rather than redone. Jobs of no node run as usual; check steps are not limited (they touch nothing and
    their reports wait for every check)."""

    def __init__(self, step: Step, nodes: Sequence[str]) -> None:
        self.step = step
        self.nodes = frozenset(nodes)
        self.id, self.title, self.kind, self.weight = step.id, step.title, step.kind, step.weight
        self.parallel = step.parallel

    def problems(self, ctx: StepContext) -> list[Problem]:
        return self.step.problems(ctx)

    def jobs(self, ctx: StepContext) -> list[Job]:
        jobs = self.step.jobs(ctx)
        self.parallel = self.step.parallel  # some steps size their parallelism as they build their jobs
        if self.kind is not StepKind.INSTALL:
            return jobs
        return [j for j in jobs if not j.node or j.node in self.nodes]


def add_node_pipeline(
    nodes: Sequence[str],
    *,
    preflight: PreflightSettings | None = None,
    pacing: Pacing | None = None,
) -> list[Step]:
    """The install's steps up to ``appliance``, then ``join``, ``pool`` and ``validate`` (:data:`ADD_NODE_STEP_IDS`);
    run it limited to ``nodes`` (``only_nodes``)."""
    steps = [
        *(OnlyNodes(step, nodes) for step in pipeline(preflight, pacing=pacing, until="appliance")),
        JoinStep(nodes, pacing),
        PoolStep(nodes, pacing),
        ValidateStep(pacing, STEP_IDS),
    ]
    assert tuple(s.id for s in steps) == ADD_NODE_STEP_IDS
    return steps
