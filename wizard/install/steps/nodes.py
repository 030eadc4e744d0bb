"""What the appliance steps share: how fast they poll, who they log in as, and where each node answers.

Credentials: until a step replaces the appliance password, every node still has the ISO's default account, so the
install monitor and the Local UI log in as ``appliance.username`` with the default password ``kairos``.
``appliance.password`` is the operator's *new* password; it is used only once the journal records that a node's
password was replaced (the ``password/<node>`` job, which comes with the password step). This keeps a resumed run
right on either side of the change without trying passwords in turn (a node locks an account after failed logins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wizard.appliance.localui import Connector, Endpoint
from wizard.appliance.monitor import Budgets, PollSettings
from wizard.appliance.sessions import SessionPool
from wizard.core.http import DEFAULT_RETRY, RetryPolicy
from wizard.core.jobs import StepContext
from wizard.core.journal import JOB_DONE
from wizard.core.project import Node
from wizard.core.trust import TrustStore
from wizard.providers.manual import ManualPacing
from wizard.providers.redfish.jobs import RedfishTimeouts

DEFAULT_PASSWORD = "kairos"  # noqa: S105 - the appliance ISO's documented default account


@dataclass(frozen=True)
class Pacing:
    """How often the appliance steps poll and how long they wait; the defaults suit real nodes, the rehearsal and
    tests shorten them with the lab's speed."""

    monitor: PollSettings = field(default_factory=PollSettings)
    manual: ManualPacing = field(default_factory=ManualPacing)
    redfish: RedfishTimeouts = field(default_factory=RedfishTimeouts)
    budgets: Budgets = field(default_factory=Budgets)
    localui_timeout: float = 30.0
    retry: RetryPolicy = DEFAULT_RETRY  # transient faults of every HTTP client the steps open
    link_poll: float = 5.0
    link_ready_timeout: float = 600.0
    content_poll: float = 10.0
    content_sync_timeout: float = 3600.0
    cluster_poll: float = 15.0
    cluster_expected: float = 30 * 60.0
    cluster_timeout: float = 2 * 3600.0
    cluster_outage_timeout: float = 30 * 60.0
    #: ``appliance.boot: keys``: Home every ``keys_interval`` s for ``keys_window`` s (the firmware's time before
    #: GRUB's menu shows), then the keys to the automatic installer.
    keys_interval: float = 1.0
    keys_window: float = 30.0
    #: How often a booting VM's console screenshot is refreshed (vSphere).
    screen_interval: float = 5.0
    #: How long a node's live system may show no install progress before the monitor asks whether it waits at the
    #: interactive installer (wizard.appliance.stuck).
    stuck_budget: float = 5 * 60.0
    #: How many times faster than real time the nodes run (the rehearsal's lab): the steps' expected durations, from
    #: which the overall progress is planned, are divided by it.
    speed: float = 1.0
    #: An archive update: how long it usually takes, when to give up, and how long the leader may take to parse the
    #: uploaded bundle's update archive (and sync its content) before the update is applied.
    upgrade_expected: float = 45 * 60.0
    upgrade_timeout: float = 3 * 3600.0
    update_details_timeout: float = 30 * 60.0


def login_password(ctx: StepContext, node: Node) -> str:
    """The password ``node`` has now: the operator's once the journal says it was replaced, else the default."""
    ref = ctx.project.appliance.password
    record = ctx.record(f"password/{node.name}")
    if ref is not None and record is not None and record.get("status") == JOB_DONE:
        return ctx.secrets.require(ref, "appliance.password")
    return DEFAULT_PASSWORD


def leader_and_followers(ctx: StepContext) -> tuple[Node, list[Node]]:
    """The leader is ``appliance.leader``, else the first node; the others follow it."""
    nodes = list(ctx.project.nodes)
    name = ctx.project.appliance.leader or nodes[0].name
    leader = next(n for n in nodes if n.name == name)
    return leader, [n for n in nodes if n is not leader]


def endpoint(ctx: StepContext, node: Node) -> Endpoint:
    return Endpoint(
        node.name,
        node.ip,
        ctx.project.appliance.username,
        login_password(ctx, node),
        port=node.localui_port,
        fingerprint=node.localui_fingerprint,
    )


LOCALUI_SESSIONS = "localui-sessions"  # the run's kept Local UI sessions (RunResources key)


def connector(ctx: StepContext, pacing: Pacing) -> Connector:
    """Opens the run's Local UI clients; they share the run's sessions (one login per node and password, not one
    per job; all logged out when the run ends)."""
    return Connector(
        TrustStore(ctx.paths.config),
        ctx.confirm,
        timeout=pacing.localui_timeout,
        retry=pacing.retry,
        pool=ctx.resources.get(LOCALUI_SESSIONS, SessionPool, SessionPool.close),
    )


def session_folder(ctx: StepContext) -> Path:
    """The session's own folder beside its journal (where the preflight report goes too)."""
    return ctx.journal.path.with_suffix("")
